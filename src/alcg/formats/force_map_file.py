"""The force-map file (``system/force_map.npz``): the one owner of its layout.

Written by the ``force_map`` rule, read by every projection (``project_initial``,
``project_oracle``) and the mean-force oracle when ``mapping.force_map`` is not
``constrained``. Arrays: ``weights`` (n_beads, n_atoms), dimensionless, the weight of each
recorded atom's force in each bead's force label; ``atom_indices`` (n_atoms,) the System
particle index of each weight column, in the order run files record atoms. ``metadata``:
``kind`` (``constrained``, ``residue`` or ``optimal``), ``ridge`` (relative, dimensionless),
``fitted_on`` (the fit run's file, or None), ``n_frames`` (frames fitted on, 0 when none),
``heldout_second_moment`` ({map kind: mean squared mapped force per component on the second
half of the fit run, (kJ/mol/nm)^2}, the optimal map fitted on the first half; empty without
a fit run) and whatever else the writer adds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alcg.util.errors import DataError
from alcg.util.fileio import load_npz, save_npz

#: metadata keys every force-map file holds
REQUIRED = ("kind", "ridge", "fitted_on", "n_frames", "heldout_second_moment")


@dataclass(frozen=True)
class ForceMapFile:
    """A force map as stored (module doc for shapes and units)."""

    kind: str
    atom_indices: np.ndarray
    weights: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def save(path: str | Path, fmap: ForceMapFile) -> None:
    """Write ``fmap`` atomically; its metadata must hold :data:`REQUIRED` (``kind`` from ``fmap``)."""
    meta = {**fmap.metadata, "kind": fmap.kind}
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"force-map metadata lacks {missing}")
    weights = np.asarray(fmap.weights, np.float64)
    atoms = np.asarray(fmap.atom_indices, np.int64)
    if weights.ndim != 2 or weights.shape[1] != len(atoms):
        raise ValueError(f"weights {weights.shape} do not match {len(atoms)} atom indices")
    save_npz(path, metadata=meta, weights=weights, atom_indices=atoms)


def load(path: str | Path) -> ForceMapFile:
    """Read a force-map file (DataError when it lacks an array or a metadata key)."""
    d = load_npz(path)
    missing = [k for k in ("weights", "atom_indices", "metadata") if k not in d]
    missing += [k for k in REQUIRED if k not in d.get("metadata", {})]
    if missing:
        raise DataError(f"{path}: not a force-map file (lacks {missing[0]})")
    meta = d["metadata"]
    return ForceMapFile(kind=str(meta["kind"]), atom_indices=d["atom_indices"].astype(np.int64),
                        weights=d["weights"].astype(np.float64), metadata=meta)
