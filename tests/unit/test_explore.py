"""Exploration that reaches beyond the data: spread starts, and how much of the reference a run reached."""
import numpy as np
import pytest

from alcg.analysis.evaluate import plane_coverage
from alcg.stages.cg import explore_starts


def _two_clusters(n_big: int, n_small: int, seed: int = 0) -> np.ndarray:
    """(F, 5, 3) nm: a dense cluster of a straight chain and a small one of a bent chain."""
    rng = np.random.default_rng(seed)
    straight = np.stack([np.arange(5) * 0.38, np.zeros(5), np.zeros(5)], axis=1)
    bent = straight.copy()
    bent[3:, 1] += 0.6
    return np.concatenate([straight + 0.01 * rng.standard_normal((n_big, 5, 3)),
                           bent + 0.01 * rng.standard_normal((n_small, 5, 3))]).astype(np.float32)


def test_spread_starts_reach_a_rare_cluster_that_random_starts_mostly_miss():
    coords = _two_clusters(995, 5)
    idx = np.arange(len(coords))
    spread = explore_starts(coords, idx, 4, "spread", seed=3)
    assert (spread >= 995).any() and len(np.unique(spread)) == 4  # the rare bent cluster gets a start
    hits = [(explore_starts(coords, idx, 4, "random", seed=s) >= 995).any() for s in range(200)]
    assert np.mean(hits) < 0.1  # 1 - (995/1000)^4 = 2 %
    few = np.array([0, 1, 995])  # more replicas than frames: the centers cycle
    cycled = explore_starts(coords, few, 7, "spread", seed=0)
    assert len(cycled) == 7 and set(cycled) <= set(few) and 995 in cycled and len(set(cycled)) >= 2
    assert set(explore_starts(coords, idx[10:20], 50, "random", seed=0)) <= set(range(10, 20))
    with pytest.raises(ValueError, match="cg_sim.starts: unknown value 'far'"):
        explore_starts(coords, idx, 4, "far", seed=0)


def test_plane_coverage_counts_reference_bins_and_their_mass():
    """Reference: 90 points in one corner bin, 10 in the opposite one (2 x 2 grid); points in
    the dense bin reach 1 of 2 bins and 90 % of the mass; points beyond the grid are outside."""
    ref = np.array([[0.0, 0.0]] * 90 + [[1.0, 1.0]] * 10)
    assert plane_coverage(ref, np.array([[0.0, 0.0]]), 2) == {"bins_reached": 0.5, "mass_reached": 0.9,
                                                              "share_outside": 0.0}
    out = plane_coverage(ref, np.array([[1.0, 1.0], [0.0, 1.0], [9.0, 9.0], [0.0, 0.0]]), 2)
    assert out == {"bins_reached": 1.0, "mass_reached": 1.0, "share_outside": 0.5}


def test_a_model_whose_start_groups_never_cross_gets_no_p_fold():
    """Runs stuck where they started (folded at Q 0.9, extended at Q 0.3) read P_fold 0.5 as a
    mean of groups: the check refuses it; groups that cross alike give their mean and error."""
    from alcg.analysis import convergence
    from alcg.stages.analysis import _fold_run, model_p_fold

    def groups(folded_q, extended_q):
        return {"folded": [_fold_run(q, "Q", 0.7, True) for q in folded_q],
                "extended": [_fold_run(q, "Q", 0.7, True) for q in extended_q]}

    stuck = convergence.check(groups([np.full(500, 0.9)] * 4, [np.full(500, 0.3)] * 4), 1.0)
    out = model_p_fold(stuck, 0.42)
    assert not stuck["converged"] and out["p_fold"] is None and out["p_fold_error"] is None
    assert (out["p_fold_start_min"], out["p_fold_start_max"]) == (0.0, 1.0)
    rng = np.random.default_rng(0)
    runs = [np.where(np.sin(np.arange(4000) / 15.0 + rng.uniform(0, 6)) > 0.2, 0.9, 0.3) for _ in range(8)]
    mixed = convergence.check(groups(runs[:4], runs[4:]), 1.0)
    out = model_p_fold(mixed, 0.42)
    assert mixed["converged"], mixed["reasons"]
    assert out["p_fold"] == pytest.approx(0.43, abs=0.03) and out["p_fold_error"] == pytest.approx(
        abs(out["p_fold"] - 0.42))
