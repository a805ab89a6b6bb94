"""Statistics over seeds: confidence intervals of means and of paired differences.

Seeds are the replicates: each seed is one full run of the loop (its own round-0 data, model
and evaluation noise). Arms are compared seed by seed (paired), since they share the seed's
round 0 and evaluation starts.

Two intervals are given. The percentile bootstrap makes no normality assumption but is too
narrow with few seeds: with 3 it is about [min, max] and covers the true mean ~75 % of the
time at a nominal 95 %. The Student-t interval assumes roughly normal seed-to-seed spread and
keeps its coverage at small n (tests/test_statistics.py measures both). A claim that an arm
beats another should rest on the t interval while there are fewer than ~10 seeds.
"""
from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(values, n_bootstrap: int, ci_level: float, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    ``n_bootstrap`` resamples (seeded by ``seed``), interval at ``ci_level`` (e.g. 0.95); None
    and non-finite values are left out. With one value the interval is (nan, nan): one run is
    an anecdote, not an interval.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(len(v), size=(n_bootstrap, len(v)))].mean(1)
    alpha = (1 - ci_level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(v.mean()), float(lo), float(hi)


def t_mean_ci(values, ci_level: float) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t confidence interval at ``ci_level`` (nan with < 2 values)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) < 2:
        return (float(v[0]) if len(v) else float("nan")), float("nan"), float("nan")
    half = stats.t.ppf(0.5 + ci_level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def paired_difference_ci(a, b, n_bootstrap: int, ci_level: float, seed: int = 0) -> tuple[float, float, float]:
    """Mean and bootstrap CI of ``a - b`` over paired replicates (same seeds, same order)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return bootstrap_mean_ci(a - b, n_bootstrap, ci_level, seed)


def paired_difference_t_ci(a, b, ci_level: float) -> tuple[float, float, float]:
    """Mean and Student-t CI of ``a - b`` over paired replicates (the paired t interval)."""
    return t_mean_ci(np.asarray(a, np.float64) - np.asarray(b, np.float64), ci_level)


def change_pct(value: float, base: float) -> float:
    """Relative change of ``value`` against ``base`` in percent."""
    if base is None or value is None or not np.isfinite(base) or base == 0:
        return float("nan")
    return 100.0 * (value - base) / abs(base)
