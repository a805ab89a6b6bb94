"""Force matching recovers a known analytic CG potential; training resumes and stops on NaN."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from alcg.config import settings
from alcg.util.errors import TrainingError
from alcg.cg.model import CGModel
from alcg.cg.priors import fit_priors
from alcg.cg.simulate import simulate
from alcg.cg.train import split_by_trajectory, train
from cg_helpers import KT, N_BEADS, chain_prior, energy_force_fn, langevin, zigzag
from proc_helpers import kill_after_checkpoint

HP = settings.defaults(settings.Model, zero_init_output=False, cutoff_nm=2.0, n_rbf=24, hidden=32, n_filters=32, n_interactions=2,
                       max_neighbors=32)
PRIORS = settings.defaults(settings.Priors, dihedral_terms=2)


def _train_settings(**overrides) -> settings.Train:
    plain = {"optimizer": "adam", "weight_decay": 0.0, "schedule": "exponential", "ema_decay": 0.0}
    return settings.defaults(settings.Train, **{**plain, **overrides})  # the plain recipe, not the defaults


class Truth(torch.nn.Module):
    """Harmonic chain + a Gaussian well (3 kT) on the distance of beads 0 and 5."""

    def __init__(self):
        super().__init__()
        self.prior = chain_prior(angle_k=30.0, sigma=0.3)

    def forward(self, x):
        d = (x[:, 5] - x[:, 0]).norm(dim=-1)
        return self.prior(x) - 3 * KT * torch.exp(-((d - 1.0) ** 2) / (2 * 0.2 ** 2))


@pytest.fixture(scope="module")
def data():
    truth = Truth()
    cfg = langevin(n_steps=3000, save_interval=100, temperature_k=300.0, seed=4, dt_ps=0.002, friction_per_ps=5.0)
    res = simulate(energy_force_fn(truth), zigzag(64, 4), np.full(N_BEADS, 50.0), cfg, progress=False)
    coords = res.coords[:, 5:].reshape(-1, N_BEADS, 3)
    _, forces = energy_force_fn(truth)(torch.as_tensor(coords))
    traj = np.repeat(np.arange(64), res.coords.shape[1] - 5).astype(str)
    return coords, forces.numpy(), traj


def test_split_holds_out_whole_trajectories():
    traj = np.repeat(["a", "b", "c", "d", "e"], 10)
    tr, va = split_by_trajectory(traj, 0.2, seed=1)
    assert set(traj[tr]).isdisjoint(traj[va]) and len(va) == 10
    tr1, va1 = split_by_trajectory(np.repeat(["a"], 10), 0.3, seed=0)
    assert list(va1) == [7, 8, 9]


def test_force_matching_recovers_analytic_potential(data, tmp_path):
    coords, forces, traj = data
    torch.manual_seed(0)
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), fit_priors(coords, 300.0, PRIORS), HP)
    metrics = train(model, coords, forces, traj, _train_settings(epochs=40, batch_size=64, lr=3e-3, lr_decay=0.97,
                    patience=40), 0, tmp_path / "state.pt", progress=False)
    assert metrics["n_val"] > 0
    assert metrics["best_val_loss"] < 0.7 * metrics["prior_only_val_loss"]  # the net learns the well
    assert metrics["best_val_loss"] < 0.02 * metrics["force_scale"]
    json.dumps(metrics)


def test_resume_from_epoch_checkpoint(data, tmp_path):
    coords, forces, traj = data
    cfg = _train_settings(epochs=2, batch_size=128, patience=10)
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), fit_priors(coords, 300.0, PRIORS), HP)
    first = train(model, coords[:300], forces[:300], traj[:300], cfg, 0, tmp_path / "s.pt", progress=False)
    cfg = dataclasses.replace(cfg, epochs=4)  # as if the job had been killed after epoch 1 of 4
    second = train(model, coords[:300], forces[:300], traj[:300], cfg, 0, tmp_path / "s.pt", progress=False)
    assert second["history"]["epoch"] == [0, 1, 2, 3]
    assert second["history"]["train_loss"][:2] == first["history"]["train_loss"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data, tmp_path):
    coords, forces, traj = data
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), fit_priors(coords, 300.0, PRIORS), HP)
    train(model, coords[:200], forces[:200], traj[:200], _train_settings(epochs=1), 0, tmp_path / "s.pt",
          progress=False)
    good = (tmp_path / "s.pt").read_bytes()
    bad = forces[:200].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(TrainingError, match="non-finite"):
        train(model, coords[:200], bad, traj[:200], _train_settings(epochs=3), 0, tmp_path / "s.pt",
              progress=False)
    assert (tmp_path / "s.pt").read_bytes() == good


KILL_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import json
import numpy as np
import torch
from alcg.config import settings as S
from alcg.cg.model import CGModel
from alcg.cg.priors import fit_priors
from alcg.cg.train import train
from cg_helpers import N_BEADS, zigzag
rng = np.random.default_rng(0)
x = zigzag(400, 1) + rng.normal(0, 0.01, (400, N_BEADS, 3))
f = rng.normal(0, 50, x.shape)
torch.manual_seed(0)
prior = fit_priors(x, 300.0, S.defaults(S.Priors, dihedral_terms=2))
model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), prior,
                S.defaults(S.Model, hidden=32, n_filters=32, n_rbf=16, n_interactions=2))
m = train(model, x, f, np.repeat(np.arange(8), 50).astype(str),
          S.defaults(S.Train, epochs=int(sys.argv[3]), batch_size=32, patience=1000, ema_decay=0.0), 0, sys.argv[2], progress=False)
open(sys.argv[2] + ".json", "w").write(json.dumps(m["history"]))
"""


