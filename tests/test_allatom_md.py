"""The OpenMM oracle: recorded forces are -grad E; a killed run resumes without duplicates."""
import subprocess
import sys

import numpy as np
import openmm as mm
import openmm.unit as unit

from alcg.aarun import load as load_run
from alcg.prepare import load_prepared
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
from alcg.allatom_md import MDSpec, run_md
from alcg.settings import ForceField, defaults
ff = defaults(ForceField, files=["amber14-all.xml", "implicit/gbn2.xml"], temperature_k=340.0, timestep_fs=4.0,
              hydrogen_mass_amu=1.5, platform="CPU")
run_md(sys.argv[1], sys.argv[2], sys.argv[3],
       MDSpec(n_steps=4000, record_interval=20, checkpoint_every=25, restraint_k=0.0, seed=7), ff, threads=1,
       progress=False)
"""


def test_killed_run_resumes_without_duplicates(cln025, tmp_path):
    out = tmp_path / "run.npz"
    partial = tmp_path / "run.npz.partial.npz"
    args = [sys.executable, "-c", KILL_SCRIPT, str(cln025[0]), str(cln025[1]), str(out)]
    kill_after_checkpoint(args, partial, timeout_s=240, grace_s=1.0)
    assert not out.exists()
    done = dict(np.load(partial))["potential_energy"].shape[0]  # the checkpoint: allatom_md's own
    assert 0 < done < 200
    subprocess.run(args, check=True, timeout=600)
    run = load_run(out)
    assert len(run.potential_energy) == 200
    assert len(np.unique(run.time_ps)) == 200
    assert np.all(np.diff(run.time_ps) > 0)
    assert not partial.exists()
    assert not any(p.name.startswith(".run") for p in tmp_path.iterdir())  # no temp leftovers


def test_explicit_solvent_system_works_the_same_way(tmp_path, ff_cfg):
    from alcg.allatom_md import MDSpec, run_md
    from alcg.prepare import prepare_system

    import dataclasses

    from alcg.settings import System

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
