"""The evaluation starts file ``seed_<s>/evaluate/starts.npz``: the one owner of its layout.

A seed's fixed evaluation starts: one CG structure per start (every reference start,
CG-mapped, plus round-0 training frames drawn once), each repeated for its replicas, so that
every arm and round of the seed is evaluated from the same structures. Write with
:func:`save`, read with :func:`load`.

File layout (npz, :func:`alcg.util.fileio.save_npz`): ``coords`` (R, N, 3) float32 nm, one row per
replica; ``label`` (R,) the start of each replica; ``bead_masses`` (N,) amu; ``metadata``
with ``n_starts`` and ``replicas_per_start``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alcg.util.errors import DataError
from alcg.util.fileio import load_npz, save_npz


@dataclass(frozen=True, eq=False)
class EvaluationStarts:
    """The evaluation starts of a seed.

    Attributes
    ----------
    coords : (R, N, 3) float32 start coordinates of every replica, nm
    label : (R,) name of each replica's start
    bead_masses : (N,) bead masses, amu
    n_starts : distinct starts
    replicas_per_start : replicas run from each start (R = n_starts * replicas_per_start)
    """

    coords: np.ndarray
    label: np.ndarray
    bead_masses: np.ndarray
    n_starts: int
    replicas_per_start: int

    @classmethod
    def repeated(cls, coords: list[np.ndarray], labels: list[str], replicas_per_start: int,
                 bead_masses: np.ndarray) -> "EvaluationStarts":
        """Starts ``coords`` (each (N, 3) nm) named ``labels``, each for ``replicas_per_start``
        replicas (start-major: the replicas of the first start come first)."""
        xyz = np.repeat(np.asarray(coords, np.float32), replicas_per_start, axis=0)
        return cls(xyz, np.repeat(np.array(labels), replicas_per_start), np.asarray(bead_masses),
                   len(labels), replicas_per_start)


def save(path: str | Path, starts: EvaluationStarts) -> None:
    """Write ``starts`` to ``path`` (atomically)."""
    save_npz(path, metadata={"n_starts": starts.n_starts, "replicas_per_start": starts.replicas_per_start},
             coords=starts.coords, label=starts.label, bead_masses=starts.bead_masses)


def load(path: str | Path) -> EvaluationStarts:
    """Read the starts written by :func:`save`."""
    raw = load_npz(path)
    try:
        meta = raw["metadata"]
        return EvaluationStarts(raw["coords"], raw["label"], raw["bead_masses"], int(meta["n_starts"]),
                                int(meta["replicas_per_start"]))
    except KeyError as exc:
        raise DataError(f"{path} is not an evaluation starts file: no {exc.args[0]!r}") from exc
