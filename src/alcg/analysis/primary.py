"""The pre-registered analysis: ``summary/primary.tsv``.

The ``analysis`` config section fixes, before the measured run, one primary endpoint (a metric,
a round, its final value, its change from round 0, or the area under its learning curve:
:func:`auc`), a family of arm comparisons (primary
first; p-values of paired t tests Holm-adjusted over the family), a positive control and an A/A
null pair. Every metric is a distance from the reference (lower is better), so a comparison
[a, b] reports the paired difference a - b over seeds: negative means a is closer.

Each row gives the mean difference with its Student-t interval (family rows at ``ci_level``,
the controls at 1 - alpha), the paired-t p-value (raw and Holm-adjusted for the family), the
minimum detectable effect at the configured power from the observed spread (family rows at
alpha / m for m comparisons, the level Holm's first rejection needs, so it does not overstate
what the family detects; the controls at alpha), the number of seeds and of failed evaluations (imputed by
:func:`alcg.analysis.summary.impute_failures`), and a verdict in words:

- family: ``a closer`` / ``b closer`` when the Holm-adjusted p < alpha, else ``no difference
  detected``;
- positive control [control, baseline]: ``discriminates`` when the difference's t interval
  lies wholly below 0, else ``cannot discriminate`` (then no selector comparison is a result);
- null pair: ``null, as expected`` when its t interval covers 0, else ``A/A difference``;
- gap closed (role ``gap_closed``, primary endpoint only, with a positive control [control,
  baseline]): one row per other arm, the share of the baseline-to-control gap it closes,
  (baseline - arm) / (baseline - control) of the endpoint's means over seeds, in ``share``
  with a paired percentile-bootstrap interval over seeds (``share_ci_low``/``_high``,
  :func:`alcg.analysis.statistics.gap_share_ci`): ``closes >= 50 %`` when the interval lies
  above 0.5, ``closes < 50 %`` below it, else ``undetermined``; ``gap not resolved`` when the
  positive control does not discriminate (its interval covers 0: the ratio's denominator may
  be 0, so the share means nothing);
- any row with fewer than 2 seeds: ``too few seeds for a verdict``; a pair with an arm the run
  lacks: ``arm not run``.

Every row says whether its arms' selectors filled their oracle slots (rounds.tsv
``fallback_share``, over the rounds whose queries trained the endpoint's models, rounds before
its round): ``low_selector_fill`` is True when, for either arm, the mean over seeds of the share
of fallback starts exceeds 0.5 in some round (the selector filled under half of its slots, so
the arm was mostly an ``md`` arm there); ``max_fallback_share`` is the worst single seed and
round of the row's arms. Both are empty where rounds.tsv has no fallback counts.
"""
from __future__ import annotations

import numpy as np

from alcg.config.settings import Analysis
from alcg.analysis.statistics import gap_share_ci, holm, min_detectable_effect, paired_t_test, t_mean_ci

COLUMNS = ["endpoint", "role", "comparison", "metric", "round", "value", "mean_difference", "t_ci_low", "t_ci_high",
           "share", "share_ci_low", "share_ci_high", "p_value", "p_holm", "min_detectable_effect", "n_seeds",
           "n_failed", "low_selector_fill", "max_fallback_share", "n_seeds_low_fill", "verdict"]
#: a selector that filled fewer of its slots than 1 - this (rounds.tsv ``fallback_share`` above
#: it, mean over seeds) marks its comparisons ``low_selector_fill``
LOW_FILL_SHARE = 0.5
#: the gap-closed share's verdict threshold
GAP_SHARE = 0.5


def endpoint_round(rows: list[dict], plan: Analysis) -> int:
    """The endpoint's round: ``plan.primary_round``, or the last round."""
    return max(r["round"] for r in rows) if plan.primary_round is None else plan.primary_round


def auc(n_queries, values) -> float:
    """Area under a learning curve over the oracle queries spent, divided by their span.

    Trapezoid of ``values`` over ``n_queries`` (round 0 included), over ``n_queries[-1] -
    n_queries[0]``: the mean of the metric along the curve, in the metric's units (lower is
    better, as the metric). One point: its value.

    Parameters
    ----------
    n_queries : (K,) queries spent before each round's model (rounds.tsv ``n_queries``), increasing
    values : (K,) the metric per round (metric units)

    Returns
    -------
    metric units; nan when a value or a query count is missing (None, non-finite) or the span is 0
    """
    x = np.array([np.nan if q is None else q for q in n_queries], np.float64)
    y = np.array([np.nan if v is None else v for v in values], np.float64)
    if len(y) == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    if len(y) == 1:
        return float(y[0])
    span = x[-1] - x[0]
    if span <= 0:
        return float("nan")
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / span)


