"""RMSD-based selection of CG frames that the training set does not cover.

For each physically valid CG frame the C-alpha RMSD (after optimal superposition, via
MDTraj) to its nearest training frame is found exactly, but cheaply: the training set is
summarized by k centers (farthest-point clustering); the triangle inequality on RMSD then
bounds each frame's distance, and exact RMSDs are only computed against the members of
clusters that could hold the nearest frame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import mdtraj as md
import numpy as np

from alcg.settings import Select

log = logging.getLogger(__name__)


def ca_trajectory(xyz: np.ndarray) -> md.Trajectory:
    """A centered MDTraj trajectory of C-alpha-only frames (F, N, 3) nm."""
    n = xyz.shape[1]
    top = md.Topology()
    chain = top.add_chain()
    for i in range(n):
        res = top.add_residue("ALA", chain)
        top.add_atom("CA", md.element.carbon, res)
    t = md.Trajectory(np.ascontiguousarray(xyz, dtype=np.float32), top)
    t.center_coordinates()
    return t


def _subset(traj: md.Trajectory, idx: np.ndarray) -> md.Trajectory:
    """Frames ``idx`` of a centered trajectory, keeping the matching RMSD traces
    (MDTraj's slicing keeps the traces of the whole trajectory)."""
    sub = traj[idx]
    sub._rmsd_traces = traj._rmsd_traces[idx]
    return sub


def rmsd_to(frames: md.Trajectory, ref: md.Trajectory, k: int) -> np.ndarray:
    """RMSD (nm) of every frame to frame ``k`` of ``ref`` (both pre-centered)."""
    return md.rmsd(frames, ref, k, precentered=True).astype(np.float64)


def physical_mask(xyz: np.ndarray, bond_min_nm: float, bond_max_nm: float,
                  min_distance_nm: float) -> np.ndarray:
    """True for frames with all bonds in range and no |i-j|>=3 pair closer than the minimum."""
    finite = np.isfinite(xyz).all(axis=(1, 2))
    x = np.nan_to_num(xyz)
    bonds = np.linalg.norm(x[:, 1:] - x[:, :-1], axis=-1)
    ok = finite & (bonds.min(1) >= bond_min_nm) & (bonds.max(1) <= bond_max_nm)
    i, j = np.triu_indices(x.shape[1], k=3)
    if len(i):
        d = np.linalg.norm(x[:, i] - x[:, j], axis=-1)
        ok &= d.min(1) >= min_distance_nm
    return ok


def k_centers(train: md.Trajectory, n_centers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Farthest-point clustering: (center frame indices, label per frame, distance to center)."""
    rng = np.random.default_rng(seed)
    centers = [int(rng.integers(train.n_frames))]
    dist = rmsd_to(train, train, centers[0])
    label = np.zeros(train.n_frames, dtype=np.int64)
    for c in range(1, min(n_centers, train.n_frames)):
        nxt = int(np.argmax(dist))
        if dist[nxt] == 0:
            break
        centers.append(nxt)
        d = rmsd_to(train, train, nxt)
        closer = d < dist
        dist[closer], label[closer] = d[closer], c
    return np.array(centers), label, dist


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
    """

    def __init__(self, settings: Select, seed: int):
        s = settings
        self.rmsd_lo_nm, self.rmsd_hi_nm = s.rmsd_lo_nm, s.rmsd_hi_nm
        self.n_select, self.min_pair_rmsd_nm, self.n_centers = s.n_select, s.min_pair_rmsd_nm, s.n_centers
        self.bond_min_nm, self.bond_max_nm, self.min_distance_nm = s.bond_min_nm, s.bond_max_nm, s.min_distance_nm
        self.seed = seed
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
        frames, train = ca_trajectory(frames_xyz), ca_trajectory(train_xyz)
        centers, label, radius_of = k_centers(train, self.n_centers, self.seed)
        radius = np.array([radius_of[label == c].max() for c in range(len(centers))])
        d_c = np.stack([rmsd_to(frames, train, c) for c in centers], axis=1)  # (F, K)
        upper = d_c.min(1)
        best = upper.copy()
        best_idx = centers[d_c.argmin(1)]
        lower = d_c - radius[None, :]
        members = [np.flatnonzero(label == c) for c in range(len(centers))]
        for f in range(frames.n_frames):
            if upper[f] < self.rmsd_lo_nm or lower[f].min() > self.rmsd_hi_nm:
                continue  # surely covered / surely too far: the bound decides the category
            cand = np.flatnonzero(lower[f] < best[f])
            if len(cand) == 0:
                continue
            idx = np.concatenate([members[c] for c in cand])
            if len(idx) > 0.5 * train.n_frames:
                d = md.rmsd(train, frames, f, precentered=True)[idx]
            else:
                d = md.rmsd(_subset(train, idx), frames, f, precentered=True)
            k = int(np.argmin(d))
            if d[k] < best[f]:
                best[f], best_idx[f] = float(d[k]), int(idx[k])
        return best, best_idx

    def _pick(self, xyz: np.ndarray, nearest: np.ndarray, category: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(category == "candidate")
        order = cand[np.argsort(-nearest[cand], kind="stable")]
        return diverse_picks(xyz, order, self.n_select, self.min_pair_rmsd_nm)


def diverse_picks(xyz: np.ndarray, order: np.ndarray, n_select: int, min_pair_rmsd_nm: float) -> np.ndarray:
    """Walk frames in ``order``; keep a frame unless it is within ``min_pair_rmsd_nm`` (nm) of a pick.

    Returns at most ``n_select`` frame indices, in pick order.
    """
    picks: list[int] = []
    if len(order) == 0:
        return np.array(picks, dtype=np.int64)
    t = ca_trajectory(xyz[order])
    picked_pos: list[int] = []
    for k, f in enumerate(order):
        if len(picks) >= n_select:
            break
        if picked_pos and md.rmsd(t, t, k, precentered=True)[picked_pos].min() < min_pair_rmsd_nm:
            continue
        picks.append(int(f))
        picked_pos.append(k)
    return np.array(picks, dtype=np.int64)


def plot_histogram(scores: np.ndarray, picked: np.ndarray, lo: float, hi: float, xlabel: str, path) -> None:
    """Histogram of the selector's per-frame score with the trust window and the picks (PNG)."""
    from alcg.figures import plt, save_figure

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
