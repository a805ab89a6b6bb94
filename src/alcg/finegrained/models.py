"""The fine-grained model the oracle runs: one interface, two models (``forcefield.kind``).

Stages never ask which model runs. They ask this module how to prepare a start (structure ->
PDB + serialized OpenMM System), which System a backmap minimizes in, and which PDB and System
an oracle query runs. Everything after that (MD through :mod:`alcg.finegrained.md`, the C-alpha
map of :mod:`alcg.finegrained.mapping`, the CG side) is the same code for both.

- :class:`Atomistic`: an OpenMM force field from ``forcefield.files`` (PDBFixer, solvent,
  constraints, hydrogen mass repartitioning), the default.
- :class:`GoModel`: the two-bead Go model of :mod:`alcg.finegrained.gomodel`, built from the native
  structure (the prepared native start, or ``system.pdb``): a system with an exact
  equilibrium reference, not a protein force field. Its System is the same for every start,
  so a query runs the prepared System from the backmapped beads.

Units: nm, ps, kJ/mol, amu.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import openmm as mm
import openmm.app as app

from alcg.finegrained import structure, system as omm
from alcg.config.settings import ForceField, System

log = logging.getLogger(__name__)

#: the atomistic force field that relaxes the Go model's native structure once (the builder's
#: side chains clash), as the atomistic default config prepares its starts
NATIVE_RELAXATION_FILES = ("amber14-all.xml", "implicit/gbn2.xml")


class FineGrained(Protocol):
    """What a fine-grained model gives the stages."""

    def prepare(self, system_cfg: System, start: dict | None, native: str | None, pdb_out: str | Path,
                xml_out: str | Path, seed: int) -> float:
        """Prepare one start: write its PDB and the System XML; return its energy (kJ/mol)."""

    def backmap_system(self, topology: app.Topology, prepared_xml: str | Path) -> mm.System:
        """The System a backmap minimizes in (no periodic box)."""

    def query_files(self, start_pdb: str | Path, prepared_xml: str | Path, pdb_out: Path, xml_out: Path,
                    seed: int) -> None:
        """Write the PDB and System XML an oracle query runs from a start structure."""

    def reference_forcefield(self) -> ForceField:
        """The settings the reference runs use (equilibrium does not depend on friction)."""

    def backmap_placement(self, native: str | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
        """Where a backmap's minimization starts, ``place(target_ca_nm, template_nm)``; None: the
        template superposed onto the target (:class:`alcg.finegrained.backmap.RestrainedMinimizationBackmapper`)."""


@dataclasses.dataclass(frozen=True)
class Atomistic:
    """An OpenMM force field (``forcefield.files``, solvent, constraints)."""

    ff: ForceField

    def prepare(self, system_cfg: System, start: dict | None, native: str | None, pdb_out: str | Path,
                xml_out: str | Path, seed: int) -> float:
        from alcg.finegrained.prepare import prepare_system

        return prepare_system(system_cfg, self.ff, start, pdb_out, xml_out, seed)

    def backmap_system(self, topology: app.Topology, prepared_xml: str | Path) -> mm.System:
        vac = self.ff.with_solvent("vacuum") if self.ff.solvent == "explicit" else self.ff
        return omm.create_system(topology, omm.make_forcefield(vac), vac)

    def query_files(self, start_pdb: str | Path, prepared_xml: str | Path, pdb_out: Path, xml_out: Path,
                    seed: int) -> None:
        from alcg.finegrained.prepare import write_system

        first = app.PDBFile(str(start_pdb))
        write_system(first.topology, first.positions, self.ff, pdb_out, xml_out, seed, minimize=False)

    def reference_forcefield(self) -> ForceField:
        return self.ff

    def backmap_placement(self, native: str | None) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class GoModel:
    """The two-bead Go model (``forcefield.go``)."""

    ff: ForceField

    def native(self, system_cfg: System, native_start: dict | None, seed: int):
        """The :class:`alcg.finegrained.gomodel.GoNative` of the native start: built and protonated as an
        atomistic start is, relaxed by minimization in :data:`NATIVE_RELAXATION_FILES`, mapped
        to beads."""
        from alcg.finegrained import gomodel

        atoms = structure.prepare_from_config(system_cfg, native_start, seed)
        relax = dataclasses.replace(self.ff, kind="atomistic", files=NATIVE_RELAXATION_FILES, solvent="implicit",
                                    hydrogen_mass_amu=None, constraints="HBonds", nonbonded_cutoff_nm=None)
        model = omm.create_system(atoms.topology, omm.make_forcefield(relax), relax)
        sim = omm.make_simulation(atoms.topology, model, relax, seed)
        sim.context.setPositions(atoms.positions)
        omm.minimize(sim)
        positions = sim.context.getState(getPositions=True).getPositions(asNumpy=True)
        return gomodel.native_beads(atoms.topology, positions, self.ff.go)

    def prepare(self, system_cfg: System, start: dict | None, native: str | None, pdb_out: str | Path,
                xml_out: str | Path, seed: int) -> float:
        from alcg.finegrained import gomodel
        from alcg.util.fileio import atomic_path, write_text

        nat = gomodel.load_native(native)
        atoms = structure.prepare_from_config(system_cfg, start, seed)
        omm_system = gomodel.create_system(nat, self.ff.go)
        sim = omm.make_simulation(nat.topology, omm_system, self.ff, seed)
        sim.context.setPositions(gomodel.bead_positions(atoms.topology, atoms.positions))
        energy = omm.minimize(sim)
        xyz = sim.context.getState(getPositions=True).getPositions(asNumpy=True)._value
        with atomic_path(pdb_out) as tmp:
            gomodel.write_pdb(tmp, nat, np.asarray(xyz))
        write_text(xml_out, omm.serialize(omm_system))
        log.info("Go model: %d beads, %d native contacts, minimized energy %.1f kJ/mol", nat.n_beads,
                 len(nat.contact_beads), energy)
        return energy

    def backmap_system(self, topology: app.Topology, prepared_xml: str | Path) -> mm.System:
        return omm.deserialize(Path(prepared_xml).read_text())

    def query_files(self, start_pdb: str | Path, prepared_xml: str | Path, pdb_out: Path, xml_out: Path,
                    seed: int) -> None:
        shutil.copyfile(start_pdb, pdb_out)
        shutil.copyfile(prepared_xml, xml_out)

    def reference_forcefield(self) -> ForceField:
        return dataclasses.replace(self.ff, friction_per_ps=self.ff.go.reference_friction_per_ps)

    def backmap_placement(self, native: str | None) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Side-chain beads at their native place in the target's local C-alpha frames
        (:func:`alcg.finegrained.gomodel.place_side_chains`): exact native bonds, angles and chirality,
        whatever side a template's side chain was on."""
        from alcg.finegrained import gomodel

        nat = gomodel.load_native(native)
        return lambda target_ca_nm, template_nm: gomodel.place_side_chains(target_ca_nm, nat)


def for_forcefield(ff: ForceField) -> FineGrained:
    """The fine-grained model of ``forcefield.kind``."""
    return GoModel(ff) if ff.kind == "go" else Atomistic(ff)
