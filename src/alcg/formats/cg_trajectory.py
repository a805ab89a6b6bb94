"""The CG trajectory files: the one owner of their layout.

A CG simulation writes three files next to each other:

``trajectory.h5``
    MDTraj HDF5 of the C-alpha beads: valid frames only, replica-major, nm and ps.
``trajectory.dcd``
    The same frames as DCD (Å inside the file, as the format wants), which VMD, PyMOL and
    MDTraj open with the C-alpha PDB ``system/cg.pdb`` as topology.
``replicas.json``
    Per replica: status (``ok``/``exploded``), reason, number of frames and the offset of
    its first frame in the trajectory; plus run totals (kinetic temperature, speed) and, for
    evaluation runs, the start label of each replica, the burn-in and the frames per replica.

Write with :func:`write_trajectory`; read with :func:`load`, which returns a
:class:`CGTrajectory`. Nobody else reads these files' keys.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alcg.util.errors import DataError
from alcg.util.fileio import atomic_path, write_json

#: a replica's status: it ran to the end, or was stopped (see :mod:`alcg.cg.simulate`)
OK, EXPLODED = "ok", "exploded"


@dataclass(frozen=True)
class Replica:
    """One replica's row of ``replicas.json``.

    Attributes
    ----------
    replica : index of the replica (its start structure)
    status : :data:`OK` or :data:`EXPLODED`
    reason : why it was stopped ("" when ok)
    n_frames : frames it saved (all of them valid)
    frame_offset : index of its first frame in the trajectory
    stopped_at_step : step at which it was stopped (-1 when ok)
    """

    replica: int
    status: str
    reason: str
    n_frames: int
    frame_offset: int
    stopped_at_step: int

    @property
    def ok(self) -> bool:
        """Whether the replica ran to the end."""
        return self.status == OK

    @property
    def frames(self) -> slice:
        """The slice of the trajectory's frames that belong to this replica."""
        return slice(self.frame_offset, self.frame_offset + self.n_frames)


@dataclass(frozen=True)
class RunInfo:
    """Run totals of ``replicas.json``.

    Attributes
    ----------
    mean_kinetic_temperature_k : kinetic temperature (K) averaged over steps and replicas
    steps_per_s : integration speed (steps of all replicas together per second)
    elapsed_s : wall time of the integration (s)
    n_steps : time steps of the run
    resumed_from_step : step of the checkpoint the run resumed from (0: none)
    device : torch device it ran on (None: not recorded, e.g. a library call)
    purpose : "exploration" or "evaluation" (None: not recorded)
    start_label : evaluation runs: the start each replica began from (else None)
    burn_in_frames : evaluation runs: frames of each replica dropped as burn-in (else None)
    frames_per_replica : evaluation runs: frames a replica saves when it runs to the end
        (else None)
    """

    mean_kinetic_temperature_k: float
    steps_per_s: float
    elapsed_s: float
    n_steps: int
    resumed_from_step: int
    device: str | None
    purpose: str | None
    start_label: tuple[str, ...] | None
    burn_in_frames: int | None
    frames_per_replica: int | None


