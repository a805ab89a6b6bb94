"""RMSD-based selection of CG frames that the training set does not cover.

For each physically valid CG frame the C-alpha RMSD (after optimal superposition) to its
nearest training frame is found exactly, but cheaply: the training set is summarized by k
centers (farthest-point clustering); the triangle inequality on RMSD (a metric) then bounds
each frame's distance, so frames whose bounds decide their category skip the search, and the
rest are searched only among members of clusters that could hold the nearest frame and whose
radius of gyration is close enough (|dRg| is a lower bound on RMSD). The search runs as dense
tiles in torch (:mod:`alcg.selection.rmsd`): fp32 lower bounds discard pairs, and every pair that could
be the nearest is recomputed exactly in fp64.

Exactness: categories and picks are those of exact RMSDs; ``nearest_rmsd`` is exact (fp64) for
every candidate (between ``rmsd_lo_nm`` and ``rmsd_hi_nm``). A covered frame stops at the first
training frame found closer than ``rmsd_lo_nm``, so its value may be an upper bound, still below
``rmsd_lo_nm``; a failed frame decided by the bounds keeps the exact distance to a center, an
upper bound above ``rmsd_hi_nm``. Ties: the nearest training frame is the one of smallest
index among those at the smallest fp64 RMSD.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from alcg.selection import rmsd as R
from alcg.util.chunks import frame_slices
from alcg.config.settings import Select

log = logging.getLogger(__name__)

#: frames per search tile and training frames per chunk (fp32 tile: TILE x CHUNK pairs)
TILE, CHUNK = 256, 4096
#: frames whose center bounds are held at once by :func:`nearest_training`
BLOCK = 8192
#: slack (nm) on the cluster and |dRg| bounds: fp64 RMSDs of near-identical frames carry
#: rounding errors of ~1e-8 nm, and a bound must never drop a tie
SEARCH_MARGIN_NM = 1e-6
#: bead pairs (frames x beads^2) held at once by :func:`physical_mask`
MASK_BUDGET = 1 << 22


def ca_trajectory(xyz: np.ndarray) -> "md.Trajectory":
    """A centered MDTraj trajectory of C-alpha-only frames (F, N, 3) nm."""
    n = xyz.shape[1]
    import mdtraj as md  # here, not at the top: exact selection runs without MDTraj (gpu_check)

    top = md.Topology()
    chain = top.add_chain()
    for i in range(n):
        res = top.add_residue("ALA", chain)
        top.add_atom("CA", md.element.carbon, res)
    t = md.Trajectory(np.ascontiguousarray(xyz, dtype=np.float32), top)
    t.center_coordinates()
    return t


def physical_mask(xyz: np.ndarray, bond_min_nm: float, bond_max_nm: float,
                  min_distance_nm: float) -> np.ndarray:
    """True for frames with all bonds in range and no |i-j|>=3 pair closer than the minimum.

    Frames are checked in chunks (at most :data:`MASK_BUDGET` bead pairs at once), with pair
    distances from each centered frame's Gram matrix (fp64), so memory does not grow with
    frames x beads^2 and no (frames, pairs, 3) array is built.
    """
    finite = np.isfinite(xyz).all(axis=(1, 2))
    ok = finite.copy()
    n = xyz.shape[1]
    near = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) < 3  # pairs exempt from the check
    for rows in frame_slices(len(xyz), n * n, MASK_BUDGET):
        x = np.nan_to_num(np.asarray(xyz[rows], dtype=np.float64))
        x = x - x.mean(axis=1, keepdims=True)
        bonds = np.linalg.norm(x[:, 1:] - x[:, :-1], axis=-1)
        good = (bonds.min(1) >= bond_min_nm) & (bonds.max(1) <= bond_max_nm)
        if n > 3:
            sq = (x * x).sum(-1)
            d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * x @ x.transpose(0, 2, 1)
            d2[:, near] = np.inf
            good &= np.sqrt(np.maximum(d2.min(axis=(1, 2)), 0.0)) >= min_distance_nm
        ok[rows] &= good
    return ok


def _bounds(a: R.Frames, ia: np.ndarray, b: R.Frames, ib: np.ndarray) -> np.ndarray:
    """fp32 lower bounds on e = N * MSD (nm^2) of a[ia] x b[ib], tiled, (A, B) numpy."""
    out = np.empty((len(ia), len(ib)), dtype=np.float32)
    for s in range(0, len(ia), TILE):
        for t in range(0, len(ib), CHUNK):
            out[s:s + TILE, t:t + CHUNK] = R.lower_bound_e(
                a, ia[s:s + TILE], b, ib[t:t + CHUNK]).cpu().numpy()
    return out


def k_centers(train: R.Frames, n_centers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Farthest-point clustering: (center frame indices, label per frame, radius per center nm).

    Centers are chosen on fp32 distances (any choice keeps the bounds valid); each radius is
    the exact (fp64) largest RMSD of a member to its center.
    """
    rng = np.random.default_rng(seed)
    every = np.arange(len(train))
    centers = [int(rng.integers(len(train)))]
    dist = R.lower_bound_e(train, centers, train, every)[0].cpu().numpy()
    label = np.zeros(len(train), dtype=np.int64)
    for c in range(1, min(n_centers, len(train))):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 0:
            break
        centers.append(nxt)
        d = R.lower_bound_e(train, [nxt], train, every)[0].cpu().numpy()
        closer = d < dist
        dist[closer], label[closer] = d[closer], c
    centers = np.array(centers)
    member_e = R.to_rmsd(R.exact_e(train, every, train, centers[label]), train.n_beads)
    radius = np.zeros(len(centers))
    np.maximum.at(radius, label, member_e)
    return centers, label, radius


