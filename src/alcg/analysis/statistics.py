"""Statistics over seeds: confidence intervals of means and of paired differences.

Seeds are the replicates: each seed is one full run of the loop (its own round-0 data, model
and evaluation noise). Arms are compared seed by seed (paired), since they share the seed's
round 0 and evaluation starts.

Two intervals are given. The percentile bootstrap makes no normality assumption but is too
narrow with few seeds: with 3 it is about [min, max] and covers the true mean ~75 % of the
time at a nominal 95 %. The Student-t interval assumes roughly normal seed-to-seed spread and
keeps its coverage at small n (tests/unit/test_statistics.py measures both). A claim that an arm
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


def paired_t_test(a, b) -> float:
    """Two-sided p-value of the paired t test of mean(a - b) = 0 (nan with < 2 finite pairs)."""
    from scipy import stats

    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given; nan stays nan)."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (len(ok) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def min_detectable_effect(sd: float, n: int, alpha: float, power: float) -> float:
    """Smallest true mean paired difference a two-sided paired t test at ``alpha`` detects with
    probability ``power`` given the observed s.d. ``sd`` of the differences over ``n`` seeds:
    (t_{1-alpha/2, n-1} + t_{power, n-1}) sd / sqrt(n) (the usual normal approximation with t
    quantiles; nan with < 2 seeds)."""
    from scipy import stats

    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n))


def gap_share_ci(baseline, arm, control, n_bootstrap: int, ci_level: float,
                 seed: int = 0) -> tuple[float, float, float]:
    """Share of the baseline-to-control gap an arm closes, with a paired percentile-bootstrap CI.

    share = (mean(baseline) - mean(arm)) / (mean(baseline) - mean(control)), the means over
    seeds of one endpoint (a distance, lower is better): 0 at the baseline, 1 at the control.
    The CI resamples seeds jointly for the three arms (``n_bootstrap`` resamples seeded by
    ``seed``, at ``ci_level``); resamples whose gap is 0 are left out. Only seeds where all
    three values are finite enter. The ratio is unstable when the gap's own interval covers 0.

    Parameters
    ----------
    baseline, arm, control : (S,) endpoint per seed, same seeds in the same order (metric units)

    Returns
    -------
    (share, ci low, ci high), dimensionless; share nan with no finite seed or a zero gap, the
    interval (nan, nan) with fewer than 2 seeds
    """
    v = np.array([baseline, arm, control], np.float64)
    v = v[:, np.isfinite(v).all(0)]
    if v.shape[1] == 0:
        return float("nan"), float("nan"), float("nan")

    def share(m: np.ndarray) -> np.ndarray:
        gap = m[0] - m[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap != 0, (m[0] - m[1]) / np.where(gap != 0, gap, 1.0), np.nan)

    point = float(share(v.mean(1)))
    if v.shape[1] < 2:
        return point, float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(v.shape[1], size=(n_bootstrap, v.shape[1]))
    boot = share(v[:, idx].mean(2))
    boot = boot[np.isfinite(boot)]
    if len(boot) == 0:
        return point, float("nan"), float("nan")
    alpha = (1 - ci_level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return point, float(lo), float(hi)
