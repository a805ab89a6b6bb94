"""Force maps: every map is valid (weights reproduce the C-alpha map, rigid groups share one
weight), a map that unties a constrained hydrogen is rejected and would change the mean force,
and the optimal map leaves less noise than today's on frames it was not fitted on."""
from __future__ import annotations

import numpy as np
import openmm as mm
import openmm.app as app
import pytest

from alcg.config.settings import ForceField, System, defaults, parse
from alcg.finegrained import force_maps as FM
from alcg.finegrained.mapping import CAMapping
from alcg.finegrained.md import MDSpec, run_md
from alcg.finegrained.models import GoModel
from alcg.formats import run_file


@pytest.fixture(scope="module")
def atomistic(cln025, cln025_run):
    """(system, topology, mapping, run) of the short CLN025 run (HBonds constraints)."""
    system = mm.XmlSerializer.deserialize(cln025[1].read_text())
    topology = app.PDBFile(str(cln025[0])).topology
    return system, topology, CAMapping(topology, system), run_file.load(cln025_run)


@pytest.fixture(scope="module")
def go_run(tmp_path_factory, test_config):
    """(system, topology, mapping, run) of 400 Go-model frames 0.5 ps apart at 340 K."""
    ff = defaults(ForceField, files=["amber14-all.xml"], temperature_k=340.0, timestep_fs=5.0,
                  platform="Reference", kind="go")
    out = tmp_path_factory.mktemp("go_fm")
    model, system = GoModel(ff), parse(System, test_config["system"])
    native = model.native(system, test_config["system"]["starts"]["folded"], seed=0)
    from alcg.finegrained import gomodel

    gomodel.save_native(out / "native.npz", native)
    model.prepare(system, test_config["system"]["starts"]["folded"], str(out / "native.npz"), out / "f.pdb",
                  out / "f.xml", seed=0)
    run_md(out / "f.pdb", out / "f.xml", out / "run.npz",
           MDSpec(n_steps=40_000, record_interval=100, checkpoint_every=10**6, restraint_k=0.0,
                  equilibration_steps=2000, seed=5), ff, progress=False)
    sys_ = mm.XmlSerializer.deserialize((out / "f.xml").read_text())
    top = app.PDBFile(str(out / "f.pdb")).topology
    return sys_, top, CAMapping(top, sys_), run_file.load(out / "run.npz")


def _maps(system, topology, mapping, run, frames=slice(None), ridge=1e-6):
    return {"constrained": FM.constrained(mapping, run.atom_indices),
            "residue": FM.residue(topology, mapping, run.atom_indices, system),
            "optimal": FM.optimal(run.forces[frames], system, mapping, run.atom_indices, ridge)}


def test_every_map_is_valid_on_atomistic_cln025(atomistic):
    system, topology, mapping, run = atomistic
    for kind, fmap in _maps(*atomistic).items():
        assert FM.violations(fmap, system, mapping) == [], kind
        for i, j, _ in (system.getConstraintParameters(k) for k in range(system.getNumConstraints())):
            local = {int(a): k for k, a in enumerate(fmap.atom_indices)}
            np.testing.assert_allclose(fmap.weights[:, local[i]], fmap.weights[:, local[j]], atol=1e-12)


def test_constrained_map_equals_the_mapping_it_replaces(atomistic):
    system, topology, mapping, run = atomistic
    np.testing.assert_allclose(FM.constrained(mapping, run.atom_indices).apply(run.forces),
                               mapping.map_forces(run.forces, run.atom_indices), rtol=1e-5, atol=1e-3)


def test_untied_hydrogen_is_rejected_and_would_change_the_mean_force(atomistic):
    """Weight 0 on bead 0's HA (constrained to its C-alpha) is refused; and it matters: the
    force-field force on HA along the C-alpha-HA bond has a mean far from zero (the constraint
    force it lacks), so that map's labels would average to another mean force."""
    system, topology, mapping, run = atomistic
    good = FM.constrained(mapping, run.atom_indices)
    ca = int(mapping.ca_indices[0])
    hydrogens = [int(i) for i in mapping.force_groups[0] if int(i) != ca]
    assert hydrogens, "bead 0 has no constrained hydrogen"
    local = {int(a): k for k, a in enumerate(run.atom_indices)}
    ha_local = local[hydrogens[0]]
    w = good.weights.copy()
    w[0, ha_local] = 0.0
    bad = FM.ForceMap("untied", good.atom_indices, w)
    assert any("unequal weights on rigidly constrained atoms" in v for v in FM.violations(bad, system, mapping))
    x = run.positions[:, [local[ca], ha_local]]
    bond = (x[:, 1] - x[:, 0]) / np.linalg.norm(x[:, 1] - x[:, 0], axis=1, keepdims=True)
    along = np.einsum("nx,nx->n", run.forces[:, ha_local], bond)
    assert abs(along.mean()) > 5 * along.std(ddof=1) / np.sqrt(len(along))


