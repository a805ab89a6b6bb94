"""Build or load a peptide and make it simulation-ready (heavy atoms + hydrogens).

From a sequence the backbone is built with PeptideBuilder (optionally from per-residue
phi/psi, so that a folded start is possible); from a PDB file the structure is read as
given. Both then pass through PDBFixer, which adds missing heavy atoms, terminal atoms
and hydrogens at the requested pH.
"""
from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import openmm.app as app
import openmm.unit as unit

from alcg.util.errors import StructureError
from alcg.config.settings import System

#: one-letter to three-letter codes of the 20 standard amino acids
THREE_LETTER = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU",
    "G": "GLY", "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE",
    "P": "PRO", "S": "SER", "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}
ONE_LETTER = {v: k for k, v in THREE_LETTER.items()}
#: residue names that PDBFixer/Amber know as variants of the standard ones
_VARIANTS = {"HID": "H", "HIE": "H", "HIP": "H", "CYX": "C", "ASH": "D", "GLH": "E", "LYN": "K"}
#: largest C(i)-N(i+1) distance (nm) still counted as a peptide bond
PEPTIDE_BOND_MAX_NM = 0.2
#: residue names of water and ions (not part of the protein), as OpenMM, Amber, GROMACS
#: and CHARMM name them
WATER_IONS = frozenset({"HOH", "WAT", "SOL", "TIP3", "TIP3P", "T3P", "SPC", "TIP4", "TIP4P",
                        "NA", "CL", "K", "Na+", "Cl-", "NA+", "CL-", "K+", "SOD", "CLA", "POT"})
#: PDB columns 31-54 hold x, y, z; an ATOM/HETATM record shorter than this is cut
_MIN_ATOM_RECORD = 54


@dataclass
class PreparedStructure:
    """A protonated, complete structure (positions in nm)."""

    topology: app.Topology
    positions: unit.Quantity
    sequence: str


def check_sequence(sequence: str) -> str:
    """Return ``sequence`` upper-cased, or raise naming the first unknown residue letter."""
    seq = sequence.strip().upper()
    if not seq:
        raise StructureError("sequence is empty")
    for i, letter in enumerate(seq):
        if letter not in THREE_LETTER:
            raise StructureError(
                f"unknown residue letter {letter!r} at position {i + 1} of sequence {sequence!r}"
                " (allowed: the 20 standard one-letter codes)")
    if len(seq) < 2:
        raise StructureError(f"sequence {sequence!r} is too short: at least 2 residues are needed")
    return seq


def build_from_sequence(sequence: str, phi_deg: Sequence[float] | None = None,
                        psi_deg: Sequence[float] | None = None) -> str:
    """Build a heavy-atom backbone+side-chain model of ``sequence`` as PDB text.

    Parameters
    ----------
    sequence
        One-letter amino-acid sequence.
    phi_deg, psi_deg
        Optional backbone dihedrals in degrees: ``phi`` of residues 2..n and ``psi`` of
        residues 1..n-1 (``n - 1`` values each). Without them the chain is extended
        (phi = -120, psi = 140).
    """
    import PeptideBuilder
    from Bio.PDB import PDBIO

    seq = check_sequence(sequence)
    if (phi_deg is None) != (psi_deg is None):
        raise StructureError("give both phi and psi, or neither")
    if phi_deg is None:
        structure = PeptideBuilder.make_extended_structure(seq)
    else:
        for name, values in (("phi", phi_deg), ("psi", psi_deg)):
            if len(values) != len(seq) - 1:
                raise StructureError(
                    f"{name} has {len(values)} values; sequence {seq} needs {len(seq) - 1}")
        structure = PeptideBuilder.make_structure(seq, list(phi_deg), list(psi_deg))
    handle = io.StringIO()
    writer = PDBIO()
    writer.set_structure(structure)
    writer.save(handle)
    return handle.getvalue()


def _fixer_from_text(pdb_text: str, source: str):
    from pdbfixer import PDBFixer

    try:
        return PDBFixer(pdbfile=io.StringIO(pdb_text))
    except Exception as exc:  # PDBFixer raises many types for unreadable input
        raise StructureError(f"cannot read PDB {source}: {exc}") from exc


def read_pdb_text(path: str | Path) -> str:
    """Return the text of PDB file ``path`` or raise a :class:`StructureError`."""
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"PDB file not found: {path}")
    text = path.read_text(errors="replace")
    if not any(line.startswith(("ATOM", "HETATM")) for line in text.splitlines()):
        raise StructureError(f"PDB file {path} has no ATOM records")
    return text


def protein_sequence(topology: app.Topology, source: str = "structure") -> str:
    """One-letter sequence of the protein residues in ``topology`` (waters/ions skipped)."""
    letters = []
    for residue in topology.residues():
        if residue.name in WATER_IONS:
            continue
        letter = ONE_LETTER.get(residue.name) or _VARIANTS.get(residue.name)
        if letter is None:
            raise StructureError(
                f"non-standard residue {residue.name}{residue.id} in {source}:"
                " only the 20 standard amino acids are supported")
        letters.append(letter)
    return "".join(letters)


