"""Mean-force labels on a case with a known answer, and labels carry no restraint force.

The analytic case: a fixed particle P at the origin, the bead A (a C-alpha) bonded to P by a
zero-length spring k_a, and a hidden particle h on zero-length springs k_h to A and k_p to P.
Integrating h out gives the PMF of A: 0.5 (k_a + k_eff) |R|^2 with k_eff = k_h k_p / (k_h + k_p),
so the mean force at R0 is exactly -(k_a + k_eff) R0, whatever the temperature.
"""
import numpy as np
import openmm as mm
import openmm.app as app
import pytest

from alcg.finegrained import meanforce
from alcg.finegrained.meanforce_query import MeanForceSpec, estimate, sample
from alcg.config.settings import ForceField, defaults

K_A, K_H, K_P, K_R = 500.0, 1000.0, 1000.0, 1000.0
H = K_A + K_H * K_P / (K_H + K_P)  # PMF curvature, kJ/mol/nm^2
R0 = np.array([0.10, 0.05, -0.08])
EXACT = -H * R0
FF = defaults(ForceField, files=["amber14-all.xml"], temperature_k=300.0, timestep_fs=2.0, platform="Reference",
              friction_per_ps=5.0)
SPEC = MeanForceSpec(n_steps=40000, record_interval=10, equilibration_steps=500, restraint_k=K_R, n_blocks=10,
                     seed=7)


def _analytic_system(with_springs: bool = True) -> tuple[mm.System, app.Topology, np.ndarray]:
    top = app.Topology()
    chain = top.addChain()
    carbon = app.Element.getBySymbol("C")
    top.addAtom("CA", carbon, top.addResidue("ALA", chain))
    other = top.addResidue("UNK", chain)
    top.addAtom("P", carbon, other)
    top.addAtom("HID", carbon, other)
    system = mm.System()
    for mass in (12.0, 0.0, 12.0):  # A, P (fixed), h
        system.addParticle(mass)
    springs = mm.CustomBondForce("0.5*k*r^2")
    springs.addPerBondParameter("k")
    if with_springs:
        for i, j, k in ((0, 1, K_A), (2, 0, K_H), (2, 1, K_P)):
            springs.addBond(i, j, [k])
    system.addForce(springs)
    xyz = np.array([R0, [0.0, 0.0, 0.0], 0.5 * R0])
    return system, top, xyz


@pytest.fixture(scope="module")
def restrained():
    system, top, xyz = _analytic_system()
    return sample(system, top, xyz, SPEC, FF, hold="restrained")


def test_fixed_bead_mean_force_is_exact_within_its_error():
    system, top, xyz = _analytic_system()
    s = sample(system, top, xyz, SPEC, FF)
    assert s["held"] == "fixed"
    assert np.allclose(s["ca"], R0[None, None], atol=1e-6)  # mass 0: the bead never moves
    label, raw = estimate(s, SPEC)
    assert raw is None
    z = (label.force[0] - EXACT) / np.sqrt(label.sem2[0])
    assert np.all(np.abs(z) < 4.5), (label.force, EXACT, np.sqrt(label.sem2))
    assert np.sqrt(label.var) < 3.0  # the error it states is small next to |F| ~ 137 kJ/mol/nm


def test_restrained_average_is_biased_and_umbrella_integration_corrects_it(restrained):
    label, raw = estimate(restrained, SPEC)
    # uncorrected: k (k + H)^-1 F = 0.5 F here, many standard errors away from F
    assert np.allclose(raw.force[0], K_R / (K_R + H) * EXACT, atol=5 * np.sqrt(raw.sem2[0]).max() + 1.0)
    assert np.all(np.abs(raw.force[0] - EXACT) > 10 * np.sqrt(raw.sem2[0]))
    # umbrella integration: back to F, within its stated (jackknife) error
    z = (label.force[0] - EXACT) / np.sqrt(label.sem2[0])
    assert np.all(np.abs(z) < 4.5), (label.force, EXACT, np.sqrt(label.sem2))
    assert np.linalg.norm(label.force[0] - EXACT) < 0.1 * np.linalg.norm(EXACT)


def test_restrained_mapped_average_equals_minus_the_mean_restraint_force(restrained):
    """Force balance on the held bead: <f_mapped> = k (<R> - R0), so the mapped forces hold no
    restraint force (with it, their mean would be ~0)."""
    mapped = meanforce.block_mean(restrained["bead_forces"], SPEC.n_blocks)
    balance = meanforce.restrained_average(restrained["ca"], restrained["r0"], K_R, SPEC.n_blocks)
    assert np.allclose(mapped.force, balance.force, atol=5 * np.sqrt(mapped.sem2 + balance.sem2).max())
    assert np.linalg.norm(mapped.force) > 30.0


