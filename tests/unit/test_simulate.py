"""Batched Langevin simulation: equipartition, explosion handling, trajectory files."""
import pytest
import numpy as np
import torch

from alcg.cg.geometry import bonds
from alcg.cg.simulate import simulate
from cg_helpers import KT, N_BEADS, chain_prior, energy_force_fn, langevin, zigzag
from proc_helpers import kill_after_checkpoint


def test_equipartition_on_harmonic_chain():
    prior = chain_prior(angle_k=0.0, bond_k=5000.0)
    masses = np.full(N_BEADS, 50.0)
    cfg = langevin(n_steps=6000, save_interval=20, temperature_k=300.0, seed=1, dt_ps=0.002, friction_per_ps=5.0)
    res = simulate(energy_force_fn(prior), zigzag(64), masses, cfg, progress=False)
    assert all(s == "ok" for s in res.status)
    assert abs(res.mean_kinetic_temperature_k - 300.0) < 0.03 * 300.0
    b = bonds(torch.as_tensor(res.coords[:, 50:])).numpy()  # after 2 ps of equilibration
    assert abs(b.var() / (KT / 5000.0) - 1.0) < 0.1
    assert abs(b.mean() - 0.38) < 0.01


def test_exploding_replicas_are_stopped_and_others_finish():
    prior = chain_prior(sigma=0.3)
    base = energy_force_fn(prior)

    def pulled(x):  # replicas moved to x > 50 nm get a strong pull on bead 0
        e, f = base(x)
        marked = x[:, 0, 0] > 50.0
        f[marked, 0, 0] -= 9000.0
        return e, f

    x0 = zigzag(6)
    x0[2, 0, 0] += 100.0  # pulled apart over time: explodes mid-run
    x0[2, 1:, 0] += 100.0
    x0[4, 5] = x0[4, 2] + 0.01  # a bead on top of another: explodes at once
    cfg = langevin(n_steps=400, save_interval=5, temperature_k=300.0, seed=2, dt_ps=0.002, max_bond_nm=0.6,
                   max_force_kj_mol_nm=1e5)
    res = simulate(pulled, x0, np.full(N_BEADS, 50.0), cfg, progress=False)
    assert res.status == ["ok", "ok", "exploded", "ok", "exploded", "ok"]
    assert "bond" in res.reason[2] and res.stopped_at_step[2] > 0
    assert res.stopped_at_step[4] == 0 and res.n_frames[4] == 0
    assert 0 < res.n_frames[2] < 80 and np.isfinite(res.coords[2, :res.n_frames[2]]).all()
    assert np.isnan(res.coords[2, res.n_frames[2]:]).all()
    assert list(res.n_frames[[0, 1, 3, 5]]) == [80] * 4


def _cg_pdb(path):
    path.write_text("".join(f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}       0.000   0.000   0.000  1.00  0.00           C\n"
                            for i in range(N_BEADS)) + "END\n")
    return path


def test_trajectory_file_roundtrip(tmp_path):
    from alcg.formats import cg_trajectory

    top = _cg_pdb(tmp_path / "cg.pdb")
    cfg = langevin(n_steps=100, save_interval=10, temperature_k=300.0, seed=0)
    x0 = zigzag(3)
    x0[2, 5] = x0[2, 2] + 0.01  # a bead on top of another: replica 2 stops at once
    res = simulate(energy_force_fn(chain_prior(sigma=0.3)), x0, np.full(N_BEADS, 50.0), cfg, progress=False)
    res.info.update(device="cpu", purpose="evaluation", start_label=["a", "a", "b"], burn_in_frames=2,
                    frames_per_replica=10)
    cg_trajectory.write_trajectory(res, top, tmp_path / "t.h5", tmp_path / "s.json", cfg.dt_ps, cfg.save_interval)
    run = cg_trajectory.load(tmp_path / "t.h5", tmp_path / "s.json")
    assert run.xyz.shape == (20, N_BEADS, 3) and run.topology.n_atoms == N_BEADS
    np.testing.assert_allclose(run.xyz[run.replicas[1].frames], res.coords[1], atol=1e-5)
    assert run.replicas == tuple(cg_trajectory.Replica(r, res.status[r], res.reason[r], int(res.n_frames[r]), 10 * r,
                                                int(res.stopped_at_step[r])) for r in range(3))
    assert [r.ok for r in run.replicas] == [True, True, False] and run.n_exploded == 1
    assert run.exploded_fraction == pytest.approx(1 / 3)
    assert run.run == cg_trajectory.RunInfo(
        mean_kinetic_temperature_k=res.mean_kinetic_temperature_k, steps_per_s=res.steps_per_s,
        elapsed_s=res.info["elapsed_s"], n_steps=100, resumed_from_step=0, device="cpu", purpose="evaluation",
        start_label=("a", "a", "b"), burn_in_frames=2, frames_per_replica=10)
    kept, first_half = run.kept_frames()  # 8 frames after burn-in of each replica that ran
    np.testing.assert_array_equal(kept, np.concatenate([run.xyz[2:10], run.xyz[12:20]]))
    assert list(first_half) == [True] * 4 + [False] * 4 + [True] * 4 + [False] * 4
    assert run.expected_kept_frames() == 3 * 8
    assert cg_trajectory.dcd_path(tmp_path / "t.h5").exists()


