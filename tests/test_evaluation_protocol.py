"""The evaluation protocol: the same fixed starts and noise for every arm; burn-in dropped."""
import numpy as np
import torch

from alcg import dataset
from alcg.cgtraj import load_trajectory
from alcg.io import save_npz
from alcg.model import CGModel, save_model
from alcg.settings import CGEvaluate, CGSim
from alcg.stages import analysis, cg
from cg_helpers import N_BEADS, chain_prior, zigzag

SIM = CGSim(n_replicas=4, n_steps=60, dt_ps=0.002, friction_per_ps=1.0, save_interval=10, bead_mass=50.0,
            max_bond_nm=0.6, max_force_kj_mol_nm=1e5, keep_exploration=True)
EV = CGEvaluate(replicas_per_start=2, n_dataset_starts=0, n_steps=80, burn_in_steps=20, save_interval=10)


def _cg_pdb(path):
    path.write_text("".join(f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}       0.000   0.000   0.000  1.00  0.00"
                            "           C\n" for i in range(N_BEADS)) + "END\n")
    return path


def _dataset(path, seed):
    x = zigzag(20, seed).astype(np.float32)
    data = {**dataset.empty(np.zeros(N_BEADS, np.int64), np.full(N_BEADS, 50.0), "A" * N_BEADS),
            "coords": x, "forces": np.zeros_like(x), "source": np.array(["a"] * 20), "frame": np.arange(20),
            "round": np.zeros(20, np.int64), "traj": np.array(["a"] * 20), "split": np.array(["train"] * 20)}
    dataset.save(path, data)


def test_evaluation_ignores_the_arms_dataset_exploration_does_not(tmp_path):
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), chain_prior(), {"n_interactions": 0})
    save_model(tmp_path / "m.pt", model)
    pdb = _cg_pdb(tmp_path / "cg.pdb")
    starts = np.repeat(zigzag(2, 9).astype(np.float32), EV.replicas_per_start, axis=0)
    save_npz(tmp_path / "starts.npz", metadata={}, coords=starts, label=np.array(["a", "a", "b", "b"]),
             bead_masses=np.full(N_BEADS, 50.0))
    explored, evaluated = [], []
    for arm, seed in (("one", 1), ("two", 2)):  # two arms whose datasets differ
        _dataset(tmp_path / f"{arm}.npz", seed)
        cg.explore(str(tmp_path / "m.pt"), str(tmp_path / f"{arm}.npz"), str(pdb), SIM, 300.0, "cpu", 5,
                   str(tmp_path / f"x_{arm}.h5"), str(tmp_path / f"x_{arm}.json"))
        cg.cg_evaluate(str(tmp_path / "m.pt"), str(tmp_path / "starts.npz"), str(pdb), SIM, EV, 300.0, "cpu", 5,
                       str(tmp_path / f"e_{arm}.h5"), str(tmp_path / f"e_{arm}.json"))
        explored.append(load_trajectory(tmp_path / f"x_{arm}.h5", tmp_path / f"x_{arm}.json")[0])
        evaluated.append(load_trajectory(tmp_path / f"e_{arm}.h5", tmp_path / f"e_{arm}.json"))
    assert not np.allclose(explored[0], explored[1])          # exploration starts from the arm's data
    np.testing.assert_array_equal(evaluated[0][0], evaluated[1][0])  # evaluation: identical frames
    xyz, replicas, _ = evaluated[0]
    kept, first_half = analysis.kept_frames(xyz, replicas, EV.burn_in_steps // EV.save_interval)
    assert len(kept) == 4 * (8 - 2)  # 4 replicas x (80/10 frames - 2 burn-in frames)
    assert first_half.sum() == 4 * 3


def test_exploded_replicas_count_against_the_valid_fraction():
    """Two replicas of 100 frames, burn-in 10; one stopped after 30 frames."""
    status = {"burn_in_frames": 10, "frames_per_replica": 100,
              "replicas": [{"n_frames": 100, "frame_offset": 0}, {"n_frames": 30, "frame_offset": 100}]}
    assert analysis.expected_kept_frames(status) == 180
    kept, _ = analysis.kept_frames(np.zeros((130, N_BEADS, 3)), status["replicas"], 10)
    assert len(kept) == 110  # the fraction that exists: 110 / 180
    del status["frames_per_replica"]  # older status files: the longest replica
    assert analysis.expected_kept_frames(status) == 180


def test_reference_without_frame_times_is_one_clear_error(monkeypatch):
    import pytest

    from alcg.errors import DataError

    meta = {"a.npz": {"record_interval_steps": 50, "timestep_fs": 4.0},
            "b.npz": {"record_interval_steps": 0, "timestep_fs": 4.0},
            "c.npz": {"record_interval_steps": 25, "timestep_fs": 4.0}}
    monkeypatch.setattr(analysis.aarun, "metadata", meta.__getitem__)
    assert analysis.frame_interval_ps(["a.npz", "a.npz"]) == pytest.approx(0.2)
    with pytest.raises(DataError, match="b.npz: time between frames unknown.*reference_md.frame_interval_ps"):
        analysis.frame_interval_ps(["a.npz", "b.npz"])
    with pytest.raises(DataError, match="different frame intervals"):
        analysis.frame_interval_ps(["a.npz", "c.npz"])
