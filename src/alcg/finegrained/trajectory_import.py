"""Import existing all-atom trajectories as run files (see :mod:`alcg.formats.run_file`).

Any trajectory MDTraj reads (xtc, trr, dcd, h5, nc, multi-model pdb, ...) can stand in
for a reference or oracle run of the prepared system:

1. the trajectory is read with its topology; water and ions are stripped;
2. its atoms are matched to the prepared system (written by :mod:`alcg.finegrained.prepare`:
   protonated by PDBFixer, force-field atom names) by (residue index, atom name), with a
   few unambiguous aliases (N-terminal ``H1``/``HT1`` for ``H``, CHARMM ``HN``, C-terminal
   ``OT1``/``OT2`` and ``OC1``/``OC2``, Ile ``CD``); any other name that does not match
   is an error listing the first unmatched atoms, never a guess. Note that MDTraj reads
   pdb, gro, psf and prmtop topologies through OpenMM's atom-name table, the one PDBFixer
   applies to ``system.pdb``: it already renames e.g. CHARMM's ``HB1``/``HB2`` to
   ``HB3``/``HB2`` before the matching sees them;
3. with ``forces=True`` every frame's force-field forces (kJ/mol/nm) and potential energy
   (kJ/mol) are recomputed with OpenMM by a single-point evaluation on the system XML;
   every ``checkpoint_every`` frames the new frames' results are written as one chunk file
   into the folder ``<out>.partial/`` (:mod:`alcg.formats.checkpoint`; append-only, so checkpointing a long trajectory
   costs O(n) I/O) and a re-run resumes after the last complete chunk. With
   ``forces=False`` (a reference only needs positions) the run holds positions only and
   the energies are NaN.

Time bookkeeping
    :func:`alcg.formats.run_file.recorded_ns` counts ``n_frames * record_interval_steps *
    timestep_fs``. An imported run has no integrator steps, so one "step" is one stored
    frame: ``record_interval_steps = 1`` and ``timestep_fs`` = the spacing of the stored
    frames in fs (source spacing x stride). The source spacing comes from the file's frame
    times (xtc, trr, h5, nc), from the DCD header (``NSAVC * DELTA``), or from
    ``source_frame_interval_ps``. When it is unknown, ``record_interval_steps = 0`` (the
    run counts as 0 ns), ``time_ps`` is NaN and a warning is logged.
"""
from __future__ import annotations

import hashlib
import logging
import struct
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

from alcg.formats import run_file, checkpoint
from alcg.finegrained import system as omm
from alcg.util.errors import DataError
from alcg.config.settings import ForceField
from alcg.finegrained.structure import ONE_LETTER, WATER_IONS, pdb_text

log = logging.getLogger(__name__)

#: residue-name variants (protonation states, CHARMM names) -> one-letter code
_RESIDUE_VARIANTS = {"HID": "H", "HIE": "H", "HIP": "H", "HSD": "H", "HSE": "H", "HSP": "H",
                     "CYX": "C", "CYM": "C", "ASH": "D", "GLH": "E", "LYN": "K"}
#: system atom name -> names the same atom has in other tools (any residue)
_ALIASES = {"H": ("HN",)}
_N_TERMINAL_ALIASES = {"H": ("H1", "HT1", "HN1"), "H2": ("HT2", "HN2"), "H3": ("HT3", "HN3")}
_C_TERMINAL_ALIASES = {"O": ("OT1", "OC1", "O1"), "OXT": ("OT2", "OC2", "O2")}
_RESIDUE_ALIASES = {"ILE": {"CD1": ("CD",), "HD11": ("HD1",), "HD12": ("HD2",), "HD13": ("HD3",)}}
#: trajectory formats whose frames carry their time (ps)
_TIMED_FORMATS = {".xtc", ".trr", ".h5", ".lh5", ".nc", ".ncdf", ".netcdf", ".dtr"}
#: trajectory formats that carry their own topology
_SELF_DESCRIBING = (".pdb", ".pdb.gz", ".h5", ".hdf5", ".lh5", ".gro", ".cif", ".pdbx", ".mmcif")
#: AKMA time unit of DCD headers, in ps
_AKMA_PS = 0.04888821
#: how many unmatched atoms an error names
_SHOW = 6


