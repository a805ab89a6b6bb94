"""Time-step validation with power: an anharmonic model whose distribution is known exactly.

Independent particles in U(x) = a x^4 per coordinate (BAOAB, the integrator of
alcg.cg.simulate). Its fastest motion at thermal amplitude has omega ~ 50/ps, like the stiffest CG
bond modes of CLN025 (period ~130 fs), so 10 fs (omega dt ~ 0.5) is the named too-large step:
its sampled |x| and x^2 distributions are off by ~0.7 %, which the check must detect, while a
2 fs step must pass. The reference is exact: c x^4 ~ Gamma(1/4) for density ~ exp(-c x^4).
"""
import numpy as np
import pytest
import torch

from alcg.cg.priors import KB_KJ_MOL_K
from alcg.cg.simulate import simulate
from alcg.cg.timestep import compare_steps
from cg_helpers import langevin

T_K, A_KJ_MOL_NM4, MASS_AMU = 300.0, 1.86e7, 12.0
TOO_LARGE_DT_PS = 0.010


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _quartic(x):
    return A_KJ_MOL_NM4 * (x ** 4).sum((-1, -2)), -4.0 * A_KJ_MOL_NM4 * x ** 3


def _exact(n_series: int, n_frames: int, seed: int) -> np.ndarray:
    """(n_series, n_frames) iid samples of p(x) ~ exp(-a x^4 / kT)."""
    rng = np.random.default_rng(seed)
    c = A_KJ_MOL_NM4 / (KB_KJ_MOL_K * T_K)
    y = rng.gamma(0.25, 1.0, (n_series, n_frames))
    return rng.choice([-1.0, 1.0], y.shape) * (y / c) ** 0.25


def _sampled(dt_ps: float, ps: float, seed: int, x0: np.ndarray | None = None, burn_frames: int = 20) -> np.ndarray:
    """(R * N * 3, T) coordinate series of 64 replicas of 16 particles (from ``x0`` (64, 16, 3)
    nm, default the origin), a frame every 0.05 ps after ``burn_frames`` frames."""
    cfg = langevin(n_steps=int(round(ps / dt_ps)), save_interval=int(round(0.05 / dt_ps)), temperature_k=T_K,
                   seed=seed, dt_ps=dt_ps, friction_per_ps=5.0, max_bond_nm=1e9)
    x0 = np.zeros((64, 16, 3)) if x0 is None else x0
    res = simulate(_quartic, x0, np.full(16, MASS_AMU), cfg, progress=False)
    assert all(s == "ok" for s in res.status)
    c = res.coords[:, burn_frames:]
    return c.transpose(0, 2, 3, 1).reshape(-1, c.shape[1]).astype(np.float64)


def _obs(x: np.ndarray) -> np.ndarray:
    return np.stack([np.abs(x), x * x], axis=-1)


def test_too_large_step_is_rejected_and_a_small_one_passes(one_thread):
    small = _sampled(0.002, 20.0, seed=2)
    ref = _exact(len(small), small.shape[1], seed=1)
    ok = compare_steps(_obs(ref), _obs(small), ["abs_x_nm", "x2_nm2"])
    assert ok.verdict == "pass", ok.summary()
    large = _sampled(TOO_LARGE_DT_PS, 60.0, seed=3)
    bad = compare_steps(_obs(_exact(len(large), large.shape[1], seed=4)), _obs(large), ["abs_x_nm", "x2_nm2"])
    assert bad.verdict == "fail", bad.summary()
    assert "x2_nm2 mean" in bad.summary()["significant"]
    assert bad.diff[1] < 0  # BAOAB at a too-large step samples x^2 narrower here


def test_a_check_without_enough_sampling_is_not_a_pass():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 20, 1)), rng.normal(size=(4, 20, 1))
    assert compare_steps(a, b, ["x"]).verdict == "underpowered"
    with pytest.raises(ValueError, match="replicas"):
        compare_steps(a[:2], b, ["x"])


def test_paired_check_rejects_the_too_large_step_and_passes_small_ones(one_thread):
    """Paired design: every step starts from the same exact equilibrium samples (64 x 16 x 3
    coordinates of the quartic well), so no burn-in; 2 fs is the reference."""
    x0 = _exact(64, 48, seed=5).reshape(64, 16, 3)
    names = ["abs_x_nm", "x2_nm2"]
    ref = _obs(_sampled(0.002, 40.0, seed=6, x0=x0, burn_frames=0))
    bad = compare_steps(ref, _obs(_sampled(TOO_LARGE_DT_PS, 40.0, seed=7, x0=x0, burn_frames=0)), names, paired=True)
    assert bad.verdict == "fail", bad.summary()
    assert "x2_nm2 mean" in bad.summary()["significant"] and bad.diff[1] < 0
    ok = compare_steps(ref, _obs(_sampled(0.004, 40.0, seed=8, x0=x0, burn_frames=0)), names, paired=True)
    assert ok.verdict == "pass", ok.summary()
    same = compare_steps(ref, _obs(_sampled(0.002, 40.0, seed=9, x0=x0, burn_frames=0)), names, paired=True)
    assert same.verdict == "pass", same.summary()  # A/A: same step, other noise


def test_pairing_cancels_the_start_to_start_spread():
    """Replicas whose means differ by start (spread 1) but whose two steps agree: the paired
    check has power, the unpaired one does not; unequal replica counts cannot be paired."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(40, 1, 1))
    a, b = start + 0.01 * rng.normal(size=(40, 50, 1)), start + 0.01 * rng.normal(size=(40, 50, 1))
    assert compare_steps(a, b, ["x"], mean_tolerance_sd=0.05, bin_tolerance=1.0).verdict == "underpowered"
    assert compare_steps(a, b, ["x"], mean_tolerance_sd=0.05, bin_tolerance=1.0, paired=True).verdict == "pass"
    with pytest.raises(ValueError, match="paired"):
        compare_steps(a, b[:10], ["x"], paired=True)
