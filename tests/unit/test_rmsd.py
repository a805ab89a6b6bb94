"""Batched QCP RMSD and the exact selection built on it, against brute-force MDTraj."""
import contextlib

import mdtraj as md
import numpy as np
import pytest
import torch

from alcg.selection import rmsd_coverage
from alcg.selection import rmsd as R
from alcg.selection.rmsd_coverage import RMSDSelector, ca_trajectory, diverse_picks, physical_mask
from alcg.config.settings import Select, defaults


def _chain(rng, n=10):
    return np.cumsum(rng.normal(0, 0.22, (n, 3)), axis=0)


def _rotated(x, rng):
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    return x @ rot.T + rng.normal(0, 1.0, 3)


def _brute(train, cg):
    """(F, T) RMSD nm by MDTraj, every pair."""
    t = ca_trajectory(train)
    c = ca_trajectory(cg)
    return np.stack([md.rmsd(t, c, f, precentered=True) for f in range(len(cg))]).astype(np.float64)


def _old_diverse_picks(xyz, order, n_select, min_pair):
    """The MDTraj walk the previous implementation did (quadratic in the candidates)."""
    picks, pos = [], []
    if len(order) == 0:
        return np.array(picks, dtype=np.int64)
    t = ca_trajectory(xyz[order])
    for k, f in enumerate(order):
        if len(picks) >= n_select:
            break
        if pos and md.rmsd(t, t, k, precentered=True)[pos].min() < min_pair:
            continue
        picks.append(int(f))
        pos.append(k)
    return np.array(picks, dtype=np.int64)


SEL = dict(rmsd_lo_nm=0.15, rmsd_hi_nm=0.8, n_select=6, min_pair_rmsd_nm=0.1, n_centers=15,
           bond_min_nm=0.0, bond_max_nm=9.0, min_distance_nm=0.0)


def _random_data():
    rng = np.random.default_rng(0)
    base = _chain(rng)
    train = base[None] + rng.normal(0, 0.06, (600, 10, 3))
    cg = base[None] + rng.normal(0, 0.07, (200, 10, 3))
    far = rng.random(200) < 0.3
    cg[far] = _chain(rng)[None] + rng.normal(0, 0.07, (far.sum(), 10, 3))
    return train, cg


def _clustered_data():
    """Five folds, training from four, rotated and translated copies, duplicated frames."""
    rng = np.random.default_rng(1)
    bases = [_chain(rng) for _ in range(5)]
    train = np.concatenate([b[None] + rng.normal(0, 0.03, (150, 10, 3)) for b in bases[:4]])
    train[400] = train[7]  # a duplicate: ties go to the smaller index
    cg = np.concatenate([b[None] + rng.normal(0, 0.05, (40, 10, 3)) for b in bases])
    cg = np.stack([_rotated(x, rng) for x in cg])
    cg[3] = _rotated(train[7], rng)
    return train, cg


@pytest.fixture(params=["one piece", "small pieces"])
def pieces(request, monkeypatch):
    """The search in one piece of training frames per tile, or in many small tiles and pieces
    (nearest clusters first, frames stopping once covered, bounds updated between pieces)."""
    if request.param == "small pieces":
        monkeypatch.setattr(rmsd_coverage, "TILE", 16)
        monkeypatch.setattr(rmsd_coverage, "CHUNK", 32)
    return request.param


@pytest.mark.parametrize("data", [_random_data, _clustered_data])
def test_selection_equals_brute_force_mdtraj(data, pieces):
    train, cg = data()
    s = defaults(Select, **SEL)
    res = RMSDSelector(s, 0).fit(cg, train).fetch_model()
    d = _brute(train, cg)
    nearest = d.min(1)
    category = np.where(nearest > s.rmsd_hi_nm, "failed", np.where(nearest < s.rmsd_lo_nm, "covered", "candidate"))
    np.testing.assert_array_equal(res.category, category)
    cand = category == "candidate"
    assert cand.sum() >= 10
    np.testing.assert_allclose(res.nearest_rmsd[cand], nearest[cand], atol=1e-5)
    np.testing.assert_array_equal(res.nearest_index[cand], d.argmin(1)[cand])
    covered = category == "covered"
    assert (res.nearest_rmsd[covered] >= nearest[covered] - 1e-5).all()  # bound-decided: an upper bound
    order = np.flatnonzero(cand)[np.argsort(-nearest[cand], kind="stable")]
    np.testing.assert_array_equal(res.selected, _old_diverse_picks(cg, order, s.n_select, s.min_pair_rmsd_nm))


def test_ties_go_to_the_smaller_training_index(pieces):
    train, cg = _clustered_data()
    frames, tr = R.Frames(cg), R.Frames(train)
    nearest, index = rmsd_coverage.nearest_training(frames, tr, 10, 0)
    assert index[3] == 7 and nearest[3] < 1e-6