def endpoint(rows: list[dict], arm: str, plan: Analysis) -> dict[int, float]:
    """{seed: primary endpoint of ``arm``} from summary rows (failures already imputed):
    ``final`` the metric at the endpoint's round, ``change`` that minus round 0, ``auc``
    :func:`auc` over rounds 0 to the endpoint's round (rows need ``n_queries``). A missing
    value gives nan (left out of the comparison's seeds)."""
    k = endpoint_round(rows, plan)
    mine = {(r["seed"], r["round"]): r for r in rows if r["arm"] == arm}
    out = {}
    for seed in sorted({s for s, rnd in mine if rnd == k}):
        if plan.primary_value == "auc":
            curve = [mine.get((seed, j), {}) for j in range(k + 1)]
            out[seed] = auc([r.get("n_queries") for r in curve], [r.get(plan.primary_metric) for r in curve])
            continue
        v = mine[(seed, k)].get(plan.primary_metric)
        base = mine.get((seed, 0), {}).get(plan.primary_metric) if plan.primary_value == "change" else 0.0
        out[seed] = np.nan if v is None or base is None else float(v) - float(base)
    return out


def endpoint_rounds(k: int, value: str) -> set[int]:
    """Rounds whose evaluation enters an endpoint at round ``k``: ``k`` (final), 0 and ``k``
    (change), 0 to ``k`` (auc)."""
    return {"final": {k}, "change": {0, k}}.get(value, set(range(k + 1)))


def _n_failed(seeds, arms, k: int, value: str, failed: set) -> int:
    """Failed evaluations (seed, arm, round) that enter the endpoints of ``arms``."""
    return sum((s, a, rnd) in failed for s in seeds for a in arms for rnd in endpoint_rounds(k, value))


def selector_fill(rows: list[dict], arms, k: int) -> dict:
    """``low_selector_fill``, ``max_fallback_share`` and ``n_seeds_low_fill`` (module doc) of
    ``arms`` over the rounds before ``k`` (the queries that trained the endpoint's models); None
    where no row has a ``fallback_share``."""
    shares: dict[tuple[str, int], list[float]] = {}
    low_seeds = set()
    for r in rows:
        v = r.get("fallback_share")
        if r["arm"] in arms and r["round"] < k and v is not None and np.isfinite(float(v)):
            shares.setdefault((r["arm"], r["round"]), []).append(float(v))
            if float(v) > LOW_FILL_SHARE:
                low_seeds.add(r["seed"])
    if not shares:
        return {"low_selector_fill": None, "max_fallback_share": None, "n_seeds_low_fill": None}
    return {"low_selector_fill": any(float(np.mean(v)) > LOW_FILL_SHARE for v in shares.values()),
            "max_fallback_share": max(max(v) for v in shares.values()), "n_seeds_low_fill": len(low_seeds)}


def _pair(rows: list[dict], a: str, b: str, plan: Analysis, ci_level: float, failed: set,
          mde_alpha: float | None = None) -> dict:
    run = {r["arm"] for r in rows}
    if a not in run or b not in run:
        return {"comparison": f"{a} - {b}", "metric": plan.primary_metric, "value": plan.primary_value,
                "p_value": float("nan"), "t_ci_low": float("nan"), "t_ci_high": float("nan"),
                "mean_difference": float("nan"), "n_seeds": 0, "n_failed": 0, "not_run": True}
    ea, eb = endpoint(rows, a, plan), endpoint(rows, b, plan)
    seeds = sorted(set(ea) & set(eb))
    d = np.array([ea[s] - eb[s] for s in seeds], np.float64)
    mean, lo, hi = t_mean_ci(d, ci_level)
    ok = d[np.isfinite(d)]
    sd = float(ok.std(ddof=1)) if len(ok) > 1 else float("nan")
    k = endpoint_round(rows, plan)
    return {"comparison": f"{a} - {b}", "metric": plan.primary_metric, "round": k, "value": plan.primary_value,
            "mean_difference": mean, "t_ci_low": lo, "t_ci_high": hi,
            "p_value": paired_t_test([ea[s] for s in seeds], [eb[s] for s in seeds]),
            "min_detectable_effect": min_detectable_effect(sd, len(ok), mde_alpha or plan.alpha, plan.power),
            "n_seeds": int(len(ok)), "n_failed": _n_failed(seeds, (a, b), k, plan.primary_value, failed),
            **selector_fill(rows, (a, b), k)}


def gap_verdict(resolved: bool, lo: float, hi: float) -> str:
    """Verdict of a gap-closed row (module doc) from whether the positive control discriminates
    and the share's interval."""
    if not resolved:
        return "gap not resolved"
    if lo > GAP_SHARE:
        return "closes >= 50 %"
    if hi < GAP_SHARE:
        return "closes < 50 %"
    return "undetermined"


