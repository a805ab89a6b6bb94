"""Importing existing all-atom trajectories: DCD, XTC and PDB of a real OpenMM MD of CLN025."""
from __future__ import annotations

import dataclasses

import mdtraj as md
import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

from alcg.formats import run_file
from alcg.finegrained import trajectory_import
from alcg.finegrained import system as omm
from alcg.util.errors import DataError
from alcg.finegrained.mapping import CAMapping, project_runs

N_FRAMES, INTERVAL = 8, 5  # recorded frames, MD steps between them
KJ_MOL_NM = unit.kilojoule_per_mole / unit.nanometer


@pytest.fixture(scope="module")
def md_files(cln025, ff_cfg, tmp_path_factory):
    """A short MD of CLN025 written as DCD (OpenMM) and XTC (MDTraj), with OpenMM's forces."""
    out = tmp_path_factory.mktemp("import")
    pdb = app.PDBFile(str(cln025[0]))
    system = omm.deserialize(cln025[1].read_text())
    sim = omm.make_simulation(pdb.topology, system, ff_cfg, seed=4)
    sim.context.setPositions(pdb.positions)
    sim.context.setVelocitiesToTemperature(ff_cfg.temperature_k * unit.kelvin, 4)
    dcd = out / "md.dcd"
    xyz, forces = [], []
    with open(dcd, "wb") as fh:
        dt = ff_cfg.timestep_fs * unit.femtosecond
        writer = app.DCDFile(fh, pdb.topology, dt, firstStep=INTERVAL, interval=INTERVAL)
        for _ in range(N_FRAMES):
            sim.step(INTERVAL)
            state = sim.context.getState(getPositions=True, getForces=True)
            writer.writeModel(state.getPositions())
            xyz.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
            forces.append(state.getForces(asNumpy=True).value_in_unit(KJ_MOL_NM))
    xyz, forces = np.array(xyz), np.array(forces)
    interval_ps = INTERVAL * ff_cfg.timestep_fs / 1000.0
    xtc = out / "md.xtc"
    md.Trajectory(xyz.astype(np.float32), md.Topology.from_openmm(pdb.topology),
                  time=np.arange(N_FRAMES) * interval_ps).save_xtc(str(xtc))
    gro = out / "top.gro"
    md.load(str(cln025[0])).save_gro(str(gro))
    return dict(dcd=dcd, xtc=xtc, gro=gro, xyz=xyz, forces=forces, interval_ps=interval_ps, out=out)


