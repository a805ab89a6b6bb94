"""A two-bead-per-residue structure-based (Go) model as an OpenMM System.

Clementi-style (Clementi, Nymeyer & Onuchic, J. Mol. Biol. 298, 937, 2000) with one bead on
each C-alpha and one on each side-chain heavy-atom centroid (glycine: C-alpha only), built
from an atomistic native structure. It is a model with a known answer for the pipeline (an
exact, cheap equilibrium reference), not a protein force field.

Energy terms (``E`` in kJ/mol, ``r`` in nm, angles in rad; ``eps`` = :attr:`Go.epsilon_kj_mol`),
each in its own force group (:data:`FORCE_GROUPS`):

- ``bonds``: ``0.5 k_b (r - r0)^2`` for C-alpha(i)-C-alpha(i+1) and C-alpha(i)-SC(i);
- ``angles``: ``0.5 k_a eps (theta - theta0)^2`` for C-alpha(i-1)-C-alpha(i)-C-alpha(i+1),
  SC(i)-C-alpha(i)-C-alpha(i+1) and C-alpha(i-1)-C-alpha(i)-SC(i) (both side-chain angles
  where they exist, so that with the bond and the chirality torsion the side-chain bead has
  a unique native place in the local C-alpha frame);
- ``dihedrals``: ``k_d eps {[1 - cos(phi - phi0)] + 0.5 [1 - cos 3(phi - phi0)]}`` over the
  C-alpha torsions;
- ``chirality``: ``0.5 k_c eps (chi - chi0)^2`` on the normalized signed volume
  ``chi = (u x v) . w / (|u| |v| |w|)`` of each side-chain bead's quadruplet
  (:func:`side_chain_torsions`, centre C-alpha(i)): interior residues use C-alpha(i-1),
  C-alpha(i+1) and SC(i); a terminal side chain uses SC(i), C-alpha(i+-1) and C-alpha(i+-2).
  Its sign is the side of the local C-alpha plane the side chain is on; unlike a torsion it
  stays smooth when three of the beads line up (the torsion form blew up at 5 fs there);
- ``contacts``: ``eps [5 (s/r)^12 - 6 (s/r)^10]`` between the side-chain beads (C-alpha for
  glycine) of every residue pair in native contact (:func:`native_beads`), ``s`` = their
  native distance: minimum ``-eps`` at the native distance;
- ``repulsion``: ``eps (r_rep / r)^12`` for every other bead pair of residues at least
  :attr:`Go.min_sequence_separation` apart;
- ``desolvation`` (the cooperativity term, :attr:`Go.cooperativity` = ``"desolvation"``):
  on each native contact pair, with ``x = r - s`` and ``G(y) = exp(-y^2 / (2 w^2))``,
  ``eps [1 - exp(-(x/w)^4)] [h_db G(x - d_w/2) - h_ssm G(x - d_w)]``: a desolvation barrier
  half a water diameter ``d_w`` beyond the contact minimum and a solvent-separated minimum one
  water diameter beyond it, the shape of Cheung, Garcia & Onuchic (PNAS 99, 685, 2002). The
  first factor switches the term off at the native distance (value, force and curvature are
  zero at ``x = 0``), so the native contact minimum stays exactly where it was. Two residues
  must push the last water out from between them before they gain the contact energy;
  partly formed structures, whose half-made contacts sit at slightly more than native
  distances, pay the barrier, so the transition region rises against both basins and folding
  becomes more cooperative (Cheung et al.: a higher folding barrier, a sharper transition).
  We chose it over weak non-native attraction, which adds frustration (traps, a rougher
  landscape) and usually lowers cooperativity, while the point of the term here is a real
  barrier between folded and unfolded states. Gaussians keep it smooth (no piecewise joins);
  heights are in units of ``eps``, and their values are this model's calibration, not the
  paper's.

Units: nm, ps, kJ/mol, amu, K.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

from alcg.util.errors import ConfigError, DataError, StructureError
from alcg.config.settings import Go

#: force group of each energy term; "native" terms are all but repulsion and desolvation
FORCE_GROUPS: dict[str, int] = {"bonds": 0, "angles": 1, "dihedrals": 2, "chirality": 3,
                                "contacts": 4, "repulsion": 5, "desolvation": 6}
#: the terms whose sum has its minimum exactly at the native structure
NATIVE_TERMS: tuple[str, ...] = ("bonds", "angles", "dihedrals", "chirality", "contacts")
#: values of :attr:`Go.cooperativity`
COOPERATIVITY = ("desolvation", "none")
#: backbone heavy-atom names: every other heavy atom belongs to the side chain
BACKBONE_NAMES = frozenset({"N", "CA", "C", "O", "OXT"})
#: Best-Hummer switch of :func:`fraction_native_contacts`: steepness (1/nm) and tolerance
Q_BETA_PER_NM = 50.0
Q_LAMBDA = 1.2
#: Boltzmann constant in kJ/mol/K
KB_KJ_MOL_K = 0.0083144626181532

_TWO_PI = 2.0 * np.pi


@dataclass(frozen=True, eq=False)
class GoNative:
    """Beads of a native structure and its native contacts (arrays read-only).

    Attributes
    ----------
    topology
        Bead topology: one chain, one residue per amino acid (atomistic names and ids), atoms
        ``CA`` and ``SC`` (element carbon; masses live in the System).
    xyz_nm
        Native bead positions, (n_beads, 3), nm.
    ca
        Bead index of each residue's C-alpha, (n_res,).
    sc
        Bead index of each residue's side-chain bead, -1 for glycine, (n_res,).
    residue
        Residue index of each bead, (n_beads,).
    mapped_mass_amu
        Mass of the atoms each bead represents (hydrogens go with their nearest heavy atom of
        the residue), (n_beads,), amu.
    contact_residues
        Residue index pairs ``i < j`` in native contact, (n_contacts, 2).
    contact_beads
        The bead pair of each contact: side-chain beads, C-alpha for glycine, (n_contacts, 2).
    contact_sigma_nm
        Native distance of each contact bead pair, (n_contacts,), nm.
    """

    topology: app.Topology
    xyz_nm: np.ndarray
    ca: np.ndarray
    sc: np.ndarray
    residue: np.ndarray
    mapped_mass_amu: np.ndarray
    contact_residues: np.ndarray
    contact_beads: np.ndarray
    contact_sigma_nm: np.ndarray

    @property
    def n_beads(self) -> int:
        """Number of beads."""
        return len(self.residue)

    @property
    def n_residues(self) -> int:
        """Number of residues."""
        return len(self.ca)

    def contact_bead(self, i: int) -> int:
        """Bead of residue ``i`` that carries its contacts: side chain, C-alpha for glycine."""
        return int(self.sc[i]) if self.sc[i] >= 0 else int(self.ca[i])


# --------------------------------------------------------------------------- beads


def _as_nm(positions) -> np.ndarray:
    """Positions as an (n, 3) float array in nm (from a Quantity or an array in nm)."""
    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    return np.asarray(positions, dtype=float).reshape(-1, 3)


def _protein_residues(topology: app.Topology) -> list:
    from alcg.finegrained.structure import WATER_IONS

    residues = [r for r in topology.residues() if r.name not in WATER_IONS]
    if len(residues) < 3:
        raise StructureError(f"the Go model needs at least 3 residues, got {len(residues)}")
    return residues


def _heavy(atom) -> bool:
    return atom.element is None or atom.element.symbol != "H"


def _residue_beads(residue, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float, float]:
    """C-alpha position, side-chain centroid (None for no side chain) and the two masses."""
    atoms = list(residue.atoms())
    ca = [a for a in atoms if a.name == "CA"]
    if not ca:
        raise StructureError(f"residue {residue.name}{residue.id} has no CA atom")
    side = [a for a in atoms if _heavy(a) and a.name not in BACKBONE_NAMES]
    heavy = [a for a in atoms if _heavy(a)]
    masses = {"bb": 0.0, "sc": 0.0}
    heavy_xyz = xyz[[a.index for a in heavy]]
    for atom in atoms:
        owner = atom
        if not _heavy(atom):  # a hydrogen goes with its nearest heavy atom
            owner = heavy[int(np.argmin(np.linalg.norm(heavy_xyz - xyz[atom.index], axis=1)))]
        key = "sc" if owner in side else "bb"
        masses[key] += atom.element.mass.value_in_unit(unit.amu) if atom.element else 0.0
    centroid = xyz[[a.index for a in side]].mean(axis=0) if side else None
    return xyz[ca[0].index], centroid, masses["bb"], masses["sc"]


def _bead_topology(names: list[str], ids: list[str], has_sc) -> app.Topology:
    """Topology of C-alpha/side-chain beads, bonded along the chain."""
    top = app.Topology()
    chain = top.addChain("A")
    carbon = app.Element.getBySymbol("C")
    previous = None
    for name, rid, side in zip(names, ids, has_sc):
        res = top.addResidue(name, chain, id=rid)
        ca = top.addAtom("CA", carbon, res)
        if previous is not None:
            top.addBond(previous, ca)
        if side:
            top.addBond(ca, top.addAtom("SC", carbon, res))
        previous = ca
    return top


def _contacts(residues: list, xyz: np.ndarray, cutoff_nm: float,
              min_sep: int) -> np.ndarray:
    """Residue pairs (i < j, j - i >= min_sep) with heavy atoms within ``cutoff_nm``."""
    heavy = [xyz[[a.index for a in r.atoms() if _heavy(a)]] for r in residues]
    pairs = []
    for i in range(len(residues)):
        for j in range(i + min_sep, len(residues)):
            d = np.linalg.norm(heavy[i][:, None, :] - heavy[j][None, :, :], axis=-1)
            if d.min() < cutoff_nm:
                pairs.append((i, j))
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


def _map_residues(residues: list, xyz: np.ndarray) -> tuple[list, list, list, list, list]:
    """Bead positions, residue of each bead, mapped masses, C-alpha and side-chain indices."""
    beads, residue_of, masses, ca_index, sc_index = [], [], [], [], []
    for k, residue in enumerate(residues):
        ca, centroid, m_bb, m_sc = _residue_beads(residue, xyz)
        ca_index.append(len(beads))
        beads.append(ca), residue_of.append(k), masses.append(m_bb)
        sc_index.append(len(beads) if centroid is not None else -1)
        if centroid is not None:
            beads.append(centroid), residue_of.append(k), masses.append(m_sc)
    return beads, residue_of, masses, ca_index, sc_index


def bead_positions(topology: app.Topology, positions) -> np.ndarray:
    """Go bead positions (nm) of any atomistic conformation (e.g. an extended start).

    Parameters
    ----------
    topology
        Atomistic topology with the native's residues (waters and ions are skipped).
    positions
        Atom positions: a ``Quantity`` or an (n_atoms, 3) array in nm.

    Returns
    -------
    np.ndarray
        (n_beads, 3), nm, in the bead order of :func:`native_beads`.
    """
    return np.asarray(_map_residues(_protein_residues(topology), _as_nm(positions))[0], dtype=float)


def native_beads(topology: app.Topology, positions, go: Go) -> GoNative:
    """Map an atomistic native structure onto Go beads and find its native contacts.

    Parameters
    ----------
    topology
        Atomistic topology (e.g. :class:`alcg.finegrained.structure.PreparedStructure`); waters and ions
        are skipped. Hydrogens are optional (they only add to the mapped masses).
    positions
        Atom positions: a ``Quantity`` or an (n_atoms, 3) array in nm.
    go
        Settings: :attr:`Go.contact_cutoff_nm` and :attr:`Go.min_sequence_separation` define
        the contacts.

    Returns
    -------
    GoNative
        Beads ordered residue by residue (C-alpha, then side chain), native positions (nm),
        contacts and their native distances (nm).
    """
    xyz = _as_nm(positions)
    residues = _protein_residues(topology)
    beads, residue_of, masses, ca_index, sc_index = _map_residues(residues, xyz)
    pairs = _contacts(residues, xyz, go.contact_cutoff_nm, go.min_sequence_separation)
    if not len(pairs):
        raise StructureError("the native structure has no residue pairs in contact "
                             f"(heavy atoms within {go.contact_cutoff_nm} nm, "
                             f"|i - j| >= {go.min_sequence_separation})")
    sc = np.asarray(sc_index, dtype=int)
    ca = np.asarray(ca_index, dtype=int)
    bead_pairs = np.where(sc >= 0, sc, ca)[pairs]
    bead_xyz = np.asarray(beads, dtype=float)
    sigma = np.linalg.norm(bead_xyz[bead_pairs[:, 0]] - bead_xyz[bead_pairs[:, 1]], axis=1)
    arrays = dict(xyz_nm=bead_xyz, ca=ca, sc=sc, residue=np.asarray(residue_of, dtype=int),
                  mapped_mass_amu=np.asarray(masses, dtype=float), contact_residues=pairs,
                  contact_beads=bead_pairs, contact_sigma_nm=sigma)
    topology = _bead_topology([r.name for r in residues], [r.id for r in residues], sc >= 0)
    return _go_native(topology, arrays)


def _go_native(topology: app.Topology, arrays: dict[str, np.ndarray]) -> GoNative:
    for array in arrays.values():
        array.setflags(write=False)
    return GoNative(topology=topology, **arrays)


#: the arrays of a :class:`GoNative`, as :func:`save_native` stores them
_NATIVE_ARRAYS = ("xyz_nm", "ca", "sc", "residue", "mapped_mass_amu", "contact_residues",
                  "contact_beads", "contact_sigma_nm")


def save_native(path, native: GoNative) -> None:
    """Write ``native`` as an ``.npz`` file (its arrays, residue names and ids), atomically."""
    from alcg.util.fileio import atomic_path

    residues = list(native.topology.residues())
    arrays = {k: getattr(native, k) for k in _NATIVE_ARRAYS}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, residue_names=np.array([r.name for r in residues]),
                 residue_ids=np.array([r.id for r in residues]), **arrays)


def load_native(path) -> GoNative:
    """The :class:`GoNative` that :func:`save_native` wrote to ``path``.

    Raises
    ------
    DataError
        If the file lacks one of the arrays.
    """
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in (*_NATIVE_ARRAYS, "residue_names", "residue_ids") if k not in data]
        if missing:
            raise DataError(f"{path} is not a Go native file: it lacks {', '.join(missing)}")
        arrays = {k: np.array(data[k]) for k in _NATIVE_ARRAYS}
        names, ids = data["residue_names"].tolist(), data["residue_ids"].tolist()
    return _go_native(_bead_topology(names, ids, arrays["sc"] >= 0), arrays)


def plot_contact_map(native: GoNative, path) -> None:
    """PNG of the native contact map: residue pairs in contact, coloured by the native
    distance (nm) of their contact beads; lower triangle, residues labelled ``Y1``, ``Y2``..."""
    from alcg.util.figure_io import plt, save_figure
    from alcg.finegrained.structure import ONE_LETTER

    n = native.n_residues
    grid = np.full((n, n), np.nan)
    i, j = native.contact_residues[:, 0], native.contact_residues[:, 1]
    grid[j, i] = native.contact_sigma_nm
    labels = [f"{ONE_LETTER.get(r.name, 'X')}{k + 1}"
              for k, r in enumerate(native.topology.residues())]
    fig, ax = plt.subplots(figsize=(1.6 + 0.35 * n, 1.2 + 0.35 * n))
    image = ax.imshow(grid, cmap="viridis", origin="upper")
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.set_title(f"{len(i)} native contacts")
    fig.colorbar(image, ax=ax, label="native bead distance (nm)")
    save_figure(fig, path)


# --------------------------------------------------------------------------- geometry


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle a-b-c (rad)."""
    u, v = a - b, c - b
    cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def dihedral(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Dihedral p0-p1-p2-p3 (rad, IUPAC/OpenMM sign), over leading frame axes.

    Parameters
    ----------
    p0, p1, p2, p3
        Positions (..., 3), nm.

    Returns
    -------
    np.ndarray
        Angles in (-pi, pi], shape (...).
    """
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1, axis=-1, keepdims=True) * b1
    w = b2 - np.sum(b2 * b1, axis=-1, keepdims=True) * b1
    return np.arctan2(np.sum(np.cross(b1, v) * w, axis=-1), np.sum(v * w, axis=-1))


def side_chain_torsions(native: GoNative) -> list[tuple[int, int, int, int]]:
    """Bead quadruplets of the chirality term, one per side-chain bead (see module docstring).

    Interior residue ``i``: (C-alpha(i-1), C-alpha(i), C-alpha(i+1), SC(i)). First residue:
    (SC(0), C-alpha(0), C-alpha(1), C-alpha(2)); last residue ``n-1``: (SC, C-alpha(n-1),
    C-alpha(n-2), C-alpha(n-3)).
    """
    ca, n = native.ca, native.n_residues
    quads = []
    for i in np.flatnonzero(native.sc >= 0):
        s = int(native.sc[i])
        if i == 0:
            quads.append((s, int(ca[0]), int(ca[1]), int(ca[2])))
        elif i == n - 1:
            quads.append((s, int(ca[n - 1]), int(ca[n - 2]), int(ca[n - 3])))
        else:
            quads.append((int(ca[i - 1]), int(ca[i]), int(ca[i + 1]), s))
    return quads


def _frame_residues(native: GoNative, i: int) -> tuple[int, int]:
    """Residues ``(a, b)`` of the local frame of SC(i): axis C-alpha(i) -> C-alpha(a), the
    plane through C-alpha(b); the axis and plane of SC(i)'s chirality torsion."""
    n = native.n_residues
    if i == 0:
        return 1, 2
    if i == n - 1:
        return n - 2, n - 3
    return i + 1, i - 1


def _local_frame(origin: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Orthonormal axes (..., 3, 3) (rows u, v, w): u toward p1, v in the plane toward p2."""
    u = p1 - origin
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = p2 - origin
    v = v - np.sum(v * u, axis=-1, keepdims=True) * u
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.stack([u, v, np.cross(u, v)], axis=-2)


def place_side_chains(ca_xyz: np.ndarray, native: GoNative) -> np.ndarray:
    """All bead positions from C-alpha positions: side chains at their native local place.

    Each side-chain bead keeps its native coordinates in the local frame of its chirality
    torsion (:func:`side_chain_torsions`): origin C-alpha(i), axis toward C-alpha(i+1)
    (C-alpha(i-+1) at the termini), plane through C-alpha(i-1) (C-alpha(i-+2)). So its bond
    length, its angle to the axis and its chirality torsion are exactly native; the other
    side-chain angle is native where the C-alpha angle is. This is the Go model's backmap.

    Parameters
    ----------
    ca_xyz
        C-alpha positions, (n_res, 3) or (n_frames, n_res, 3), nm.
    native
        The native beads.

    Returns
    -------
    np.ndarray
        Bead positions, (n_beads, 3) or (n_frames, n_beads, 3), nm.
    """
    ca_xyz = np.asarray(ca_xyz, dtype=float)
    single = ca_xyz.ndim == 2
    frames = ca_xyz[None] if single else ca_xyz
    if frames.shape[1:] != (native.n_residues, 3):
        raise ValueError(f"expected C-alpha positions (..., {native.n_residues}, 3), "
                         f"got {ca_xyz.shape}")
    out = np.empty((len(frames), native.n_beads, 3))
    out[:, native.ca] = frames
    ref = native.xyz_nm
    for i in np.flatnonzero(native.sc >= 0):
        a, b = _frame_residues(native, i)
        ca_i, ca_a, ca_b = (native.ca[k] for k in (i, a, b))
        local = _local_frame(ref[ca_i], ref[ca_a], ref[ca_b]) @ (ref[native.sc[i]] - ref[ca_i])
        axes = _local_frame(frames[:, i], frames[:, a], frames[:, b])
        out[:, native.sc[i]] = frames[:, i] + np.einsum("k,fkx->fx", local, axes)
    return out[0] if single else out


# --------------------------------------------------------------------------- system


def _check(go: Go) -> None:
    if go.cooperativity not in COOPERATIVITY:
        raise ConfigError(f"forcefield.go.cooperativity: {go.cooperativity!r} is not one of "
                          f"{list(COOPERATIVITY)}")
    if isinstance(go.bead_mass, str) and go.bead_mass != "mapped":
        raise ConfigError(f"forcefield.go.bead_mass: {go.bead_mass!r} is neither 'mapped' nor "
                          "a mass in amu")
    if go.epsilon_kj_mol <= 0:
        raise ConfigError(f"forcefield.go.epsilon_kj_mol: must be > 0, got {go.epsilon_kj_mol}")


def bead_masses(native: GoNative, go: Go) -> np.ndarray:
    """Bead masses (amu) by :attr:`Go.bead_mass`."""
    if isinstance(go.bead_mass, str):
        return native.mapped_mass_amu.copy()
    return np.full(native.n_beads, float(go.bead_mass))


def _bond_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.HarmonicBondForce()  # 0.5 k (r - r0)^2; read as covalent bonds by alcg.finegrained.backmap
    xyz = native.xyz_nm
    pairs = list(zip(native.ca[:-1], native.ca[1:]))
    pairs += [(native.ca[i], native.sc[i]) for i in np.flatnonzero(native.sc >= 0)]
    for a, b in pairs:
        r0 = float(np.linalg.norm(xyz[a] - xyz[b]))
        force.addBond(int(a), int(b), r0, go.bond_k_kj_mol_nm2)
    return force


def _angle_triplets(native: GoNative) -> list[tuple[int, int, int]]:
    ca, sc, n = native.ca, native.sc, native.n_residues
    triplets = [(int(ca[i - 1]), int(ca[i]), int(ca[i + 1])) for i in range(1, n - 1)]
    for i in np.flatnonzero(sc >= 0):
        if i + 1 < n:
            triplets.append((int(sc[i]), int(ca[i]), int(ca[i + 1])))
        if i > 0:
            triplets.append((int(ca[i - 1]), int(ca[i]), int(sc[i])))
        if i == 0 and n > 2:  # a terminal side chain has one angle at its own C-alpha: without a
            triplets.append((int(sc[0]), int(ca[1]), int(ca[2])))  # second one, its mirror image
        if i == n - 1 and n > 2:  # through the chain's end keeps every other local term
            triplets.append((int(sc[i]), int(ca[i - 1]), int(ca[i - 2])))
    return triplets


def _angle_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.CustomAngleForce("0.5*k*(theta-theta0)^2")
    force.addPerAngleParameter("k"), force.addPerAngleParameter("theta0")
    k = go.angle_k_per_epsilon * go.epsilon_kj_mol
    xyz = native.xyz_nm
    for a, b, c in _angle_triplets(native):
        force.addAngle(a, b, c, [k, _angle(xyz[a], xyz[b], xyz[c])])
    return force


def _torsion_value(native: GoNative, quad: tuple[int, int, int, int]) -> float:
    return float(dihedral(*(native.xyz_nm[q] for q in quad)))


def _dihedral_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.CustomTorsionForce("k*((1-cos(theta-theta0)) + 0.5*(1-cos(3*(theta-theta0))))")
    force.addPerTorsionParameter("k"), force.addPerTorsionParameter("theta0")
    k = go.dihedral_k_per_epsilon * go.epsilon_kj_mol
    ca = native.ca
    for i in range(native.n_residues - 3):
        quad = tuple(int(c) for c in ca[i:i + 4])
        force.addTorsion(*quad, [k, _torsion_value(native, quad)])
    return force


#: the chirality term on the normalized signed volume of each :func:`side_chain_torsions`
#: quadruplet (p1 the centre): chi = (u x v) . w / (|u| |v| |w|), u = p0 - p1, v = p2 - p1,
#: w = p3 - p1. Smooth wherever the bonds have length, unlike a torsion, whose force diverges
#: when three of its beads line up (a blow-up seen at 5 fs with the torsion form).
_CHIRALITY = ("0.5*k*(chi - chi0)^2; chi = (cx*wx + cy*wy + cz*wz) / (lu*lv*lw);"
              " cx = uy*vz - uz*vy; cy = uz*vx - ux*vz; cz = ux*vy - uy*vx;"
              " lu = sqrt(ux^2 + uy^2 + uz^2); lv = sqrt(vx^2 + vy^2 + vz^2); lw = sqrt(wx^2 + wy^2 + wz^2);"
              " ux = x1 - x2; uy = y1 - y2; uz = z1 - z2; vx = x3 - x2; vy = y3 - y2; vz = z3 - z2;"
              " wx = x4 - x2; wy = y4 - y2; wz = z4 - z2")


def chirality_volumes(xyz_nm: np.ndarray, native: GoNative) -> np.ndarray:
    """The normalized signed volume ``chi`` of each side-chain bead (order of
    :func:`side_chain_torsions`): its sign is the bead's side; shape (..., n_sc)."""
    xyz = np.asarray(xyz_nm, dtype=float)
    q = np.asarray(side_chain_torsions(native))
    u, v, w = (xyz[..., q[:, k], :] - xyz[..., q[:, 1], :] for k in (0, 2, 3))
    norm = np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) * np.linalg.norm(w, axis=-1)
    return np.einsum("...k,...k->...", np.cross(u, v), w) / norm


def _chirality_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.CustomCompoundBondForce(4, _CHIRALITY)
    force.addPerBondParameter("k"), force.addPerBondParameter("chi0")
    k = go.chirality_k_per_epsilon * go.epsilon_kj_mol
    chi0 = chirality_volumes(native.xyz_nm, native)
    for quad, c0 in zip(side_chain_torsions(native), chi0):
        force.addBond(list(quad), [k, float(c0)])
    return force


def _contact_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.CustomBondForce("eps*(5*(s/r)^12 - 6*(s/r)^10)")
    force.addPerBondParameter("eps"), force.addPerBondParameter("s")
    for (a, b), s in zip(native.contact_beads, native.contact_sigma_nm):
        force.addBond(int(a), int(b), [go.epsilon_kj_mol, float(s)])
    return force


def repulsive_pairs(native: GoNative, go: Go) -> np.ndarray:
    """Bead pairs (a < b) of the repulsion: residues >= min separation apart, not contacts."""
    contacts = {tuple(sorted(map(int, p))) for p in native.contact_beads}
    res = native.residue
    a, b = np.triu_indices(native.n_beads, k=1)
    keep = np.abs(res[a] - res[b]) >= go.min_sequence_separation
    pairs = [(int(i), int(j)) for i, j in zip(a[keep], b[keep]) if (i, j) not in contacts]
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


def _repulsion_force(native: GoNative, go: Go) -> mm.Force:
    force = mm.CustomBondForce(f"({go.epsilon_kj_mol!r})*(({go.repulsion_radius_nm!r})/r)^12")
    for a, b in repulsive_pairs(native, go):
        force.addBond(int(a), int(b), [])
    return force


def _desolvation_force(native: GoNative, go: Go) -> mm.Force:
    eps, dw, w = go.epsilon_kj_mol, go.water_diameter_nm, go.desolvation_width_nm
    h_db = eps * go.desolvation_barrier_per_epsilon
    h_ssm = eps * go.solvent_separated_well_per_epsilon
    w2 = 2.0 * w ** 2
    force = mm.CustomBondForce(
        f"(1 - exp(-(x/{w!r})^4))*(({h_db!r})*exp(-((x-{0.5 * dw!r})^2)/{w2!r})"
        f" - ({h_ssm!r})*exp(-((x-{dw!r})^2)/{w2!r})); x = r - s")
    force.addPerBondParameter("s")
    for (a, b), s in zip(native.contact_beads, native.contact_sigma_nm):
        force.addBond(int(a), int(b), [float(s)])
    return force


_BUILDERS = {"bonds": _bond_force, "angles": _angle_force, "dihedrals": _dihedral_force,
             "chirality": _chirality_force, "contacts": _contact_force,
             "repulsion": _repulsion_force, "desolvation": _desolvation_force}


def create_system(native: GoNative, go: Go) -> mm.System:
    """The Go model of ``native`` as an OpenMM System (no constraints, no cutoff).

    Parameters
    ----------
    native
        Beads and contacts from :func:`native_beads`.
    go
        Settings.

    Returns
    -------
    openmm.System
        One particle per bead (masses by :attr:`Go.bead_mass`, amu) and one force per term
        of the module docstring, in the group :data:`FORCE_GROUPS` names; the desolvation
        force only with ``cooperativity: desolvation``.
    """
    _check(go)
    system = mm.System()
    for mass in bead_masses(native, go):
        system.addParticle(float(mass))
    for term, build in _BUILDERS.items():
        if term == "desolvation" and go.cooperativity != "desolvation":
            continue
        force = build(native, go)
        force.setForceGroup(FORCE_GROUPS[term])
        force.setName(f"go_{term}")
        system.addForce(force)
    return system


def force_groups(terms) -> set[int]:
    """OpenMM force-group set of the named terms (for ``getState(groups=...)``)."""
    return {FORCE_GROUPS[t] for t in terms}


# --------------------------------------------------------------------------- analysis


def fraction_native_contacts(xyz_nm: np.ndarray, native: GoNative,
                             beta_per_nm: float = Q_BETA_PER_NM,
                             lam: float = Q_LAMBDA) -> np.ndarray:
    """Fraction of native contacts ``Q`` per frame.

    Best-Hummer switch ``s(r) = 1 / (1 + exp(beta (r - lam sigma)))`` on the contact bead
    pairs, normalized to its native value and capped at 1: ``q = min(1, s(r) / s(sigma))``,
    ``Q`` = mean over contacts. So ``Q = 1`` exactly at the native structure (and for any
    contact closer than native). ``lam = 1.2`` (not Best-Hummer's 1.8 for heavy atoms):
    side-chain centroid distances reach 1.4 nm, where ``1.8 sigma`` would count beads 1 nm
    beyond native as in contact; for CLN025's contacts (sigma 0.41-1.36 nm) ``1.2 sigma``
    lies 0.08-0.27 nm beyond native, short of the solvent-separated minimum at
    ``sigma + 0.3`` nm, so a pair with water between them is not counted.

    Parameters
    ----------
    xyz_nm
        Bead positions (n_beads, 3) or (n_frames, n_beads, 3), nm.
    native
        The native beads and contacts.
    beta_per_nm, lam
        Steepness (1/nm) and tolerance of the switch.

    Returns
    -------
    np.ndarray
        Q, shape (n_frames,) (a 0-d array for one frame).
    """
    xyz = np.asarray(xyz_nm, dtype=float)
    return _q_of_pairs(xyz, native.contact_beads, native.contact_sigma_nm, beta_per_nm, lam)


def _q_of_pairs(xyz: np.ndarray, pairs: np.ndarray, sigma: np.ndarray, beta_per_nm: float, lam: float) -> np.ndarray:
    """Mean over ``pairs`` of the native-normalized, capped Best-Hummer switch (see
    :func:`fraction_native_contacts`), distances from ``xyz`` (..., n, 3) nm."""
    a, b = pairs[:, 0], pairs[:, 1]
    r = np.linalg.norm(xyz[..., a, :] - xyz[..., b, :], axis=-1)
    switch = 1.0 / (1.0 + np.exp(np.clip(beta_per_nm * (r - lam * sigma), -500, 500)))
    native_switch = 1.0 / (1.0 + np.exp(beta_per_nm * (sigma - lam * sigma)))
    return np.minimum(1.0, switch / native_switch).mean(axis=-1)


def ca_fraction_native_contacts(ca_xyz_nm: np.ndarray, native: GoNative,
                                beta_per_nm: float = Q_BETA_PER_NM, lam: float = Q_LAMBDA) -> np.ndarray:
    """Q from C-alpha positions alone, (n_frames,): the switch of
    :func:`fraction_native_contacts` on the C-alpha pairs of the native contact residues, sigma
    their native C-alpha distance. Computable on CG frames (one bead per residue), so model and
    reference are compared on the same order parameter."""
    pairs = native.contact_residues
    ca = native.xyz_nm[native.ca]
    sigma = np.linalg.norm(ca[pairs[:, 0]] - ca[pairs[:, 1]], axis=-1)
    return _q_of_pairs(np.asarray(ca_xyz_nm, dtype=float), pairs, sigma, beta_per_nm, lam)


def chirality_sides(xyz_nm: np.ndarray, native: GoNative) -> np.ndarray:
    """Side of the local C-alpha plane of each side-chain bead: sign of its chirality volume.

    Parameters
    ----------
    xyz_nm
        Bead positions (n_beads, 3) or (n_frames, n_beads, 3), nm.
    native
        The native beads.

    Returns
    -------
    np.ndarray
        +-1 per side-chain bead (order of :func:`side_chain_torsions`), shape (..., n_sc).
    """
    return np.sign(chirality_volumes(xyz_nm, native))


def write_pdb(path, native: GoNative, xyz_nm: np.ndarray | None = None) -> None:
    """Write the beads (native positions by default) as a PDB file."""
    xyz = native.xyz_nm if xyz_nm is None else np.asarray(xyz_nm)
    with open(path, "w") as fh:
        app.PDBFile.writeFile(native.topology, xyz * unit.nanometer, fh, keepIds=True)
