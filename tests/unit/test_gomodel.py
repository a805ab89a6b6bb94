"""The two-bead Go model: beads, contacts, forces, native minimum, Q, chirality, backmap."""
from __future__ import annotations

import dataclasses

import mdtraj as md
import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

from alcg.finegrained import gomodel
from alcg.util.errors import ConfigError, DataError
from alcg.config.settings import Go, defaults
from alcg.finegrained.structure import build_from_sequence, prepare

KT_340 = gomodel.KB_KJ_MOL_K * 340.0
def _go(**overrides) -> gomodel.Go:
    return defaults(Go, **overrides)


@pytest.fixture(scope="module")
def atomistic(cln025):
    """The project's prepared, minimized folded CLN025 (conftest fixture)."""
    return app.PDBFile(str(cln025[0]))


@pytest.fixture(scope="module")
def native(atomistic):
    return gomodel.native_beads(atomistic.topology, atomistic.positions, _go())


@pytest.fixture(scope="module")
def extended_xyz():
    """Bead positions of the extended CLN025 chain (PeptideBuilder + PDBFixer)."""
    prepared = prepare(build_from_sequence("YYDPETGTWY"), "extended CLN025", ph=7.0,
                       allow_chain_breaks=False)
    return gomodel.bead_positions(prepared.topology, prepared.positions)


def _context(system: mm.System, xyz: np.ndarray, integrator: mm.Integrator | None = None):
    integrator = integrator or mm.VerletIntegrator(0.001)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName("Reference"))
    context.setPositions(xyz)
    return context


def _energy(context: mm.Context, xyz: np.ndarray, groups: set[int]) -> float:
    context.setPositions(xyz)
    state = context.getState(getEnergy=True, groups=groups)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def _forces(context: mm.Context, xyz: np.ndarray, groups: set[int]) -> np.ndarray:
    context.setPositions(xyz)
    state = context.getState(getForces=True, groups=groups)
    return state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)


def _mirror_side_chain(xyz: np.ndarray, native: gomodel.GoNative, i: int) -> np.ndarray:
    """Reflect SC(i) through the plane of C-alpha(i-1), C-alpha(i), C-alpha(i+1)."""
    a, b, c = (xyz[native.ca[k]] for k in (i - 1, i, i + 1))
    normal = np.cross(a - b, c - b)
    normal /= np.linalg.norm(normal)
    out = xyz.copy()
    s = native.sc[i]
    out[s] = xyz[s] - 2.0 * np.dot(xyz[s] - b, normal) * normal
    return out


# --------------------------------------------------------------------------- beads


def test_beads_topology_and_contacts(native, atomistic):
    names = [(a.residue.name, a.name) for a in native.topology.atoms()]
    assert native.n_residues == 10 and native.n_beads == 19  # Gly7 has no side-chain bead
    assert native.sc[6] == -1 and ("GLY", "SC") not in names
    assert [r.name for r in native.topology.residues()] == [
        r.name for r in atomistic.topology.residues()]
    # the C-alpha bead sits on the CA atom; the side-chain bead on the side-chain centroid
    xyz = np.asarray(atomistic.positions.value_in_unit(unit.nanometer))
    tyr1 = list(atomistic.topology.residues())[0]
    ca = next(a.index for a in tyr1.atoms() if a.name == "CA")
    side = [a.index for a in tyr1.atoms()
            if a.element.symbol != "H" and a.name not in gomodel.BACKBONE_NAMES]
    assert len(side) == 8  # CB CG CD1 CD2 CE1 CE2 CZ OH
    np.testing.assert_allclose(native.xyz_nm[native.ca[0]], xyz[ca])
    np.testing.assert_allclose(native.xyz_nm[native.sc[0]], xyz[side].mean(axis=0))
    # contacts: residue pairs >= 3 apart, carried by side chains (C-alpha of Gly7)
    pairs = native.contact_residues
    assert len(pairs) >= 8 and np.all(pairs[:, 1] - pairs[:, 0] >= 3)
    assert [6, 1] not in pairs.tolist() and [1, 6] in pairs.tolist()  # Tyr2-Gly7
    k = pairs.tolist().index([1, 6])
    assert tuple(native.contact_beads[k]) == (native.sc[1], native.ca[6])
    d = np.linalg.norm(native.xyz_nm[native.contact_beads[:, 0]]
                       - native.xyz_nm[native.contact_beads[:, 1]], axis=1)
    np.testing.assert_allclose(native.contact_sigma_nm, d)
    # mapped masses add up to the atomistic peptide (hydrogens included)
    total = sum(a.element.mass.value_in_unit(unit.amu) for a in atomistic.topology.atoms())
    assert native.mapped_mass_amu.sum() == pytest.approx(total)
    assert native.mapped_mass_amu[native.sc[0]] == pytest.approx(107.1, abs=0.2)  # C7H7O


