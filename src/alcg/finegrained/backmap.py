"""CG -> AA backmapping.

:class:`RestrainedMinimizationBackmapper` takes the training-set AA frame whose C-alpha
trace is nearest to the target, superposes it onto the target (MDTraj), then minimizes
it with OpenMM under harmonic restraints that pull each C-alpha onto its target, with the
restraint constant stepped down. Each result reports the final C-alpha RMSD to the target,
clashes, covalent bond lengths and chirality. Other methods implement :class:`Backmapper`.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import mdtraj as md
import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

from alcg.finegrained.structure import pdb_text
from alcg.config.settings import Backmap

log = logging.getLogger(__name__)

#: atoms closer than this (nm) and more than two bonds apart count as a clash
CLASH_DISTANCE_NM = 0.1
#: a chiral centre counts as inverted when its torsion after is closer to the mirror image of
#: its torsion before than to that torsion itself, by more than this (rad): a torsion near 0 or
#: pi (a Go side-chain bead close to the C-alpha plane) is its own mirror image and cannot flip
CHIRAL_MARGIN_RAD = 0.35
#: a covalent bond farther than this (nm) from its force-field length is broken; thermal
#: fluctuations of a bond (k ~ 2.5e5 kJ/mol/nm^2) at 340 K are ~0.004 nm (RMS)
MAX_BOND_DEVIATION_NM = 0.02


@dataclass
class BackmapResult:
    """One backmapped structure and its checks."""

    positions_nm: np.ndarray
    ca_rmsd_nm: float
    n_clashes: int
    chirality_ok: bool
    accepted: bool
    reason: str = ""
    energy_kj_mol: float = float("nan")
    info: dict = field(default_factory=dict)


class Backmapper(Protocol):
    """Rebuild all-atom positions for a C-alpha target."""

    def backmap(self, target_ca_nm: np.ndarray, template_nm: np.ndarray) -> BackmapResult:
        """Return a :class:`BackmapResult` for target (N, 3) from template (n_atoms, 3)."""


def _chirality_torsions(traj: md.Trajectory) -> np.ndarray:
    """The torsion (rad) whose sign is the handedness of each chiral centre: N-CA-C-CB of an
    atomistic residue, or for a Go model's side-chain bead (``SC``) CA(i-1)-CA(i)-CA(i+1)-SC(i)."""
    quads = []
    residues = list(traj.topology.residues)
    for k, res in enumerate(residues):
        names = {a.name: a.index for a in res.atoms}
        if all(n in names for n in ("N", "CA", "C", "CB")):
            quads.append([names["N"], names["CA"], names["C"], names["CB"]])
        elif "SC" in names and 0 < k < len(residues) - 1:
            before, after = ({a.name: a.index for a in r.atoms}.get("CA") for r in (residues[k - 1], residues[k + 1]))
            if before is not None and after is not None:
                quads.append([before, names["CA"], after, names["SC"]])
    if not quads:
        return np.zeros(0)
    return md.compute_dihedrals(traj, np.array(quads))[0]


def _wrapped(angle: np.ndarray) -> np.ndarray:
    return np.abs((angle + np.pi) % (2 * np.pi) - np.pi)


def chirality_kept(before: np.ndarray, after: np.ndarray) -> bool:
    """No chiral centre's torsion (rad) moved to its mirror image (see :data:`CHIRAL_MARGIN_RAD`)."""
    return bool(np.all(_wrapped(after + before) + CHIRAL_MARGIN_RAD >= _wrapped(after - before)))


def _excluded_pairs(topology: md.Topology) -> set[tuple[int, int]]:
    neighbours: dict[int, set[int]] = {a.index: set() for a in topology.atoms}
    for a, b in topology.bonds:
        neighbours[a.index].add(b.index)
        neighbours[b.index].add(a.index)
    excluded = set()
    for i, nb in neighbours.items():
        for j in nb:
            excluded.add((min(i, j), max(i, j)))
            for k in neighbours[j]:
                if k != i:
                    excluded.add((min(i, k), max(i, k)))
    return excluded


def covalent_bonds(system: mm.System) -> tuple[np.ndarray, np.ndarray]:
    """Atom pairs (B, 2) and force-field lengths (B,) nm of all bonds and constraints of ``system``."""
    pairs, lengths = [], []
    for f in system.getForces():
        if isinstance(f, mm.HarmonicBondForce):
            for b in range(f.getNumBonds()):
                i, j, r0, _ = f.getBondParameters(b)
                pairs.append((i, j))
                lengths.append(r0.value_in_unit(unit.nanometer))
    for c in range(system.getNumConstraints()):
        i, j, r0 = system.getConstraintParameters(c)
        pairs.append((i, j))
        lengths.append(r0.value_in_unit(unit.nanometer))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(lengths, dtype=np.float64)


