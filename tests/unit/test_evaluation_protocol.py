"""The evaluation protocol: the same fixed starts and noise for every arm; burn-in dropped."""
import numpy as np
import pytest
import torch

from alcg.formats import cg_trajectory, dataset, eval_starts
from alcg.cg.model import CGModel, save_model
from alcg.config.settings import CGEvaluate, CGSim, Model, defaults
from alcg.stages import analysis, cg
from cg_helpers import N_BEADS, chain_prior, zigzag

SIM = defaults(CGSim, n_replicas=4, n_steps=60, dt_ps=0.002, friction_per_ps=1.0, save_interval=10, bead_mass=50.0,
               max_bond_nm=0.6, max_force_kj_mol_nm=1e5, compile=False)
EV = defaults(CGEvaluate, replicas_per_start=2, n_dataset_starts=0, n_steps=80, burn_in_steps=20, save_interval=10)


def _cg_pdb(path):
    path.write_text("".join(f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}       0.000   0.000   0.000  1.00  0.00"
                            "           C\n" for i in range(N_BEADS)) + "END\n")
    return path


def _dataset(path, seed):
    x = zigzag(20, seed).astype(np.float32)
    data = dataset.with_frames(dataset.empty(np.zeros(N_BEADS, np.int64), np.full(N_BEADS, 50.0), "A" * N_BEADS),
                               coords=x, forces=np.zeros_like(x), source=np.array(["a"] * 20), frame=np.arange(20),
                               round=np.zeros(20, np.int64), traj=np.array(["a"] * 20),
                               split=np.array(["train"] * 20))
    dataset.save(path, data)


def test_evaluation_ignores_the_arms_dataset_exploration_does_not(tmp_path, monkeypatch):
    import alcg.cg.simulate

    compile_flags, force_fn = [], alcg.cg.simulate.model_force_fn
    monkeypatch.setattr(alcg.cg.simulate, "model_force_fn",
                        lambda model, compile: compile_flags.append(compile) or force_fn(model, compile=compile))
    model = CGModel(torch.zeros(N_BEADS, dtype=torch.long), chain_prior(), defaults(Model, n_interactions=0))
    save_model(tmp_path / "m.pt", model)
    pdb = _cg_pdb(tmp_path / "cg.pdb")
    starts = eval_starts.EvaluationStarts.repeated(list(zigzag(2, 9)), ["a", "b"], EV.replicas_per_start,
                                                  np.full(N_BEADS, 50.0))
    eval_starts.save(tmp_path / "starts.npz", starts)
    explored, evaluated = [], []
    for arm, seed in (("one", 1), ("two", 2)):  # two arms whose datasets differ
        _dataset(tmp_path / f"{arm}.npz", seed)
        cg.explore(str(tmp_path / "m.pt"), str(tmp_path / f"{arm}.npz"), str(pdb), SIM, 300.0, "cpu", 5,
                   str(tmp_path / f"x_{arm}.h5"), str(tmp_path / f"x_{arm}.json"))
        cg.cg_evaluate(str(tmp_path / "m.pt"), str(tmp_path / "starts.npz"), str(pdb), SIM, EV, 300.0, "cpu", 5,
                       str(tmp_path / f"e_{arm}.h5"), str(tmp_path / f"e_{arm}.json"))
        explored.append(cg_trajectory.load(tmp_path / f"x_{arm}.h5", tmp_path / f"x_{arm}.json").xyz)
        evaluated.append(cg_trajectory.load(tmp_path / f"e_{arm}.h5", tmp_path / f"e_{arm}.json"))
    assert compile_flags == [False] * 4  # cg_sim.compile reaches every simulation
    assert not np.allclose(explored[0], explored[1])          # exploration starts from the arm's data
    np.testing.assert_array_equal(evaluated[0].xyz, evaluated[1].xyz)  # evaluation: identical frames
    run = evaluated[0]
    assert (run.run.purpose, run.run.start_label) == ("evaluation", ("a", "a", "b", "b"))
    assert (run.run.burn_in_frames, run.run.frames_per_replica) == (2, 8)
    kept, first_half = run.kept_frames()
    assert len(kept) == 4 * (8 - 2)  # 4 replicas x (80/10 frames - 2 burn-in frames)
    assert first_half.sum() == 4 * 3


def test_exploded_replicas_count_against_the_valid_fraction():
    """Two replicas of 100 frames, burn-in 10; one stopped after 30 frames."""
    info = cg_trajectory.RunInfo(mean_kinetic_temperature_k=300.0, steps_per_s=1.0, elapsed_s=1.0, n_steps=1000,
                          resumed_from_step=0, device="cpu", purpose="evaluation", start_label=("a", "b"),
                          burn_in_frames=10, frames_per_replica=100)
    replicas = (cg_trajectory.Replica(0, "ok", "", 100, 0, -1), cg_trajectory.Replica(1, "exploded", "bond", 30, 100, 300))
    run = cg_trajectory.CGTrajectory(np.zeros((130, N_BEADS, 3)), None, replicas, info)
    assert run.expected_kept_frames() == 180
    kept, _ = run.kept_frames()
    assert len(kept) == 110  # the fraction that exists: 110 / 180
    assert run.exploded_fraction == 0.5


def test_evaluation_starts_round_trip(tmp_path):
    coords = [np.full((N_BEADS, 3), 0.1), np.full((N_BEADS, 3), 0.2, np.float32), np.full((N_BEADS, 3), 0.3)]
    starts = eval_starts.EvaluationStarts.repeated(coords, ["folded", "round0_3", "round0_7"], 2,
                                                  np.arange(N_BEADS) + 50.0)
    assert starts.coords.shape == (6, N_BEADS, 3) and starts.coords.dtype == np.float32
    assert starts.label.tolist() == ["folded", "folded", "round0_3", "round0_3", "round0_7", "round0_7"]
    eval_starts.save(tmp_path / "starts.npz", starts)
    back = eval_starts.load(tmp_path / "starts.npz")
    for name in ("coords", "label", "bead_masses"):
        np.testing.assert_array_equal(getattr(back, name), getattr(starts, name))
        assert getattr(back, name).dtype == getattr(starts, name).dtype
    assert (back.n_starts, back.replicas_per_start) == (3, 2)


def test_a_file_that_is_not_an_evaluation_starts_file_is_refused(tmp_path):
    from alcg.util.errors import DataError
    from alcg.util.fileio import save_npz

    save_npz(tmp_path / "x.npz", metadata={}, coords=np.zeros((1, N_BEADS, 3)))
    with pytest.raises(DataError, match="x.npz is not an evaluation starts file"):
        eval_starts.load(tmp_path / "x.npz")


def test_reference_without_frame_times_is_one_clear_error(monkeypatch):
    import pytest

    from alcg.util.errors import DataError

    meta = {"a.npz": {"record_interval_steps": 50, "timestep_fs": 4.0},
            "b.npz": {"record_interval_steps": 0, "timestep_fs": 4.0},
            "c.npz": {"record_interval_steps": 25, "timestep_fs": 4.0}}
    monkeypatch.setattr(analysis.run_file, "metadata", meta.__getitem__)
    assert analysis.frame_interval_ps(["a.npz", "a.npz"]) == pytest.approx(0.2)
    with pytest.raises(DataError, match="b.npz: time between frames unknown.*reference_md.frame_interval_ps"):
        analysis.frame_interval_ps(["a.npz", "b.npz"])
    with pytest.raises(DataError, match="different frame intervals"):
        analysis.frame_interval_ps(["a.npz", "c.npz"])
