"""The OpenMM oracle: recorded forces are -grad E; a killed run resumes without duplicates."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

from alcg.formats.run_file import load as load_run
from alcg.util.fileio import load_npz
from alcg.finegrained.prepare import load_prepared
from proc_helpers import kill_after_checkpoint


def _energy(context, xyz):
    context.setPositions(xyz * unit.nanometer)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def test_recorded_forces_are_minus_energy_gradient(cln025, cln025_run):
    run = load_run(cln025_run)
    assert run.metadata["units"]["forces"] == "kJ/mol/nm"
    _, system = load_prepared(*cln025)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    frame = 30
    xyz = run.positions[frame].astype(np.float64)
    # the recorded energy belongs to the recorded positions
    assert abs(_energy(context, xyz) - run.potential_energy[frame]) < 1.0
    h = 1e-4  # nm
    for atom in (4, 50, 120):  # heavy atoms in different residues
        for dim in range(3):
            plus, minus = xyz.copy(), xyz.copy()
            plus[atom, dim] += h
            minus[atom, dim] -= h
            fd = -(_energy(context, plus) - _energy(context, minus)) / (2 * h)
            rec = run.forces[frame, atom, dim]
            assert abs(fd - rec) < 0.02 * max(abs(fd), 50.0), (atom, dim, fd, rec)


def test_energies_finite_and_frames_spaced(cln025_run):
    run = load_run(cln025_run)
    assert run.positions.shape == (50, 166, 3)
    assert np.all(np.isfinite(run.potential_energy))
    dt = np.diff(run.time_ps)
    assert np.allclose(dt, 0.04, atol=1e-6)  # 10 steps of 4 fs


KILL_SCRIPT = """
import sys
from alcg.finegrained.md import MDSpec, run_md
from alcg.config.settings import ForceField, defaults
ff = defaults(ForceField, files=["amber14-all.xml", "implicit/gbn2.xml"], temperature_k=340.0, timestep_fs=4.0,
              hydrogen_mass_amu=1.5, platform="CPU")
run_md(sys.argv[1], sys.argv[2], sys.argv[3],
       MDSpec(n_steps=4000, record_interval=20, checkpoint_every=25, restraint_k=0.0, seed=7), ff, threads=1,
       progress=False)