def pdb_text(topology: app.Topology, positions_nm: np.ndarray, keep: np.ndarray | None = None) -> str:
    """PDB text of ``topology`` at ``positions_nm`` (n_atoms, 3); with ``keep``, only those atoms."""
    positions = np.asarray(positions_nm) * unit.nanometer
    if keep is not None:
        modeller = app.Modeller(topology, positions)
        kept = set(int(i) for i in keep)
        modeller.delete([a for a in modeller.topology.atoms() if a.index not in kept])
        topology, positions = modeller.topology, modeller.positions
    handle = io.StringIO()
    app.PDBFile.writeFile(topology, positions, handle, keepIds=True)
    return handle.getvalue()


def check_chain_breaks(topology: app.Topology, positions: unit.Quantity, source: str,
                       allow: bool = False) -> list[str]:
    """Find peptide bonds longer than :data:`PEPTIDE_BOND_MAX_NM`; raise unless ``allow``."""
    xyz = np.asarray(positions.value_in_unit(unit.nanometer))
    breaks = []
    for chain in topology.chains():
        residues = list(chain.residues())
        for prev, nxt in zip(residues[:-1], residues[1:]):
            c = next((a for a in prev.atoms() if a.name == "C"), None)
            n = next((a for a in nxt.atoms() if a.name == "N"), None)
            if c is None or n is None:
                continue
            d = float(np.linalg.norm(xyz[c.index] - xyz[n.index]))
            if d > PEPTIDE_BOND_MAX_NM:
                breaks.append(f"{prev.name}{prev.id}-{nxt.name}{nxt.id} ({d:.2f} nm)")
    if breaks and not allow:
        raise StructureError(
            f"chain break in {source} between {', '.join(breaks)};"
            " set system.allow_chain_breaks: true to accept it")
    return breaks


@contextlib.contextmanager
def reproducible_fixing(fixer, seed: int):
    """Make PDBFixer's hydrogen placement and minimizations the same on every run.

    ``Modeller.addHydrogens`` starts new hydrogens at offsets from Python's global
    :mod:`random`, and OpenMM's CPU platform on several threads sums forces in a varying
    order; either alone changes prepared positions from run to run (up to 0.01 nm in a Go
    model's native beads). In the block, :mod:`random` is seeded with ``seed`` and the fixer
    minimizes on one CPU thread (the Reference platform where OpenMM has no CPU platform);
    both are restored after it.
    """
    import openmm as mm

    try:
        platform = mm.Platform.getPlatformByName("CPU")
        threads = platform.getPropertyDefaultValue("Threads")
    except mm.OpenMMException:  # no CPU platform here
        platform, threads = mm.Platform.getPlatformByName("Reference"), None
    state = random.getstate()
    random.seed(seed)
    fixer.platform = platform
    if threads is not None:
        platform.setPropertyDefaultValue("Threads", "1")
    try:
        yield
    finally:
        random.setstate(state)
        if threads is not None:
            platform.setPropertyDefaultValue("Threads", threads)


def prepare(pdb_text: str, source: str, *, ph: float, allow_chain_breaks: bool, seed: int = 0) -> PreparedStructure:
    """Run PDBFixer on ``pdb_text``: add missing heavy atoms, terminal atoms and hydrogens.

    Heterogens (ligands, waters) are removed; non-standard residues and unallowed chain
    breaks raise :class:`StructureError`.
    """
    fixer = _fixer_from_text(pdb_text, source)
    sequence = protein_sequence(fixer.topology, source)  # names non-standard residues
    fixer.removeHeterogens(keepWater=False)
    if fixer.topology.getNumAtoms() == 0:
        raise StructureError(f"no protein atoms in {source}")
    check_chain_breaks(fixer.topology, fixer.positions, source, allow_chain_breaks)
    fixer.findMissingResidues()
    fixer.missingResidues = {}  # never invent residues the user did not give
    fixer.findNonstandardResidues()
    if fixer.nonstandardResidues:
        names = ", ".join(f"{r.name}{r.id}" for r, _ in fixer.nonstandardResidues)
        raise StructureError(f"non-standard residues in {source}: {names}")
    fixer.findMissingAtoms()
    with reproducible_fixing(fixer, seed):
        fixer.addMissingAtoms(seed=seed)  # PDBFixer places missing atoms at random unless seeded
        fixer.addMissingHydrogens(ph)
    return PreparedStructure(fixer.topology, fixer.positions, sequence)