def test_a_rigid_water_like_molecule_gets_one_weight():
    """Two C-alpha beads and a rigid three-site molecule: its atoms share one weight per bead."""
    top = app.Topology()
    chain = top.addChain()
    for name in ("ALA", "GLY"):
        top.addAtom("CA", app.element.carbon, top.addResidue(name, chain))
    water = top.addResidue("HOH", chain)
    for name, el in (("O", app.element.oxygen), ("H1", app.element.hydrogen), ("H2", app.element.hydrogen)):
        top.addAtom(name, el, water)
    system = mm.System()
    for mass in (12.0, 12.0, 16.0, 1.0, 1.0):
        system.addParticle(mass)
    for i, j, d in ((2, 3, 0.1), (2, 4, 0.1), (3, 4, 0.16)):
        system.addConstraint(i, j, d)
    mapping = CAMapping(top, system)
    rng = np.random.default_rng(0)
    common = rng.normal(size=(500, 1, 3))
    forces = rng.normal(size=(500, 5, 3)) * 0.1 + np.concatenate([common, -common, common, common, common], axis=1)
    fmap = FM.optimal(forces, system, mapping, np.arange(5), 1e-6)
    assert FM.violations(fmap, system, mapping) == []
    assert np.ptp(fmap.weights[:, 2:], axis=1).max() < 1e-12 and abs(fmap.weights[0, 2]) > 0.1
    assert FM.second_moment(fmap, forces) < FM.second_moment(FM.constrained(mapping, np.arange(5)), forces)


def test_two_rigidly_joined_c_alphas_have_no_valid_map(atomistic):
    system, topology, mapping, run = atomistic
    joined = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    joined.addConstraint(int(mapping.ca_indices[0]), int(mapping.ca_indices[1]), 0.38)
    with pytest.raises(Exception, match="two C-alphas are joined"):
        FM.optimal(run.forces, joined, mapping, run.atom_indices, 1e-6)


def test_optimal_map_leaves_less_noise_on_frames_it_was_not_fitted_on(go_run):
    """Go CLN025, fitted on the first 200 frames, scored on the last 200: well below the C-alpha
    label (all valid maps share the mean force, so a lower second moment is less noise). On the
    Go model the residue sum is already near the floor (the mean force is ~40,000 of its
    ~45,000 (kJ/mol/nm)^2), so there the optimal map only matches it out of sample; on the
    frames it was fitted on it is at most the residue sum, which is one of the maps it searched."""
    system, topology, mapping, run = go_run
    maps = _maps(system, topology, mapping, run, frames=slice(0, 200))
    held = {k: FM.second_moment(f, run.forces[200:]) for k, f in maps.items()}
    fit = {k: FM.second_moment(f, run.forces[:200]) for k, f in maps.items()}
    # optimal/residue out of sample: 0.975-1.032 over 12 seeds (review, 2026-12-06)
    assert held["optimal"] < 0.8 * held["constrained"] and held["optimal"] < 1.10 * held["residue"], held
    assert fit["optimal"] <= fit["residue"] * (1 + 1e-9) < fit["constrained"], fit
    assert all(FM.violations(f, system, mapping) == [] for f in maps.values())


def _block_z(a: np.ndarray, b: np.ndarray, n_blocks: int = 20) -> float:
    """Largest |z| of the per-component mean difference of two label series (block SE); a
    component where the two are identical (a glycine: no side chain) counts as z = 0."""
    d = (a - b).reshape(n_blocks, -1, *a.shape[1:]).mean(axis=1)
    se = d.std(0, ddof=1) / np.sqrt(n_blocks)
    same = se == 0
    assert np.all(d.mean(0)[same] == 0)
    return float(np.max(np.abs(d.mean(0)[~same]) / se[~same]))


def test_valid_maps_share_the_mean_force_and_an_invalid_one_does_not(go_run):
    """At one configuration with the C-alphas fixed (mass 0), the residue and optimal labels
    average to the constrained label's mean force; a map with weight 0.5 on the own C-alpha
    (breaking the coordinate map) averages to another."""
    system, topology, mapping, run = go_run
    maps = _maps(system, topology, mapping, run, frames=slice(0, 200))
    held = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    for i in mapping.ca_indices:
        held.setParticleMass(int(i), 0.0)
    ff = defaults(ForceField, files=["amber14-all.xml"], temperature_k=340.0, timestep_fs=5.0,
                  platform="Reference", kind="go")
    from alcg.finegrained import system as omm
    import openmm.unit as u

    sim = omm.make_simulation(topology, held, ff, seed=9, threads=1)
    sim.context.setPositions(run.positions[-1] * u.nanometer)
    sim.context.setVelocitiesToTemperature(340.0 * u.kelvin, 9)
    sim.step(2000)
    forces = []
    for _ in range(2000):
        sim.step(50)
        forces.append(sim.context.getState(getForces=True).getForces(asNumpy=True)._value)
    f = np.asarray(forces)
    ref = maps["constrained"].apply(f)
    z = {k: _block_z(maps[k].apply(f), ref) for k in ("residue", "optimal")}
    assert max(z.values()) < 5.5, z  # max |t_19| of 30 components: seen 2.1-2.5
    w = maps["constrained"].weights.copy()
    local = {int(a): k for k, a in enumerate(run.atom_indices)}
    w[0, local[int(mapping.ca_indices[0])]] = 0.5
    invalid = FM.ForceMap("invalid", maps["constrained"].atom_indices, w)
    assert FM.violations(invalid, system, mapping)
    z_invalid = _block_z(invalid.apply(f), ref)
    assert z_invalid > 10, z_invalid  # twice the valid bound; seen 16 and 129: set by the held frame


def test_residue_map_refused_where_a_constraint_crosses_residues(atomistic):
    system, topology, mapping, run = atomistic
    joined = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    atoms = list(topology.atoms())
    c0 = next(a.index for a in atoms if a.residue.index == 0 and a.name == "C")
    n1 = next(a.index for a in atoms if a.residue.index == 1 and a.name == "N")
    joined.addConstraint(c0, n1, 0.133)
    with pytest.raises(Exception, match="residue force map is not valid"):
        FM.residue(topology, mapping, run.atom_indices, joined)
