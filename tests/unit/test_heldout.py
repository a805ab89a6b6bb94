"""The held-out force set: stratified, reproducible, and a force error whose paired
differences between models cancel the label noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alcg.analysis import heldout


class Harmonic(torch.nn.Module):
    """E = k/2 |x|^2 (the 'prior') + c . x (the 'network'): forces -k x - c."""

    def __init__(self, k: float, c: float):
        super().__init__()
        self.k, self.c = k, c

    def prior(self, x):
        return 0.5 * self.k * (x ** 2).sum((1, 2))

    def energy_and_forces(self, x):
        x = x.detach().requires_grad_(True)
        e = self.prior(x) + self.c * x.sum((1, 2))
        (g,) = torch.autograd.grad(e.sum(), x)
        return e.detach(), -g


def test_stratified_pick_is_reproducible_and_caps_each_stratum():
    labels = np.array(["a"] * 50 + ["b"] * 5 + ["c"] * 30)
    pick = heldout.stratified_pick(labels, 10, seed=1)
    assert np.array_equal(pick, heldout.stratified_pick(labels, 10, seed=1))
    counts = {s: int((labels[pick] == s).sum()) for s in "abc"}
    assert counts == {"a": 10, "b": 5, "c": 10} and len(set(pick.tolist())) == len(pick)


def test_q_strata():
    assert heldout.q_strata(np.array([0.0, 0.5, 0.7, 0.86, 1.0]), 0.7, 0.15).tolist() == \
        ["unfolded", "unfolded", "transition", "folded", "folded"]


def test_paired_force_error_cancels_label_noise(tmp_path):
    """Labels = mean force (-x) + large noise. Each model's MSE is dominated by the noise, but
    the difference of two models' MSE on the same frames estimates the difference of their
    mean-force errors (c_a^2 - c_b^2) with an error far below the noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 5, 3)).astype(np.float32)
    noise = 30.0
    f = (-x + rng.normal(0, noise, x.shape)).astype(np.float32)
    h = heldout.HeldOut(x, f, np.array(["a", "b"] * 2000), np.array(["r"] * 4000), np.arange(4000))
    heldout.save(tmp_path / "h.npz", h)
    h = heldout.load(tmp_path / "h.npz")
    good, bad = heldout.force_errors(Harmonic(1.0, 0.5), h), heldout.force_errors(Harmonic(1.0, 2.0), h)
    assert good["heldout_force_mse"] == pytest.approx(noise ** 2, rel=0.05)  # noise-dominated
    diff = bad["heldout_force_mse"] - good["heldout_force_mse"]
    assert diff == pytest.approx(2.0 ** 2 - 0.5 ** 2, abs=0.5)  # the mean-force error difference
    assert good["heldout_prior_force_mse"] == bad["heldout_prior_force_mse"]  # same prior, same frames
    assert set(good["heldout_force_mse_by_stratum"]) == {"a", "b"}