"""


def test_killed_run_resumes_without_duplicates(cln025, tmp_path):
    out = tmp_path / "run.npz"
    partial = tmp_path / "run.npz.partial"
    args = [sys.executable, "-c", KILL_SCRIPT, str(cln025[0]), str(cln025[1]), str(out)]
    kill_after_checkpoint(args, partial / "0000000000.npz", timeout_s=240, grace_s=1.0)
    assert not out.exists()
    chunks = sorted(partial.glob("*.npz"))  # the checkpoint: allatom_md's own, one chunk per checkpoint
    sizes = [np.load(c)["potential_energy"].shape[0] for c in chunks]
    assert set(sizes) == {25} and [c.name for c in chunks] == [f"{25 * i:010d}.npz" for i in range(len(chunks))]
    done = sum(sizes)
    assert 0 < done < 200
    subprocess.run(args, check=True, timeout=600)
    run = load_run(out)
    assert len(run.potential_energy) == 200
    assert len(np.unique(run.time_ps)) == 200
    assert np.all(np.diff(run.time_ps) > 0)
    assert not partial.exists()
    assert not any(p.name.startswith(".run") for p in tmp_path.iterdir())  # no temp leftovers


def test_explicit_solvent_system_works_the_same_way(tmp_path, ff_cfg):
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.prepare import prepare_system

    import dataclasses

    from alcg.config.settings import System

    ff = dataclasses.replace(ff_cfg, solvent="explicit", platform="CPU")
    pdb, xml = tmp_path / "s.pdb", tmp_path / "s.xml"
    prepare_system(System(sequence="GAG", pdb=None, ph=7.0, allow_chain_breaks=False, starts={}), ff, None, pdb, xml)
    _, system = load_prepared(pdb, xml)
    names = {f.__class__.__name__ for f in system.getForces()}
    assert "MonteCarloBarostat" in names
    nb = next(f for f in system.getForces() if isinstance(f, mm.NonbondedForce))
    assert nb.getNonbondedMethod() == mm.NonbondedForce.PME
    run_md(pdb, xml, tmp_path / "r.npz", MDSpec(n_steps=40, record_interval=10, checkpoint_every=0, restraint_k=0.0, seed=1), ff, progress=False)
    run = load_run(tmp_path / "r.npz")
    assert run.positions.shape[1] == len(run.atom_indices) < system.getNumParticles()  # protein only
    assert np.all(np.isfinite(run.forces))


def _two_atom_system(tmp_path):
    """A two-atom harmonic molecule (Reference platform): MD in milliseconds."""
    import openmm.app as app

    from alcg.finegrained import system as omm
    from alcg.finegrained.structure import pdb_text

    top = app.Topology()
    chain = top.addChain()
    for name in ("CA", "CB"):
        top.addAtom(name, app.Element.getBySymbol("C"), top.addResidue("ALA", chain))
    system = mm.System()
    for _ in range(2):
        system.addParticle(12.0)
    bond = mm.HarmonicBondForce()
    bond.addBond(0, 1, 0.15, 1000.0)
    system.addForce(bond)
    pdb, xml = tmp_path / "m.pdb", tmp_path / "m.xml"
    pdb.write_text(pdb_text(top, np.array([[0.0, 0.0, 0.0], [0.15, 0.0, 0.0]])))
    xml.write_text(omm.serialize(system))
    return pdb, xml


def test_checkpoints_append_and_a_resumed_run_is_identical(tmp_path, monkeypatch):
    """Each checkpoint writes only its new frames (I/O linear in the run length); a run resumed
    from its chunks (or from an earlier version's one-file checkpoint) keeps the checkpointed
    frames bit for bit and continues from their State (the thermostat's random stream is not
    part of an OpenMM State, so later frames differ from an uninterrupted run's, as before)."""
    from alcg.formats import checkpoint
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.util.fileio import save_npz
    from alcg.config.settings import ForceField, defaults

    ff = defaults(ForceField, files=["amber14-all.xml"], temperature_k=300.0, timestep_fs=1.0, platform="Reference")
    pdb, xml = _two_atom_system(tmp_path)
    spec = MDSpec(n_steps=400, record_interval=4, checkpoint_every=10, restraint_k=0.0, seed=3)
    written = []
    real_save = checkpoint.save_npz  # chunk files only (alcg.formats.checkpoint writes them)

    def counting_save(path, metadata=None, **arrays):
        written.append(len(arrays["potential_energy"]))
        real_save(path, metadata, **arrays)
    monkeypatch.setattr(checkpoint, "save_npz", counting_save)
    run_md(pdb, xml, tmp_path / "full.npz", spec, ff, progress=False)
    assert written == [10] * 9  # 100 frames, a checkpoint every 10 but after the last: 90 frames written once
    full = load_run(tmp_path / "full.npz")

    class Killed(Exception):
        pass

    def killed_after(n_chunks):
        def save(path, metadata=None, **arrays):
            real_save(path, metadata, **arrays)
            if len(list(Path(path).parent.glob("*.npz"))) == n_chunks:
                raise Killed
        return save

    monkeypatch.setattr(checkpoint, "save_npz", killed_after(4))
    with pytest.raises(Killed):
        run_md(pdb, xml, tmp_path / "resumed.npz", spec, ff, progress=False)
    assert len(list((tmp_path / "resumed.npz.partial").glob("*.npz"))) == 4
    monkeypatch.setattr(checkpoint, "save_npz", real_save)
    run_md(pdb, xml, tmp_path / "resumed.npz", spec, ff, progress=False)
    assert not (tmp_path / "resumed.npz.partial").exists()
    resumed = load_run(tmp_path / "resumed.npz")
    for key in ("positions", "forces", "potential_energy"):
        np.testing.assert_array_equal(getattr(resumed, key)[:40], getattr(full, key)[:40], err_msg=key)
    np.testing.assert_allclose(resumed.time_ps, full.time_ps)  # 100 frames, none twice, none missing

    # an earlier version's checkpoint (every frame so far in <out>.partial.npz) still resumes
    monkeypatch.setattr(checkpoint, "save_npz", killed_after(3))
    with pytest.raises(Killed):
        run_md(pdb, xml, tmp_path / "legacy.npz", spec, ff, progress=False)
    partial = tmp_path / "legacy.npz.partial"
    chunks = [load_npz(c) for c in sorted(partial.glob("*.npz"))]
    merged = {k: np.concatenate([c[k] for c in chunks]) for k in ("positions", "forces", "potential_energy", "time_ps")}
    save_npz(tmp_path / "legacy.npz.partial.npz", metadata={"signature": chunks[-1]["metadata"]["signature"]},
             state_xml=chunks[-1]["state_xml"], **merged)
    shutil.rmtree(partial)
    monkeypatch.setattr(checkpoint, "save_npz", real_save)
    run_md(pdb, xml, tmp_path / "legacy.npz", spec, ff, progress=False)
    assert not (tmp_path / "legacy.npz.partial.npz").exists() and not partial.exists()
    legacy = load_run(tmp_path / "legacy.npz")
    np.testing.assert_array_equal(legacy.positions[:30], full.positions[:30])
    np.testing.assert_allclose(legacy.time_ps, full.time_ps)