def test_a_run_without_burn_in_is_no_evaluation_run(tmp_path):
    from alcg.formats import cg_trajectory
    from alcg.util.errors import DataError

    cfg = langevin(n_steps=20, save_interval=10, temperature_k=300.0, seed=0)
    res = simulate(energy_force_fn(chain_prior()), zigzag(2), np.full(N_BEADS, 50.0), cfg, progress=False)
    cg_trajectory.write_trajectory(res, _cg_pdb(tmp_path / "cg.pdb"), tmp_path / "t.h5", tmp_path / "s.json", cfg.dt_ps,
                            cfg.save_interval)
    run = cg_trajectory.load(tmp_path / "t.h5", tmp_path / "s.json")
    assert run.run.purpose is None and run.run.start_label is None and run.n_exploded == 0
    with pytest.raises(DataError, match="not an evaluation run"):
        run.kept_frames()


KILL_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from alcg.cg.simulate import simulate
from cg_helpers import N_BEADS, chain_prior, energy_force_fn, langevin, zigzag
cfg = langevin(n_steps=int(sys.argv[3]), save_interval=10, temperature_k=300.0, seed=5)
res = simulate(energy_force_fn(chain_prior(sigma=0.3)), zigzag(16, 1), np.full(N_BEADS, 50.0), cfg,
               progress=False, checkpoint=sys.argv[2], checkpoint_every_steps=100)