@pytest.mark.parametrize("data", [_random_data, _clustered_data])
def test_pruning_changes_no_result(data, pieces):
    train, cg = data()
    s = defaults(Select, **SEL)
    runs = [RMSDSelector(s, 0, prune=False).fit(cg, train).fetch_model(),
            RMSDSelector(defaults(Select, **{**SEL, "n_centers": 1}), 3).fit(cg, train).fetch_model(),
            RMSDSelector(defaults(Select, **{**SEL, "n_centers": 200}), 5).fit(cg, train).fetch_model()]
    first = runs[0]
    cand = first.category == "candidate"
    for r in runs[1:]:
        np.testing.assert_array_equal(r.category, first.category)
        np.testing.assert_allclose(r.nearest_rmsd[cand], first.nearest_rmsd[cand], rtol=0, atol=1e-12)  # fp64 sums of other batch sizes
        np.testing.assert_array_equal(r.nearest_index[cand], first.nearest_index[cand])
        np.testing.assert_array_equal(r.selected, first.selected)


def test_diverse_picks_same_as_before_on_a_fixed_case():
    rng = np.random.default_rng(4)
    bases = [_chain(rng) for _ in range(6)]
    xyz = np.concatenate([b[None] + rng.normal(0, 0.04, (120, 10, 3)) for b in bases])
    order = rng.permutation(len(xyz))
    for n_select, min_pair in ((8, 0.1), (40, 0.12), (3, 0.0)):
        old = _old_diverse_picks(xyz, order, n_select, min_pair)
        new = diverse_picks(xyz, order, n_select, min_pair, block=50)
        np.testing.assert_array_equal(new, old)
    assert len(diverse_picks(xyz, order, 40, 0.12)) > 6  # more picks than folds: within-fold picks too


def test_fp32_bounds_hold_and_exact_values_match_mdtraj():
    rng = np.random.default_rng(2)
    base = _chain(rng, 35)
    a = base[None] + rng.normal(0, 0.05, (40, 35, 3))
    b = np.concatenate([base[None] + rng.normal(0, 0.05, (60, 35, 3)),
                        _chain(rng, 35)[None] + rng.normal(0, 0.3, (20, 35, 3)),
                        np.stack([_rotated(x + rng.normal(0, 1e-5, x.shape), rng) for x in a[:20]])])
    fa, fb = R.Frames(a), R.Frames(b)
    low = R.lower_bound_e(fa, np.arange(len(a)), fb, np.arange(len(b))).numpy()
    ia, ib = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    exact = R.exact_e(fa, ia.ravel(), fb, ib.ravel()).numpy().reshape(low.shape)
    assert (low <= exact).all()
    assert np.median(exact - low) < 1e-2 * np.median(exact)  # bounds tight enough to prune
    got = np.sqrt(exact / 35)
    ref = _brute(b, a)
    big = ref > 1e-2  # MDTraj's fp32 loses digits below that
    np.testing.assert_allclose(got[big], ref[big], atol=1e-5)
    assert got[np.arange(20), 80 + np.arange(20)].max() < 1e-4  # superposed near-copies


def test_physical_mask_in_chunks_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(5)
    steps = rng.normal(size=(300, 20, 3))
    steps *= rng.uniform(0.3, 0.45, (300, 20, 1)) / np.linalg.norm(steps, axis=-1, keepdims=True)
    steps[::5, 4] *= 2.0  # a stretched bond in every fifth frame
    xyz = np.cumsum(steps, axis=1)
    xyz[7, 3] = np.nan
    whole = physical_mask(xyz, 0.2, 0.6, 0.35)
    monkeypatch.setattr(rmsd_coverage, "MASK_BUDGET", 500)
    np.testing.assert_array_equal(physical_mask(xyz, 0.2, 0.6, 0.35), whole)
    assert 0 < whole.sum() < len(xyz) and not whole[7] and not whole[::5].any()


def test_native_kernel_gives_the_torch_bounds():
    from alcg.selection import qcp_native

    if qcp_native.load() is None:
        pytest.skip("no C compiler: the torch kernel is the only one")
    rng = np.random.default_rng(7)
    for n in (10, 35):  # the fused loop, and the BLAS product above PRODUCT_MIN_BEADS
        a = np.concatenate([_chain(rng, n)[None] + rng.normal(0, s, (30, n, 3)) for s in (1e-4, 0.05, 0.5)])
        fa = R.Frames(a)
        native = R.lower_bound_e(fa, np.arange(90), fa, np.arange(89)).numpy()
        torch_ = R.lower_bound_e(fa, np.arange(90), fa, np.arange(89), native=False).numpy()
        np.testing.assert_allclose(native, torch_, rtol=1e-4, atol=1e-5 * n)
        with torch_threads(3):  # rows split over threads: the same values, bit for bit
            np.testing.assert_array_equal(R.lower_bound_e(fa, np.arange(90), fa, np.arange(89)).numpy(), native)


@contextlib.contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_physical_mask_equals_the_pairwise_definition():
    rng = np.random.default_rng(6)
    steps = rng.normal(size=(200, 12, 3))
    steps *= 0.38 / np.linalg.norm(steps, axis=-1, keepdims=True)
    xyz = np.cumsum(steps, axis=1) + rng.normal(0, 5.0, (200, 1, 3))  # far from the origin
    i, j = np.triu_indices(12, k=3)
    closest = np.linalg.norm(xyz[:, i] - xyz[:, j], axis=-1).min(1)
    for threshold in np.quantile(closest, [0.2, 0.5, 0.8]):
        np.testing.assert_array_equal(physical_mask(xyz, 0.3, 0.45, threshold), closest >= threshold)