def test_a_tighter_cutoff_finds_fewer_contacts(atomistic, native):
    tight = gomodel.native_beads(atomistic.topology, atomistic.positions,
                                 _go(contact_cutoff_nm=0.35))
    far = gomodel.native_beads(atomistic.topology, atomistic.positions,
                               _go(min_sequence_separation=5))
    assert 0 < len(tight.contact_residues) < len(native.contact_residues)
    assert np.all(far.contact_residues[:, 1] - far.contact_residues[:, 0] >= 5)


def test_bead_pdb_round_trip(native, tmp_path):
    path = tmp_path / "beads.pdb"
    gomodel.write_pdb(path, native)
    traj = md.load(str(path))
    assert traj.n_atoms == native.n_beads and traj.n_residues == 10
    np.testing.assert_allclose(traj.xyz[0], native.xyz_nm, atol=1e-3)
    pdb = app.PDBFile(str(path))
    assert [a.name for a in pdb.topology.atoms()] == [a.name for a in native.topology.atoms()]


def test_native_file_round_trip_and_contact_map(native, tmp_path):
    path = tmp_path / "go_native.npz"
    gomodel.save_native(path, native)
    loaded = gomodel.load_native(path)
    for name in ("xyz_nm", "ca", "sc", "residue", "mapped_mass_amu", "contact_residues",
                 "contact_beads", "contact_sigma_nm"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(native, name))
    assert [(a.residue.name, a.residue.id, a.name) for a in loaded.topology.atoms()] == [
        (a.residue.name, a.residue.id, a.name) for a in native.topology.atoms()]
    assert loaded.topology.getNumBonds() == native.n_beads - 1
    with pytest.raises(ValueError):
        loaded.xyz_nm[0, 0] = 1.0  # read-only, as the native is frozen
    np.savez(tmp_path / "other.npz", xyz_nm=native.xyz_nm)
    with pytest.raises(DataError, match="not a Go native file"):
        gomodel.load_native(tmp_path / "other.npz")
    plot = tmp_path / "contact_map.png"
    gomodel.plot_contact_map(native, plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- system


def test_system_masses_groups_and_no_constraints(native):
    system = gomodel.create_system(native, _go())
    assert system.getNumParticles() == native.n_beads and system.getNumConstraints() == 0
    masses = [system.getParticleMass(i).value_in_unit(unit.amu) for i in range(native.n_beads)]
    np.testing.assert_allclose(masses, native.mapped_mass_amu)
    groups = {f.getName(): f.getForceGroup() for f in system.getForces()}
    assert groups == {f"go_{t}": g for t, g in gomodel.FORCE_GROUPS.items()}
    flat = gomodel.create_system(native, _go(bead_mass=110.0, cooperativity="none"))
    flat_masses = {flat.getParticleMass(i).value_in_unit(unit.amu) for i in range(native.n_beads)}
    assert flat_masses == {110.0}
    assert "go_desolvation" not in [f.getName() for f in flat.getForces()]


def test_term_counts(native):
    n_sc = int(np.sum(native.sc >= 0))
    counts = {f.getName(): f for f in gomodel.create_system(native, _go()).getForces()}
    assert counts["go_bonds"].getNumBonds() == 9 + n_sc
    assert counts["go_angles"].getNumAngles() == 8 + 2 * n_sc  # termini: one at their own C-alpha, one at the next
    assert counts["go_dihedrals"].getNumTorsions() == 7
    assert counts["go_chirality"].getNumBonds() == n_sc
    assert counts["go_contacts"].getNumBonds() == len(native.contact_residues)
    repulsive = {tuple(p) for p in gomodel.repulsive_pairs(native, _go())}
    assert not repulsive & {tuple(sorted(p)) for p in native.contact_beads.tolist()}
    assert all(abs(native.residue[a] - native.residue[b]) >= 3 for a, b in repulsive)
    n_far = sum(abs(native.residue[a] - native.residue[b]) >= 3
                for a in range(native.n_beads) for b in range(a + 1, native.n_beads))
    assert len(repulsive) + len(native.contact_beads) == n_far


def test_bad_settings_are_refused(native):
    with pytest.raises(ConfigError, match="cooperativity"):
        gomodel.create_system(native, _go(cooperativity="attraction"))
    with pytest.raises(ConfigError, match="bead_mass"):
        gomodel.create_system(native, _go(bead_mass="residue"))


@pytest.mark.parametrize("term", list(gomodel.FORCE_GROUPS))
def test_forces_equal_finite_differences(native, extended_xyz, term):
    # with a solvent-separated well, so that both Gaussians of the desolvation term are tested
    system = gomodel.create_system(native, _go(solvent_separated_well_per_epsilon=0.3))
    context = _context(system, native.xyz_nm)
    group = {gomodel.FORCE_GROUPS[term]}
    rng = np.random.default_rng(7)
    # near native (every term strained) and a half-way chain (contacts stretched across the
    # desolvation barrier and the solvent-separated well)
    for xyz in (native.xyz_nm + rng.normal(0.0, 0.02, native.xyz_nm.shape),
                0.6 * native.xyz_nm + 0.4 * extended_xyz):
        forces = _forces(context, xyz, group)
        h = 1e-5
        numeric = np.zeros_like(xyz)
        for index in np.ndindex(*xyz.shape):
            step = np.zeros_like(xyz)
            step[index] = h
            numeric[index] = -(_energy(context, xyz + step, group)
                               - _energy(context, xyz - step, group)) / (2 * h)
        scale = max(np.abs(numeric).max(), 1.0)
        assert np.abs(forces - numeric).max() < 1e-5 * scale, term
        assert np.abs(numeric).max() > 1e-3, f"{term}: no force to compare"


def test_native_is_a_minimum_of_the_native_terms(native):
    system = gomodel.create_system(native, _go())
    context = _context(system, native.xyz_nm)
    groups = gomodel.force_groups(gomodel.NATIVE_TERMS)
    assert np.abs(_forces(context, native.xyz_nm, groups)).max() < 1e-8
    # the desolvation term is switched off at native distances: no force, no energy
    desolvation = {gomodel.FORCE_GROUPS["desolvation"]}
    assert np.abs(_forces(context, native.xyz_nm, desolvation)).max() < 1e-8
    assert _energy(context, native.xyz_nm, desolvation) == pytest.approx(0.0, abs=1e-10)
    e0 = _energy(context, native.xyz_nm, groups)
    assert e0 == pytest.approx(-len(native.contact_beads) * _go().epsilon_kj_mol)
    rng = np.random.default_rng(3)
    for _ in range(20):
        direction = rng.normal(size=native.xyz_nm.shape)
        direction /= np.linalg.norm(direction)
        rises = [_energy(context, native.xyz_nm + s * direction, groups) - e0
                 for s in (-0.01, 0.005, 0.01)]
        assert min(rises) > 0
        assert rises[2] == pytest.approx(4 * rises[1], rel=0.1)  # locally quadratic


def test_repulsion_is_below_the_native_contact_distances(native):
    repulsive = gomodel.repulsive_pairs(native, _go())
    d = np.linalg.norm(native.xyz_nm[repulsive[:, 0]] - native.xyz_nm[repulsive[:, 1]], axis=1)
    assert d.min() > _go().repulsion_radius_nm
    # the shortest native contact was 0.3996-0.408 nm over runs before preparation was made
    # repeatable (2026-12-07), and another CPU gives other floating point, so this holds to
    # 1 %; a native contact well inside the repulsion radius still fails
    assert native.contact_sigma_nm.min() > 0.99 * _go().repulsion_radius_nm


# --------------------------------------------------------------------------- Q


def test_q_is_one_at_native_and_drops_for_the_extended_chain(native, extended_xyz):
    assert gomodel.fraction_native_contacts(native.xyz_nm, native) == 1.0
    q_ext = gomodel.fraction_native_contacts(extended_xyz, native)
    assert q_ext < 0.2
    frames = np.stack([native.xyz_nm, extended_xyz, 0.5 * (native.xyz_nm + extended_xyz)])
    q = gomodel.fraction_native_contacts(frames, native)
    assert q.shape == (3,) and q[0] == 1.0 and q[1] == pytest.approx(q_ext)
    assert q[1] < q[2] < 1.0
    # a contact squeezed below its native distance still counts as formed, never above 1
    assert gomodel.fraction_native_contacts(0.95 * native.xyz_nm, native) == 1.0


# --------------------------------------------------------------------------- chirality


def _chiral_residues(native: gomodel.GoNative) -> list[int]:
    """Interior side chains clearly out of their C-alpha plane: |chi0| > 0.5, the chirality
    term's own normalized volume (Pro4, Glu5, Thr6: 0.6-0.95 over minimizations; the next
    largest, Thr8, 0.31-0.35, so the set does not depend on the minimization's last digits)."""
    chi0 = gomodel.chirality_volumes(native.xyz_nm, native)
    residues = np.flatnonzero(native.sc >= 0)  # the order of side_chain_torsions
    return [int(r) for r, c in zip(residues, chi0)
            if 0 < r < native.n_residues - 1 and abs(c) > 0.5]


def test_mirrored_side_chain_costs_chirality_energy_only(native):
    system = gomodel.create_system(native, _go())
    context = _context(system, native.xyz_nm)
    chiral = _chiral_residues(native)
    assert len(chiral) >= 3  # Pro4, Glu5, Thr6 in the hairpin turn
    local = gomodel.force_groups(("bonds", "angles"))
    chirality = {gomodel.FORCE_GROUPS["chirality"]}
    for i in chiral:
        mirrored = _mirror_side_chain(native.xyz_nm, native, i)
        # bonds and angles cannot tell the mirror image apart ...
        assert _energy(context, mirrored, local) == pytest.approx(0.0, abs=1e-9)
        # ... the chirality term can: the mirror flips chi0's sign, 0.5 k eps (2 chi0)^2,
        # more than 7 kT for |chi0| > 0.5
        k = _go().chirality_k_per_epsilon * _go().epsilon_kj_mol
        chi0 = gomodel.chirality_volumes(native.xyz_nm, native)[list(np.flatnonzero(native.sc >= 0)).index(i)]
        energy = _energy(context, mirrored, chirality)
        assert energy == pytest.approx(2.0 * k * chi0**2, rel=1e-4)
        assert energy > 5 * KT_340
        sides = gomodel.chirality_sides(mirrored, native)
        assert np.sum(sides != gomodel.chirality_sides(native.xyz_nm, native)) == 1


def test_langevin_run_keeps_side_chains_on_their_native_side(native):
    system = gomodel.create_system(native, _go())
    integrator = mm.LangevinMiddleIntegrator(340 * unit.kelvin, 1.0 / unit.picosecond,
                                             5 * unit.femtosecond)
    integrator.setRandomNumberSeed(11)
    context = _context(system, native.xyz_nm, integrator)
    context.setVelocitiesToTemperature(340 * unit.kelvin, 11)
    frames = []
    for _ in range(100):  # 50 ps
        integrator.step(100)
        frames.append(context.getState(getPositions=True).getPositions(asNumpy=True)
                      .value_in_unit(unit.nanometer))
    frames = np.asarray(frames)
    chiral = [k for k, r in enumerate(np.flatnonzero(native.sc >= 0))
              if r in _chiral_residues(native)]
    sides = gomodel.chirality_sides(frames, native)[:, chiral]
    assert np.all(sides == gomodel.chirality_sides(native.xyz_nm, native)[chiral])
    bonds = np.linalg.norm(frames[:, native.ca[1:]] - frames[:, native.ca[:-1]], axis=-1)
    native_bonds = np.linalg.norm(np.diff(native.xyz_nm[native.ca], axis=0), axis=-1)
    assert np.abs(bonds - native_bonds).max() < 0.08  # thermal sd 0.012 nm: stable at 5 fs, no blow-up


# --------------------------------------------------------------------------- backmap


def test_place_side_chains_reproduces_the_native(native):
    placed = gomodel.place_side_chains(native.xyz_nm[native.ca], native)
    np.testing.assert_allclose(placed, native.xyz_nm, atol=1e-12)
    # rigid motion of the C-alpha trace moves the side chains with it
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                    [0, 0, 1]])
    moved = native.xyz_nm @ rot.T + np.array([1.0, -2.0, 0.5])
    placed = gomodel.place_side_chains(np.stack([moved[native.ca]] * 2), native)
    assert placed.shape == (2, native.n_beads, 3)
    np.testing.assert_allclose(placed[1], moved, atol=1e-12)