def prepare_from_config(system: System, start: dict | None, seed: int = 0) -> PreparedStructure:
    """Prepare the structure described by the ``system`` settings (a PDB, or the sequence).

    ``start`` optionally gives ``phi``/``psi`` lists (degrees) for a sequence-built start.
    """
    start = start or {}
    if system.pdb:
        text, source = read_pdb_text(system.pdb), str(system.pdb)
    else:
        text = build_from_sequence(system.sequence, start.get("phi"), start.get("psi"))
        source = f"sequence {system.sequence}"
    return prepare(text, source, ph=system.ph, allow_chain_breaks=system.allow_chain_breaks, seed=seed)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_records(text: str, source: str) -> None:
    """Raise unless every ATOM/HETATM record is complete up to the coordinates.

    A file cut mid-record ends in an ATOM/HETATM line that is shorter than the records
    before it and has no line end; a record without parseable x, y, z is malformed.
    """
    if "_atom_site." in text:
        raise StructureError(f"PDB file {source} is an mmCIF file, not PDB: convert it to PDB")
    lines = text.splitlines()
    atom_lines = [(i, ln) for i, ln in enumerate(lines) if ln.startswith(("ATOM", "HETATM"))]
    if not atom_lines:
        raise StructureError(f"PDB file {source} has no ATOM records: it is not a PDB file")
    for i, line in atom_lines:
        try:
            if len(line) < _MIN_ATOM_RECORD:
                raise ValueError("short record")
            for column in (30, 38, 46):
                float(line[column:column + 8])
        except ValueError:
            raise StructureError(f"PDB file {source} is truncated or malformed at line {i + 1}: "
                                 f"{line.strip()[:40]!r} has no complete x, y, z") from None
    last_i, last = atom_lines[-1]
    if (last_i == len(lines) - 1 and not text.endswith(("\n", "\r")) and len(atom_lines) > 1
            and len(last.rstrip()) < len(atom_lines[-2][1].rstrip())):
        raise StructureError(f"PDB file {source} is truncated: it ends in the middle of the "
                             f"record at line {last_i + 1}")


def _protein_chains(topology: app.Topology) -> list:
    """Chains holding at least one amino acid (a ligand-only chain is not one)."""
    return [c for c in topology.chains()
            if any(r.name in ONE_LETTER or r.name in _VARIANTS for r in c.residues())]


def check_pdb_file(path: str | Path, allow_chain_breaks: bool, sequence: str | None) -> str:
    """Check a user PDB file cheaply (no PDBFixer, no minimization) and return its sequence.

    Meant to run when the workflow starts, before any job. The file must parse, hold
    exactly one protein chain (waters and ions are ignored) of standard residues only, and
    have no chain break (a C-N peptide bond longer than :data:`PEPTIDE_BOND_MAX_NM` nm)
    unless ``allow_chain_breaks``.

    Parameters
    ----------
    path
        The PDB file.
    allow_chain_breaks
        Accept chain breaks.
    sequence
        Expected one-letter sequence (e.g. ``system.sequence``); a different sequence in the
        file is an error naming both.

    Returns
    -------
    str
        The one-letter sequence of the protein chain.

    Raises
    ------
    StructureError
        With a one-line message naming ``path`` and the problem.
    """
    source = str(path)
    text = read_pdb_text(path)
    _check_records(text, source)
    try:
        pdb = app.PDBFile(io.StringIO(text))
    except Exception as exc:  # OpenMM raises many types for unreadable input
        raise StructureError(f"cannot read PDB file {source}: {_one_line(exc)}") from exc
    chains = _protein_chains(pdb.topology)
    if not chains:
        raise StructureError(f"PDB file {source} has no amino-acid residues")
    if len(chains) > 1:
        ids = ", ".join(repr(c.id) for c in chains)
        raise StructureError(f"PDB file {source} has {len(chains)} protein chains ({ids}); "
                             "exactly one is supported")
    found = protein_sequence(pdb.topology, source)
    check_chain_breaks(pdb.topology, pdb.positions, source, allow_chain_breaks)
    if sequence is not None:
        expected = check_sequence(sequence)
        if found != expected:
            raise StructureError(f"PDB file {source} has sequence {found} but the configured "
                                 f"sequence is {expected}")
    return found


def check_starts(starts: Mapping[str, Mapping[str, Sequence[float]] | None], n_residues: int) -> None:
    """Check the backbone dihedrals of every named start.

    Parameters
    ----------
    starts
        ``{name: {"phi": [...], "psi": [...]}}`` in degrees; a start without dihedrals
        (``{}`` or ``None``) is an extended chain.
    n_residues
        Residues of the peptide: ``phi`` (residues 2..n) and ``psi`` (residues 1..n-1)
        need ``n_residues - 1`` values each.

    Raises
    ------
    StructureError
        With a one-line message naming the start.
    """
    for name, start in starts.items():
        start = start or {}
        given = [k for k in ("phi", "psi") if start.get(k) is not None]
        if len(given) == 1:
            raise StructureError(f"start {name!r} gives {given[0]} but not "
                                 f"{'psi' if given[0] == 'phi' else 'phi'}: give both or neither")
        for key in given:
            values = start[key]
            if len(values) != n_residues - 1:
                raise StructureError(f"start {name!r}: {key} has {len(values)} values; "
                                     f"{n_residues} residues need {n_residues - 1}")
            bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
            if bad:
                raise StructureError(f"start {name!r}: {key} value {bad[0]!r} is not a number "
                                     "(degrees)")
