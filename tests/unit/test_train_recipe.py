"""The training recipe (issue 31): start and prior-alone candidates, a zero-initialised output
layer, AdamW, the cosine step budget, the weight average and its resume, and validation on
whole held-out trajectories."""
import dataclasses

import numpy as np
import pytest
import torch

from alcg.cg import train as train_mod
from alcg.cg.model import CGModel, load_model, save_model
from alcg.cg.train import learning_rate, step_budget, train
from alcg.config import settings
from alcg.formats import dataset
from alcg.util.errors import ConfigError
from cg_helpers import N_BEADS, chain_prior, zigzag

HP = settings.defaults(settings.Model, zero_init_output=False, cutoff_nm=2.0, n_rbf=16, hidden=16, n_filters=16, n_interactions=2,
                       max_neighbors=32)
N_FRAMES = 96
TRAJ = np.repeat(np.arange(6), N_FRAMES // 6).astype(str)


#: the plain recipe each test adds its feature to (not the schema's defaults, which combine them)
PLAIN = {"optimizer": "adam", "weight_decay": 0.0, "schedule": "exponential", "ema_decay": 0.0}


def _cfg(**overrides) -> settings.Train:
    return settings.defaults(settings.Train, **{"batch_size": 32, "patience": 1000, **PLAIN, **overrides})


def _model(seed: int = 0, **hp) -> CGModel:
    torch.manual_seed(seed)
    return CGModel(torch.arange(N_BEADS) % 3, chain_prior(sigma=0.3), dataclasses.replace(HP, **hp))


def _coords() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (zigzag(N_FRAMES, 2) + rng.normal(0, 0.03, (N_FRAMES, N_BEADS, 3))).astype(np.float32)


def _forces_of(model: CGModel, x: np.ndarray) -> np.ndarray:
    return model.energy_and_forces(torch.as_tensor(x))[1].detach().numpy()


def _prior_forces(model: CGModel, x: np.ndarray) -> torch.Tensor:
    xt = torch.as_tensor(x).requires_grad_(True)
    (g,) = torch.autograd.grad(model.prior(xt).sum(), xt)
    return -g


def test_prior_alone_wins_when_the_network_only_hurts(tmp_path):
    """Labels = the prior's forces: no network state beats the prior alone, which is then saved
    and predicts exactly the prior's forces."""
    x = _coords()
    model = _model()
    labels = _prior_forces(model, x).detach().numpy()
    m = train(model, x, labels, TRAJ, _cfg(epochs=3, lr=3e-3), 0, tmp_path / "s.pt", progress=False)
    assert (m["best_candidate"], m["best_epoch"]) == ("prior", -1)
    assert m["best_val_loss"] < 1e-6 * m["start_val_loss"]
    assert min(m["history"]["val_loss"]) > m["best_val_loss"]  # the epochs were candidates, and lost
    save_model(tmp_path / "model.pt", model)
    loaded = load_model(tmp_path / "model.pt")
    for path in ("dense", "edges"):
        loaded.pair_path = path
        assert torch.equal(loaded.energy_and_forces(torch.as_tensor(x))[1], _prior_forces(loaded, x))


def test_the_start_wins_when_every_step_moves_away(tmp_path):
    """Labels = the starting model's own forces plus independent noise: fitting the training
    frames' noise only moves away from the validation frames' mean, so the starting weights
    are kept (best_epoch -1), not an epoch's."""
    x = _coords()
    model = _model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    labels = _forces_of(model, x) + np.random.default_rng(3).normal(0, 0.3, x.shape).astype(np.float32)
    m = train(model, x, labels, TRAJ, _cfg(epochs=2, lr=1e-2), 0, tmp_path / "s.pt", progress=False)
    assert (m["best_candidate"], m["best_epoch"]) == ("start", -1)
    assert m["prior_only_val_loss"] > m["best_val_loss"]
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    assert not torch.equal(torch.load(tmp_path / "s.pt", weights_only=False)["model"]["net.lin2.weight"],
                           start["net.lin2.weight"])  # training did move the weights


def test_zero_initialised_output_is_the_prior_and_still_learns():
    x = _coords()
    model = _model(zero_init_output=True)
    assert "zero_init_output" not in model.hparams
    for path in ("dense", "edges"):
        model.pair_path = path
        assert torch.equal(model.energy_and_forces(torch.as_tensor(x))[1], _prior_forces(model, x))
    target = torch.as_tensor(x) * 10.0

    def grads() -> dict[str, float]:
        model.zero_grad()
        _, f = model.energy_and_forces(torch.as_tensor(x[:8]), create_graph=True)
        ((f - target[:8]) ** 2).mean().backward()
        return {n: float(p.grad.abs().sum()) for n, p in model.net.named_parameters() if p.grad is not None}

    first = grads()
    assert first["lin2.weight"] > 0  # the zeroed layer gets a gradient
    with torch.no_grad():
        model.net.lin2.weight -= 1e-2 * model.net.lin2.weight.grad.sign()
    second = grads()
    assert second["embedding.weight"] > 0 and second["interactions.0.mlp.0.weight"] > 0  # then the rest


def test_cosine_schedule_reaches_its_floor_at_the_step_budget(tmp_path):
    cfg = _cfg(schedule="cosine", steps=7, lr=1e-2, lr_min=1e-4, patience=1)
    assert learning_rate(cfg, 0, 0, 7) == pytest.approx(1e-2)
    assert learning_rate(cfg, 1, 7, 7) == pytest.approx(1e-4)
    rates = [learning_rate(cfg, 0, k, 7) for k in range(8)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    x = _coords()
    train_idx, val_idx = np.arange(80), np.arange(80, N_FRAMES)
    assert step_budget(cfg, len(train_idx)) == (3, 3, 7)  # 80 frames / 32: 3 batches an epoch
    m = train(_model(), x, _forces_of(_model(seed=5), x), TRAJ, cfg, 0, tmp_path / "s.pt", progress=False,
              split=(train_idx, val_idx))
    assert m["history"]["epoch"] == [0, 1, 2] and m["n_steps"] == 7  # patience 1 stops nothing
    state = torch.load(tmp_path / "s.pt", weights_only=False)["optimizer"]
    assert {float(s["step"]) for s in state["state"].values()} == {7.0}  # exactly the budget
    assert state["param_groups"][0]["lr"] == pytest.approx(learning_rate(cfg, 2, 6, 7))  # the last step's


def test_adamw_decay_shrinks_the_weights(tmp_path):
    x = _coords()
    labels = _forces_of(_model(seed=5), x)
    norms = {}
    for name, cfg in {"adam": _cfg(epochs=2, lr=1e-2),
                      "adamw": _cfg(epochs=2, lr=1e-2, optimizer="adamw", weight_decay=20.0)}.items():
        train(_model(), x, labels, TRAJ, cfg, 0, tmp_path / f"{name}.pt", progress=False)
        raw = torch.load(tmp_path / f"{name}.pt", weights_only=False)["model"]
        norms[name] = sum(float(v.norm()) for k, v in raw.items() if k.startswith("net.") and k.endswith("weight"))
    assert norms["adamw"] < 0.5 * norms["adam"], norms
    with pytest.raises(ConfigError, match="adamw"):
        train(_model(), x, labels, TRAJ, _cfg(weight_decay=1.0), 0, tmp_path / "x.pt", progress=False)


RECIPE = dict(schedule="cosine", steps=10, lr=3e-3, lr_min=1e-5, optimizer="adamw", weight_decay=0.01,
              ema_decay=0.8)


def test_weight_average_is_what_is_validated(tmp_path):
    x = _coords()
    cfg = _cfg(**RECIPE)
    model = _model()
    m = train(model, x, _forces_of(_model(seed=5), x), TRAJ, cfg, 0, tmp_path / "s.pt", progress=False)
    ckpt = torch.load(tmp_path / "s.pt", weights_only=False)
    _, val = train_mod.split_by_trajectory(TRAJ, cfg.val_fraction, 0)
    xt, ft = torch.as_tensor(x), torch.as_tensor(_forces_of(_model(seed=5), x))
    probe = _model()
    probe.load_state_dict(ckpt["model"])
    raw_loss = train_mod._eval_loss(probe, xt, ft, val, 32)
    average = train_mod.WeightAverage(probe, cfg.ema_decay)
    average.load_state_dict(ckpt["ema"])
    with average.applied(probe):  # (SchNet's conv.nn shares mlp's tensors: set by parameter, not by key)
        ema_loss = train_mod._eval_loss(probe, xt, ft, val, 32)
    assert ema_loss == pytest.approx(m["history"]["val_loss"][-1], rel=1e-6)
    assert abs(raw_loss - ema_loss) > 1e-3 * ema_loss
    assert any(not torch.equal(ckpt["model"][k], v) for k, v in ckpt["ema"].items())


def test_interrupted_recipe_resumes_as_an_uninterrupted_run(tmp_path, monkeypatch):
    """Cosine budget, AdamW and the weight average: killed after two epochs and resumed, the
    run ends with the same history and weights as one that ran through."""
    x = _coords()
    labels = _forces_of(_model(seed=5), x)
    cfg = _cfg(**RECIPE, batch_size=16)  # 4 steps an epoch: 3 epochs
    whole = _model()
    m_whole = train(whole, x, labels, TRAJ, cfg, 0, tmp_path / "a.pt", progress=False)

    calls = {"n": 0}
    real = train_mod._train_epoch

    def killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "_train_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        train(_model(), x, labels, TRAJ, cfg, 0, tmp_path / "b.pt", progress=False)
    monkeypatch.setattr(train_mod, "_train_epoch", real)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["epoch"] == 1
    resumed = _model(seed=9)  # other initial weights: all state comes from the checkpoint
    m_resumed = train(resumed, x, labels, TRAJ, cfg, 0, tmp_path / "b.pt", progress=False)
    assert m_resumed["history"] == m_whole["history"] and len(m_whole["history"]["epoch"]) == 3
    assert (m_resumed["best_candidate"], m_resumed["best_epoch"]) == (m_whole["best_candidate"], m_whole["best_epoch"])
    for k, v in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)


def _round0(n_traj: int, frames: int) -> dataset.CGDataset:
    n = n_traj * frames
    data = dataset.empty(np.zeros(N_BEADS, np.int64), np.full(N_BEADS, 100.0), "A" * N_BEADS)
    return dataset.with_frames(
        data, coords=np.zeros((n, N_BEADS, 3), np.float32), forces=np.ones((n, N_BEADS, 3), np.float32),
        source=np.repeat([f"initial/rep_{t}" for t in range(n_traj)], frames),
        frame=np.tile(np.arange(frames), n_traj), round=np.zeros(n, np.int64),
        traj=np.repeat([f"rep_{t}" for t in range(n_traj)], frames), split=np.full(n, "train"))


def test_validation_by_trajectories_holds_out_whole_trajectories():
    data = _round0(5, 10)
    val = dataset.assign_validation(data, 0.2, "trajectories")
    held = set(val.traj[val.split == dataset.VAL])
    assert len(held) == 1 and (val.split == dataset.VAL).sum() == 10
    assert held.isdisjoint(val.traj[val.split == dataset.TRAIN])  # whole trajectories, nothing adjacent
    assert np.array_equal(dataset.assign_validation(data, 0.2, "trajectories").split, val.split)  # fixed
    more = dataset.assign_validation(data, 0.5, "trajectories")
    assert (more.split == dataset.VAL).sum() == 30 and len(set(more.traj[more.split == dataset.VAL])) == 3
    tail = dataset.assign_validation(data, 0.2, "tail")
    assert set(tail.traj[tail.split == dataset.VAL]) == set(data.traj)  # every trajectory's last 2
    assert np.all(tail.frame[tail.split == dataset.VAL] >= 8)
    one = dataset.assign_validation(_round0(1, 10), 0.2, "trajectories")
    assert list(np.flatnonzero(one.split == dataset.VAL)) == [8, 9]  # one trajectory: its tail
    with pytest.raises(ValueError, match="validation mode"):
        dataset.assign_validation(data, 0.2, "pool")


def test_a_step_budget_validates_about_val_checks_epochs_and_always_the_last(tmp_path):
    from alcg.cg.train import validates

    cfg = _cfg(schedule="cosine", steps=60, val_checks=4)
    assert [e for e in range(20) if validates(cfg, e, 20)] == [4, 9, 14, 19]
    assert all(validates(_cfg(epochs=5), e, 5) for e in range(5))  # epoch-based: every epoch
    x = _coords()
    train_idx, val_idx = np.arange(80), np.arange(80, N_FRAMES)  # 3 steps an epoch: 20 epochs
    m = train(_model(), x, _forces_of(_model(seed=5), x), TRAJ, cfg, 0, tmp_path / "s.pt", progress=False,
              split=(train_idx, val_idx))
    assert m["history"]["epoch"] == [4, 9, 14, 19] and m["n_steps"] == 60
    assert torch.load(tmp_path / "s.pt", weights_only=False)["epoch"] == 19