@dataclass(frozen=True, eq=False)
class CGTrajectory:
    """A CG run as :func:`load` reads it.

    Attributes
    ----------
    xyz : (F, N, 3) valid frames in nm, replica-major (see :attr:`Replica.frames`)
    topology : the C-alpha :class:`mdtraj.Topology`
    replicas : one :class:`Replica` per replica, in order
    run : the run totals
    """

    xyz: np.ndarray
    topology: object
    replicas: tuple[Replica, ...]
    run: RunInfo

    @property
    def n_exploded(self) -> int:
        """Replicas that were stopped."""
        return sum(not r.ok for r in self.replicas)

    @property
    def exploded_fraction(self) -> float:
        """Fraction of the replicas that were stopped (0 without replicas)."""
        return self.n_exploded / max(len(self.replicas), 1)

    def kept_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Frames of an evaluation run after each replica's burn-in, and a mask of those in the
        first half (in time) of each replica's kept frames (for the convergence check)."""
        burn_in, _ = self._evaluation_window()
        keep, first = [], []
        for r in self.replicas:
            idx = np.arange(r.frame_offset + burn_in, r.frame_offset + r.n_frames)
            keep.append(idx)
            first.append(np.arange(len(idx)) < len(idx) // 2)
        if not keep:
            return self.xyz[:0], np.zeros(0, bool)
        return self.xyz[np.concatenate(keep)], np.concatenate(first)

    def expected_kept_frames(self) -> int:
        """Frames an evaluation run would keep had no replica stopped early (after burn-in).

        A replica that exploded stops saving frames, so a valid fraction is taken over this
        count, not over the frames that exist: an unstable model cannot look valid.
        """
        burn_in, per_replica = self._evaluation_window()
        return len(self.replicas) * max(per_replica - burn_in, 0)

    def _evaluation_window(self) -> tuple[int, int]:
        if self.run.burn_in_frames is None or self.run.frames_per_replica is None:
            raise DataError(f"a {self.run.purpose or 'CG'} run has no burn-in: not an evaluation run")
        return self.run.burn_in_frames, self.run.frames_per_replica


def dcd_path(traj_path: str | Path) -> Path:
    """Path of the DCD copy that goes with ``traj_path``."""
    return Path(traj_path).with_suffix(".dcd")


def write_trajectory(result, cg_pdb: str | Path, traj_path: str | Path, status_path: str | Path,
                     dt_ps: float, save_interval: int, dcd: bool = True) -> None:
    """Write the valid frames of a :class:`~alcg.cg.simulate.SimResult` and its replica table.

    Parameters
    ----------
    cg_pdb : C-alpha PDB giving the topology
    dt_ps : time step (ps); with ``save_interval`` (steps between frames) it gives each
        frame's time
    dcd : also write ``trajectory.dcd`` (see :func:`dcd_path`)

    ``result.info`` goes into the run totals; the workflow adds ``device`` and ``purpose``, and
    for evaluation runs ``start_label``, ``burn_in_frames`` and ``frames_per_replica``
    (see :class:`RunInfo`).
    """
    import mdtraj as md

    top = md.load_topology(str(cg_pdb))
    frames, offsets = [], []
    for r in range(len(result.n_frames)):
        offsets.append(int(sum(len(fr) for fr in frames)))
        frames.append(result.coords[r, :result.n_frames[r]])
    xyz = np.concatenate(frames) if frames else np.zeros((0, top.n_atoms, 3), np.float32)
    time_ps = np.concatenate([np.arange(1, n + 1) * dt_ps * save_interval for n in result.n_frames])
    traj = md.Trajectory(xyz, top, time=time_ps)
    with atomic_path(traj_path) as tmp:
        traj.save_hdf5(str(tmp), force_overwrite=True)
    if dcd and len(xyz):
        with atomic_path(dcd_path(traj_path)) as tmp:
            traj.save_dcd(str(tmp), force_overwrite=True)
    replicas = [{"replica": r, "status": result.status[r], "reason": result.reason[r],
                 "n_frames": int(result.n_frames[r]), "frame_offset": offsets[r],
                 "stopped_at_step": int(result.stopped_at_step[r])}
                for r in range(len(result.n_frames))]
    n_exploded = sum(s != OK for s in result.status)
    write_json(status_path, {"replicas": replicas, "n_replicas": len(replicas),
                             "n_exploded": n_exploded,
                             "exploded_fraction": n_exploded / max(len(replicas), 1),
                             "mean_kinetic_temperature_k": result.mean_kinetic_temperature_k,
                             "steps_per_s": result.steps_per_s, **result.info})


def load(traj_path: str | Path, status_path: str | Path) -> CGTrajectory:
    """Read a CG run written by :func:`write_trajectory`: frames, topology and replica table."""
    import mdtraj as md

    traj = md.load(str(traj_path))
    replicas, run = _read_status(status_path)
    return CGTrajectory(traj.xyz, traj.topology, replicas, run)


def _read_status(status_path: str | Path) -> tuple[tuple[Replica, ...], RunInfo]:
    """The replicas and run totals of ``replicas.json``."""
    raw = json.loads(Path(status_path).read_text())
    try:
        replicas = tuple(Replica(**{f.name: row[f.name] for f in dataclasses.fields(Replica)})
                         for row in raw["replicas"])
        labels = raw.get("start_label")
        run = RunInfo(mean_kinetic_temperature_k=raw["mean_kinetic_temperature_k"],
                      steps_per_s=raw["steps_per_s"], elapsed_s=raw["elapsed_s"], n_steps=raw["n_steps"],
                      resumed_from_step=raw["resumed_from_step"], device=raw.get("device"),
                      purpose=raw.get("purpose"), start_label=None if labels is None else tuple(labels),
                      burn_in_frames=raw.get("burn_in_frames"), frames_per_replica=raw.get("frames_per_replica"))
    except KeyError as exc:
        raise DataError(f"{status_path} is not a CG replica table: no {exc.args[0]!r}") from exc
    return replicas, run
