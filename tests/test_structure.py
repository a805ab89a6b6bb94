"""Structure building and preparation: real PeptideBuilder + PDBFixer + OpenMM."""
import mdtraj as md
import numpy as np
import pytest

from alcg.errors import StructureError
from alcg.structure import build_from_sequence, prepare, read_pdb_text


def test_unknown_residue_letter_is_named():
    with pytest.raises(StructureError, match="unknown residue letter 'X' at position 3"):
        build_from_sequence("YYXPETGTWY")


def test_wrong_number_of_dihedrals():
    with pytest.raises(StructureError, match="phi has 2 values"):
        build_from_sequence("YYDP", [-60, -60], [-40, -40, -40])


def test_folded_start_has_requested_backbone(cln025, test_config):
    traj = md.load(str(cln025[0]))
    _, phi = md.compute_phi(traj)
    _, psi = md.compute_psi(traj)
    start = test_config["system"]["starts"]["folded"]
    # minimization moves dihedrals a little; the hairpin turn (G7 phi > 0) must survive
    dphi = np.degrees(np.angle(np.exp(1j * (phi[0] - np.radians(start["phi"])))))
    dpsi = np.degrees(np.angle(np.exp(1j * (psi[0] - np.radians(start["psi"])))))
    assert np.abs(dphi).max() < 40 and np.abs(dpsi).max() < 40
    assert np.degrees(phi[0][5]) > 0  # Gly7 left-handed
    assert traj.n_atoms == 166  # CLN025 with hydrogens and termini at pH 7


def test_extended_chain_is_built_and_protonated():
    prepared = prepare(build_from_sequence("GAG"), "GAG")
    names = [a.name for a in prepared.topology.atoms()]
    assert prepared.sequence == "GAG"
    assert "OXT" in names and "H2" in names and "H3" in names and sum(n.startswith("H") for n in names) > 5


def test_unreadable_pdb(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_text("this is not a PDB\n")
    with pytest.raises(StructureError, match="has no ATOM records"):
        read_pdb_text(bad)
    with pytest.raises(StructureError, match="not found"):
        read_pdb_text(tmp_path / "missing.pdb")


def test_chain_break_is_an_error_unless_allowed(tmp_path):
    text = build_from_sequence("GAGAG")
    lines = []
    for line in text.splitlines():
        if line.startswith("ATOM") and int(line[22:26]) >= 4:  # shift residues 4-5 by 1 nm
            x = float(line[30:38]) + 10.0
            line = f"{line[:30]}{x:8.3f}{line[38:]}"
        lines.append(line)
    broken = "\n".join(lines) + "\n"
    with pytest.raises(StructureError, match="chain break .* between GLY3-ALA4"):
        prepare(broken, "broken.pdb")
    prepared = prepare(broken, "broken.pdb", allow_chain_breaks=True)
    assert prepared.sequence == "GAGAG"


def test_nonstandard_residue_is_named(tmp_path):
    text = build_from_sequence("GAG").replace("ALA", "MSE")
    with pytest.raises(StructureError, match="non-standard residue MSE"):
        prepare(text, "mse.pdb")
