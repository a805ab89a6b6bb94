"""The all-atom run file (``.npz``): the one owner of its layout and its status protocol.

A run file is what reference MD, initial MD, an imported trajectory or an oracle query
writes, and what projection, backmapping and evaluation read. Keys:

``positions``
    (n, n_atoms, 3) float32, nm, of the recorded (non-water) atoms.
``forces``
    (n, n_atoms, 3) float32, kJ/mol/nm, force-field forces (no constraint forces); absent
    for position-only runs (an imported reference).
``potential_energy``
    (n,) float64, kJ/mol of the whole system (NaN where not computed).
``time_ps``
    (n,) ps.
``atom_indices``
    (n_atoms,) index of each recorded atom in the prepared system.
``topology_pdb``
    PDB text of the recorded atoms.
``metadata``
    JSON: ``status`` (see :class:`Status`), ``reason``, units, settings, provenance;
    ``simulated_ps``: all fine-grained time the run cost, equilibration included (runs
    written before it existed: the recorded time, see :func:`recorded_ns`); ``labels``:
    ``instantaneous`` or ``mean_force``.
``bead_forces``, ``bead_force_var``
    Only in a ``mean_force`` query (:mod:`alcg.finegrained.meanforce_query`): (n, N, 3) float32 kJ/mol/nm,
    the mean force on the N beads (the label, already mapped and bias-corrected), and (n,)
    (kJ/mol/nm)^2, its squared standard error averaged over components. ``forces`` then holds
    the plain average of the atom forces over the samples.

A slot that produced no trajectory (nothing selected, a rejected backmap, a failed query)
is still a run file, holding only ``metadata`` with its status: a failed query is data,
not a crash of the round.
"""
from __future__ import annotations

import enum
import io as _io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alcg.util.errors import DataError
from alcg.util.fileio import load_npz, save_npz

UNITS = {"positions": "nm", "forces": "kJ/mol/nm", "potential_energy": "kJ/mol", "time": "ps"}


class Status(str, enum.Enum):
    """Outcome of one run or query slot."""

    OK = "ok"              # a recorded trajectory
    FAILED = "failed"      # the MD ran and failed (exception, blow-up)
    SKIPPED = "skipped"    # nothing to run (no frame selected for this slot)
    REJECTED = "rejected"  # the start structure was refused (backmap checks)


def save_run(path: str | Path, positions: np.ndarray, forces: np.ndarray | None,
             potential_energy: np.ndarray, time_ps: np.ndarray, atom_indices: np.ndarray,
             topology_pdb: str, metadata: dict[str, Any], bead_forces: np.ndarray | None = None,
             bead_force_var: np.ndarray | None = None) -> None:
    """Write a trajectory run file atomically (status ``ok``); see the module doc for keys."""
    arrays = dict(positions=np.asarray(positions, np.float32),
                  potential_energy=np.asarray(potential_energy, np.float64),
                  time_ps=np.asarray(time_ps, np.float64), atom_indices=np.asarray(atom_indices, np.int64),
                  topology_pdb=np.array(topology_pdb))
    if forces is not None:
        arrays["forces"] = np.asarray(forces, np.float32)
    if bead_forces is not None:
        arrays["bead_forces"] = np.asarray(bead_forces, np.float32)
        arrays["bead_force_var"] = np.asarray(bead_force_var, np.float64)
    save_npz(path, metadata={"units": UNITS, **metadata, "status": Status.OK.value}, **arrays)


def save_status(path: str | Path, status: Status, reason: str = "", **extra: Any) -> None:
    """Write a run file that holds no trajectory, only its ``status`` and ``reason``."""
    if status is Status.OK:
        raise ValueError("an 'ok' run needs a trajectory: use save_run")
    save_npz(path, metadata={**extra, "status": Status(status).value, "reason": reason})