np.save(sys.argv[2] + ".coords.npy", res.coords)
"""


def test_killed_simulation_resumes_to_the_same_trajectory(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from alcg.util.fileio import load_npz

    tests = str(Path(__file__).parents[1])
    ckpt = tmp_path / "sim.partial"
    ref = tmp_path / "ref.partial"
    n_steps = "6000"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, tests, str(ref), "3000"], check=True)
    kill_after_checkpoint([sys.executable, "-c", KILL_SCRIPT, tests, str(ckpt), n_steps], ckpt / "0000000000.npz",
                          timeout_s=120, grace_s=0.3)
    step = load_npz(sorted(ckpt.glob("*.npz"))[-1])["metadata"]["step"]
    assert 0 < step < int(n_steps)
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, tests, str(ckpt), n_steps], check=True, timeout=600)
    resumed = np.load(str(ckpt) + ".coords.npy")
    assert resumed.shape == (16, 600, N_BEADS, 3) and np.isfinite(resumed).all()
    # the resumed run continues the same trajectory: its first frames equal an uninterrupted run's
    first = np.load(str(ref) + ".coords.npy")
    np.testing.assert_allclose(resumed[:, :300], first, atol=1e-4)


class Killed(Exception):
    pass


def _exploding_run():
    """Replicas of which one explodes mid-run and one at once (as in the test above)."""
    base = energy_force_fn(chain_prior(sigma=0.3))

    def pulled(x):
        e, f = base(x)
        f[x[:, 0, 0] > 50.0, 0, 0] -= 9000.0
        return e, f

    x0 = zigzag(6)
    x0[2, :, 0] += 100.0
    x0[4, 5] = x0[4, 2] + 0.01
    cfg = langevin(n_steps=400, save_interval=5, temperature_k=300.0, seed=2, dt_ps=0.002, max_bond_nm=0.6,
                   max_force_kj_mol_nm=1e5)
    return pulled, x0, cfg


def test_checkpoints_append_and_a_resumed_run_is_identical(tmp_path, monkeypatch):
    """Issue 21: each checkpoint appends one chunk holding only the frames saved since the
    previous one (I/O linear in the run length); a run stopped after a checkpoint resumes
    from the chunks to the uninterrupted run's output bit for bit (state, replica status and
    noise stream restored), and so does one from an earlier version's one-file checkpoint."""
    from alcg.formats import checkpoint
    from alcg.cg.simulate import legacy_checkpoint, remove_checkpoint
    from cg_helpers import legacy_checkpoint_from

    force_fn, x0, cfg = _exploding_run()
    masses = np.full(N_BEADS, 50.0)
    plain = simulate(force_fn, x0, masses, cfg, progress=False)
    written, real_save = [], checkpoint.save_npz

    def counting_save(path, metadata=None, **arrays):
        written.append(arrays["coords"].shape[1])
        real_save(path, metadata, **arrays)
    monkeypatch.setattr(checkpoint, "save_npz", counting_save)
    whole = simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=tmp_path / "whole.partial",
                     checkpoint_every_steps=50)
    assert written == [10] * 7  # 80 frames, a checkpoint every 10 but after the last: 70 frames written once
    sizes = [f.stat().st_size for f in sorted((tmp_path / "whole.partial").glob("*.npz"))]
    assert len(sizes) == 7 and max(sizes) - min(sizes) < 200  # every chunk the same size: no growth
    _assert_same(whole, plain)
    assert whole.status == ["ok", "ok", "exploded", "ok", "exploded", "ok"]

    def killed_after(n_chunks):
        def save(path, metadata=None, **arrays):
            real_save(path, metadata, **arrays)
            if len(list(path.parent.glob("*.npz"))) == n_chunks:
                raise Killed
        return save

    for name, n_chunks in (("resumed", 5), ("legacy", 3)):
        partial = tmp_path / f"{name}.partial"
        monkeypatch.setattr(checkpoint, "save_npz", killed_after(n_chunks))
        with pytest.raises(Killed):
            simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=partial, checkpoint_every_steps=50)
        assert len(list(partial.glob("*.npz"))) == n_chunks
        if name == "legacy":
            legacy_checkpoint_from(partial, cfg, plain.coords.shape, x0, masses)
            assert legacy_checkpoint(partial).exists() and not partial.exists()
        monkeypatch.setattr(checkpoint, "save_npz", real_save)
        resumed = simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=partial,
                           checkpoint_every_steps=50)
        assert resumed.info["resumed_from_step"] == 50 * n_chunks
        _assert_same(resumed, plain)
        remove_checkpoint(partial)
        assert not partial.exists() and not legacy_checkpoint(partial).exists()


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path):
    force_fn, x0, cfg = _exploding_run()
    masses = np.full(N_BEADS, 50.0)
    partial = tmp_path / "run.partial"
    simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=partial, checkpoint_every_steps=50)
    other = langevin(n_steps=400, save_interval=5, temperature_k=300.0, seed=3, dt_ps=0.002, max_bond_nm=0.6,
                     max_force_kj_mol_nm=1e5)
    res = simulate(force_fn, x0, masses, other, progress=False, checkpoint=partial, checkpoint_every_steps=1000)
    assert res.info["resumed_from_step"] == 0 and not partial.exists()
    _assert_same(res, simulate(force_fn, x0, masses, other, progress=False))


@pytest.mark.parametrize("change", ["model", "starts", "masses"])
def test_a_checkpoint_of_another_model_or_start_is_not_resumed(tmp_path, change):
    force_fn, x0, cfg = _exploding_run()
    masses = np.full(N_BEADS, 50.0)
    partial = tmp_path / "run.partial"
    simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=partial, checkpoint_every_steps=50,
             identity="model-a")
    x1, m1, ident = x0, masses, "model-a"
    if change == "model":
        ident = "model-b"
    elif change == "starts":
        x1 = x0 + 1e-3
    else:
        m1 = masses * 1.01
    res = simulate(force_fn, x1, m1, cfg, progress=False, checkpoint=partial, checkpoint_every_steps=1000,
                   identity=ident)
    assert res.info["resumed_from_step"] == 0