def test_placed_side_chains_have_native_bonds_and_chirality(native, extended_xyz):
    placed = gomodel.place_side_chains(extended_xyz[native.ca], native)
    system = gomodel.create_system(native, _go())
    context = _context(system, placed)
    has_sc = native.sc >= 0
    bond = np.linalg.norm(placed[native.sc[has_sc]] - placed[native.ca[has_sc]], axis=1)
    native_bond = np.linalg.norm(native.xyz_nm[native.sc[has_sc]]
                                 - native.xyz_nm[native.ca[has_sc]], axis=1)
    np.testing.assert_allclose(bond, native_bond, atol=1e-12)
    np.testing.assert_array_equal(gomodel.chirality_sides(placed, native),
                                  gomodel.chirality_sides(native.xyz_nm, native))
    assert _energy(context, placed, {gomodel.FORCE_GROUPS["chirality"]}) < 2 * KT_340  # the C-alpha angles differ
    with pytest.raises(ValueError, match="C-alpha positions"):
        gomodel.place_side_chains(extended_xyz, native)


def test_settings_are_frozen_and_have_no_defaults():
    go = _go()
    with pytest.raises(dataclasses.FrozenInstanceError):
        go.epsilon_kj_mol = 1.0
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(gomodel.Go))


def test_c_alpha_q_is_one_at_the_native_structure_and_drops_when_unfolded(native):
    """The C-alpha Q the evaluation compares model and reference on (CG frames have no side
    chains): 1 at the native C-alphas, below 0.5 for a stretched chain."""
    ca = native.xyz_nm[native.ca]
    assert gomodel.ca_fraction_native_contacts(ca[None], native)[0] == pytest.approx(1.0)
    stretched = ca * 2.0
    assert gomodel.ca_fraction_native_contacts(stretched[None], native)[0] < 0.5