@dataclass(frozen=True)
class AARun:
    """A fine-grained run as :func:`load` reads it (units and shapes: the module doc).

    ``forces`` is None for position-only runs; a run with another status than ``ok`` holds no
    trajectory (its arrays are None): check :attr:`status` first.
    """

    positions: np.ndarray | None
    forces: np.ndarray | None
    potential_energy: np.ndarray | None
    time_ps: np.ndarray | None
    atom_indices: np.ndarray | None
    topology_pdb: str | None
    metadata: dict
    bead_forces: np.ndarray | None = None
    bead_force_var: np.ndarray | None = None

    @property
    def status(self) -> Status:
        return Status(self.metadata.get("status", Status.OK.value))

    @property
    def n_frames(self) -> int:
        return 0 if self.potential_energy is None else len(self.potential_energy)

    def topology(self):
        """The OpenMM topology of the recorded atoms."""
        import openmm.app as app

        return app.PDBFile(_io.StringIO(self.topology_pdb)).topology


def load(path: str | Path) -> AARun:
    """Read a run file."""
    d = load_npz(path)
    pdb = d.get("topology_pdb")
    return AARun(positions=d.get("positions"), forces=d.get("forces"), potential_energy=d.get("potential_energy"),
                 time_ps=d.get("time_ps"), atom_indices=d.get("atom_indices"),
                 topology_pdb=None if pdb is None else str(pdb), metadata=d.get("metadata", {}),
                 bead_forces=d.get("bead_forces"), bead_force_var=d.get("bead_force_var"))


def positions_at(path: str | Path, k: int) -> np.ndarray:
    """Positions (n_atoms, 3) float32, nm, of frame ``k`` of an ``ok`` run, reading only that frame."""
    from alcg.util.fileio import npz_row

    try:
        return npz_row(path, "positions", k)
    except KeyError:
        raise DataError(f"{path} holds no trajectory (status {status(path).value})") from None


def frame_count(path: str | Path) -> int:
    """Number of recorded frames of a run file (0 without a trajectory), from its header only."""
    from alcg.util.fileio import npz_shape

    try:
        return npz_shape(path, "potential_energy")[0]
    except KeyError:
        return 0


def metadata(path: str | Path) -> dict:
    """Only the decoded ``metadata`` of a run file (cheap: no arrays are read)."""
    import json

    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["metadata"])) if "metadata" in data.files else {}


def status(path: str | Path) -> Status:
    """The :class:`Status` of a run file (files without one are ``ok``)."""
    return Status(metadata(path).get("status", Status.OK.value))


def recorded_ns(path: str | Path) -> float:
    """Fine-grained time an ``ok`` run cost (ns): its ``simulated_ps`` (equilibration and
    unrecorded sampling included), else (older files, imports) the recorded frames times their
    interval; 0 for any other status."""
    meta = metadata(path)
    if meta.get("status", "ok") != Status.OK.value:
        return 0.0
    if "simulated_ps" in meta:
        return float(meta["simulated_ps"]) * 1e-3
    with np.load(path, allow_pickle=False) as data:
        n = len(data["potential_energy"])
    return n * meta["record_interval_steps"] * meta["timestep_fs"] * 1e-6


def count(paths: list[str | Path], which: Status) -> int:
    """How many of ``paths`` have status ``which``."""
    return sum(status(p) is which for p in paths)


def check_topology(run: AARun, expected: list[tuple[str, str]], name: str, system_pdb: str) -> None:
    """Raise :class:`DataError` unless the run's recorded atoms are the system's atoms.

    ``expected`` lists (residue name, atom name) of every atom of the prepared system.
    """
    got = [(a.residue.name, a.name) for a in run.topology().atoms()]
    idx = run.atom_indices
    ok = len(got) == len(idx) and all(i < len(expected) and expected[i] == g for i, g in zip(idx, got))
    if not ok:
        raise DataError(f"reference/AA run {name} does not match the topology of {system_pdb} "
                        f"({len(got)} recorded atoms vs {len(expected)} in the system, or different names)")
