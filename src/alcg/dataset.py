"""The CG dataset file (``dataset.npz``): the one owner of its keys, splits and provenance.

Keys
    ``coords`` (n, N, 3) nm and ``forces`` (n, N, 3) kJ/mol/nm, float32; ``bead_types`` (N,)
    and ``bead_masses`` (N,) amu; ``sequence``; per frame: ``source`` (the run key of the AA
    run file it was projected from, see :func:`run_key`), ``frame`` (index in that run),
    ``round`` (the round whose query produced it; round-0 data is 0), ``traj`` (trajectory id),
    ``split`` (``train`` or ``val``) and ``force_var`` (float64, (kJ/mol/nm)^2: the error
    variance of the frame's force label, averaged over its components; see
    :func:`instantaneous_force_var` and :mod:`alcg.meanforce`). Files written before
    ``force_var`` existed are read with it computed by :func:`instantaneous_force_var` (every
    label then was instantaneous): the one place old files are migrated.

The validation frames are fixed once, in round 0 (:func:`assign_validation`): the last
``val_fraction`` (in time) of every round-0 trajectory. Later rounds only append ``train``
frames, so every arm and round validates on the same frames and no oracle frame is in them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from alcg.errors import DataError
from alcg.io import load_npz, save_npz

KEYS = ("coords", "forces", "bead_types", "bead_masses", "sequence", "source", "frame", "round",
        "traj", "split", "force_var")
PER_FRAME = ("coords", "forces", "source", "frame", "round", "traj", "split", "force_var")
#: keys a dataset file may lack, filled on reading (see the module doc)
MIGRATED = ("force_var",)
TRAIN, VAL = "train", "val"


def run_key(path: str | Path) -> str:
    """A location-independent name of an AA run file: its path from the ``seed_*`` folder on.

    ``results/x/seed_1/rmsd/round_000/oracle/slot_000.npz`` -> ``seed_1/rmsd/round_000/oracle/slot_000.npz``.
    Imported runs (``results/x/imported/...``) are keyed from ``imported`` on. Keys survive a
    moved results folder; stages resolve them against their declared inputs.
    """
    parts = Path(path).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].startswith("seed_") or parts[i] == "imported":
            return "/".join(parts[i:])
    return "/".join(parts[-2:])


def resolve_runs(keys: Iterable[str], run_files: Iterable[str | Path]) -> dict[str, str]:
    """Map each run key to one of ``run_files`` (the job's declared inputs)."""
    by_key = {run_key(f): str(f) for f in run_files}
    missing = sorted(set(keys) - set(by_key))
    if missing:
        raise DataError(f"AA run {missing[0]} is named in the dataset but is not a declared input "
                        f"of this job ({len(missing)} missing)")
    return {k: by_key[k] for k in keys}


@dataclass(frozen=True)
class CGDataset:
    """A CG dataset (see the module doc for each field's meaning and units)."""

    coords: np.ndarray
    forces: np.ndarray
    bead_types: np.ndarray
    bead_masses: np.ndarray
    sequence: str
    source: np.ndarray
    frame: np.ndarray
    round: np.ndarray
    traj: np.ndarray
    split: np.ndarray
    force_var: np.ndarray | None = None  # None: computed by instantaneous_force_var

    def __post_init__(self) -> None:
        if self.force_var is None:
            object.__setattr__(self, "force_var", instantaneous_force_var(self.forces, self.traj))

    @property
    def n_frames(self) -> int:
        return len(self.coords)

    @property
    def n_beads(self) -> int:
        return len(self.bead_types)

    def train_indices(self) -> np.ndarray:
        """Indices of training frames."""
        return np.flatnonzero(self.split != VAL)

    def val_indices(self) -> np.ndarray:
        """Indices of validation frames."""
        return np.flatnonzero(self.split == VAL)

    def frame_source(self, k: int) -> tuple[str, int]:
        """(run key, frame in that run) of frame ``k``."""
        return str(self.source[k]), int(self.frame[k])


def empty(bead_types: np.ndarray, bead_masses: np.ndarray, sequence: str) -> CGDataset:
    """A dataset with no frames."""
    n = len(bead_types)
    return CGDataset(bead_types=np.asarray(bead_types, np.int64), bead_masses=np.asarray(bead_masses),
                     sequence=str(sequence), coords=np.zeros((0, n, 3), np.float32),
                     forces=np.zeros((0, n, 3), np.float32), source=np.array([], dtype="<U1"),
                     frame=np.zeros(0, np.int64), round=np.zeros(0, np.int64),
                     traj=np.array([], dtype="<U1"), split=np.array([], dtype="<U5"),
                     force_var=np.zeros(0, np.float64))


def instantaneous_force_var(forces: np.ndarray, traj: np.ndarray) -> np.ndarray:
    """Error variance (n,) of instantaneous force labels, (kJ/mol/nm)^2.

    Per trajectory: the variance over its frames of each bead force component, averaged over
    components (NaN for a one-frame trajectory). An upper bound on the label noise: it also
    holds the spread of the mean force over the trajectory's configurations, which is small
    next to the thermal noise (~1000 vs ~10-30 kJ/mol/nm with atoms).
    """
    forces = np.asarray(forces, np.float64)
    out = np.full(len(forces), np.nan)
    for t in np.unique(traj):
        idx = np.flatnonzero(traj == t)
        if len(idx) > 1:
            out[idx] = forces[idx].var(axis=0, ddof=1).mean()
    return out


def with_frames(data: CGDataset, **per_frame: np.ndarray) -> CGDataset:
    """``data`` with its per-frame arrays replaced (all of :data:`PER_FRAME`, or ``split``;
    ``force_var`` left out of a full replacement is computed by :func:`instantaneous_force_var`)."""
    if "coords" in per_frame and "force_var" not in per_frame:
        per_frame = {**per_frame, "force_var": instantaneous_force_var(per_frame["forces"], per_frame["traj"])}
    return dataclasses.replace(data, **per_frame)


def assign_validation(data: CGDataset, val_fraction: float) -> CGDataset:
    """Mark the last ``val_fraction`` of every trajectory (by frame index) as validation."""
    split = np.full(data.n_frames, TRAIN, dtype="<U5")
    for t in np.unique(data.traj):
        idx = np.flatnonzero(data.traj == t)
        idx = idx[np.argsort(data.frame[idx], kind="stable")]
        n_val = int(round(len(idx) * val_fraction))
        if n_val and len(idx) - n_val >= 1:
            split[idx[-n_val:]] = VAL
    return dataclasses.replace(data, split=split)


def merge(datasets: Iterable[CGDataset]) -> CGDataset:
    """Concatenate datasets of the same molecule (bead types must match)."""
    datasets = list(datasets)
    first = datasets[0]
    for d in datasets[1:]:
        if not np.array_equal(d.bead_types, first.bead_types):
            raise DataError(f"cannot merge datasets of different molecules: {first.sequence} vs {d.sequence}")
    return dataclasses.replace(first, **{k: np.concatenate([getattr(d, k) for d in datasets]) for k in PER_FRAME})


def save(path: str | Path, data: CGDataset) -> None:
    """Write a CG dataset atomically."""
    arrays = {k: getattr(data, k) for k in KEYS}
    arrays["sequence"] = np.array(data.sequence)
    save_npz(path, metadata={"units": {"coords": "nm", "forces": "kJ/mol/nm", "bead_masses": "amu"},
                             "n_frames": int(data.n_frames), "n_val": int((data.split == VAL).sum())},
             **arrays)


def load(path: str | Path, n_beads: int | None = None) -> CGDataset:
    """Read a CG dataset; with ``n_beads``, check it matches the model's bead count."""
    raw = load_npz(path)
    missing = [k for k in KEYS if k not in raw and k not in MIGRATED]
    if missing:
        raise DataError(f"{path} is not a CG dataset (missing {missing})")
    if "force_var" not in raw:
        raw["force_var"] = instantaneous_force_var(raw["forces"], raw["traj"])
    if n_beads is not None and raw["coords"].shape[1] != n_beads:
        raise DataError(f"{path} has {raw['coords'].shape[1]} beads per frame; the model expects {n_beads}")
    return CGDataset(**{k: raw[k] for k in KEYS if k != "sequence"}, sequence=str(raw["sequence"]))
