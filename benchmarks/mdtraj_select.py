"""The previous selection path (MDTraj, one frame at a time), kept to time against and to check
that :class:`alcg.selection.rmsd_coverage.RMSDSelector` gives the same categories, values and picks.

This is the implementation of ``alcg/selection/rmsd_coverage.py`` before the torch search (git history:
``select.py``/``coverage.py`` up to commit b833e4b), unchanged except for being a subclass.
"""
from __future__ import annotations

import mdtraj as md
import numpy as np

from alcg.selection.rmsd_coverage import RMSDSelector, ca_trajectory


def _subset(traj: md.Trajectory, idx: np.ndarray) -> md.Trajectory:
    sub = traj[idx]
    sub._rmsd_traces = traj._rmsd_traces[idx]
    return sub


def rmsd_to(frames: md.Trajectory, ref: md.Trajectory, k: int) -> np.ndarray:
    return md.rmsd(frames, ref, k, precentered=True).astype(np.float64)


def k_centers(train: md.Trajectory, n_centers: int, seed: int = 0):
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


def diverse_picks(xyz: np.ndarray, order: np.ndarray, n_select: int, min_pair_rmsd_nm: float) -> np.ndarray:
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


class MDTrajSelector(RMSDSelector):
    """:class:`RMSDSelector` with the previous MDTraj nearest-frame search and pick walk."""

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
                continue
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
