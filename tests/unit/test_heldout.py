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