def import_trajectory(trajectory: str | Path, topology: str | Path | None, system_pdb: str | Path,
                      system_xml: str | Path, ff_cfg: ForceField, out: str | Path, *, stride: int,
                      checkpoint_every: int, forces: bool = True, threads: int | None = None,
                      source_frame_interval_ps: float | None = None) -> dict:
    """Import an all-atom trajectory of the prepared system as a run file.

    Parameters
    ----------
    trajectory
        Any file MDTraj reads (xtc, trr, dcd, h5, nc, pdb, ...); may contain solvent.
    topology
        Topology of ``trajectory`` (pdb, gro, psf, prmtop, ...); ``None`` for formats
        that carry their own (pdb, h5).
    system_pdb, system_xml
        The prepared system (see :func:`alcg.finegrained.prepare.prepare_system`).
    ff_cfg
        The force-field settings; only ``platform`` is used (the physics is the System XML).
    out
        The run file to write (via :func:`alcg.formats.run_file.save_run`).
    stride
        Keep every ``stride``-th frame of the source, starting with its first.
    forces
        Recompute force-field forces (kJ/mol/nm) and potential energies (kJ/mol) of every
        frame; ``False`` stores positions only (e.g. for a reference).
    threads
        CPU threads of the OpenMM CPU platform.
    checkpoint_every
        Frames between checkpoints (chunk files in ``<out>.partial/``) of the force
        computation (0 = none).
    source_frame_interval_ps
        Time between consecutive frames of the source file in ps; overrides what the file
        says (see the module doc).

    Returns
    -------
    dict
        The metadata written to the run file.

    Raises
    ------
    DataError
        With a one-line message when the trajectory cannot be read or its atoms do not
        match the system, or when forces of an explicit-solvent system are requested.
    """
    if stride < 1:
        raise DataError(f"import of {trajectory}: stride must be >= 1, got {stride}")
    out = Path(out)
    pdb, system = _load_system(system_pdb, system_xml)
    indices, sys_residues = _protein_residues(pdb.topology)
    if forces and len(indices) != pdb.topology.getNumAtoms():
        raise DataError(f"cannot recompute forces of {trajectory}: the system {system_pdb} has "
                        "explicit solvent, whose positions the import does not have; import it "
                        "as a reference (positions only)")
    traj = load_protein_trajectory(trajectory, topology, stride)
    order = match_atoms(traj.topology, sys_residues, _describe(trajectory, topology), system_pdb)
    positions = traj.xyz[:, order]
    source_frames = np.arange(traj.n_frames) * stride
    interval_ps, interval_from = _source_interval(trajectory, traj, stride, source_frame_interval_ps)
    time_ps = _frame_times(trajectory, traj, source_frames, interval_ps, interval_from)
    meta = _metadata(trajectory, topology, system_pdb, stride, traj, interval_ps, interval_from,
                     forces, ff_cfg)
    if forces:
        energy, frc, platform = _recompute(positions, pdb, system, indices, ff_cfg, threads,
                                           out, checkpoint_every, str(trajectory))
        meta["platform"] = platform
    else:
        energy, frc = np.full(len(positions), np.nan), None
    first = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    if len(positions):
        first[indices] = positions[0]
    run_file.save_run(out, positions, frc, energy, time_ps, indices,
                   pdb_text(pdb.topology, first, indices), meta)
    checkpoint.remove(checkpoint.folder(out))
    log.info("imported %s: %d frames (stride %d), forces %s", trajectory, len(positions), stride,
             "recomputed" if forces else "not stored")
    return meta


# --------------------------------------------------------------------------- reading
def _describe(trajectory: str | Path, topology: str | Path | None) -> str:
    return f"{trajectory}" + (f" (topology {topology})" if topology else "")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _load_system(system_pdb: str | Path, system_xml: str | Path) -> tuple[app.PDBFile, mm.System]:
    return app.PDBFile(str(system_pdb)), omm.deserialize(Path(system_xml).read_text())


def _is_solvent(residue_name: str, is_water: bool = False) -> bool:
    return is_water or residue_name in WATER_IONS


