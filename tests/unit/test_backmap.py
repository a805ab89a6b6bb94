"""Backmapping CLN025 C-alpha targets to all-atom structures with OpenMM."""
import numpy as np
import pytest

from alcg.finegrained.backmap import RestrainedMinimizationBackmapper
from alcg.config.settings import Backmap, defaults
from alcg.formats.run_file import load as load_run
from alcg.finegrained.prepare import load_prepared
from alcg.finegrained.system import create_system, make_forcefield


@pytest.fixture(scope="module")
def backmapper(cln025, ff_cfg):
    pdb, _ = load_prepared(*cln025)
    system = create_system(pdb.topology, make_forcefield(ff_cfg), ff_cfg)
    return RestrainedMinimizationBackmapper(pdb.topology, system, defaults(Backmap), "CPU")


def test_backmap_reaches_target(backmapper, cln025_run):
    run = load_run(cln025_run)
    ca = backmapper.ca
    rng = np.random.default_rng(0)
    target = run.positions[49][ca].astype(np.float64) + rng.normal(0, 0.03, (len(ca), 3))
    res = backmapper.backmap(target, run.positions[0].astype(np.float64))
    assert res.accepted, res.reason
    assert res.ca_rmsd_nm < 0.05 and res.n_clashes == 0 and res.chirality_ok
    assert np.isfinite(res.energy_kj_mol) and res.energy_kj_mol < 0
    assert "ATOM" in backmapper.pdb_text(res.positions_nm)


def test_impossible_target_is_rejected(backmapper, cln025_run):
    run = load_run(cln025_run)
    target = run.positions[10][backmapper.ca].astype(np.float64)
    along = (target[5] - target[4]) / np.linalg.norm(target[5] - target[4])
    target[5:] += 0.4 * along  # a ~0.78 nm C-alpha "bond" (trans peptide: 0.38 nm): nothing fits
    assert np.linalg.norm(target[5] - target[4]) > 0.75
    res = backmapper.backmap(target, run.positions[0].astype(np.float64))
    assert not res.accepted
    assert "C-alpha RMSD" in res.reason or "covalent bonds" in res.reason, res.reason
    assert res.info["max_bond_deviation_nm"] > 0.0


def test_accepted_backmaps_keep_covalent_geometry(backmapper, cln025_run):
    run = load_run(cln025_run)
    rng = np.random.default_rng(1)
    for frame in (10, 30):
        target = run.positions[frame][backmapper.ca].astype(np.float64) + rng.normal(0, 0.02, (len(backmapper.ca), 3))
        res = backmapper.backmap(target, run.positions[0].astype(np.float64))
        assert res.accepted, res.reason
        assert res.info["max_bond_deviation_nm"] < 0.01  # thermal RMS ~0.004 nm


def test_chirality_check_tells_a_mirror_image_from_thermal_motion():
    from alcg.finegrained.backmap import chirality_kept

    l_centre = np.array([0.6, -2.0])  # an L torsion, and a Go side chain at -115 degrees
    assert chirality_kept(l_centre, l_centre + 0.2)
    assert not chirality_kept(l_centre, -l_centre)  # mirrored
    assert chirality_kept(np.array([3.1]), np.array([-3.1]))  # in the plane: its own mirror image
