"""Evaluation metrics: W1 of shifted Gaussians, TICA finds the slow coordinate."""
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from alcg import settings
from alcg.evaluate import TicaSpace, compare, w1_emd


def _settings(**overrides) -> settings.Evaluate:
    return settings.defaults(settings.Evaluate, **overrides)


def test_w1_of_shifted_gaussians_is_the_shift():
    rng = np.random.default_rng(0)
    d = 2.0
    a = rng.normal(size=(3000, 2))
    b = rng.normal(size=(3000, 2)) + [d, 0.0]
    mean, sd = w1_emd(a, b, n_subsamples=3, subsample_size=1500, seed=1)
    assert mean == pytest.approx(d, abs=0.1)  # finite-sample EMD is biased up by a few %
    assert 0 < sd < 0.05
    assert wasserstein_distance(a[:, 0], b[:, 0]) == pytest.approx(d, abs=0.05)
    same, _ = w1_emd(a, rng.normal(size=(3000, 2)), 2, 1500, seed=0)
    assert same < 0.2


def _slow_process(n_frames, seed):
    """Chain of 6 beads: bead 5 hops slowly between two positions; the rest jiggles fast."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.arange(6) * 0.38, np.zeros(6), np.zeros(6)], axis=1)
    state = np.zeros(n_frames)
    s = 0.0
    for t in range(n_frames):
        if rng.random() < 0.01:
            s = 1.0 - s
        state[t] = s
    xyz = base[None] + rng.normal(0, 0.02, (n_frames, 6, 3))
    xyz[:, 5, 1] += 0.5 * state
    return xyz, state


def test_tica_finds_the_slow_coordinate():
    trajs, states = zip(*[_slow_process(3000, s) for s in range(3)])
    tica = TicaSpace.fit(list(trajs), lag_frames=10, dim=2)
    tic1 = tica.transform(trajs[0])[:, 0]
    assert abs(np.corrcoef(tic1, states[0])[0, 1]) > 0.95


def test_compare_reports_all_metrics():
    ref, _ = _slow_process(2000, 1)
    model, _ = _slow_process(1000, 2)
    tica = TicaSpace.fit([ref], 10, 2)
    m = compare(model, ref, tica, ref[0], _settings(folded_rmsd_nm=0.1, n_subsamples=2, subsample_size=500), seed=0)
    for key in ("tica_w1", "tica_w1_sd", "bond_w1_nm", "angle_w1_rad", "dihedral_w1_rad", "rg_w1_nm",
                "rmsd_folded_w1_nm", "fraction_folded"):
        assert np.isfinite(m[key]), key
    assert m["tica_w1"] < 0.5  # same process: close
    shifted = model.copy()
    shifted[:, 5, 1] += 0.5
    assert compare(shifted, ref, tica, ref[0], _settings(n_subsamples=2, subsample_size=500), seed=0)["tica_w1"] \
        > m["tica_w1"]


def test_kl_direction_reference_first():
    """A model narrower than the reference misses reference mass: KL(ref||model) is the larger."""
    from alcg.evaluate import kl_divergence_2d, tica_extent

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 2.0, (20000, 2))     # wide reference
    model = rng.normal(0, 0.7, (20000, 2))   # narrow model
    extent = tica_extent(ref)
    ref_model = kl_divergence_2d(ref, model, 30, extent)
    model_ref = kl_divergence_2d(model, ref, 30, extent)
    assert ref_model > model_ref > 0
    same = kl_divergence_2d(ref, rng.normal(0, 2.0, (20000, 2)), 30, extent)
    assert same < 0.1 * model_ref


def test_kl_counts_model_mass_outside_the_reference_range():
    """Half of the model far away: KL grows by ~log 2, not hidden by renormalizing the grid."""
    from alcg.evaluate import kl_divergence_2d, tica_extent

    rng = np.random.default_rng(1)
    ref, model = rng.normal(0, 1.0, (20000, 2)), rng.normal(0, 1.0, (20000, 2))
    extent = tica_extent(ref)
    inside = kl_divergence_2d(ref, model, 30, extent)
    model[::2] += 100.0  # outside the (padded) reference range
    assert kl_divergence_2d(ref, model, 30, extent) == pytest.approx(inside + np.log(2), abs=0.05)


def test_compare_reports_kl_end_to_end_and_per_start():
    ref, state = _slow_process(2000, 1)
    model, _ = _slow_process(1000, 2)
    tica = TicaSpace.fit([ref], 10, 2)
    groups = {"a": state == 0, "b": state == 1}
    m = compare(model, ref, tica, ref[0], _settings(n_subsamples=1, subsample_size=500), seed=0, ref_groups=groups)
    assert m["kl_ref_model"] > 0 and np.isfinite(m["end_to_end_w1_nm"])
    assert set(m["tica_w1_by_start"]) == {"a", "b"}