def load_protein_trajectory(trajectory: str | Path, topology: str | Path | None,
                            stride: int):
    """Read ``trajectory`` without its water and ions (an ``mdtraj.Trajectory``, nm, ps).

    Only the kept atoms are read (``atom_indices``), so a solvated trajectory costs the
    memory of the protein alone; the first frame is read whole to check that the topology
    has as many atoms as the trajectory. MDTraj reads pdb, gro, psf and prmtop topologies
    through OpenMM's atom-name table (``pdbNames.xml``, as PDBFixer reads ``system.pdb``).

    Raises
    ------
    DataError
        With a one-line message naming the files when MDTraj cannot read them.
    """
    import mdtraj as md

    where = _describe(trajectory, topology)
    if topology is None and not str(trajectory).lower().endswith(_SELF_DESCRIBING):
        raise DataError(f"trajectory {trajectory} needs a topology file (pdb, gro, psf, prmtop, ...)")
    try:
        top = md.load_topology(str(topology if topology else trajectory))
        keep = np.array([a.index for a in top.atoms if not _is_solvent(a.residue.name, a.residue.is_water)])
        if len(keep) == 0:
            raise DataError(f"trajectory {where} has no protein atoms")
        kwargs = {"top": str(topology)} if topology else {}
        md.load_frame(str(trajectory), 0, **kwargs)  # whole frame: checks the atom count
        traj = md.load(str(trajectory), stride=stride, atom_indices=keep, **kwargs)
    except DataError:
        raise
    except Exception as exc:  # MDTraj raises many types (IOError, ValueError, ...)
        raise DataError(f"cannot read trajectory {where}: {_one_line(exc)}") from exc
    if traj.n_frames == 0:
        raise DataError(f"trajectory {where} has no frames")
    return traj


# --------------------------------------------------------------------------- atom matching
def _protein_residues(topology: app.Topology) -> tuple[np.ndarray, list[tuple[str, list[tuple[str, int]]]]]:
    """System atom indices of the protein, and its residues as (name, [(atom name, index)])."""
    residues = [(r.name, [(a.name, a.index) for a in r.atoms()])
                for r in topology.residues() if not _is_solvent(r.name)]
    indices = np.array([i for _, atoms in residues for _, i in atoms], dtype=np.int64)
    return indices, residues


def _letter(residue_name: str) -> str:
    return ONE_LETTER.get(residue_name) or _RESIDUE_VARIANTS.get(residue_name, residue_name)


def _aliases(name: str, residue: str, position: int, n_residues: int) -> tuple[str, ...]:
    found = list(_ALIASES.get(name, ())) + list(_RESIDUE_ALIASES.get(residue, {}).get(name, ()))
    if position == 0:
        found += _N_TERMINAL_ALIASES.get(name, ())
    if position == n_residues - 1:
        found += _C_TERMINAL_ALIASES.get(name, ())
    return tuple(found)


def _match_residue(sys_atoms: list[tuple[str, int]], traj_atoms: dict[str, int], residue: str,
                   position: int, n_residues: int) -> tuple[dict[int, int], list[str], list[str]]:
    """Match one residue: exact names first, then aliases among the still unused names."""
    matched = {idx: traj_atoms[name] for name, idx in sys_atoms if name in traj_atoms}
    used = {name for name, _ in sys_atoms if name in traj_atoms}
    missing = []
    for name, idx in sys_atoms:
        if idx in matched:
            continue
        alias = next((a for a in _aliases(name, residue, position, n_residues)
                      if a in traj_atoms and a not in used), None)
        if alias is None:
            missing.append(name)
        else:
            matched[idx] = traj_atoms[alias]
            used.add(alias)
    extra = [name for name in traj_atoms if name not in used]
    return matched, missing, extra


def _listing(items: list[str]) -> str:
    more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


