"""The fine-grained model interface on the Go model: prepare, backmap, oracle, the C-alpha map."""
from __future__ import annotations

import dataclasses

import numpy as np
import openmm.app as app
import pytest

from alcg.formats import run_file
from alcg.finegrained import gomodel
from alcg.finegrained.models import Atomistic, GoModel, for_forcefield
from alcg.config.settings import Backmap, ForceField, System, defaults


@pytest.fixture(scope="module")
def go_ff(test_config) -> ForceField:
    ff = defaults(ForceField, files=["amber14-all.xml", "implicit/gbn2.xml"], temperature_k=340.0,
                  timestep_fs=5.0, platform="Reference", kind="go")
    return ff


@pytest.fixture(scope="module")
def go_prepared(tmp_path_factory, test_config, go_ff):
    """The Go model of CLN025: native file, folded and extended starts (PDB + System XML)."""
    from alcg.config.settings import parse

    out = tmp_path_factory.mktemp("go")
    system = parse(System, test_config["system"])
    model = GoModel(go_ff)
    native = model.native(system, test_config["system"]["starts"]["folded"], seed=0)
    gomodel.save_native(out / "native.npz", native)
    for name in ("folded", "extended"):
        model.prepare(system, test_config["system"]["starts"][name], str(out / "native.npz"), out / f"{name}.pdb",
                      out / f"{name}.xml", seed=0)
    return out


def test_for_forcefield_picks_the_model(go_ff):
    assert isinstance(for_forcefield(go_ff), GoModel)
    assert isinstance(for_forcefield(dataclasses.replace(go_ff, kind="atomistic")), Atomistic)
    assert for_forcefield(go_ff).reference_forcefield().friction_per_ps == go_ff.go.reference_friction_per_ps


def test_go_starts_are_beads_in_one_system(go_prepared):
    folded = app.PDBFile(str(go_prepared / "folded.pdb"))
    names = {a.name for a in folded.topology.atoms()}
    assert names == {"CA", "SC"} and folded.topology.getNumResidues() == 10
    assert (go_prepared / "folded.xml").read_text() == (go_prepared / "extended.xml").read_text()
    native = gomodel.load_native(go_prepared / "native.npz")
    q = gomodel.fraction_native_contacts(np.asarray(folded.getPositions(asNumpy=True)._value)[None], native)
    ext = app.PDBFile(str(go_prepared / "extended.pdb"))
    q_ext = gomodel.fraction_native_contacts(np.asarray(ext.getPositions(asNumpy=True)._value)[None], native)
    assert q[0] > 0.9 and q_ext[0] < 0.3


def test_go_mapping_uses_the_systems_masses(go_prepared, go_ff):
    from alcg.stages.finegrained import mapping_of

    mapping, _ = mapping_of(str(go_prepared / "folded.pdb"), str(go_prepared / "folded.xml"))
    native = gomodel.load_native(go_prepared / "native.npz")
    expected = np.bincount(native.residue, weights=gomodel.bead_masses(native, go_ff.go))
    np.testing.assert_allclose(mapping.bead_masses, expected)
    assert all(len(g) == 1 for g in mapping.force_groups)  # nothing is constrained to a C-alpha bead


def test_go_backmap_places_side_chains_and_the_oracle_runs_from_it(go_prepared, go_ff, tmp_path):
    """A C-alpha target away from any template: the side chains are placed (native chirality),
    the restrained minimization meets the target, the checks pass, and the oracle MD runs."""
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.backmap import RestrainedMinimizationBackmapper

    pdb = app.PDBFile(str(go_prepared / "extended.pdb"))
    model = for_forcefield(go_ff)
    mapper = RestrainedMinimizationBackmapper(pdb.topology, model.backmap_system(pdb.topology, go_prepared / "folded.xml"),
                                              defaults(Backmap), "Reference",
                                              place=model.backmap_placement(str(go_prepared / "native.npz")))
    native = gomodel.load_native(go_prepared / "native.npz")
    template = np.asarray(app.PDBFile(str(go_prepared / "folded.pdb")).getPositions(asNumpy=True)._value)
    rng = np.random.default_rng(0)
    target = template[native.ca] + rng.normal(0, 0.03, (len(native.ca), 3))  # a perturbed C-alpha trace
    res = mapper.backmap(target, template)
    assert res.accepted, res.reason
    assert res.ca_rmsd_nm < 0.05 and res.chirality_ok
    start = tmp_path / "start.pdb"
    start.write_text(mapper.pdb_text(res.positions_nm))
    pdb_q, xml_q = tmp_path / "q.pdb", tmp_path / "q.xml"
    model.query_files(start, go_prepared / "folded.xml", pdb_q, xml_q, seed=1)
    run_md(pdb_q, xml_q, tmp_path / "run.npz", MDSpec(n_steps=200, record_interval=10, restraint_steps=40,
                                                        restraint_k=1000.0, checkpoint_every=0, seed=1),
           go_ff, progress=False)
    run = run_file.load(tmp_path / "run.npz")
    assert run.status is run_file.Status.OK and run.n_frames == 20 and np.isfinite(run.forces).all()
