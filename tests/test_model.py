"""CGSchNet: forces are -grad E, symmetry, batching, self-contained checkpoints."""
import math

import numpy as np
import pytest
import torch

from alcg.errors import DataError
from alcg.model import CGModel, load_model, save_model
from cg_helpers import N_BEADS, chain_prior, zigzag

HP = dict(cutoff_nm=3.0, n_rbf=16, hidden=16, n_filters=16, n_interactions=2, max_neighbors=32)


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
    assert loaded.hparams == model.hparams
    blob = torch.load(tmp_path / "m.pt", weights_only=False)
    blob["format"] = 99
    torch.save(blob, tmp_path / "old.pt")
    with pytest.raises(DataError, match="has format 99; this alcg .* reads format 1"):
        load_model(tmp_path / "old.pt")
