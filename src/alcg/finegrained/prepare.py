"""The ``prepare_system`` stage: structure -> minimized PDB + serialized OpenMM System."""
from __future__ import annotations

import logging
from pathlib import Path

import openmm.app as app
import openmm.unit as unit

from alcg.finegrained import structure, system
from alcg.util.fileio import atomic_path, write_text
from alcg.config.settings import ForceField, System

log = logging.getLogger(__name__)


def prepare_system(system_cfg: System, ff: ForceField, start: dict | None, pdb_out: str | Path,
                   xml_out: str | Path, seed: int = 0) -> float:
    """Build or read the structure, protonate it (PDBFixer), then see :func:`write_system`.

    Returns the minimized potential energy in kJ/mol.
    """
    prepared = structure.prepare_from_config(system_cfg, start, seed)
    return write_system(prepared.topology, prepared.positions, ff, pdb_out, xml_out, seed)


def write_system(topology: app.Topology, positions, ff: ForceField, pdb_out: str | Path,
                 xml_out: str | Path, seed: int = 0, minimize: bool = True) -> float:
    """Solvate if configured, create the System, minimize; write PDB and System XML."""
    forcefield = system.make_forcefield(ff)
    model = system.solvate(structure.PreparedStructure(topology, positions, ""), ff, forcefield)
    omm_system = system.create_system(model.topology, forcefield, ff)
    sim = system.make_simulation(model.topology, omm_system, ff, seed)
    sim.context.setPositions(model.positions)
    e0 = sim.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    energy = system.minimize(sim) if minimize else e0
    log.info("%d atoms, energy %.3g -> %.1f kJ/mol", model.topology.getNumAtoms(), e0, energy)
    state = sim.context.getState(getPositions=True)
    with atomic_path(pdb_out) as tmp:
        with open(tmp, "w") as fh:
            app.PDBFile.writeFile(model.topology, state.getPositions(), fh, keepIds=True)
    write_text(xml_out, system.serialize(omm_system))
    return energy


def load_prepared(pdb_path: str | Path, xml_path: str | Path):
    """Return ``(pdb, system)`` written by :func:`prepare_system`."""
    pdb = app.PDBFile(str(pdb_path))
    return pdb, system.deserialize(Path(xml_path).read_text())