def test_a_restrained_run_records_no_restraint_force():
    system, top, xyz = _analytic_system(with_springs=False)
    spec = MeanForceSpec(n_steps=200, record_interval=10, equilibration_steps=0, restraint_k=K_R, n_blocks=2, seed=1)
    s = sample(system, top, xyz, spec, FF, hold="restrained")
    assert np.abs(s["ca"] - R0).max() > 1e-4  # the bead moved, so the restraint pulled on it
    assert np.all(s["bead_forces"] == 0.0) and np.all(s["energy"] == 0.0)


def test_block_mean_standard_error_matches_independent_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(4000, 2))
    mf = meanforce.block_mean(x, 20)
    assert np.allclose(mf.force, 3.0, atol=0.15)
    assert np.allclose(np.sqrt(mf.sem2), 2.0 / np.sqrt(4000), rtol=0.5)


def test_umbrella_estimate_is_unbiased_with_few_samples_in_many_dimensions():
    """30 coordinates (10 C-alphas), 100 independent Gaussian samples: the plain kT S^-1 (mu - R0)
    is 99/68 = 1.46x the mean force on average (inverse-Wishart mean); the corrected estimate
    is unbiased."""
    rng = np.random.default_rng(3)
    d, n, kt, sigma = 30, 100, 2.83, 0.01
    shift = rng.normal(0.0, 0.005, d)
    exact = kt * shift / sigma ** 2
    samples = [rng.normal(shift, sigma, (n, d)) for _ in range(300)]
    est = np.stack([meanforce.umbrella_mean_force(x, np.zeros(d), kt, 2).force for x in samples])
    plain = np.stack([kt * np.linalg.solve(np.cov(x.T), x.mean(0)) for x in samples])
    ratio = float((est @ exact).mean() / (exact @ exact))
    plain_ratio = float((plain @ exact).mean() / (exact @ exact))
    assert abs(ratio - 1.0) < 0.04, ratio
    assert abs(plain_ratio - 99 / 68) < 0.06, plain_ratio  # the bias the correction removes


def test_too_few_samples_name_the_setting():
    with pytest.raises(Exception, match="oracle.length_ps"):
        meanforce.umbrella_mean_force(np.zeros((5, 3)), np.zeros(3), 2.5, 2)


def test_labels_carry_variances_through_projection_and_old_files(tmp_path):
    """A mean-force query's label and its variance reach the dataset; instantaneous frames get
    their run's force variance; a dataset file without ``force_var`` (older) still reads."""
    from alcg.formats import dataset
    from alcg.finegrained import system as omm
    from alcg.util.fileio import load_npz, save_npz
    from alcg.finegrained.mapping import CAMapping, project_runs
    from alcg.finegrained.meanforce_query import run_mean_force
    from alcg.finegrained.structure import pdb_text

    system, top, xyz = _analytic_system()
    pdb, xml = tmp_path / "a.pdb", tmp_path / "a.xml"
    pdb.write_text(pdb_text(top, xyz))
    xml.write_text(omm.serialize(system))
    out = tmp_path / "mf.npz"
    meta = run_mean_force(pdb, xml, out, SPEC, FF)
    assert meta["simulated_ps"] == pytest.approx((SPEC.n_steps + SPEC.equilibration_steps) * 2e-3)
    data = project_runs([out], CAMapping(top, system), 1)
    assert data.n_frames == 1 and np.allclose(data.coords[0, 0], R0, atol=1e-6)
    assert np.allclose(data.forces[0, 0], EXACT, atol=5 * np.sqrt(data.force_var[0]) + 1.0)
    assert 0 < data.force_var[0] < 10.0
    path = tmp_path / "d.npz"
    inst = dataset.with_frames(data, coords=np.repeat(data.coords, 4, 0), forces=np.arange(12.0).reshape(4, 1, 3),
                               source=np.array(["r"] * 4), frame=np.arange(4), round=np.zeros(4, np.int64),
                               traj=np.array(["r"] * 4), split=np.array(["train"] * 4))
    assert np.allclose(inst.force_var, np.arange(12.0).reshape(4, 3).var(0, ddof=1).mean())
    dataset.save(path, dataset.merge([inst, data]))
    raw = load_npz(path)
    old = {k: v for k, v in raw.items() if k not in ("force_var", "metadata")}
    save_npz(tmp_path / "old.npz", metadata=raw["metadata"], **old)
    back, migrated = dataset.load(path), dataset.load(tmp_path / "old.npz")
    assert np.allclose(back.force_var, np.r_[inst.force_var, data.force_var])
    assert np.allclose(migrated.force_var[:4], inst.force_var) and np.isnan(migrated.force_var[4])
