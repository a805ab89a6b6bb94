"""All-atom (fine-grained) MD with OpenMM that records positions, forces and energies.

Every fine-grained run goes through here: reference and initial MD and each oracle query.
One run writes one ``.npz`` file (see :func:`run_md`). Long runs checkpoint every
``checkpoint_every`` records by appending one chunk file to the folder ``<output>.partial/``
(:mod:`alcg.formats.checkpoint`):
the frames recorded since the previous checkpoint plus the serialized OpenMM State at its end
(issue 21: a checkpoint writes only its new frames, so checkpointing costs O(n) I/O over a
run of n frames, where rewriting every frame at each checkpoint cost O(n^2)). A killed job
resumes from the last complete chunk instead of restarting; a ``<output>.partial.npz`` left
by an earlier version (all frames so far in one file) is resumed from too. The final file is
written atomically and the checkpoint then removed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
from tqdm import tqdm

from alcg.finegrained import system as omm
from alcg.util.errors import SimulationError
from alcg.formats import run_file, checkpoint
from alcg.config.settings import ForceField
from alcg.finegrained.structure import WATER_IONS, pdb_text

log = logging.getLogger(__name__)



@dataclass(kw_only=True)
class MDSpec:
    """What to simulate and record.

    Attributes
    ----------
    n_steps : production steps (recorded part)
    record_interval : steps between recorded frames
    equilibration_steps : unrecorded steps before production
    restraint_steps : unrecorded steps with C-alpha restraints before equilibration
    restraint_k : restraint force constant, kJ/mol/nm^2 (unused when ``restraint_steps`` is 0)
    checkpoint_every : records between checkpoints (0 = never)
    seed : random seed for velocities and the thermostat
    """

    n_steps: int
    record_interval: int
    equilibration_steps: int = 0
    restraint_steps: int = 0
    restraint_k: float
    checkpoint_every: int
    seed: int = 0
    max_energy_kj_mol: float = 1e7
    extra: dict = field(default_factory=dict)

    def signature(self, ff: ForceField, *inputs: str) -> str:
        """Hash identifying a run (this spec, the force field settings and the text of its
        ``inputs``: start structure and System), to refuse resuming from a different run's
        checkpoint."""
        blob = json.dumps([self.__dict__, dataclasses.asdict(ff), *inputs], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def protein_atom_indices(topology: app.Topology) -> np.ndarray:
    """Indices of all atoms that are not water or ions."""
    return np.array([a.index for a in topology.atoms() if a.residue.name not in WATER_IONS],
                    dtype=np.int64)


def _add_ca_restraints(system: mm.System, topology: app.Topology, targets_nm: np.ndarray) -> None:
    force = mm.CustomExternalForce("0.5*k_restraint*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    force.addGlobalParameter("k_restraint", 0.0)
    for name in ("x0", "y0", "z0"):
        force.addPerParticleParameter(name)
    for atom in topology.atoms():
        if atom.name == "CA" and atom.residue.name not in WATER_IONS:
            force.addParticle(atom.index, [float(v) for v in targets_nm[atom.index]])
    system.addForce(force)


def run_md(pdb_path: str | Path, xml_path: str | Path, out_path: str | Path, spec: MDSpec,
           ff: ForceField, threads: int | None = None, progress: bool = True) -> dict:
    """Run MD from ``pdb_path`` with the System in ``xml_path`` and record every frame.

    The output npz holds ``positions`` (n, n_atoms, 3) nm and ``forces`` (n, n_atoms, 3)
    kJ/mol/nm of the recorded (non-water) atoms as float32, ``potential_energy`` (n,)
    kJ/mol of the whole system, ``time_ps`` (n,), ``atom_indices`` and ``topology_pdb``
    (PDB text of the recorded atoms), and ``metadata`` (units, spec, platform).
    Forces are the force-field forces: constraint forces are not included.

    Returns the metadata dict.
    """
    out_path = Path(out_path)
    partial = checkpoint.folder(out_path)
    pdb = app.PDBFile(str(pdb_path))
    system = omm.deserialize(Path(xml_path).read_text())
    start_nm = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    if spec.restraint_steps:
        _add_ca_restraints(system, pdb.topology, start_nm)
    sim = omm.make_simulation(pdb.topology, system, ff, spec.seed, threads)
    if pdb.topology.getPeriodicBoxVectors() is not None:
        sim.context.setPeriodicBoxVectors(*pdb.topology.getPeriodicBoxVectors())
    indices = protein_atom_indices(pdb.topology)
    signature = spec.signature(ff, Path(pdb_path).read_text(), Path(xml_path).read_text())
    n_records = spec.n_steps // spec.record_interval
    frames = _resume(partial, signature, sim)
    if frames is None:
        frames = _start(sim, pdb, spec, ff)
    pos, frc, ene, tps = frames
    saved = len(ene)  # frames already in the checkpoint
    meta = {"spec": spec.__dict__, "signature": signature,
            "platform": sim.context.getPlatform().getName(), "source_pdb": str(pdb_path),
            "record_interval_steps": spec.record_interval,
            "timestep_fs": ff.timestep_fs, "temperature_k": ff.temperature_k, "labels": "instantaneous",
            "simulated_ps": (spec.restraint_steps + spec.equilibration_steps + n_records * spec.record_interval)
            * ff.timestep_fs * 1e-3}
    bar = tqdm(total=n_records, initial=len(ene), desc=f"MD {out_path.name}", unit="frame",
               disable=not progress, mininterval=5)
    while len(ene) < n_records:
        sim.step(spec.record_interval)
        state = sim.context.getState(getPositions=True, getForces=True, getEnergy=True)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        xyz = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[indices]
        force = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)[indices]
        if not np.isfinite(energy) or abs(energy) > spec.max_energy_kj_mol or not np.all(np.isfinite(xyz)):
            raise SimulationError(f"{out_path.name}: energy blew up ({energy:.3g} kJ/mol) at frame {len(ene)}")
        pos.append(xyz.astype(np.float32))
        frc.append(force.astype(np.float32))
        ene.append(energy)
        tps.append(state.getTime().value_in_unit(unit.picosecond))
        bar.update(1)
        if spec.checkpoint_every and len(ene) % spec.checkpoint_every == 0 and len(ene) < n_records:
            _checkpoint(partial, signature, sim, frames, saved)
            saved = len(ene)
    bar.close()
    first = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    first[indices] = pos[0] if pos else first[indices]
    run_file.save_run(out_path, np.stack(pos), np.stack(frc), np.asarray(ene), np.asarray(tps), indices,
                   pdb_text(pdb.topology, first, indices), meta)
    _remove_checkpoint(partial)
    log.info("%s: %d frames, mean energy %.1f kJ/mol", out_path.name, len(ene), float(np.mean(ene)))
    return meta


def _start(sim: app.Simulation, pdb: app.PDBFile, spec: MDSpec, ff: ForceField):
    sim.context.setPositions(pdb.positions)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, spec.seed)
    if spec.restraint_steps:
        sim.context.setParameter("k_restraint", spec.restraint_k)
        sim.step(spec.restraint_steps)
        sim.context.setParameter("k_restraint", 0.0)
    if spec.equilibration_steps:
        sim.step(spec.equilibration_steps)
    sim.context.setTime(0.0)
    return [], [], [], []


def _legacy_partial(partial: Path) -> Path:
    """The one-file checkpoint of earlier versions (``<output>.partial.npz``)."""
    return checkpoint.legacy_file(partial, ".npz")


def _remove_checkpoint(partial: Path) -> None:
    checkpoint.remove(partial, _legacy_partial(partial))


def _checkpoint(partial: Path, signature: str, sim: app.Simulation, frames, start: int) -> None:
    """Append frames ``start`` .. the last recorded one, and the State now, as one chunk file."""
    pos, frc, ene, tps = frames
    state = sim.context.getState(getPositions=True, getVelocities=True, getParameters=True,
                                 enforcePeriodicBox=False)
    checkpoint.write(partial, signature, start, positions=np.stack(pos[start:]), forces=np.stack(frc[start:]),
                     potential_energy=np.asarray(ene[start:]), time_ps=np.asarray(tps[start:]),
                     state_xml=np.array(mm.XmlSerializer.serialize(state)))


def _resume(partial: Path, signature: str, sim: app.Simulation):
    """The frames of the consecutive checkpoint chunks from frame 0 on (an earlier version's
    one file first), with ``sim`` set to the State at the end of the last one; None when there
    is no usable checkpoint."""
    found = checkpoint.read(partial, signature, lambda chunk: len(chunk["potential_energy"]),
                            legacy=_legacy_partial(partial))
    if not found:
        return None
    frames = [[row for chunk in found for row in chunk[key]]
              for key in ("positions", "forces", "potential_energy", "time_ps")]
    sim.context.setState(mm.XmlSerializer.deserialize(str(found[-1]["state_xml"])))
    log.info("resuming %s from frame %d", partial.name, len(frames[2]))
    return frames