def _best_per_row(rows: np.ndarray, cols: np.ndarray, e: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the smallest ``e`` and its column, ties to the smaller column."""
    order = np.lexsort((cols, e, rows))
    rows, cols, e = rows[order], cols[order], e[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    best_e, best_c = np.full(n_rows, np.inf), np.full(n_rows, -1, dtype=np.int64)
    best_e[rows[first]], best_c[rows[first]] = e[first], cols[first]
    return best_e, best_c


def nearest_training(frames: R.Frames, train: R.Frames, n_centers: int, seed: int,
                     lo_nm: float = 0.0, hi_nm: float = np.inf,
                     prune: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Nearest training frame of every frame: (RMSD nm, training index).

    Frames whose bounds prove them closer than ``lo_nm`` or farther than ``hi_nm`` skip the
    search (their value is a bound on the correct side of the threshold, see the module doc);
    ``prune=False`` searches every frame against every training frame (same categories and
    same exact values for searched frames; for tests).
    """
    centers, label, radius = k_centers(train, n_centers, seed)
    members = [np.flatnonzero(label == c) for c in range(len(centers))]
    nearest, index = np.zeros(len(frames)), np.zeros(len(frames), dtype=np.int64)
    for s in range(0, len(frames), BLOCK):
        rows = np.arange(s, min(s + BLOCK, len(frames)))
        nearest[rows], index[rows] = _nearest_block(frames, rows, train, centers, label, radius, members,
                                                    lo_nm, hi_nm, prune)
    return nearest, index


def _nearest_block(frames: R.Frames, rows: np.ndarray, train: R.Frames, centers: np.ndarray,
                   label: np.ndarray, radius: np.ndarray, members: list[np.ndarray], lo_nm: float,
                   hi_nm: float, prune: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`nearest_training` for the frames ``rows`` (bounds held for one block only)."""
    n = frames.n_beads
    low_c = _bounds(frames, rows, train, centers)  # (B, K)
    near_c = low_c.argmin(1)
    best_e = R.exact_e(frames, rows, train, centers[near_c]).cpu().numpy()
    best_i = centers[near_c].copy()
    upper = np.sqrt(best_e / n)
    lower = np.sqrt(np.maximum(low_c, 0.0) / n) - radius[None, :]
    if prune:
        todo = np.flatnonzero(~((upper < lo_nm) | (lower.min(1) > hi_nm)))
    else:
        todo, lower, lo_nm = np.arange(len(rows)), np.full_like(lower, -np.inf), 0.0
    todo = todo[np.argsort(label[best_i[todo]], kind="stable")]
    for s in range(0, len(todo), TILE):
        tile = todo[s:s + TILE]
        best_e[tile], best_i[tile] = _search_tile(frames, rows[tile], train, label, members, lower[tile],
                                                  best_e[tile], best_i[tile], lo_nm)
    return np.sqrt(best_e / n), best_i


def _search_tile(frames: R.Frames, tile: np.ndarray, train: R.Frames, label: np.ndarray,
                 members: list[np.ndarray], lower: np.ndarray, best_e: np.ndarray, best_i: np.ndarray,
                 lo_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest of the frames ``tile`` among the training frames their bounds allow.

    Training frames are searched cluster by cluster, nearest cluster first (by its lower
    bound), in pieces of :data:`CHUNK`; before each piece, frames proven covered (a training
    frame closer than ``lo_nm`` found: their value is that upper bound) stop searching, and
    columns whose cluster or |dRg| bound excludes every frame still searching are dropped.
    """
    n = frames.n_beads
    order = np.concatenate([members[c] for c in np.argsort(lower.min(0), kind="stable")])
    rows_all, cols_all, low_all = [], [], []
    for t in range(0, len(order), CHUNK):
        act = np.flatnonzero(_searching(best_e, n, lo_nm))
        if len(act) == 0:
            break
        cols = _admissible(order[t:t + CHUNK], frames.rg[tile[act]], train.rg, label, lower[act],
                           np.sqrt(best_e[act] / n))
        if len(cols) == 0:
            continue
        low = R.lower_bound_e(frames, tile[act], train, cols).cpu().numpy()
        j = low.argmin(1)
        e_j = R.exact_e(frames, tile[act], train, cols[j]).cpu().numpy()
        better = (e_j < best_e[act]) | ((e_j == best_e[act]) & (cols[j] < best_i[act]))
        best_e[act] = np.where(better, e_j, best_e[act])
        best_i[act] = np.where(better, cols[j], best_i[act])
        near = low <= best_e[act][:, None]
        some = np.flatnonzero(near.any(1))  # most rows have no pair left once their best is close
        r, c = np.nonzero(near[some])
        r = some[r]
        rows_all.append(act[r]), cols_all.append(cols[c]), low_all.append(low[r, c])
    if not rows_all:
        return best_e, best_i
    r, c, low = np.concatenate(rows_all), np.concatenate(cols_all), np.concatenate(low_all)
    keep = (low <= best_e[r]) & _searching(best_e[r], n, lo_nm)
    r, c = r[keep], c[keep]
    e = R.exact_e(frames, tile[r], train, c).cpu().numpy()
    local = np.arange(len(tile))
    return _best_per_row(np.concatenate([r, local]), np.concatenate([c, best_i]),
                         np.concatenate([e, best_e]), len(tile))


def _searching(best_e: np.ndarray, n_beads: int, lo_nm: float) -> np.ndarray:
    """Frames not yet proven covered: the test :meth:`RMSDSelector.fit` uses for 'covered'."""
    return ~(np.sqrt(best_e / n_beads) < lo_nm)


def _admissible(cols: np.ndarray, rg_a: np.ndarray, rg_train: np.ndarray, label: np.ndarray,
                lower: np.ndarray, best: np.ndarray) -> np.ndarray:
    """The training frames ``cols`` that could be nearer than ``best`` (nm) for some frame:
    their cluster's lower bound (``lower``, frames x clusters, nm) and |dRg| (Rg ``rg_a`` of
    the frames) allow it, with :data:`SEARCH_MARGIN_NM` for fp64 rounding."""
    reach = best + SEARCH_MARGIN_NM
    ok = (lower <= reach[:, None]).any(0)[label[cols]]  # per cluster, then per column
    rg_b = rg_train[cols]
    ok &= (rg_b >= (rg_a - reach).min()) & (rg_b <= (rg_a + reach).max())
    return cols[ok]


@dataclass
class SelectionResult:
    """What :meth:`RMSDSelector.fit` found (indices refer to the CG frames given)."""

    nearest_rmsd: np.ndarray      # (F,) nm, NaN for unphysical frames
    nearest_index: np.ndarray     # (F,) training frame index, -1 where not computed
    category: np.ndarray          # (F,) 'covered' | 'candidate' | 'failed'
    selected: np.ndarray          # indices of selected frames, in pick order

    def table(self) -> dict:
        """Counts and RMSD quantiles for the per-round table."""
        valid = self.nearest_rmsd[np.isfinite(self.nearest_rmsd)]
        q = np.quantile(valid, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist() if len(valid) else [None] * 5
        count = lambda c: int((self.category == c).sum())  # noqa: E731
        return {"n_frames": int(len(self.category)), "n_covered": count("covered"),
                "n_candidates": count("candidate"), "n_failed": count("failed"),
                "n_selected": int(len(self.selected)),
                "rmsd_quantiles_nm": dict(zip(["q05", "q25", "q50", "q75", "q95"], q))}


class RMSDSelector:
    """Pick CG frames far from the training set (deeptime-style estimator).

    Parameters
    ----------
    settings : the ``select`` settings it reads: ``rmsd_lo_nm`` (closer to the training set:
        covered), ``rmsd_hi_nm`` (farther: failed, a model artefact), ``n_select`` (at most this
        many picks), ``min_pair_rmsd_nm`` (picks at least this far apart), ``n_centers``
        (k-centers summarizing the training set), ``bond_min_nm``, ``bond_max_nm``,
        ``min_distance_nm`` (physical validity checks); all nm
    seed : seed of the k-centers start
    device : torch device of the RMSD search ("cpu", "cuda")
    prune : False searches every frame against every training frame (tests: same result)
    """

    def __init__(self, settings: Select, seed: int, device: str = "cpu", prune: bool = True):
        s = settings
        self.rmsd_lo_nm, self.rmsd_hi_nm = s.rmsd_lo_nm, s.rmsd_hi_nm
        self.n_select, self.min_pair_rmsd_nm, self.n_centers = s.n_select, s.min_pair_rmsd_nm, s.n_centers
        self.bond_min_nm, self.bond_max_nm, self.min_distance_nm = s.bond_min_nm, s.bond_max_nm, s.min_distance_nm
        self.seed, self.device, self.prune = seed, device, prune
        self.result_: SelectionResult | None = None

    def fit(self, cg_frames: np.ndarray, training_frames: np.ndarray) -> "RMSDSelector":
        """Classify and rank ``cg_frames`` (F, N, 3) against ``training_frames`` (T, N, 3)."""
        ok = physical_mask(cg_frames, self.bond_min_nm, self.bond_max_nm, self.min_distance_nm)
        nearest = np.full(len(cg_frames), np.nan)
        index = np.full(len(cg_frames), -1, dtype=np.int64)
        if ok.any():
            nearest[ok], index[ok] = self._nearest(cg_frames[ok], training_frames)
        category = np.where(~ok | (nearest > self.rmsd_hi_nm), "failed",
                            np.where(nearest < self.rmsd_lo_nm, "covered", "candidate"))
        selected = self._pick(cg_frames, nearest, category)
        self.result_ = SelectionResult(nearest, index, category, selected)
        return self

    def fetch_model(self) -> SelectionResult:
        """The :class:`SelectionResult` of the last :meth:`fit`."""
        return self.result_

    def _nearest(self, frames_xyz: np.ndarray, train_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames, train = R.Frames(frames_xyz, self.device), R.Frames(train_xyz, self.device)
        return nearest_training(frames, train, self.n_centers, self.seed, self.rmsd_lo_nm,
                                self.rmsd_hi_nm, self.prune)

    def _pick(self, xyz: np.ndarray, nearest: np.ndarray, category: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(category == "candidate")
        order = cand[np.argsort(-nearest[cand], kind="stable")]
        return diverse_picks(xyz, order, self.n_select, self.min_pair_rmsd_nm)


def diverse_picks(xyz: np.ndarray, order: np.ndarray, n_select: int, min_pair_rmsd_nm: float,
                  block: int = 256, device: str = "cpu") -> np.ndarray:
    """Walk frames in ``order``; keep a frame unless it is within ``min_pair_rmsd_nm`` (nm) of a pick.

    Exact fp64 RMSDs, in blocks of ``block`` frames: each block is compared with the picks so
    far and within itself, so the cost is linear in the candidates (at most
    ``len(order) * (n_select + block)`` RMSDs). Returns at most ``n_select`` frame indices, in
    pick order.
    """
    order = np.asarray(order, dtype=np.int64)
    picks: list[int] = []  # positions in ``order``
    if len(order) == 0 or n_select <= 0:
        return np.zeros(0, dtype=np.int64)
    frames = R.Frames(xyz[order], device)
    for s in range(0, len(order), block):
        if len(picks) >= n_select:
            break
        pos = np.arange(s, min(s + block, len(order)))
        if picks:
            pos = pos[R.exact_rmsd_matrix(frames, pos, frames, picks).min(1) >= min_pair_rmsd_nm]
        within = R.exact_rmsd_matrix(frames, pos, frames, pos)
        kept: list[int] = []
        for k in range(len(pos)):
            if len(picks) >= n_select:
                break
            if kept and within[k, kept].min() < min_pair_rmsd_nm:
                continue
            kept.append(k)
            picks.append(int(pos[k]))
    return order[np.array(picks, dtype=np.int64)]


def plot_histogram(scores: np.ndarray, picked: np.ndarray, lo: float, hi: float, xlabel: str, path) -> None:
    """Histogram of the selector's per-frame score with the trust window and the picks (PNG)."""
    from alcg.util.figure_io import plt, save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    valid = scores[np.isfinite(scores)]
    rng = (0, max(valid.max(), hi)) if len(valid) else (0, hi)
    ax.hist(valid, bins=50, range=rng, color="C0", alpha=0.8, label="CG frames")
    if len(picked):
        ax.hist(scores[picked], bins=50, range=rng, color="C3", label="selected")
    for v, name in ((lo, "lo"), (hi, "hi")):
        ax.axvline(v, ls="--", c="k")
        ax.text(v, ax.get_ylim()[1] * 0.9, f" {name}", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("frames")
    ax.legend()
    save_figure(fig, path)