def _assert_same(a, b) -> None:
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_array_equal(a.n_frames, b.n_frames)
    np.testing.assert_array_equal(a.stopped_at_step, b.stopped_at_step)
    assert a.status == b.status and a.reason == b.reason
    assert a.mean_kinetic_temperature_k == b.mean_kinetic_temperature_k


SMALL_NET = dict(cutoff_nm=3.0, n_rbf=16, hidden=32, n_filters=32, n_interactions=2)


def test_model_force_fn_is_the_validated_fast_path():
    from alcg.cg.fast_forces import FastForceField, force_error
    from alcg.cg.simulate import model_force_fn
    from cln025_cg import cln025_frames, cln025_model

    model = cln025_model(SMALL_NET, readout_scale=20.0)
    x = torch.as_tensor(cln025_frames(16, seed=8), dtype=torch.float32)
    fn = model_force_fn(model, compile=False)
    assert isinstance(fn, FastForceField)
    e, f = fn(x)
    assert fn.mode == "tabulated" and fn.info["force_rel_rms_vs_exact"] < 1e-4
    e_ref, f_ref = model_force_fn(model, compile=False, fast=False)(x)
    assert force_error(f, f_ref) < 1e-4
    torch.testing.assert_close(e, e_ref.detach(), rtol=1e-5, atol=1e-3)


def _bond_angle_stats(coords: np.ndarray) -> dict:
    from alcg.cg.geometry import angles

    c = torch.as_tensor(coords).reshape(-1, coords.shape[-2], 3)
    b, a = bonds(c).numpy(), angles(c).numpy()
    return {"bond_mean": b.mean(0), "bond_std": b.std(0), "angle_mean": a.mean(0), "angle_std": a.std(0)}


@pytest.fixture
def one_thread():
    """Small tensors: one thread is as fast, and immune to a busy machine (spinning OpenMP
    threads on shared cores made this test 50x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_5_fs_time_step_samples_like_1_fs(one_thread):
    """BAOAB at VALIDATED_DT_PS vs 1 fs: CLN025 prior (all-atom stiffness) + network, 1/ps.

    Same equilibrated starts; equipartition (kinetic temperature) and the bond and angle
    distributions (mean and width of each) must agree within tolerance.
    """
    from alcg.cg.simulate import VALIDATED_DT_PS, model_force_fn
    from cln025_cg import MASSES_AMU, TEMPERATURE_K, cln025_frames, cln025_model

    assert VALIDATED_DT_PS >= 0.004
    fn = model_force_fn(cln025_model(SMALL_NET, readout_scale=20.0), compile=False)
    x0 = cln025_frames(96, seed=0, noise_nm=0.003, unfolded_fraction=0.0)

    def run(x, dt_ps, ps, seed):
        cfg = langevin(n_steps=int(round(ps / dt_ps)), save_interval=int(round(0.02 / dt_ps)),
                       temperature_k=TEMPERATURE_K, seed=seed, dt_ps=dt_ps, friction_per_ps=1.0)
        res = simulate(fn, x, MASSES_AMU, cfg, progress=False)
        assert all(s == "ok" for s in res.status)
        return res

    start = run(x0, VALIDATED_DT_PS, 5.0, 1).coords[:, -1]  # soft modes take picoseconds
    ref, long = run(start, 0.001, 2.0, 2), run(start, VALIDATED_DT_PS, 2.0, 3)
    for res in (ref, long):  # run-to-run noise of this estimate here: ~1.5 %
        assert abs(res.mean_kinetic_temperature_k / TEMPERATURE_K - 1) < 0.05
    s_ref, s_long = _bond_angle_stats(ref.coords[:, 10:]), _bond_angle_stats(long.coords[:, 10:])
    np.testing.assert_allclose(s_long["bond_mean"], s_ref["bond_mean"], atol=0.001)  # nm
    np.testing.assert_allclose(s_long["angle_mean"], s_ref["angle_mean"], atol=0.02)  # rad
    np.testing.assert_allclose(s_long["bond_std"].mean(), s_ref["bond_std"].mean(), rtol=0.04)
    np.testing.assert_allclose(s_long["angle_std"].mean(), s_ref["angle_std"].mean(), rtol=0.04)
    np.testing.assert_allclose(s_long["bond_std"], s_ref["bond_std"], rtol=0.15)  # each bond