class RestrainedMinimizationBackmapper:
    """Template superposition + C-alpha-restrained OpenMM minimization.

    Parameters
    ----------
    topology : OpenMM topology of the protein (template atom order)
    system : OpenMM System for that topology (no periodic box)
    settings : the ``backmap`` settings: ``restraint_k`` (restraint constants in kJ/mol/nm^2,
        applied in turn, decreasing), ``max_ca_rmsd_nm`` (results farther than this from the
        target are rejected), ``max_clashes`` (results with more clashes are rejected)
    platform : OpenMM platform name (see :func:`alcg.finegrained.system.choose_platform`)
    place : the start of the minimization, ``place(target_ca_nm, template_nm) -> (n_atoms, 3)``
        nm; None: the template superposed onto the target by its C-alpha atoms
    """

    def __init__(self, topology: app.Topology, system: mm.System, settings: Backmap, platform: str = "auto",
                 place: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        restraint_k, max_ca_rmsd_nm, max_clashes = settings.restraint_k, settings.max_ca_rmsd_nm, settings.max_clashes
        from alcg.finegrained.system import choose_platform

        self.topology = topology
        self.md_top = md.Topology.from_openmm(topology)
        self.ca = self.md_top.select("name CA")
        self.restraint_k = list(restraint_k)
        self.place = place or self.superpose_template
        self.max_ca_rmsd_nm, self.max_clashes = max_ca_rmsd_nm, max_clashes
        self.system = copy.deepcopy(system)
        self.force = mm.CustomExternalForce("0.5*k_bm*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
        self.force.addGlobalParameter("k_bm", 0.0)
        for name in ("x0", "y0", "z0"):
            self.force.addPerParticleParameter(name)
        for i in self.ca:
            self.force.addParticle(int(i), [0.0, 0.0, 0.0])
        self.system.addForce(self.force)
        plat, props = choose_platform(platform)
        self.context = mm.Context(self.system, mm.VerletIntegrator(0.001), plat, props)
        excl = _excluded_pairs(self.md_top)
        i, j = np.triu_indices(topology.getNumAtoms(), k=1)
        keep = np.array([(a, b) not in excl for a, b in zip(i.tolist(), j.tolist())])
        self.pairs = np.stack([i[keep], j[keep]], axis=1)
        self.bonds, self.bond_lengths = covalent_bonds(system)

    def superpose_template(self, target_ca_nm: np.ndarray, template_nm: np.ndarray) -> np.ndarray:
        """Template positions superposed onto the target by their C-alpha atoms."""
        tmpl = md.Trajectory(template_nm[None].astype(np.float32), self.md_top)
        ref_xyz = tmpl.xyz.copy()
        ref_xyz[0, self.ca] = target_ca_nm
        ref = md.Trajectory(ref_xyz, self.md_top)
        tmpl.superpose(ref, 0, atom_indices=self.ca)
        return tmpl.xyz[0].astype(np.float64)

    def backmap(self, target_ca_nm: np.ndarray, template_nm: np.ndarray) -> BackmapResult:
        """Backmap one C-alpha target (N, 3) nm starting from template (n_atoms, 3) nm."""
        start = self.place(np.asarray(target_ca_nm), np.asarray(template_nm))
        for k, i in enumerate(self.ca):
            self.force.setParticleParameters(k, int(i), [float(v) for v in target_ca_nm[k]])
        self.force.updateParametersInContext(self.context)
        self.context.setPositions(start * unit.nanometer)
        for k_restr in self.restraint_k:
            self.context.setParameter("k_bm", k_restr)
            mm.LocalEnergyMinimizer.minimize(self.context, 10.0, 2000)
        self.context.setParameter("k_bm", 0.0)
        state = self.context.getState(getPositions=True, getEnergy=True)
        xyz = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        return self._check(xyz, np.asarray(target_ca_nm), np.asarray(template_nm), energy)

    def _check(self, xyz, target_ca, template, energy) -> BackmapResult:
        rmsd = float(np.sqrt(((xyz[self.ca] - target_ca) ** 2).sum(-1).mean()))
        d = np.linalg.norm(xyz[self.pairs[:, 0]] - xyz[self.pairs[:, 1]], axis=-1)
        n_clash = int((d < CLASH_DISTANCE_NM).sum())
        now = _chirality_torsions(md.Trajectory(xyz[None].astype(np.float32), self.md_top))
        before = _chirality_torsions(md.Trajectory(template[None].astype(np.float32), self.md_top))
        chiral_ok = chirality_kept(before, now)
        r = np.linalg.norm(xyz[self.bonds[:, 0]] - xyz[self.bonds[:, 1]], axis=-1)
        bond_dev = np.abs(r - self.bond_lengths)
        n_broken = int((bond_dev > MAX_BOND_DEVIATION_NM).sum())
        reasons = []
        if rmsd > self.max_ca_rmsd_nm:
            reasons.append(f"C-alpha RMSD {rmsd:.3f} nm > {self.max_ca_rmsd_nm} nm")
        if n_clash > self.max_clashes:
            reasons.append(f"{n_clash} clashes")
        if not chiral_ok:
            reasons.append("chirality changed")
        if n_broken:
            reasons.append(f"{n_broken} covalent bonds off their length by > {MAX_BOND_DEVIATION_NM} nm "
                           f"(worst {bond_dev.max():.3f} nm)")
        if not np.isfinite(energy):
            reasons.append("non-finite energy")
        return BackmapResult(xyz, rmsd, n_clash, chiral_ok, not reasons, "; ".join(reasons), energy,
                             {"max_bond_deviation_nm": float(bond_dev.max(initial=0.0))})

    def pdb_text(self, positions_nm: np.ndarray) -> str:
        """PDB text of the backmapped structure."""
        return pdb_text(self.topology, positions_nm)
