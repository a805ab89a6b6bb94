"""Bootstrap intervals over seeds cover the truth at about the nominal rate."""
import numpy as np
import pytest

from alcg.config import settings
from alcg.analysis.statistics import bootstrap_mean_ci, change_pct, paired_difference_ci, paired_difference_t_ci

#: the schema's bootstrap resamples and confidence level (evaluate.n_bootstrap, evaluate.ci_level)
EV = settings.defaults(settings.Evaluate)


def test_paired_difference_ci_covers_the_true_difference_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    n_seeds, trials, true_diff = 10, 400, -5.0
    hits = 0
    for t in range(trials):
        shared = rng.normal(0, 20, n_seeds)          # seed effect, common to both arms (paired)
        a = shared + true_diff + rng.normal(0, 3, n_seeds)
        b = shared + rng.normal(0, 3, n_seeds)
        _, lo, hi = paired_difference_ci(a, b, n_bootstrap=1000, ci_level=0.95, seed=t)
        hits += lo <= true_diff <= hi
    coverage = hits / trials
    # the percentile bootstrap undercovers a little at n=10; it must still be near 95 %
    assert 0.87 <= coverage <= 0.99, coverage


@pytest.mark.parametrize("n_seeds, boot_below", [(3, 0.85), (5, 0.90)])
def test_with_few_seeds_only_the_t_interval_keeps_its_coverage(n_seeds, boot_below):
    """n = 3 and 5 (config/chignolin_cpu.yaml): the percentile bootstrap undercovers, t does not."""
    rng = np.random.default_rng(n_seeds)
    trials, true_diff, hits_boot, hits_t = 600, -5.0, 0, 0
    for t in range(trials):
        shared = rng.normal(0, 20, n_seeds)
        a = shared + true_diff + rng.normal(0, 3, n_seeds)
        b = shared + rng.normal(0, 3, n_seeds)
        _, lo, hi = paired_difference_ci(a, b, n_bootstrap=500, ci_level=0.95, seed=t)
        hits_boot += lo <= true_diff <= hi
        _, lo, hi = paired_difference_t_ci(a, b, ci_level=0.95)
        hits_t += lo <= true_diff <= hi
    assert hits_boot / trials < boot_below
    assert 0.92 <= hits_t / trials <= 0.98


def test_pairing_removes_the_shared_seed_effect():
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 50, 8)
    a, b = shared - 10 + rng.normal(0, 1, 8), shared + rng.normal(0, 1, 8)
    _, lo, hi = paired_difference_ci(a, b, EV.n_bootstrap, EV.ci_level)
    assert hi < 0  # resolved when paired
    _, lo_u, hi_u = bootstrap_mean_ci(a - b.mean(), EV.n_bootstrap, EV.ci_level)
    assert hi_u - lo_u > 5 * (hi - lo)


def test_one_seed_has_no_interval_and_change_is_relative():
    mean, lo, hi = bootstrap_mean_ci([3.0], EV.n_bootstrap, EV.ci_level)
    assert mean == 3.0 and np.isnan(lo) and np.isnan(hi)
    assert change_pct(0.6, 0.8) == pytest.approx(-25.0)
    assert np.isnan(change_pct(1.0, 0.0))


def test_gap_share_resamples_seeds_jointly():
    from alcg.analysis.statistics import gap_share_ci

    # baseline 3, control 2, arm 2.5 on average: half the gap; per seed the gap and the arm's
    # place in it vary, so the interval is that of the ratio of resampled means
    baseline, arm, control = [2.0, 3.0, 4.0], [1.5, 2.4, 3.6], [1.0, 2.2, 2.8]
    share, lo, hi = gap_share_ci(baseline, arm, control, 2000, 0.95)
    assert share == pytest.approx(0.5)
    # the extremes: all draws of seed 0 (0.5 / 1) ... seed 1 (0.6 / 0.8 = 0.75) and seed 2 (0.4 / 1.2 = 1/3)
    assert 1 / 3 - 1e-9 <= lo < 0.5 < hi <= 0.75 + 1e-9
    assert gap_share_ci(baseline, arm, control, 2000, 0.95) == (share, lo, hi)  # fixed seed: reproducible
    # a seed with a missing value leaves; one seed left: no interval
    assert gap_share_ci([2.0, np.nan], [1.5, 1.0], [1.0, 1.0], 100, 0.95)[0] == pytest.approx(0.5)
    assert np.isnan(gap_share_ci([2.0, np.nan], [1.5, 1.0], [1.0, 1.0], 100, 0.95)[1])
    assert np.isnan(gap_share_ci([1.0, 1.0], [0.5, 0.5], [1.0, 1.0], 100, 0.95)[0])  # no gap: no share
