"""Evaluation metrics: W1 of shifted Gaussians, TICA finds the slow coordinate."""
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from alcg.config import settings
from alcg.analysis.evaluate import TicaSpace, compare, w1_emd


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
    tica = TicaSpace.fit(list(trajs), lag_frames=10, dim=2, frame_interval_ps=1.0)
    tic1 = tica.transform(trajs[0])[:, 0]
    assert abs(np.corrcoef(tic1, states[0])[0, 1]) > 0.95


def test_compare_reports_all_metrics():
    ref, _ = _slow_process(2000, 1)
    model, _ = _slow_process(1000, 2)
    tica = TicaSpace.fit([ref], 10, 2, frame_interval_ps=1.0)
    m = compare(model, ref, tica, ref[0], _settings(folded_rmsd_nm=0.1, n_subsamples=2, subsample_size=500), seed=0)
    for key in ("tica_w1", "tica_w1_sd", "bond_w1_nm", "angle_w1_rad", "dihedral_w1_rad", "rg_w1_nm",
                "rmsd_folded_w1_nm", "fraction_folded"):
        assert np.isfinite(m[key]), key
    assert m["tica_w1"] < 0.5  # same process: close
    shifted = model.copy()
    shifted[:, 5, 1] += 0.5
    assert compare(shifted, ref, tica, ref[0], _settings(n_subsamples=2, subsample_size=500), seed=0)["tica_w1"] \
        > m["tica_w1"]


@pytest.mark.parametrize("n, m, bins", [(1200, 2400, 15), (500, 500, 10), (5000, 2000, 20)])
def test_js_of_one_distribution_is_its_documented_small_sample_bias(n, m, bins):
    """Two independent samples of one distribution: the mean JS over repeats matches the
    documented plug-in bias (B - 1)/8 (1/n + 1/m) within 25 %, far below the disjoint bound."""
    from alcg.analysis.evaluate import js_divergence_2d, tica_extent

    rng = np.random.default_rng(n + bins)
    values, biases = [], []
    for _ in range(40):
        a, b = rng.normal(0, 1.0, (n, 2)), rng.normal(0, 1.0, (m, 2))
        d = js_divergence_2d(a, b, bins, tica_extent(a))
        values.append(d["js"]), biases.append(d["js_same_bias"])
    assert np.mean(values) == pytest.approx(np.mean(biases), rel=0.25)
    assert np.mean(values) < 0.1 * np.log(2)


def test_js_of_disjoint_samples_is_ln2_and_the_model_misses_all_reference_mass():
    from alcg.analysis.evaluate import js_divergence_2d, tica_extent

    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1.0, (3000, 2))
    far = rng.normal(0, 1.0, (3000, 2)) + 100.0  # wholly outside the padded reference range
    d = js_divergence_2d(ref, far, 15, tica_extent(ref))
    assert d["js"] == pytest.approx(np.log(2), abs=1e-12) and d["unvisited_mass"] == pytest.approx(1.0)


def test_js_direction_closer_is_smaller_and_symmetric():
    """A model narrower than the reference misses reference mass (unvisited mass > 0); JS is
    symmetric; closer to the reference is the only direction of smaller."""
    from alcg.analysis.evaluate import js_divergence_2d, tica_extent

    rng = np.random.default_rng(0)
    ref = rng.normal(0, 2.0, (20000, 2))
    extent = tica_extent(ref)
    values = [js_divergence_2d(ref, rng.normal(0, w, (20000, 2)), 15, extent) for w in (0.5, 1.0, 1.6, 2.0)]
    js = [v["js"] for v in values]
    assert js == sorted(js, reverse=True) and js[-1] < 0.01
    assert values[0]["unvisited_mass"] > 0.2 > values[-1]["unvisited_mass"]
    narrow = rng.normal(0, 0.5, (20000, 2))
    assert js_divergence_2d(narrow, ref, 15, extent)["js"] == pytest.approx(
        js_divergence_2d(ref, narrow, 15, extent)["js"], rel=1e-12)


def test_compare_reports_js_end_to_end_and_per_start():
    ref, state = _slow_process(2000, 1)
    model, _ = _slow_process(1000, 2)
    tica = TicaSpace.fit([ref], 10, 2, frame_interval_ps=1.0)
    groups = {"a": state == 0, "b": state == 1}
    m = compare(model, ref, tica, ref[0], _settings(n_subsamples=1, subsample_size=500), seed=0, ref_groups=groups)
    assert 0 < m["tica_js"] <= np.log(2) and 0 <= m["tica_unvisited_mass"] <= 1
    assert np.isfinite(m["end_to_end_w1_nm"])
    assert m["fraction_folded_error"] == pytest.approx(abs(m["fraction_folded"] - m["reference_fraction_folded"]))
    assert set(m["tica_w1_by_start"]) == {"a", "b"}


class _DeeptimeRefit:
    """The evaluation's TICA as it was before one fit per run: deeptime's own model, refitted."""

    def __init__(self, trajs, lag_frames, dim):
        from deeptime.decomposition import TICA

        from alcg.analysis.tica import pair_distances

        self.dim, self._pd = dim, pair_distances
        self.model = TICA(lagtime=lag_frames, dim=dim).fit([pair_distances(t) for t in trajs]).fetch_model()

    def transform(self, xyz):
        return self.model.transform(self._pd(xyz).astype(np.float64))[:, :self.dim]