def test_killed_training_resumes_from_last_epoch(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    tests, state = str(Path(__file__).parents[1]), tmp_path / "train_state.pt"
    kill_after_checkpoint([sys.executable, "-c", KILL_SCRIPT, tests, str(state), "40"], state,
                          timeout_s=300, grace_s=1.0)
    done = torch.load(state, weights_only=False)["epoch"]
    assert 0 <= done < 39
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, tests, str(state), "40"], check=True, timeout=600)
    history = json.loads(Path(str(state) + ".json").read_text())
    assert history["epoch"] == list(range(40))  # every epoch once, none repeated or lost


class _ConstantForce(torch.nn.Module):
    """A model whose force on every bead is one learnable vector (for the weighting test)."""

    def __init__(self):
        super().__init__()
        self.c = torch.nn.Parameter(torch.zeros(3))

    def energy_and_forces(self, x, create_graph=False):
        return torch.zeros(len(x)), self.c.expand(x.shape[0], x.shape[1], 3)

    def prior(self, x):
        return torch.zeros(len(x)) + 0.0 * x.sum()


def test_frame_weights_follow_label_variance():
    from alcg.cg.train import frame_weights

    w = frame_weights(np.array([1.0, 1e4, np.nan, 1.0]), 1.0, np.arange(4))
    assert w.mean() == pytest.approx(1.0)
    assert w[1] < w[0] / 1000 and w[0] == pytest.approx(w[3])
    assert w[1] < w[2] < w[0]  # unknown: the mean of the known variances


@pytest.mark.parametrize("weighted", [True, False])
def test_a_large_variance_frame_weighs_less_in_the_loss(tmp_path, weighted):
    """Half the frames say +10 kJ/mol/nm with variance 1, half say -10 with variance 1e4: the
    weighted fit lands on the precise labels; equal variances give the plain average, 0."""
    n = 40
    x = np.asarray(zigzag(n), np.float32)
    f = np.zeros((n, N_BEADS, 3), np.float32)
    f[: n // 2], f[n // 2:] = 10.0, -10.0
    var = np.where(np.arange(n) < n // 2, 1.0, 1e4) if weighted else np.full(n, 50.0)
    model = _ConstantForce()
    cfg = _train_settings(epochs=150, batch_size=8, lr=0.5, lr_decay=0.97, patience=1000, model_force_var=1.0)
    idx = np.arange(n)
    train(model, x, f, np.zeros(n), cfg, 0, tmp_path / "s.pt", progress=False, split=(idx, idx[:0]),
          force_var=var)
    c = model.c.detach().numpy()
    assert np.allclose(c, 9.99, atol=0.3) if weighted else np.allclose(c, 0.0, atol=0.5), c


def test_micro_batches_give_the_batch_gradient(data, tmp_path, monkeypatch):
    """A batch split into micro-batches (as at 80 beads) takes the same optimizer steps."""
    from alcg.cg import train as train_mod

    coords, forces, traj = data
    cfg = _train_settings(epochs=2, batch_size=32, lr=3e-3, lr_decay=0.97, patience=10)
    results = []
    torch.manual_seed(0)
    initial = [p.detach().clone() for p in CGModel(torch.zeros(N_BEADS, dtype=torch.long),
                                                     fit_priors(coords, 300.0, PRIORS), HP).parameters()]
    for per_pass in (1 << 16, 3 * N_BEADS * (N_BEADS - 1) // 2):  # one pass; 3 frames per pass
        monkeypatch.setattr(train_mod, "PAIR_FRAMES_PER_PASS", per_pass)
        assert len(train_mod._micro_batches(np.arange(32), N_BEADS)) == (1 if per_pass > 1000 else 11)
        torch.manual_seed(0)
        model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), fit_priors(coords, 300.0, PRIORS), HP)
        m = train(model, coords[:256], forces[:256], traj[:256], cfg, 0, tmp_path / f"s{per_pass}.pt", progress=False)
        results.append((m["history"]["train_loss"], [p.detach().clone() for p in model.parameters()]))
    (loss_a, par_a), (loss_b, par_b) = results
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4)
    for a, b in zip(par_a, par_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert max(float((a - p).abs().max()) for a, p in zip(par_a, initial)) > 1e-3  # training moved them
