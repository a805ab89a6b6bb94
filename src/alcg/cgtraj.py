"""The CG trajectory files: the one owner of their layout.

A CG simulation writes three files next to each other:

``trajectory.h5``
    MDTraj HDF5 of the C-alpha beads: valid frames only, replica-major, nm and ps.
``trajectory.dcd``
    The same frames as DCD (Å inside the file, as the format wants), which VMD, PyMOL and
    MDTraj open with the C-alpha PDB ``system/cg.pdb`` as topology.
``replicas.json``
    Per replica: status (``ok``/``exploded``), reason, number of frames and the offset of
    its first frame in the trajectory; plus run totals (kinetic temperature, speed).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alcg.io import atomic_path, write_json


def dcd_path(traj_path: str | Path) -> Path:
    """Path of the DCD copy that goes with ``traj_path``."""
    return Path(traj_path).with_suffix(".dcd")


def write_trajectory(result, cg_pdb: str | Path, traj_path: str | Path, status_path: str | Path,
                     dt_ps: float, save_interval: int, dcd: bool = True) -> None:
    """Write the valid frames of a :class:`~alcg.simulate.SimResult` and its replica table.

    Parameters
    ----------
    cg_pdb : C-alpha PDB giving the topology
    dt_ps : time step (ps); with ``save_interval`` it gives each frame's time
    dcd : also write ``trajectory.dcd`` (see :func:`dcd_path`)
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
    n_exploded = sum(s != "ok" for s in result.status)
    write_json(status_path, {"replicas": replicas, "n_replicas": len(replicas),
                             "n_exploded": n_exploded,
                             "exploded_fraction": n_exploded / max(len(replicas), 1),
                             "mean_kinetic_temperature_k": result.mean_kinetic_temperature_k,
                             "steps_per_s": result.steps_per_s, **result.info})


def load_trajectory(traj_path: str | Path, status_path: str | Path) -> tuple[np.ndarray, list[dict], object]:
    """Return (coords (F, N, 3) nm, replica status list, mdtraj topology) of a CG run."""
    import mdtraj as md

    traj = md.load(str(traj_path))
    replicas = json.loads(Path(status_path).read_text())["replicas"]
    return traj.xyz, replicas, traj.topology


def replica_frames(replicas: list[dict], replica: int) -> slice:
    """The slice of the trajectory's frames that belong to ``replica``."""
    r = replicas[replica]
    return slice(r["frame_offset"], r["frame_offset"] + r["n_frames"])