def match_atoms(traj_topology, sys_residues: list[tuple[str, list[tuple[str, int]]]], source: str,
                system_pdb: str | Path) -> np.ndarray:
    """For each system protein atom (in system order), its atom index in the trajectory.

    Parameters
    ----------
    traj_topology
        ``mdtraj.Topology`` of the (solvent-free) trajectory.
    sys_residues
        The system's protein residues as (name, [(atom name, system index)]).
    source, system_pdb
        Names used in error messages.

    Raises
    ------
    DataError
        One line naming ``source`` and the first unmatched residues or atoms.
    """
    residues = list(traj_topology.residues)
    if len(residues) != len(sys_residues):
        raise DataError(f"trajectory {source} has {len(residues)} protein residues; the system "
                        f"{system_pdb} has {len(sys_residues)}")
    for k, (res, (sys_name, _)) in enumerate(zip(residues, sys_residues)):
        if _letter(res.name) != _letter(sys_name):
            raise DataError(f"trajectory {source}: residue {k + 1} is {res.name}, the system "
                            f"{system_pdb} has {sys_name} there")
    lookup: dict[int, int] = {}
    missing, extra = [], []
    for k, (res, (sys_name, sys_atoms)) in enumerate(zip(residues, sys_residues)):
        traj_atoms = {a.name: a.index for a in res.atoms}
        if len(traj_atoms) != res.n_atoms:
            raise DataError(f"trajectory {source}: residue {res.name}{k + 1} has duplicate atom names")
        matched, miss, more = _match_residue(sys_atoms, traj_atoms, sys_name, k, len(residues))
        lookup.update(matched)
        missing += [f"{sys_name}{k + 1}:{n}" for n in miss]
        extra += [f"{res.name}{k + 1}:{n}" for n in more]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"system atoms not in the trajectory: {_listing(missing)}")
        if extra:
            parts.append(f"trajectory atoms not in the system: {_listing(extra)}")
        raise DataError(f"cannot match the atoms of {source} to the system {system_pdb} by residue "
                        f"and atom name; " + "; ".join(parts))
    order = [idx for _, atoms in sys_residues for _, idx in atoms]
    return np.array([lookup[i] for i in order], dtype=np.int64)


# --------------------------------------------------------------------------- time
def dcd_frame_interval_ps(path: str | Path) -> float | None:
    """Time between the frames of a CHARMM/NAMD/OpenMM DCD file (ps), from its header.

    ``NSAVC * DELTA`` (steps between frames times the time step in AKMA units); ``None``
    when the header does not say.
    """
    with open(path, "rb") as fh:
        head = fh.read(92)
    if len(head) < 92 or head[4:8] != b"CORD":
        return None
    for endian in "<>":
        if struct.unpack(endian + "i", head[:4])[0] == 84:
            icntrl = struct.unpack(endian + "20i", head[8:88])
            if icntrl[19]:  # CHARMM format: DELTA is a float32
                delta = struct.unpack(endian + "f", head[44:48])[0]
            else:  # X-PLOR format: DELTA is a float64
                delta = struct.unpack(endian + "d", head[44:52])[0]
            nsavc = icntrl[2]
            step_ps = delta * _AKMA_PS
            if nsavc > 0 and 0 < step_ps < 1.0:
                return float(f"{nsavc * step_ps:.6g}")
            return None
    return None


def _source_interval(trajectory: str | Path, traj, stride: int,
                     given_ps: float | None) -> tuple[float | None, str]:
    """Spacing of the source frames (ps) and where it came from."""
    if given_ps is not None:
        if given_ps <= 0:
            raise DataError(f"import of {trajectory}: source_frame_interval_ps must be > 0")
        return float(given_ps), "given"
    suffix = Path(trajectory).suffix.lower()
    if suffix == ".dcd":
        interval = dcd_frame_interval_ps(trajectory)
        return (interval, "dcd header") if interval else (None, "unknown")
    if suffix in _TIMED_FORMATS and traj.n_frames > 1:
        steps = np.diff(np.asarray(traj.time, np.float64))
        if np.all(steps > 0):
            if not np.allclose(steps, steps[0], rtol=1e-3, atol=1e-6):
                log.warning("%s: frame times are not evenly spaced; using their mean spacing", trajectory)
            return float(f"{steps.mean() / stride:.6g}"), "frame times"
    return None, "unknown"


def _frame_times(trajectory: str | Path, traj, source_frames: np.ndarray,
                 interval_ps: float | None, interval_from: str) -> np.ndarray:
    """Time (ps) of each stored frame: the file's own times where it has them."""
    if interval_from == "frame times":
        return np.asarray(traj.time, np.float64)
    if interval_ps is None:
        log.warning("%s: time between frames unknown (give source_frame_interval_ps); "
                    "the run counts as 0 ns and its times are NaN", trajectory)
        return np.full(len(source_frames), np.nan)
    return source_frames * interval_ps