def _gap_rows(rows: list[dict], plan: Analysis, control_row: dict, failed: set, n_bootstrap: int,
              ci_level: float) -> list[dict]:
    """One ``gap_closed`` row per arm other than the positive control's two (module doc), each
    interval at ``1 - (1 - ci_level) / m`` for m such arms (Bonferroni: the question is whether
    any arm closes half the gap); ``control_row``: the positive control's row (its verdict says
    whether the gap is resolved)."""
    control, baseline = plan.positive_control
    run = sorted({r["arm"] for r in rows})
    if control not in run or baseline not in run:
        return []
    k = endpoint_round(rows, plan)
    eb, ec = endpoint(rows, baseline, plan), endpoint(rows, control, plan)
    arms = [a for a in run if a not in (control, baseline)]
    ci_level = 1.0 - (1.0 - ci_level) / max(len(arms), 1)  # Bonferroni: "does any arm close half?"
    out = []
    for arm in arms:
        ea = endpoint(rows, arm, plan)
        seeds = sorted(set(ea) & set(eb) & set(ec))
        trio = np.array([[eb[s] for s in seeds], [ea[s] for s in seeds], [ec[s] for s in seeds]], np.float64)
        share, lo, hi = gap_share_ci(*trio, n_bootstrap, ci_level)
        nan = float("nan")
        out.append({"role": "gap_closed", "comparison": f"({baseline} - {arm}) / ({baseline} - {control})",
                    "metric": plan.primary_metric, "round": k, "value": plan.primary_value,
                    "mean_difference": nan, "t_ci_low": nan, "t_ci_high": nan, "p_value": nan, "p_holm": None,
                    "share": share, "share_ci_low": lo, "share_ci_high": hi,
                    "n_seeds": int(np.isfinite(trio).all(0).sum()),
                    "n_failed": _n_failed(seeds, (baseline, arm, control), k, plan.primary_value, failed),
                    "verdict": gap_verdict(control_row.get("verdict") == "discriminates", lo, hi),
                    **selector_fill(rows, (baseline, arm, control), k)})
    return out


def primary_rows(rows: list[dict], plan: Analysis, ci_level: float, n_bootstrap: int) -> list[dict]:
    """The pre-registered table (see module doc) from ``rounds.tsv``-style rows (with
    ``evaluation_failed``; ``n_queries`` for an ``auc`` endpoint, ``fallback_share`` for the
    selector-fill columns); failed evaluations enter with their imputed values. The primary
    endpoint's rows come first (``endpoint`` = primary), then each of
    ``plan.secondary_metrics`` analysed the same way, taken as ``plan.secondary_value`` says
    (None: as the primary; ``endpoint`` = secondary; Holm within each endpoint's family). The
    gap-closed interval takes ``n_bootstrap`` paired resamples (``evaluate.n_bootstrap``) at
    ``ci_level``."""
    import dataclasses

    out = [{"endpoint": "primary", **r} for r in _endpoint_rows(rows, plan, ci_level, n_bootstrap)]
    value = plan.secondary_value or plan.primary_value
    for metric in plan.secondary_metrics:
        if metric == plan.primary_metric and value == plan.primary_value:
            continue
        plan_m = dataclasses.replace(plan, primary_metric=metric, primary_value=value)
        out += [{"endpoint": "secondary", **r} for r in _endpoint_rows(rows, plan_m, ci_level, None)]
    return out


def _endpoint_rows(rows: list[dict], plan: Analysis, ci_level: float, n_bootstrap: int | None) -> list[dict]:
    """Family, positive control and null pair of ``plan.primary_metric``, and with
    ``n_bootstrap`` (the primary endpoint) the gap-closed rows."""
    from alcg.analysis.summary import impute_failures

    failed = {(r["seed"], r["arm"], r["round"]) for r in rows if r.get("evaluation_failed")}
    rows = impute_failures(rows)
    m = max(len(plan.comparisons), 1)
    family = [_pair(rows, a, b, plan, ci_level, failed, plan.alpha / m) for a, b in plan.comparisons]
    for row, (a, b), p in zip(family, plan.comparisons, holm([r["p_value"] for r in family])):
        verdict = "no difference detected"
        if p < plan.alpha:
            verdict = f"{a} closer" if row["mean_difference"] < 0 else f"{b} closer"
        row.update(role="primary" if row is family[0] else "secondary", p_holm=p, verdict=verdict)
    out = family
    boot_level = ci_level
    ci_level = 1.0 - plan.alpha  # the controls' intervals at the analysis' own level
    gap = []
    if plan.positive_control:
        row = _pair(rows, *plan.positive_control, plan, ci_level, failed)
        row.update(role="positive_control", p_holm=None,
                   verdict="discriminates" if row["t_ci_high"] < 0 else "cannot discriminate")
        out.append(row)
        if n_bootstrap is not None:
            gap = _gap_rows(rows, plan, row, failed, n_bootstrap, boot_level)
    if plan.null_pair:
        row = _pair(rows, *plan.null_pair, plan, ci_level, failed)
        covers = row["t_ci_low"] <= 0 <= row["t_ci_high"]
        row.update(role="null_pair", p_holm=None,
                   verdict="null, as expected" if covers else
                   "A/A difference (by chance in alpha of runs; else the design is noisier than its CI)")
        out.append(row)
    out += gap
    for row in out:
        if row.pop("not_run", False):
            row["verdict"] = "arm not run"
        elif row["n_seeds"] < 2:
            row["verdict"] = "too few seeds for a verdict"
    return out