def test_paired_difference_interval_covers_the_mean_force_error_difference():
    """Per-frame errors of two models on noisy labels: the paired difference's 95 % interval
    covers c_b^2 - c_a^2 and is far narrower than the noise; seeds add their spread."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 5, 3)).astype(np.float32)
    f = (-x + rng.normal(0, 30.0, x.shape)).astype(np.float32)
    h = heldout.HeldOut(x, f, np.array(["a"] * 3000), np.array(["r"] * 3000), np.arange(3000))
    (ea, _), (eb, _) = heldout.frame_errors(Harmonic(1.0, 2.0), h), heldout.frame_errors(Harmonic(1.0, 0.5), h)
    assert ea.mean() == pytest.approx(heldout.force_errors(Harmonic(1.0, 2.0), h)["heldout_force_mse"])
    d = heldout.paired_difference(ea, eb, n_blocks=20)
    assert d["ci95"][0] < 2.0 ** 2 - 0.5 ** 2 < d["ci95"][1] and d["se"] < 0.5 and d["se_seeds"] == 0.0
    two = heldout.paired_difference(np.stack([ea, ea + 1.0]), np.stack([eb, eb]), n_blocks=20)
    assert two["per_seed"] == pytest.approx([d["mean"], d["mean"] + 1.0]) and two["se_seeds"] == pytest.approx(0.5)


def test_mean_force_labels_round_trip_and_old_files_load(tmp_path):
    from alcg.util.fileio import load_npz, save_npz

    x = np.zeros((3, 2, 3), np.float32)
    h = heldout.HeldOut(x, x + 1, np.array(["a", "b", "b"]), np.array(["r"] * 3), np.arange(3),
                        force_se2=np.array([1.0, 2.0, 3.0]), label_kind="mean_force", populations={"a": 0.25, "b": 0.75})
    heldout.save(tmp_path / "h.npz", h)
    back = heldout.load(tmp_path / "h.npz")
    assert back.label_kind == "mean_force" and back.populations == {"a": 0.25, "b": 0.75}
    assert np.allclose(back.force_se2, [1.0, 2.0, 3.0]) and np.allclose(back.forces, 1.0)
    raw = load_npz(tmp_path / "h.npz")  # as written before: no force_se2, labels or populations
    save_npz(tmp_path / "old.npz", metadata={"strata": ["a", "b"]},
             **{k: v for k, v in raw.items() if k not in ("force_se2", "metadata")})
    old = heldout.load(tmp_path / "old.npz")
    assert old.label_kind == "instantaneous" and old.force_se2 is None and old.populations is None
    with pytest.raises(ValueError, match="labels"):
        heldout.save(tmp_path / "bad.npz", heldout.HeldOut(x, x, h.stratum, h.source, h.frame, label_kind="exact"))
    assert heldout.populations(np.array(["a", "b", "b", "", "b"])) == {"a": 0.25, "b": 0.75}


def test_fraction_removed_is_one_at_the_mean_force_and_zero_at_the_prior():
    """Labels = mean force + noise of variance se2: a model at the mean force has MSE = se2
    (fraction removed 1), one no better than its prior 0; excess = MSE(model) - MSE(prior);
    the weighted numbers weigh the strata by population, not by frame count."""
    stratum = np.array(["a"] * 10 + ["b"] * 30)
    se2 = np.full(40, 4.0)
    prior = np.where(stratum == "a", 104.0, 24.0)
    exact = heldout.error_metrics(se2.copy(), prior, stratum, se2, {"a": 0.9, "b": 0.1})
    assert exact["heldout_fraction_removed"] == pytest.approx(1.0)
    assert exact["heldout_fraction_removed_weighted"] == pytest.approx(1.0)
    assert exact["heldout_fraction_removed_by_stratum"] == pytest.approx({"a": 1.0, "b": 1.0})
    assert exact["heldout_excess_by_stratum"] == pytest.approx({"a": -100.0, "b": -20.0})
    assert exact["heldout_excess"] == pytest.approx(-40.0)  # frames alike: (10 x -100 + 30 x -20) / 40
    assert exact["heldout_excess_weighted"] == pytest.approx(-92.0)  # 0.9 x -100 + 0.1 x -20
    none = heldout.error_metrics(prior.copy(), prior, stratum, se2, {"a": 0.9, "b": 0.1})
    assert none["heldout_fraction_removed"] == pytest.approx(0.0) and none["heldout_excess"] == 0.0
    half = heldout.error_metrics(np.where(stratum == "a", 54.0, 14.0), prior, stratum, se2, {"a": 0.5, "b": 0.5})
    assert half["heldout_fraction_removed_weighted"] == pytest.approx(0.5)
    blind = heldout.error_metrics(se2.copy(), prior, stratum)  # instantaneous: no SE^2, no populations
    assert blind["heldout_fraction_removed"] is None and blind["heldout_excess_weighted"] is None
    assert blind["heldout_force_mse"] == pytest.approx(4.0)
