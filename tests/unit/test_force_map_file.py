"""The force map in the workflow: its file round-trips, the force_map stage writes a valid map
with its held-out noise, and a projection with a map labels beads with ``fmap.apply``."""
from __future__ import annotations

import numpy as np
import openmm as mm
import pytest

from alcg.finegrained import force_maps as FM
from alcg.finegrained.mapping import CAMapping, ForceMap, project_runs
from alcg.finegrained.prepare import load_prepared
from alcg.formats import dataset, force_map_file, run_file
from alcg.stages import finegrained
from alcg.util.errors import DataError
from alcg.util.fileio import save_npz

META = {"ridge": 1e-6, "fitted_on": "fit.npz", "n_frames": 10,
        "heldout_second_moment": {"constrained": 2.0, "optimal": 1.0, "residue": None}}


def test_force_map_file_round_trips(tmp_path):
    w = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    force_map_file.save(tmp_path / "m.npz", force_map_file.ForceMapFile("optimal", np.array([0, 2, 5, 7]), w, META))
    back = force_map_file.load(tmp_path / "m.npz")
    assert back.kind == "optimal" and back.metadata["kind"] == "optimal"
    np.testing.assert_array_equal(back.weights, w)
    np.testing.assert_array_equal(back.atom_indices, [0, 2, 5, 7])
    assert {k: back.metadata[k] for k in META} == META


