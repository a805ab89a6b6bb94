"""Bad inputs give one clear error and leave existing results alone; writes are atomic."""
import errno
import hashlib

import numpy as np
import pytest
import torch

from alcg.util import fileio as aio
from alcg.config.settings import CGSim, Model, Select, defaults
from alcg.stages import analysis, cg, query
from alcg.util.errors import DataError, SimulationError
from alcg.formats import run_file
from alcg.formats.dataset import CGDataset, save as save_dataset
from alcg.finegrained.mapping import CAMapping, project_runs
from alcg.cg.model import CGModel, save_model
from alcg.finegrained.prepare import load_prepared
from alcg.formats.cg_trajectory import write_trajectory
from alcg.cg.simulate import simulate
from cg_helpers import N_BEADS, chain_prior, energy_force_fn, langevin, zigzag


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def earlier_round(tmp_path):
    """Stand-in for an earlier round's results, to check they stay byte-identical."""
    d = tmp_path / "round_000"
    d.mkdir()
    aio.save_npz(d / "dataset.npz", coords=np.ones((3, 4, 3)))
    aio.write_json(d / "table.json", {"n": 1})
    return d


def _cg_pdb(path, n):
    path.write_text("".join(f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}       0.000   0.000   0.000  1.00  0.00"
                            "           C\n" for i in range(n)) + "END\n")
    return path


def test_all_exploded_simulation_is_a_clear_error(tmp_path, earlier_round):
    before = _digest(earlier_round)
    x0 = zigzag(3)
    x0[:, 5] = x0[:, 2] + 0.01  # every replica clashes at once
    cfg = langevin(n_steps=50, save_interval=10, temperature_k=300.0, seed=0)
    res = simulate(energy_force_fn(chain_prior(sigma=0.3)), x0, np.full(N_BEADS, 50.0), cfg, progress=False)
    assert set(res.status) == {"exploded"}
    traj, status = tmp_path / "t.h5", tmp_path / "s.json"
    write_trajectory(res, _cg_pdb(tmp_path / "cg.pdb", N_BEADS), traj, status, cfg.dt_ps, cfg.save_interval)
    data = CGDataset(coords=np.asarray(zigzag(5), np.float32), forces=np.zeros((5, N_BEADS, 3), np.float32),
                     bead_types=np.zeros(N_BEADS, np.int64), bead_masses=np.full(N_BEADS, 50.0),
                     sequence="A" * N_BEADS, source=np.array(["x"] * 5), frame=np.arange(5),
                     round=np.zeros(5, np.int64), traj=np.array(["x"] * 5), split=np.array(["train"] * 5))
    save_dataset(tmp_path / "d.npz", data)
    sel = defaults(Select, n_select=2, n_spare=2, rmsd_lo_nm=0.1, rmsd_hi_nm=0.8, min_pair_rmsd_nm=0.1,
                   n_centers=10, committee_members=2, force_sd_lo_kj_mol_nm=1.0, force_sd_hi_kj_mol_nm=10.0,
             force_sd_lo_train_quantile=None)
    with pytest.raises(SimulationError, match="holds no frames: every CG replica exploded"):
        query.select("rmsd", str(traj), str(status), str(tmp_path / "d.npz"), [], sel, "cpu", 0,
                     str(tmp_path / "sel.npz"), str(tmp_path / "tab.json"), str(tmp_path / "h.png"))
    assert not (tmp_path / "sel.npz").exists()
    assert _digest(earlier_round) == before


def test_dataset_with_wrong_bead_count_is_refused(tmp_path):
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), chain_prior(), defaults(Model, n_interactions=0))
    save_model(tmp_path / "m.pt", model)
    data = CGDataset(coords=np.zeros((4, 5, 3), np.float32), forces=np.zeros((4, 5, 3), np.float32),
                     bead_types=np.zeros(5, np.int64), bead_masses=np.ones(5), sequence="AAAAA",
                     source=np.array(["x"] * 4), frame=np.arange(4), round=np.zeros(4, np.int64),
                     traj=np.array(["x"] * 4), split=np.array(["train"] * 4))
    save_dataset(tmp_path / "d.npz", data)
    sim = defaults(CGSim, n_replicas=2, n_steps=10, dt_ps=0.002, friction_per_ps=1.0, save_interval=5,
                   bead_mass="residue", max_bond_nm=0.6, max_force_kj_mol_nm=1e5)
    with pytest.raises(DataError, match="has 5 beads per frame; the model expects 8"):
        cg.explore(str(tmp_path / "m.pt"), str(tmp_path / "d.npz"), "cg.pdb", sim, 300.0, "cpu", 0,
                   str(tmp_path / "t.h5"), str(tmp_path / "s.json"))
    assert not (tmp_path / "t.h5").exists()


def test_reference_with_other_topology_is_refused(cln025, cln025_run, tmp_path):
    run = run_file.load(cln025_run)
    keep = np.arange(100)  # a "reference" that recorded only part of the protein
    text = "\n".join(str(run.topology_pdb).splitlines()[:100]) + "\nEND\n"
    aio.save_npz(tmp_path / "ref.npz", metadata=run.metadata, positions=run.positions[:, keep],
                 forces=run.forces[:, keep], potential_energy=run.potential_energy,
                 time_ps=run.time_ps, atom_indices=keep, topology_pdb=np.array(text))
    with pytest.raises(DataError, match="ref.npz does not match the topology"):
        analysis.reference_trajs([str(tmp_path / "ref.npz")], str(cln025[0]), str(cln025[1]))
    assert len(analysis.reference_trajs([str(cln025_run)], str(cln025[0]), str(cln025[1]))[0]) == 50


def test_disk_full_while_writing_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    target = tmp_path / "out.npz"
    aio.save_npz(target, a=np.arange(3))
    before = target.read_bytes()

    def full(fh, **arrays):
        fh.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(aio.np, "savez", full)
    with pytest.raises(OSError, match="No space left"):
        aio.save_npz(target, a=np.arange(5))
    with pytest.raises(OSError):
        aio.save_npz(tmp_path / "new.npz", a=np.arange(5))
    assert target.read_bytes() == before  # the old complete file is untouched
    assert not (tmp_path / "new.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # no temp leftovers


def test_rewrite_after_a_killed_write_removes_its_temporary(tmp_path):
    # what SIGKILL during a write leaves: a hidden temporary named by mkstemp
    killed = tmp_path / ".loss.k1ll3d_x.png"
    killed.write_bytes(b"\x89PNG half")
    other = tmp_path / ".model.abcd1234.pt"  # another file's temporary: not ours to remove
    other.write_bytes(b"x")
    aio.write_text(tmp_path / "loss.png", "complete")
    assert (tmp_path / "loss.png").read_text() == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.abcd1234.pt", "loss.png"]


def test_projection_of_runs_checks_recorded_atoms(cln025, cln025_run):
    pdb, system = load_prepared(*cln025)
    mapping = CAMapping(pdb.topology, system)
    run = run_file.load(cln025_run)
    with pytest.raises(DataError, match="was not recorded"):
        mapping.map_coords(run.positions[:, :10], np.arange(10))
    assert project_runs([cln025_run], mapping, 0).coords.shape == (50, 10, 3)