def _metadata(trajectory, topology, system_pdb, stride: int, traj, interval_ps: float | None,
              interval_from: str, forces: bool, ff: ForceField) -> dict:
    stored_ps = interval_ps * stride if interval_ps else None
    return {"imported": True, "source": str(trajectory),
            "topology": str(topology) if topology else None, "system_pdb": str(system_pdb),
            "stride": stride,
            # frame k of this run is frame start + k * step of the source
            "source_frames": {"start": 0, "step": stride, "count": int(traj.n_frames)},
            "forces_recomputed": bool(forces),
            "source_frame_interval_ps": interval_ps, "frame_interval_from": interval_from,
            # one "step" of an imported run is one stored frame (see the module doc)
            "record_interval_steps": 1 if stored_ps else 0,
            "timestep_fs": stored_ps * 1000.0 if stored_ps else ff.timestep_fs}


# --------------------------------------------------------------------------- forces
def _signature(positions: np.ndarray, system: mm.System) -> str:
    """Hash of the frames and the System: a checkpoint only resumes the same import."""
    digest = hashlib.sha256(np.ascontiguousarray(positions).tobytes())
    digest.update(omm.serialize(system).encode())
    return digest.hexdigest()[:16]


def make_context(system: mm.System, ff: ForceField, threads: int | None = None) -> mm.Context:
    """A Context for single-point evaluations on the configured platform.

    The integrator never steps, so the System's constraints play no part.
    """
    platform, props = omm.choose_platform(ff.platform, threads)
    return mm.Context(system, mm.VerletIntegrator(0.001 * unit.picosecond), platform, props)


def single_point(context: mm.Context, positions_nm: np.ndarray) -> tuple[float, np.ndarray]:
    """Potential energy (kJ/mol) and forces (n_atoms, 3) kJ/mol/nm at ``positions_nm``."""
    context.setPositions(np.asarray(positions_nm, np.float64))
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


def _resume(partial: Path, signature: str, n_frames: int) -> tuple[list, list]:
    """Energies and forces of the consecutive chunks in ``partial`` from frame 0 on (at most
    ``n_frames``)."""
    energies: list = []
    forces: list = []
    for chunk in checkpoint.read(partial, signature, lambda c: len(c["potential_energy"])) or []:
        if len(energies) + len(chunk["potential_energy"]) > n_frames:
            break
        energies += list(chunk["potential_energy"])
        forces += list(chunk["forces"])
    if energies:
        log.info("resuming %s from frame %d", partial.name, len(energies))
    return energies, forces


def _checkpoint(partial: Path, signature: str, start: int, energies: list, forces: list) -> None:
    """Write frames ``start`` .. the last of ``energies`` as one chunk file."""
    checkpoint.write(partial, signature, start, potential_energy=np.asarray(energies[start:]),
                     forces=np.stack(forces[start:]))


def _recompute(positions: np.ndarray, pdb: app.PDBFile, system: mm.System, indices: np.ndarray,
               ff: ForceField, threads: int | None, out: Path, checkpoint_every: int,
               source: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Single-point energies (n,) and forces (n, n_atoms, 3) of every frame, resumable."""
    partial, signature = checkpoint.folder(out), _signature(positions, system)
    energies, forces = _resume(partial, signature, len(positions))
    saved = len(energies)
    context = make_context(system, ff, threads)
    full = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer), np.float64)
    for k in range(len(energies), len(positions)):
        full[indices] = positions[k]
        energy, frc = single_point(context, full)
        if not np.isfinite(energy) or not np.all(np.isfinite(frc)):
            raise DataError(f"frame {k} of {source}: non-finite energy or forces "
                            f"({energy:.3g} kJ/mol); are the coordinates in the right units?")
        energies.append(energy)
        forces.append(frc[indices].astype(np.float32))
        done = len(energies)
        if checkpoint_every and done % checkpoint_every == 0 and done < len(positions):
            _checkpoint(partial, signature, saved, energies, forces)
            saved = done
    return np.asarray(energies), np.stack(forces), context.getPlatform().getName()
