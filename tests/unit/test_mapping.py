"""AA -> CG projection on a real CLN025 run."""
import dataclasses
import numpy as np
import pytest

from alcg.util.errors import DataError
from alcg.formats.dataset import load as load_dataset, merge, save as save_dataset
from alcg.finegrained.mapping import AMINO_ACIDS, CAMapping, project_runs
from alcg.formats.run_file import load as load_run
from alcg.finegrained.prepare import load_prepared


@pytest.fixture(scope="module")
def mapping(cln025):
    pdb, system = load_prepared(*cln025)
    return CAMapping(pdb.topology, system), pdb


def test_projection(mapping, cln025_run):
    m, pdb = mapping
    run = load_run(cln025_run)
    data = project_runs([cln025_run], m, round_index=0)
    atoms = list(pdb.topology.atoms())
    ca = [a.index for a in atoms if a.name == "CA"]
    # coordinates are exactly the C-alpha positions
    np.testing.assert_array_equal(data.coords, run.positions[:, ca])
    # each bead aggregates its C-alpha and the hydrogens constrained to it (HA; HA2/HA3 of Gly)
    groups = [{atoms[i].name for i in g} for g in m.force_groups]
    assert groups[0] == {"CA", "HA"} and groups[6] == {"CA", "HA2", "HA3"}
    # the mapped force sum equals the sum of the aggregated atom forces
    members = np.concatenate(m.force_groups)
    np.testing.assert_allclose(data.forces.sum(1), run.forces[:, members].sum(1), rtol=1e-4, atol=1e-2)
    # it is not just the C-alpha force
    assert np.abs(data.forces - run.forces[:, ca]).max() > 1.0
    # bead types follow the sequence
    assert "".join(AMINO_ACIDS[t] for t in data.bead_types) == "YYDPETGTWY"
    assert data.bead_masses[6] == pytest.approx(57.05, abs=0.1)  # Gly residue (in chain)
    assert set(data.round) == {0} and list(data.frame) == list(range(len(run.potential_energy)))


def test_dataset_roundtrip_and_merge(mapping, cln025_run, tmp_path):
    m, _ = mapping
    a = project_runs([cln025_run], m, 0)
    save_dataset(tmp_path / "a.npz", a)
    loaded = load_dataset(tmp_path / "a.npz", n_beads=10)
    both = merge([loaded, a])
    assert both.n_frames == 2 * a.n_frames
    for name in ("coords", "forces", "bead_types", "bead_masses", "source", "frame", "round", "traj", "split"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(a, name))  # the file round-trips
    assert loaded.sequence == a.sequence == "YYDPETGTWY"
    with pytest.raises(DataError, match="has 10 beads per frame; the model expects 12"):
        load_dataset(tmp_path / "a.npz", n_beads=12)
    other = dataclasses.replace(a, bead_types=a.bead_types[::-1].copy(), sequence="YWTGTEPDYY")
    with pytest.raises(DataError, match="different molecules"):
        merge([a, other])
