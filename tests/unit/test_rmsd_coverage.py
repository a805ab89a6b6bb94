"""RMSD selection: far frames are chosen, duplicates are not, unphysical frames never are."""
import mdtraj as md
import numpy as np

from alcg.selection.rmsd_coverage import RMSDSelector, ca_trajectory
from alcg.config.settings import Select, defaults


def _helix(n=10, rise=0.15, radius=0.23, turn=100.0):
    t = np.radians(turn) * np.arange(n)
    return np.stack([radius * np.cos(t), radius * np.sin(t), rise * np.arange(n)], axis=1)


def _hairpin(n=10):
    x = _helix(n)
    half = n // 2
    x[half:] = x[half - 1] + (x[half - 1::-1][:n - half] - x[half - 1]) * np.array([1, 1, -1]) + [0.5, 0, 0]
    return x


def _noisy(base, n, sigma, seed):
    return base[None] + np.random.default_rng(seed).normal(0, sigma, (n, *base.shape))


def _selector(**changes) -> RMSDSelector:
    return RMSDSelector(defaults(Select, **{**SEL, **changes}), 0)


SEL = dict(rmsd_lo_nm=0.08, rmsd_hi_nm=2.0, n_select=5, min_pair_rmsd_nm=0.05, n_centers=20,
           bond_min_nm=0.2, bond_max_nm=0.6, min_distance_nm=0.2)


def test_planted_far_frames_chosen_duplicates_not_unphysical_never():
    helix = _helix()
    train = _noisy(helix, 400, 0.01, 0)
    cg = _noisy(helix, 300, 0.01, 1)
    far = _hairpin()
    cg[10] = far
    cg[20] = far + 0.001          # a duplicate of frame 10
    cg[30] = np.stack([np.arange(10) * 0.38, np.zeros(10), np.zeros(10)], axis=1)  # extended
    cg[31] = _noisy(far, 1, 0.02, 5)[0]  # within min_pair_rmsd of frame 10: not picked too
    broken = far.copy()
    broken[5:] += [0.6, 0, 0]     # one bond stretched: unphysical, and the farthest frame
    cg[40] = broken
    res = _selector().fit(cg, train).fetch_model()
    assert 40 not in res.selected and res.category[40] == "failed"
    assert set(res.selected) >= {30} and len({10, 20, 31} & set(res.selected)) == 1
    table = res.table()
    assert table["n_failed"] >= 1 and table["n_selected"] == len(res.selected)
    assert table["n_frames"] == 300
    assert table["n_covered"] + table["n_candidates"] + table["n_failed"] == 300


def test_nearest_rmsd_is_exact():
    rng = np.random.default_rng(3)
    base = np.cumsum(rng.normal(0, 0.22, (10, 3)), axis=0)  # a random, non-degenerate chain
    train = _noisy(base, 500, 0.08, 1)
    cg = _noisy(base, 60, 0.12, 2)
    sel = _selector(bond_min_nm=0.0, bond_max_nm=9.0, min_distance_nm=0.0)
    res = sel.fit(cg, train).fetch_model()
    brute = np.array([md.rmsd(ca_trajectory(train), ca_trajectory(cg), f).min() for f in range(len(cg))])
    exact = res.category == "candidate"
    assert exact.any()
    np.testing.assert_allclose(res.nearest_rmsd[exact], brute[exact], atol=1e-5)


def test_rmsd_of_superposed_copy_is_zero():
    x = _hairpin()
    rot, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    moved = x @ rot.T + [1.0, 2.0, 3.0]
    res = _selector().fit(moved[None], x[None]).fetch_model()
    assert res.category[0] == "covered" and res.nearest_rmsd[0] < 1e-3