def test_force_map_file_refuses_what_it_is_not(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        force_map_file.save(tmp_path / "a.npz", force_map_file.ForceMapFile("residue", np.arange(2), np.eye(2), {}))
    with pytest.raises(ValueError, match="do not match"):
        force_map_file.save(tmp_path / "a.npz", force_map_file.ForceMapFile("residue", np.arange(3), np.eye(2), META))
    save_npz(tmp_path / "other.npz", metadata={"kind": "x"}, weights=np.eye(2))
    with pytest.raises(DataError, match="not a force-map file"):
        force_map_file.load(tmp_path / "other.npz")


@pytest.fixture(scope="module")
def optimal_file(cln025, cln025_run, tmp_path_factory):
    """The force_map stage on the short CLN025 run: (file, figure)."""
    out = tmp_path_factory.mktemp("fmap")
    finegrained.force_map("optimal", str(cln025[0]), str(cln025[1]), str(cln025_run), 1e-6, str(out / "m.npz"),
                          str(out / "m.png"))
    return out / "m.npz", out / "m.png"


def test_force_map_stage_writes_a_valid_map_with_its_heldout_noise(optimal_file, cln025, cln025_run):
    path, plot = optimal_file
    f = force_map_file.load(path)
    pdb, system = load_prepared(*cln025)
    mapping = CAMapping(pdb.topology, system)
    fmap = finegrained.load_force_map(str(path))
    assert f.kind == "optimal" and FM.violations(fmap, system, mapping) == []
    run = run_file.load(cln025_run)
    assert f.metadata["n_frames"] == run.n_frames and f.metadata["fitted_on"] == str(cln025_run)
    assert f.metadata["fit_cost_ns"] == pytest.approx(run_file.recorded_ns(cln025_run))
    moments = f.metadata["heldout_second_moment"]
    assert set(moments) == {"constrained", "residue", "optimal"}
    half = run.n_frames // 2  # scored on the second half with the first half's fit
    expect = FM.second_moment(FM.constrained(mapping, run.atom_indices), run.forces[half:])
    assert moments["constrained"] == pytest.approx(expect)
    first_half = FM.optimal(run.forces[:half], system, mapping, run.atom_indices, 1e-6)
    assert moments["optimal"] == pytest.approx(FM.second_moment(first_half, run.forces[half:]))
    assert not np.allclose(fmap.weights, first_half.weights)  # the map kept is fitted on every frame
    assert plot.stat().st_size > 0


def test_residue_map_needs_no_run(cln025, tmp_path):
    finegrained.force_map("residue", str(cln025[0]), str(cln025[1]), None, None, str(tmp_path / "r.npz"),
                          str(tmp_path / "r.png"))
    f = force_map_file.load(tmp_path / "r.npz")
    assert f.kind == "residue" and f.metadata["n_frames"] == 0 and f.metadata["heldout_second_moment"] == {}
    assert set(np.unique(f.weights)) <= {0.0, 1.0}


def test_an_invalid_map_fails_in_one_line(cln025, cln025_run):
    pdb, system = load_prepared(*cln025)
    mapping = CAMapping(pdb.topology, system)
    system.addConstraint(int(mapping.ca_indices[0]) - 2, int(mapping.ca_indices[1]), 0.3)  # crosses residues
    run = run_file.load(cln025_run)
    with pytest.raises(DataError) as err:
        FM.build("residue", system, pdb.topology, run.atom_indices, None)
    assert "\n" not in str(err.value) and "not valid" in str(err.value)


def test_projection_with_a_map_labels_beads_with_its_weights(optimal_file, cln025, cln025_run, tmp_path):
    fmap = finegrained.load_force_map(str(optimal_file[0]))
    out = tmp_path / "d.npz"
    finegrained.project([str(cln025_run)], str(cln025[0]), str(cln025[1]), 0, str(out), None, "tail",
                        force_map_path=str(optimal_file[0]))
    data, run = dataset.load(out), run_file.load(cln025_run)
    np.testing.assert_allclose(data.forces, fmap.apply(run.forces).astype(np.float32), rtol=1e-6, atol=1e-4)
    default = tmp_path / "c.npz"
    finegrained.project([str(cln025_run)], str(cln025[0]), str(cln025[1]), 0, str(default), None, "tail")
    assert not np.allclose(dataset.load(default).forces, data.forces)  # the optimal map is not today's
    np.testing.assert_array_equal(dataset.load(default).coords, data.coords)  # coordinates never change


def test_projection_refuses_a_map_over_other_atoms(cln025, cln025_run):
    pdb, system = load_prepared(*cln025)
    mapping = CAMapping(pdb.topology, system)
    run = run_file.load(cln025_run)
    other = ForceMap("residue", run.atom_indices[:-1], np.zeros((mapping.n_beads, len(run.atom_indices) - 1)))
    with pytest.raises(DataError, match="recorded atoms are not the force map's"):
        project_runs([cln025_run], mapping, 0, other)


def test_joined_c_alphas_leave_no_valid_map(cln025, cln025_run):
    pdb, system = load_prepared(*cln025)
    mapping = CAMapping(pdb.topology, system)
    joined = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    joined.addConstraint(int(mapping.ca_indices[0]), int(mapping.ca_indices[1]), 0.38)
    with pytest.raises(DataError, match="two C-alphas are joined"):
        FM.build("optimal", joined, pdb.topology, run_file.load(cln025_run).atom_indices, 1e-6,
                 run_file.load(cln025_run).forces)


def test_the_mean_force_oracle_gets_the_map_only_when_there_is_one(optimal_file, monkeypatch, test_config):
    """``_mean_force_query`` passes ``force_map`` by keyword with a map file, and nothing new without."""
    from alcg.config.settings import ForceField, Oracle, parse
    from alcg.finegrained import meanforce_query
    from alcg.stages import query

    calls = []
    monkeypatch.setattr(meanforce_query, "run_mean_force", lambda *a, **kw: calls.append(kw))
    ff, oracle = parse(ForceField, test_config["forcefield"]), parse(Oracle, test_config["oracle"])
    query._mean_force_query("s.pdb", "s.xml", "out.npz", oracle, ff, 1, 1)
    query._mean_force_query("s.pdb", "s.xml", "out.npz", oracle, ff, 1, 1, str(optimal_file[0]))
    assert calls[0] == {"threads": 1}
    fmap = calls[1].pop("fmap")
    assert calls[1] == {"threads": 1} and fmap.kind == "optimal"
    np.testing.assert_array_equal(fmap.weights, force_map_file.load(optimal_file[0]).weights)
