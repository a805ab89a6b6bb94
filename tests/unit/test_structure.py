"""Structure building and preparation: real PeptideBuilder + PDBFixer + OpenMM."""
import mdtraj as md
import numpy as np
import pytest

from alcg.util.errors import StructureError
from alcg.finegrained.structure import (build_from_sequence, check_pdb_file, check_starts, prepare,
                            read_pdb_text)


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
    prepared = prepare(build_from_sequence("GAG"), "GAG", ph=7.0, allow_chain_breaks=False)
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
        prepare(broken, "broken.pdb", ph=7.0, allow_chain_breaks=False)
    prepared = prepare(broken, "broken.pdb", ph=7.0, allow_chain_breaks=True)
    assert prepared.sequence == "GAGAG"


def test_nonstandard_residue_is_named(tmp_path):
    text = build_from_sequence("GAG").replace("ALA", "MSE")
    with pytest.raises(StructureError, match="non-standard residue MSE"):
        prepare(text, "mse.pdb", ph=7.0, allow_chain_breaks=False)


# --------------------------------------------------------------------------- check_pdb_file
def _atom_lines(pdb_path) -> list[str]:
    return [ln for ln in pdb_path.read_text().splitlines() if ln.startswith(("ATOM", "HETATM"))]


def _check(path, allow_chain_breaks=False, sequence=None) -> str:
    return check_pdb_file(path, allow_chain_breaks, sequence)


def _one_line_error(path, **kwargs) -> str:
    with pytest.raises(StructureError) as info:
        _check(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_check_pdb_file_returns_sequence(cln025, tmp_path):
    good = tmp_path / "good.pdb"
    good.write_text(cln025[0].read_text())
    assert _check(good) == "YYDPETGTWY"
    assert _check(good, sequence="yydpetgtwy") == "YYDPETGTWY"


def test_check_pdb_file_ignores_water_and_ions(cln025, tmp_path):
    lines = _atom_lines(cln025[0])
    water = ["HETATM 9001  O   HOH W   1      10.000  10.000  10.000  1.00  0.00           O",
             "HETATM 9002 NA    NA W   2      12.000  10.000  10.000  1.00  0.00          Na"]
    path = tmp_path / "wet.pdb"
    path.write_text("\n".join(lines + ["TER"] + water + ["END"]) + "\n")
    assert _check(path) == "YYDPETGTWY"


def test_check_pdb_file_truncated_mid_record(cln025, tmp_path):
    text = cln025[0].read_text()
    cut = text.index(_atom_lines(cln025[0])[100]) + 40  # inside the x coordinate
    path = tmp_path / "cut.pdb"
    path.write_text(text[:cut])
    assert "truncated" in _one_line_error(path)
    cut_late = text.index(_atom_lines(cln025[0])[100]) + 60  # after z, before the element
    path.write_text(text[:cut_late])
    assert "truncated" in _one_line_error(path)


def test_check_pdb_file_not_a_pdb(tmp_path):
    path = tmp_path / "notes.pdb"
    path.write_text("# a trajectory list\nrun1.xtc\nrun2.xtc\n")
    assert "no ATOM records" in _one_line_error(path)
    binary = tmp_path / "traj.pdb"
    binary.write_bytes(bytes(range(256)) * 8)
    _one_line_error(binary)


def test_check_pdb_file_two_chains(cln025, tmp_path):
    lines = _atom_lines(cln025[0])
    chain_b = [ln[:21] + "B" + ln[22:] for ln in lines]
    path = tmp_path / "dimer.pdb"
    path.write_text("\n".join(lines + ["TER"] + chain_b + ["END"]) + "\n")
    assert "2 protein chains" in _one_line_error(path)


def test_check_pdb_file_nonstandard_residue(cln025, tmp_path):
    lines = [ln.replace(" GLU A   5", " MSE A   5") for ln in _atom_lines(cln025[0])]
    assert any(" MSE " in ln for ln in lines)
    path = tmp_path / "mse.pdb"
    path.write_text("\n".join(lines + ["END"]) + "\n")
    assert "non-standard residue MSE5" in _one_line_error(path)


def test_check_pdb_file_sequence_mismatch_names_both(cln025, tmp_path):
    path = tmp_path / "cln.pdb"
    path.write_text(cln025[0].read_text())
    message = _one_line_error(path, sequence="GYDPETGTWG")
    assert "YYDPETGTWY" in message and "GYDPETGTWG" in message


def test_check_pdb_file_chain_break(tmp_path):
    lines = []
    for line in build_from_sequence("GAGAG").splitlines():
        if line.startswith("ATOM") and int(line[22:26]) >= 4:  # shift residues 4-5 by 1 nm
            line = f"{line[:30]}{float(line[30:38]) + 10.0:8.3f}{line[38:]}"
        lines.append(line)
    path = tmp_path / "broken.pdb"
    path.write_text("\n".join(lines) + "\n")
    assert "chain break" in _one_line_error(path)
    assert _check(path, allow_chain_breaks=True) == "GAGAG"


def test_check_starts():
    good = {"folded": {"phi": [-60.0] * 9, "psi": [-40.0] * 9}, "extended": {}, "none": None}
    check_starts(good, 10)
    with pytest.raises(StructureError, match="start 'folded': psi has 8 values; 10 residues need 9"):
        check_starts({**good, "folded": {"phi": [-60.0] * 9, "psi": [-40.0] * 8}}, 10)
    with pytest.raises(StructureError, match="start 'half' gives phi but not psi"):
        check_starts({"half": {"phi": [-60.0] * 9}}, 10)


def test_preparation_is_the_same_on_every_run():
    """Hydrogens start from Python's `random` and PDBFixer minimizes on the CPU platform: both
    are pinned, so two preparations are bit for bit equal (a Go model's native depends on it),
    and the caller's `random` state and CPU thread default are left as they were."""
    import random

    import openmm as mm

    text = build_from_sequence("YYDPETGTWY")
    cpu = mm.Platform.getPlatformByName("CPU")
    threads = cpu.getPropertyDefaultValue("Threads")
    random.seed(123)
    first = prepare(text, "CLN025", ph=7.0, allow_chain_breaks=False, seed=3)
    after = random.random()
    random.seed(123)
    random.random()  # another caller's state: must not matter
    second = prepare(text, "CLN025", ph=7.0, allow_chain_breaks=False, seed=3)
    assert np.array_equal(np.asarray(first.positions._value), np.asarray(second.positions._value))
    random.seed(123)
    prepare(text, "CLN025", ph=7.0, allow_chain_breaks=False, seed=3)
    assert random.random() == after
    assert cpu.getPropertyDefaultValue("Threads") == threads