def _reference_forces(cln025, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces at ``xyz`` from an independent Reference-platform Context."""
    system = omm.deserialize(cln025[1].read_text())
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    energies, forces = [], []
    for frame in xyz:
        context.setPositions(frame.astype(np.float64))
        state = context.getState(getEnergy=True, getForces=True)
        energies.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        forces.append(state.getForces(asNumpy=True).value_in_unit(KJ_MOL_NM))
    return np.array(energies), np.array(forces)


def _assert_forces_close(got: np.ndarray, want: np.ndarray, rel: float) -> None:
    scale = np.abs(want).max()
    assert np.abs(got - want).max() < rel * scale, (np.abs(got - want).max(), scale)


def _run_args(cln025, ff_cfg, stride=1, checkpoint_every=200):
    return dict(system_pdb=cln025[0], system_xml=cln025[1], ff_cfg=ff_cfg, checkpoint_every=checkpoint_every,
                stride=stride)


def test_import_dcd_recomputes_forces(cln025, ff_cfg, md_files, tmp_path):
    out = tmp_path / "dcd.npz"
    meta = trajectory_import.import_trajectory(md_files["dcd"], cln025[0], out=out, **_run_args(cln025, ff_cfg))
    run = run_file.load(out)
    file_xyz = md.load(str(md_files["dcd"]), top=str(cln025[0])).xyz
    np.testing.assert_array_equal(run.positions, file_xyz)  # float32, as read
    np.testing.assert_allclose(run.positions, md_files["xyz"], atol=2e-6)
    energy, forces = _reference_forces(cln025, file_xyz)
    _assert_forces_close(run.forces, forces, 1e-5)
    np.testing.assert_allclose(run.potential_energy, energy, rtol=1e-5, atol=1e-2)
    _assert_forces_close(run.forces, md_files["forces"], 1e-3)  # MD forces at unrounded positions
    # time from the DCD header: 5 steps x 4 fs per frame
    assert meta["frame_interval_from"] == "dcd header"
    assert meta["source_frame_interval_ps"] == pytest.approx(md_files["interval_ps"])
    np.testing.assert_allclose(run.time_ps, np.arange(N_FRAMES) * md_files["interval_ps"])
    assert run_file.recorded_ns(out) == pytest.approx(N_FRAMES * md_files["interval_ps"] / 1000)
    assert meta["source"] == str(md_files["dcd"]) and meta["source_frames"] == {
        "start": 0, "step": 1, "count": N_FRAMES}
    # downstream reads it unchanged
    pdb = app.PDBFile(str(cln025[0]))
    expected = [(a.residue.name, a.name) for a in pdb.topology.atoms()]
    run_file.check_topology(run, expected, str(out), str(cln025[0]))
    data = project_runs([out], CAMapping(pdb.topology, omm.deserialize(cln025[1].read_text())), 0)
    assert data.coords.shape == (N_FRAMES, 10, 3) and np.isfinite(data.forces).all()


def test_import_xtc_with_stride(cln025, ff_cfg, md_files, tmp_path):
    out = tmp_path / "xtc.npz"
    meta = trajectory_import.import_trajectory(md_files["xtc"], cln025[0], out=out,
                                      **_run_args(cln025, ff_cfg, stride=2))
    run = run_file.load(out)
    file_xyz = md.load(str(md_files["xtc"]), top=str(cln025[0])).xyz[::2]
    np.testing.assert_array_equal(run.positions, file_xyz)
    np.testing.assert_allclose(run.positions, md_files["xyz"][::2], atol=1e-3)  # XTC precision
    _, forces = _reference_forces(cln025, file_xyz)
    _assert_forces_close(run.forces, forces, 1e-5)
    assert meta["source_frames"] == {"start": 0, "step": 2, "count": N_FRAMES // 2}
    assert meta["frame_interval_from"] == "frame times"
    np.testing.assert_allclose(run.time_ps, np.arange(0, N_FRAMES, 2) * md_files["interval_ps"], atol=1e-5)
    assert run_file.recorded_ns(out) == pytest.approx(N_FRAMES * md_files["interval_ps"] / 1000, rel=1e-4)


def test_import_as_reference_positions_only(cln025, ff_cfg, md_files, tmp_path):
    out = tmp_path / "ref.npz"
    meta = trajectory_import.import_trajectory(md_files["xtc"], cln025[0], out=out, forces=False,
                                      **_run_args(cln025, ff_cfg))
    run = run_file.load(out)
    assert run.forces is None and np.isnan(run.potential_energy).all()
    assert run.positions.shape == (N_FRAMES, 166, 3) and not meta["forces_recomputed"]
    assert run_file.status(out) is run_file.Status.OK


def test_import_pdb_strips_water_and_ions(cln025, ff_cfg, md_files, tmp_path):
    pdb = app.PDBFile(str(cln025[0]))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    solvent = app.Topology()
    chain = solvent.addChain("W")
    water = solvent.addResidue("HOH", chain)
    for name, element in (("O", "O"), ("H1", "H"), ("H2", "H")):
        solvent.addAtom(name, app.Element.getBySymbol(element), water)
    solvent.addAtom("NA", app.Element.getBySymbol("Na"), solvent.addResidue("NA", chain))
    modeller.add(solvent, np.array([[3.0, 3, 3], [3.1, 3, 3], [3.0, 3.1, 3], [4.0, 4, 4]]) * unit.nanometer)
    wet = tmp_path / "wet.pdb"
    with open(wet, "w") as fh:
        app.PDBFile.writeHeader(modeller.topology, fh)
        for k, frame in enumerate(md_files["xyz"][:3]):
            xyz = np.asarray(modeller.getPositions().value_in_unit(unit.nanometer))
            xyz[:len(frame)] = frame
            app.PDBFile.writeModel(modeller.topology, xyz * unit.nanometer, fh, modelIndex=k + 1)
        app.PDBFile.writeFooter(modeller.topology, fh)
    out = tmp_path / "wet.npz"
    meta = trajectory_import.import_trajectory(wet, None, out=out, **_run_args(cln025, ff_cfg))
    run = run_file.load(out)
    np.testing.assert_allclose(run.positions, md_files["xyz"][:3], atol=6e-4)  # PDB: 0.001 A
    assert run.forces.shape == (3, 166, 3) and meta["frame_interval_from"] == "unknown"
    assert run_file.recorded_ns(out) == 0.0 and np.isnan(run.time_ps).all()


def _edit_gro(gro, out, renames: dict[tuple[int, str], str]):
    """Copy a .gro file, renaming atoms {(residue number, old name): new name}."""
    lines = gro.read_text().splitlines()
    for k in range(2, len(lines) - 1):
        key = (int(lines[k][:5]), lines[k][10:15].strip())
        if key in renames:
            lines[k] = lines[k][:10] + f"{renames[key]:>5}" + lines[k][15:]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_common_atom_name_aliases_are_matched(cln025, ff_cfg, md_files, tmp_path):
    xyz = md.load(str(md_files["xtc"]), top=str(cln025[0])).xyz
    gro = _edit_gro(md_files["gro"], tmp_path / "gmx.gro",
                    {(1, "H"): "H1", (10, "O"): "OC1", (10, "OXT"): "OC2", (5, "H"): "HN"})
    out = tmp_path / "gmx.npz"
    trajectory_import.import_trajectory(md_files["xtc"], gro, out=out, forces=False, **_run_args(cln025, ff_cfg))
    np.testing.assert_array_equal(run_file.load(out).positions, xyz)
    # MDTraj reads every topology format through OpenMM's name table (as PDBFixer reads
    # system.pdb), which maps CHARMM's HB1/HB2 to HB3/HB2: the two hydrogens swap places
    gro = _edit_gro(md_files["gro"], tmp_path / "charmm.gro", {(1, "HB2"): "HB1", (1, "HB3"): "HB2"})
    trajectory_import.import_trajectory(md_files["xtc"], gro, out=out, forces=False, **_run_args(cln025, ff_cfg))
    names = [a.name for a in md.load_topology(str(cln025[0])).atoms]
    hb2, hb3 = names.index("HB2"), names.index("HB3")  # of TYR1
    swapped = run_file.load(out).positions
    np.testing.assert_array_equal(swapped[:, [hb2, hb3]], xyz[:, [hb3, hb2]])


def test_unmatched_topology_is_a_one_line_error(cln025, ff_cfg, md_files, tmp_path):
    gro = _edit_gro(md_files["gro"], tmp_path / "odd.gro", {(1, "HB2"): "HX1", (1, "HB3"): "HX2"})
    with pytest.raises(DataError) as info:
        trajectory_import.import_trajectory(md_files["xtc"], gro, out=tmp_path / "x.npz", **_run_args(cln025, ff_cfg))
    message = str(info.value)
    assert "\n" not in message and str(md_files["xtc"]) in message
    assert "system atoms not in the trajectory: TYR1:HB2, TYR1:HB3" in message
    assert "trajectory atoms not in the system: TYR1:HX1, TYR1:HX2" in message
    # a topology of another molecule: wrong atom count for the trajectory
    other = tmp_path / "gag.pdb"
    other.write_text("".join(ln + "\n" for ln in cln025[0].read_text().splitlines()
                             if not ln.startswith("ATOM") or int(ln[22:26]) <= 3))
    pattern = r"^cannot read trajectory .*md\.xtc \(topology .*gag\.pdb\): [^\n]*$"
    with pytest.raises(DataError, match=pattern):
        trajectory_import.import_trajectory(md_files["xtc"], other, out=tmp_path / "y.npz",
                                   **_run_args(cln025, ff_cfg))
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.npz").exists()


def test_killed_import_resumes_from_checkpoint(cln025, ff_cfg, md_files, tmp_path, monkeypatch):
    # the Reference platform is deterministic, so a resumed import can be compared bit by bit
    reference = dataclasses.replace(ff_cfg, platform="Reference")
    args = dict(out=tmp_path / "full.npz", **_run_args(cln025, reference, checkpoint_every=3))
    trajectory_import.import_trajectory(md_files["dcd"], cln025[0], **args)
    full = run_file.load(tmp_path / "full.npz")

    calls = []
    real = trajectory_import.single_point

    def dies_at_frame_5(context, positions):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        return real(context, positions)

    out = tmp_path / "resumed.npz"
    monkeypatch.setattr(trajectory_import, "single_point", dies_at_frame_5)
    with pytest.raises(KeyboardInterrupt):
        trajectory_import.import_trajectory(md_files["dcd"], cln025[0], **{**args, "out": out})
    partial = out.with_name(out.name + ".partial")
    assert [f.name for f in partial.iterdir()] == ["0000000000.npz"] and not out.exists()
    calls.clear()
    monkeypatch.setattr(trajectory_import, "single_point", lambda c, p: (calls.append(1), real(c, p))[1])
    trajectory_import.import_trajectory(md_files["dcd"], cln025[0], **{**args, "out": out})
    assert len(calls) == N_FRAMES - 3 and not partial.exists()
    resumed = run_file.load(out)
    for key in ("positions", "forces", "potential_energy", "time_ps", "atom_indices"):
        np.testing.assert_array_equal(getattr(resumed, key), getattr(full, key))
