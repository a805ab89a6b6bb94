"""CGSchNet: forces are -grad E, symmetry, batching, self-contained checkpoints (import cycles: test_architecture.py)."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from alcg.config import settings
from alcg.util.errors import DataError
from alcg.cg.model import CGModel, load_model, save_model
from cg_helpers import N_BEADS, chain_prior, zigzag

HP = settings.defaults(settings.Model, zero_init_output=False, cutoff_nm=3.0, n_rbf=16, hidden=16, n_filters=16, n_interactions=2,
                       max_neighbors=32)


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return CGModel(torch.arange(N_BEADS) % 5, chain_prior(sigma=0.3), HP).double()


def _rotation(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return torch.as_tensor(q * np.sign(np.linalg.det(q)))


def test_forces_are_minus_finite_difference_gradient(model):
    x = torch.as_tensor(zigzag(2, seed=1)) + 0.02 * torch.randn(2, N_BEADS, 3, dtype=torch.float64)
    _, f = model.energy_and_forces(x)
    h = 1e-5
    for bead, dim in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = x.clone(), x.clone()
        plus[:, bead, dim] += h
        minus[:, bead, dim] -= h
        fd = -(model(plus) - model(minus)) / (2 * h)
        torch.testing.assert_close(f[:, bead, dim], fd, rtol=1e-5, atol=1e-5)


def test_invariance_and_equivariance(model):
    x = torch.as_tensor(zigzag(3, seed=2))
    rot = _rotation()
    e, f = model.energy_and_forces(x)
    e2, f2 = model.energy_and_forces(x @ rot.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(e2, e, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close(f2, f @ rot.T, rtol=1e-7, atol=1e-7)
    assert model.net is not None and not math.isclose(float(model.net(  # network contributes
        model.bead_types, x[0], torch.zeros(N_BEADS, dtype=torch.long)).sum()), 0.0)


def test_permuting_replicas_permutes_outputs(model):
    x = torch.as_tensor(zigzag(5, seed=3))
    perm = torch.tensor([3, 0, 4, 1, 2])
    e, f = model.energy_and_forces(x)
    ep, fp = model.energy_and_forces(x[perm])
    torch.testing.assert_close(ep, e[perm])
    torch.testing.assert_close(fp, f[perm])
    # a structure's energy does not depend on what else is in the batch
    torch.testing.assert_close(model(x[:1]), e[:1])


def test_checkpoint_reloads_alone(model, tmp_path):
    model = model.float()
    save_model(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    x = torch.as_tensor(zigzag(2), dtype=torch.float32)
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.hparams == model.hparams == HP.hparams()
    blob = torch.load(tmp_path / "m.pt", weights_only=False)
    blob["format"] = 99
    torch.save(blob, tmp_path / "old.pt")
    with pytest.raises(DataError, match="has format 99; this alcg .* reads format 1"):
        load_model(tmp_path / "old.pt")


@pytest.mark.parametrize("cutoff_nm", [3.0, 0.9])
def test_dense_path_equals_edge_list_path_also_for_training(cutoff_nm):
    """All-pairs tensors give the edge list's energies, forces and force-matching gradients."""
    torch.manual_seed(1)
    model = CGModel(torch.arange(N_BEADS) % 5, chain_prior(sigma=0.3), dataclasses.replace(HP, cutoff_nm=cutoff_nm)).double()
    x = torch.as_tensor(zigzag(4, seed=4)) + 0.05 * torch.randn(4, N_BEADS, 3, dtype=torch.float64)
    d = model._pair_distances(x)
    assert cutoff_nm > 2.0 or 0.2 < float((d < cutoff_nm).double().mean()) < 0.8  # some pairs cut off
    target = torch.randn(4, N_BEADS, 3, dtype=torch.float64)
    out = {}
    for path in ("edges", "dense"):
        model.pair_path = path
        model.zero_grad()
        e, f = model.energy_and_forces(x, create_graph=True)
        ((f - target) ** 2).mean().backward()
        out[path] = e.detach(), f.detach(), [p.grad if p.grad is None else p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(out["dense"][0], out["edges"][0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out["dense"][1], out["edges"][1], rtol=1e-9, atol=1e-9)
    for (name, _), g_dense, g_edges in zip(model.named_parameters(), out["dense"][2], out["edges"][2]):
        if g_edges is None:  # not used by SchNet's forward (the final bias: forces ignore it)
            assert g_dense is None or float(g_dense.abs().max()) == 0.0, name
            continue
        # agree to ~1e-9 relative: softplus switches to the identity above 20, its slope does not
        torch.testing.assert_close(g_dense, g_edges, rtol=1e-6, atol=1e-8 * float(g_edges.abs().max()),
                                   msg=name)


def test_automatic_path_is_dense_when_most_pairs_interact(model, monkeypatch):
    from alcg.cg.model import _dense_is_cheaper

    x = torch.as_tensor(zigzag(2))
    d = model._pair_distances(x)
    assert _dense_is_cheaper(d, 3.0) and not _dense_is_cheaper(d, 0.5)
    used = []
    monkeypatch.setattr(CGModel, "_dense_energy", lambda self, d: used.append(1) or d.sum(0) * 0.0)
    model(x)
    assert used and model.pair_path == "auto"
    with pytest.raises(ValueError, match="pair_path"):
        model.network_energy(x, pair_path="sparse")
