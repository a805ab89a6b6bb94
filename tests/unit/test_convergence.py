"""The reference convergence check passes an equilibrium ensemble and fails what is not one."""
import numpy as np
import pytest

from alcg.analysis import convergence


def _two_state(n: int, start: bool, k_fold: float, k_unfold: float, rng) -> np.ndarray:
    """A two-state Markov chain (folded True/False), switching probabilities per frame."""
    out = np.empty(n, bool)
    state = start
    u = rng.random(n)
    for t in range(n):
        out[t] = state
        state = (u[t] >= k_unfold) if state else (u[t] < k_fold)
    return out


def _runs(n, start, k_fold, k_unfold, rng, n_runs=2):
    runs = []
    for _ in range(n_runs):
        f = _two_state(n, start, k_fold, k_unfold, rng)
        q = np.where(f, 0.9, 0.2) + rng.normal(0, 0.05, n)
        runs.append({"folded": f, "core": np.where(f, 1, -1), "q": q})
    return runs


def test_integrated_time_of_an_ar1_series():
    rng = np.random.default_rng(1)
    phi, n = 0.9, 200_000
    x = np.zeros(n)
    e = rng.normal(size=n)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    assert convergence.integrated_time(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.15)
    assert convergence.integrated_time(np.ones(100)) == float("inf")


def test_long_reference_from_both_starts_passes():
    rng = np.random.default_rng(2)
    groups = {"folded": _runs(20_000, True, 0.01, 0.01, rng), "extended": _runs(20_000, False, 0.01, 0.01, rng)}
    rep = convergence.check(groups, frame_interval_ps=1.0)
    assert rep["converged"], rep["reasons"]
    assert rep["groups"]["folded"]["p_fold"] == pytest.approx(0.5, abs=0.1)
    assert rep["groups"]["folded"]["tau_ps"] == pytest.approx(99, rel=0.3)  # (2 - 0.02) / 0.02 frames


def test_short_reference_whose_halves_disagree_fails():
    rng = np.random.default_rng(3)
    groups = {"folded": _runs(300, True, 0.001, 0.001, rng), "extended": _runs(300, False, 0.001, 0.001, rng)}
    rep = convergence.check(groups, frame_interval_ps=1.0)
    assert not rep["converged"]
    assert any("transitions" in r for r in rep["reasons"]) and any("p_fold" in r for r in rep["reasons"])


def test_flicker_at_the_threshold_is_not_a_transition():
    q = np.array([0.2, 0.65, 0.75, 0.65, 0.75, 0.9, 0.75, 0.65, 0.2])
    core = convergence.core_sets(q, 0.7, 0.15, folded_above=True)
    assert core.tolist() == [-1, 0, 0, 0, 0, 1, 0, 0, -1]
    assert convergence.transitions(core) == 2  # not the 6 threshold crossings


def test_agreement_within_a_large_error_is_not_convergence():
    """Short runs that cross often enough but whose P_fold is known only to +-0.1 or worse."""
    rng = np.random.default_rng(5)
    groups = {"folded": _runs(400, True, 0.05, 0.05, rng, n_runs=1),
              "extended": _runs(400, False, 0.05, 0.05, rng, n_runs=1)}
    rep = convergence.check(groups, frame_interval_ps=1.0)
    assert not rep["converged"] and any("standard error" in r for r in rep["reasons"])


def test_two_different_equilibria_are_told_apart():
    """Long, well-mixed runs of two different ensembles: transitions are plentiful, but the
    folded fractions differ by many standard errors."""
    rng = np.random.default_rng(4)
    groups = {"a": _runs(20_000, True, 0.02, 0.01, rng), "b": _runs(20_000, False, 0.01, 0.02, rng)}
    rep = convergence.check(groups, frame_interval_ps=1.0)
    assert not rep["converged"] and rep["z"]["p_fold"] > convergence.MAX_Z
    assert not any("transitions" in r for r in rep["reasons"])
