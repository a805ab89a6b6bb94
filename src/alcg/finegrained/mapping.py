"""AA -> CG projection (one bead per residue, on the C-alpha) and CG datasets.

Coordinates
    The bead sits on the residue's C-alpha.
Forces
    The mapped force on a bead is the sum of the force-field forces on its C-alpha and
    on every atom rigidly constrained to it (with ``HBonds`` constraints: its HA, or HA2
    and HA3 of glycine). OpenMM reports forces without constraint forces, and a rigid
    C-alpha/H unit moves as one body, so summing its members' forces gives the force on
    that body and keeps constraint forces out of the mapped force.

:func:`project_runs` turns AA run files into a CG dataset (format: :mod:`alcg.formats.dataset`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import openmm as mm
import openmm.app as app

from alcg.util.errors import DataError
from alcg.formats import dataset
from alcg.formats import run_file
from alcg.finegrained.structure import ONE_LETTER

#: bead type alphabet: bead type = index of the residue letter here
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def bead_types(sequence: str) -> np.ndarray:
    """Integer bead type of each residue of ``sequence`` (index in :data:`AMINO_ACIDS`)."""
    return np.array([AMINO_ACIDS.index(a) for a in sequence], dtype=np.int64)


@dataclass(frozen=True)
class ForceMap:
    """Weights ``(n_beads, n_atoms)`` (dimensionless) over ``atom_indices`` (the recorded atoms,
    in order): which linear combination of atom forces labels each bead. ``kind``: how they
    were built (:mod:`alcg.finegrained.force_maps`, which builds and checks them)."""

    kind: str
    atom_indices: np.ndarray
    weights: np.ndarray

    def apply(self, forces: np.ndarray) -> np.ndarray:
        """Bead forces (n, n_beads, 3) from recorded atom forces (n, n_atoms, 3), kJ/mol/nm."""
        return np.einsum("ba,nax->nbx", self.weights, np.asarray(forces, np.float64))


def constraint_components(system: mm.System) -> dict[int, set[int]]:
    """Particle index -> the set of particles joined to it by a chain of rigid constraints
    (itself alone when it has none)."""
    parent = list(range(system.getNumParticles()))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in range(system.getNumConstraints()):
        i, j, _ = system.getConstraintParameters(k)
        parent[find(i)] = find(j)
    groups: dict[int, set[int]] = {}
    for i in range(system.getNumParticles()):
        groups.setdefault(find(i), set()).add(i)
    return {i: groups[find(i)] for i in range(system.getNumParticles())}


class CAMapping:
    """C-alpha mapping of a protein topology.

    Parameters
    ----------
    topology
        All-atom topology (atom order = the system's particle order).
    system
        The OpenMM System, whose constraints define which atoms move with each C-alpha, and
        whose particle masses, summed over a residue, give its bead mass (amu: what the bead
        represents in the fine-grained model, hydrogen mass repartitioning or not). Without a
        System: element masses.
    """

    def __init__(self, topology: app.Topology, system: mm.System | None = None):
        atoms = list(topology.atoms())
        self.ca_indices = np.array([a.index for a in atoms if a.name == "CA"], dtype=np.int64)
        if len(self.ca_indices) == 0:
            raise DataError("topology has no C-alpha atoms")
        residues = [atoms[i].residue for i in self.ca_indices]
        self.sequence = "".join(ONE_LETTER.get(r.name, "X") for r in residues)
        if system is None:
            self.bead_masses = np.array([sum(a.element.mass._value for a in r.atoms()) for r in residues])
        else:
            self.bead_masses = np.array([sum(system.getParticleMass(a.index)._value for a in r.atoms())
                                         for r in residues])
        if system is None:
            self.force_groups = [np.array([i]) for i in self.ca_indices]
        else:
            comps = constraint_components(system)
            self.force_groups = [np.array(sorted(comps[int(i)])) for i in self.ca_indices]

    @property
    def n_beads(self) -> int:
        return len(self.ca_indices)

    def map_coords(self, positions: np.ndarray, atom_indices: np.ndarray | None = None) -> np.ndarray:
        """C-alpha coordinates (n, N, 3) from AA positions (n, n_atoms, 3)."""
        return positions[:, self._local(self.ca_indices, atom_indices)]

    def map_forces(self, forces: np.ndarray, atom_indices: np.ndarray | None = None) -> np.ndarray:
        """Bead forces (n, N, 3): the sum over each bead's rigid C-alpha group."""
        out = np.zeros((forces.shape[0], self.n_beads, 3), dtype=np.float64)
        for b, group in enumerate(self.force_groups):
            out[:, b] = forces[:, self._local(group, atom_indices)].sum(axis=1)
        return out.astype(np.float32)

    @staticmethod
    def _local(indices: np.ndarray, atom_indices: np.ndarray | None) -> np.ndarray:
        if atom_indices is None:
            return indices
        lookup = {int(a): k for k, a in enumerate(atom_indices)}
        try:
            return np.array([lookup[int(i)] for i in indices], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"atom {exc.args[0]} of the mapping was not recorded") from exc

    def cg_topology_pdb(self, positions_nm: np.ndarray, topology: app.Topology) -> str:
        """PDB text of the CG model (one CA atom per residue) at ``positions_nm`` (N, 3)."""
        from alcg.finegrained.structure import pdb_text

        positions = np.zeros((topology.getNumAtoms(), 3))
        positions[self.ca_indices] = positions_nm
        return pdb_text(topology, positions, self.ca_indices)


def _map_forces(run: run_file.AARun, mapping: CAMapping, fmap: ForceMap | None, path) -> np.ndarray:
    """Bead forces (n, N, 3) float32 of ``run`` under ``fmap`` (None: the constrained map)."""
    if fmap is None:
        return mapping.map_forces(run.forces, run.atom_indices)
    if not np.array_equal(np.asarray(run.atom_indices), fmap.atom_indices):
        raise DataError(f"{path}: its recorded atoms are not the force map's ({len(run.atom_indices)} vs "
                        f"{len(fmap.atom_indices)} atoms, or another order)")
    return fmap.apply(run.forces).astype(np.float32)


def project_runs(run_files: Sequence[str | Path], mapping: CAMapping, round_index: int,
                 fmap: ForceMap | None = None) -> dataset.CGDataset:
    """Project AA run files (status ``ok``) onto CG beads; return a CG dataset dict.

    Frames are ``train``; :func:`alcg.formats.dataset.assign_validation` marks round-0 validation.
    Bead forces (kJ/mol/nm) are ``fmap.apply`` of each run's recorded forces, or with None
    the ``constrained`` map (:meth:`CAMapping.map_forces`); a mean-force query's bead labels are
    taken as stored (its oracle applied the map).
    """
    parts = []
    for path in run_files:
        run = run_file.load(path)
        n = run.n_frames
        key = dataset.run_key(path)
        if run.bead_forces is not None:  # a mean-force query: the label is already on the beads
            forces, var = run.bead_forces.astype(np.float32), np.asarray(run.bead_force_var, np.float64)
        else:
            forces = _map_forces(run, mapping, fmap, path)
            var = dataset.instantaneous_force_var(forces, np.zeros(n))
        parts.append(dict(
            coords=mapping.map_coords(run.positions, run.atom_indices).astype(np.float32),
            forces=forces, force_var=var,
            source=np.array([key] * n), frame=np.arange(n, dtype=np.int64),
            round=np.full(n, round_index, dtype=np.int64), traj=np.array([key] * n),
            split=np.full(n, dataset.TRAIN, dtype="<U5")))
    out = dataset.empty(bead_types(mapping.sequence), mapping.bead_masses, mapping.sequence)
    if parts:
        out = dataset.with_frames(out, **{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return out
