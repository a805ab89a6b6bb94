"""The run's TICA space: fitted once on the evaluation reference, read by every evaluation.

TICA (deeptime: ``TICA(...).fit(...).fetch_model()``) on C-alpha pair distances (nm). A fitted
model projects a frame by ``(d - mean) @ coefficients``, d its pair distances: deeptime's
``CovarianceKoopmanModel.transform`` (instantaneous whitening with the data mean removed, cut
to the output dimension). That affine map is the whole of what evaluation uses, so the file
keeps it, not a pickled estimator.

This module owns the file ``evaluate/tica.npz`` (rule ``fit_tica``): arrays ``mean`` (P,) nm
and ``coefficients`` (P, dim) nm^-1, P = N(N-1)/2; metadata ``lag_frames``, ``frame_interval_ps``
and ``n_reference_frames``. Only evaluation rules read the reference, so only they write or
read this file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alcg.util.chunks import frame_slices
from alcg.util.fileio import load_npz, save_npz


#: bead pairs x frames handled at once by :func:`pair_distances` and :meth:`TicaSpace.transform`:
#: bounds their (frames, pairs, 3) temporaries (~50 MB each in float32) whatever the run length
PAIR_BUDGET = 1 << 22


def frame_chunks(n_frames: int, n_pairs: int) -> list[slice]:
    """Consecutive slices of ``n_frames`` frames, each of at most :data:`PAIR_BUDGET` pair rows."""
    return frame_slices(n_frames, n_pairs, PAIR_BUDGET)


def pair_distances(xyz: np.ndarray, dtype: np.dtype | type | None = None) -> np.ndarray:
    """All C-alpha pair distances (F, N(N-1)/2) in nm of frames ``xyz`` (F, N, 3) nm.

    Computed in chunks of frames (:func:`frame_chunks`), each as the whole array would be, so
    the values do not depend on the chunking; ``dtype`` is the output's (default: that of
    ``xyz``), each chunk cast on assignment.
    """
    i, j = np.triu_indices(xyz.shape[1], k=1)
    out = np.empty((len(xyz), len(i)), dtype or xyz.dtype)
    for rows in frame_chunks(len(xyz), len(i)):
        out[rows] = np.linalg.norm(xyz[rows, i] - xyz[rows, j], axis=-1)
    return out


def lagged_chunks(traj: np.ndarray, lag_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The frame pairs (t, t + lag) of ``traj`` (T, N, 3) as (frames at t, frames at t + lag)
    views, in chunks of :func:`frame_chunks` size."""
    n_pairs = traj.shape[1] * (traj.shape[1] - 1) // 2
    return [(traj[rows], traj[rows.start + lag_frames:rows.stop + lag_frames])
            for rows in frame_chunks(len(traj) - lag_frames, n_pairs)]


@dataclass(frozen=True)
class TicaSpace:
    """A TICA projection of pair-distance features fitted on reference trajectories.

    Attributes
    ----------
    mean : (P,) mean pair distance of the fitted data, nm
    coefficients : (P, dim) projection onto the slowest ``dim`` independent components, nm^-1
    lag_frames : the TICA lag, in stored frames
    frame_interval_ps : time between the reference's stored frames, ps (0 when not known)
    n_reference_frames : frames the fit saw
    """

    mean: np.ndarray
    coefficients: np.ndarray
    lag_frames: int
    frame_interval_ps: float
    n_reference_frames: int

    @property
    def dim(self) -> int:
        """Number of TICA components kept."""
        return int(self.coefficients.shape[1])

    @classmethod
    def fit(cls, reference_trajs: list[np.ndarray], lag_frames: int, dim: int, *,
            frame_interval_ps: float) -> "TicaSpace":
        """Fit on reference C-alpha trajectories, each (T_i, N, 3) nm, at a lag of ``lag_frames``
        frames, keeping ``dim`` components (``evaluate.tica_dim``; fewer if the data have fewer).

        The time-lagged covariances are accumulated over chunks of frame pairs (deeptime's
        ``partial_fit``, :func:`lagged_chunks`), so memory does not grow with the frames times
        the pairs (issue 21: deeptime's ``fit`` on the whole features of 10^5 frames at 80 beads
        needed over 10 GB); the result equals a whole fit to float noise (a test checks).

        Raises
        ------
        ValueError
            if no trajectory is longer than the lag.
        """
        from deeptime.decomposition import TICA

        used = [t for t in reference_trajs if len(t) > lag_frames]
        if not used:
            raise ValueError(f"no reference trajectory is longer than the TICA lag ({lag_frames} frames)")
        estimator = TICA(lagtime=lag_frames, dim=dim)
        for traj in used:
            for now, later in lagged_chunks(traj, lag_frames):
                estimator.partial_fit((pair_distances(now, np.float64), pair_distances(later, np.float64)))
        model = estimator.fetch_model()
        k = min(int(model.output_dimension), dim)
        n_pairs = used[0].shape[1] * (used[0].shape[1] - 1) // 2
        mean = model.cov.mean_0 if model.cov.data_mean_removed else np.zeros(n_pairs)
        return cls(np.asarray(mean, np.float64), np.asarray(model.instantaneous_coefficients[:, :k], np.float64),
                   int(lag_frames), float(frame_interval_ps), int(sum(len(t) for t in used)))

    def transform(self, xyz: np.ndarray) -> np.ndarray:
        """TICA coordinates (F, dim) of C-alpha frames ``xyz`` (F, N, 3) nm, projected in chunks
        of frames (:func:`frame_chunks`): memory does not grow with the pairs times the frames."""
        out = np.zeros((len(xyz), self.dim))
        for rows in frame_chunks(len(xyz), len(self.mean)):
            out[rows] = (pair_distances(xyz[rows], np.float64) - self.mean) @ self.coefficients
        return out


def save(path: str | Path, space: TicaSpace) -> None:
    """Write ``space`` to ``path`` (the format in the module doc), atomically."""
    save_npz(path, metadata={"lag_frames": space.lag_frames, "frame_interval_ps": space.frame_interval_ps,
                             "n_reference_frames": space.n_reference_frames},
             mean=space.mean, coefficients=space.coefficients)


def load(path: str | Path) -> TicaSpace:
    """Read a TICA space written by :func:`save`."""
    d = load_npz(path)
    meta = d["metadata"]
    return TicaSpace(mean=d["mean"], coefficients=d["coefficients"], lag_frames=int(meta["lag_frames"]),
                     frame_interval_ps=float(meta["frame_interval_ps"]),
                     n_reference_frames=int(meta["n_reference_frames"]))
