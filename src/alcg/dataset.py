"""The CG dataset file (``dataset.npz``): the one owner of its keys, splits and provenance.

Keys
    ``coords`` (n, N, 3) nm and ``forces`` (n, N, 3) kJ/mol/nm, float32; ``bead_types`` (N,)
    and ``bead_masses`` (N,) amu; ``sequence``; per frame: ``source`` (the run key of the AA
    run file it was projected from, see :func:`run_key`), ``frame`` (index in that run),
    ``round`` (the round whose query produced it; round-0 data is 0), ``traj`` (trajectory id)
    and ``split`` (``train`` or ``val``).

The validation frames are fixed once, in round 0 (:func:`assign_validation`): the last
``val_fraction`` (in time) of every round-0 trajectory. Later rounds only append ``train``
frames, so every arm and round validates on the same frames and no oracle frame is in them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from alcg.errors import DataError
from alcg.io import load_npz, save_npz

KEYS = ("coords", "forces", "bead_types", "bead_masses", "sequence", "source", "frame", "round",
        "traj", "split")
PER_FRAME = ("coords", "forces", "source", "frame", "round", "traj", "split")
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


def empty(bead_types: np.ndarray, bead_masses: np.ndarray, sequence: str) -> dict:
    """A dataset with no frames."""
    n = len(bead_types)
    return {"bead_types": np.asarray(bead_types, np.int64), "bead_masses": np.asarray(bead_masses),
            "sequence": np.array(sequence), "coords": np.zeros((0, n, 3), np.float32),
            "forces": np.zeros((0, n, 3), np.float32), "source": np.array([], dtype="<U1"),
            "frame": np.zeros(0, np.int64), "round": np.zeros(0, np.int64),
            "traj": np.array([], dtype="<U1"), "split": np.array([], dtype="<U5")}


def assign_validation(data: dict, val_fraction: float) -> dict:
    """Mark the last ``val_fraction`` of every trajectory (by frame index) as validation."""
    split = np.full(len(data["coords"]), TRAIN, dtype="<U5")
    for t in np.unique(data["traj"]):
        idx = np.flatnonzero(data["traj"] == t)
        idx = idx[np.argsort(data["frame"][idx], kind="stable")]
        n_val = int(round(len(idx) * val_fraction))
        if n_val and len(idx) - n_val >= 1:
            split[idx[-n_val:]] = VAL
    return {**data, "split": split}


def merge(datasets: Iterable[dict]) -> dict:
    """Concatenate datasets of the same molecule (bead types must match)."""
    datasets = list(datasets)
    first = datasets[0]
    for d in datasets[1:]:
        if not np.array_equal(d["bead_types"], first["bead_types"]):
            raise DataError(f"cannot merge datasets of different molecules: "
                            f"{str(first['sequence'])} vs {str(d['sequence'])}")
    out = {k: first[k] for k in ("bead_types", "bead_masses", "sequence")}
    for key in PER_FRAME:
        out[key] = np.concatenate([d[key] for d in datasets])
    return out


def save(path: str | Path, data: dict) -> None:
    """Write a CG dataset atomically."""
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise DataError(f"dataset is missing {missing}")
    n = len(data["coords"])
    save_npz(path, metadata={"units": {"coords": "nm", "forces": "kJ/mol/nm", "bead_masses": "amu"},
                             "n_frames": int(n), "n_val": int((data["split"] == VAL).sum())},
             **{k: data[k] for k in KEYS})


def load(path: str | Path, n_beads: int | None = None) -> dict:
    """Read a CG dataset; with ``n_beads``, check it matches the model's bead count."""
    data = load_npz(path)
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise DataError(f"{path} is not a CG dataset (missing {missing})")
    if n_beads is not None and data["coords"].shape[1] != n_beads:
        raise DataError(f"{path} has {data['coords'].shape[1]} beads per frame; the model expects {n_beads}")
    return data


def train_indices(data: dict) -> np.ndarray:
    """Indices of training frames."""
    return np.flatnonzero(data["split"] != VAL)


def val_indices(data: dict) -> np.ndarray:
    """Indices of validation frames."""
    return np.flatnonzero(data["split"] == VAL)