def test_saved_tica_fit_gives_the_numbers_of_a_refit(tmp_path):
    """One fit per run, written and read back, projects as deeptime's refitted model does, so
    every TICA metric is unchanged (to float noise)."""
    from alcg.analysis import tica

    ref = [_slow_process(1500, s)[0] for s in (1, 3)]
    model, _ = _slow_process(1000, 2)
    tica.save(tmp_path / "tica.npz", tica.TicaSpace.fit(ref, 10, 2, frame_interval_ps=0.5))
    saved, refit = tica.load(tmp_path / "tica.npz"), _DeeptimeRefit(ref, 10, 2)
    assert (saved.lag_frames, saved.dim, saved.frame_interval_ps, saved.n_reference_frames) == (10, 2, 0.5, 3000)
    np.testing.assert_allclose(saved.transform(model), refit.transform(model), rtol=0, atol=1e-9)
    ref_xyz = np.concatenate(ref)
    ev = _settings(n_subsamples=2, subsample_size=400)
    a, b = compare(model, ref_xyz, saved, ref[0][0], ev, seed=0), compare(model, ref_xyz, refit, ref[0][0], ev, seed=0)
    for key in ("tica_w1", "tica_js", "tica_unvisited_mass"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    np.testing.assert_allclose(a["tica_w1_per_component"], b["tica_w1_per_component"], rtol=1e-9)


def test_fit_tica_stage_sets_the_lag_from_the_reference_frame_interval(tmp_path, monkeypatch):
    """The rule's stage: lag = evaluate.tica_lag_ps / frame interval, whole frames, at least one."""
    from alcg.analysis import tica
    from alcg.stages import analysis

    ref = [_slow_process(400, s)[0] for s in (1, 2)]
    monkeypatch.setattr(analysis, "reference_trajs", lambda runs, pdb, xml: ref)
    monkeypatch.setattr(analysis, "frame_interval_ps", lambda runs: 0.5)
    for lag_ps, frames in ((5.0, 10), (0.1, 1)):
        analysis.fit_tica(["a.npz", "b.npz"], "s.pdb", "s.xml", lag_ps, 2, str(tmp_path / "t.npz"))
        space = tica.load(tmp_path / "t.npz")
        assert space.lag_frames == frames and space.dim == 2 and space.n_reference_frames == 800


def test_chunked_tica_gives_the_values_of_the_whole_arrays(monkeypatch):
    """Pair distances and TICA coordinates are computed in chunks of frames (issue 21: at 80
    beads and 10^5 frames the whole (F, P, 3) difference array is ~11 GB); every chunking gives
    the pair distances of the unchunked formulas bit for bit, the coordinates to a few ulp, the fit deeptime's whole fit to 1e-9."""
    from alcg.analysis import tica as tica_module

    ref, _ = _slow_process(900, 1)
    model, _ = _slow_process(700, 2)
    ref, model = ref.astype(np.float32), model.astype(np.float32)
    i, j = np.triu_indices(6, k=1)
    whole = lambda x: np.linalg.norm(x[:, i] - x[:, j], axis=-1)  # noqa: E731  (the unchunked code)
    space = TicaSpace.fit([ref], 10, 2, frame_interval_ps=1.0)
    expected = (whole(model).astype(np.float64) - space.mean) @ space.coefficients
    whole_fit = _DeeptimeRefit([ref], 10, 2).transform(model)
    budgets = (15, 16, 7 * 15, 10 ** 9)  # one frame per chunk, 1, 7, all frames at once
    for budget in budgets:
        monkeypatch.setattr(tica_module, "PAIR_BUDGET", budget)
        assert len(tica_module.frame_chunks(700, 15)) == -(-700 // max(1, budget // 15))
        np.testing.assert_array_equal(tica_module.pair_distances(model), whole(model))
        np.testing.assert_array_equal(tica_module.pair_distances(model, np.float64), whole(model).astype(np.float64))
        # a matrix product over fewer rows may take another BLAS kernel (its sums in another
        # order): equal to a few ulp, not bit for bit (seen with OpenBLAS on Haswell kernels)
        np.testing.assert_allclose(space.transform(model), expected, rtol=1e-12, atol=1e-15)
        # the fit sums its covariances over chunks of frame pairs: deeptime's whole fit to float noise
        np.testing.assert_allclose(TicaSpace.fit([ref], 10, 2, frame_interval_ps=1.0).transform(model), whole_fit, rtol=0, atol=1e-9)
    # the TICA metrics (the others do not use the chunked code): to 1e-5 only, as mdtraj.rmsd
    # (inside compare) changes this process's floating-point results of later numpy calls at
    # the 1e-6 level (seen without any chunking: two identical compare calls differ)
    ev = _settings(n_subsamples=2, subsample_size=300)
    metrics = compare(model, ref, space, ref[0], ev, seed=0)
    tica_keys = [k for k in metrics if k.startswith("tica")]
    assert len(tica_keys) >= 5
    for budget in budgets:
        monkeypatch.setattr(tica_module, "PAIR_BUDGET", budget)
        again = compare(model, ref, space, ref[0], ev, seed=0)
        for key in tica_keys:
            assert again[key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-7), key
    assert space.transform(model[:0]).shape == (0, 2)
