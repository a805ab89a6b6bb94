"""The pre-registered analysis: ``summary/primary.tsv``.

The ``analysis`` config section fixes, before the measured run, one primary endpoint (a metric,
a round, its final value or its change from round 0), a family of arm comparisons (primary
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
- any row with fewer than 2 seeds: ``too few seeds for a verdict``; a pair with an arm the run
  lacks: ``arm not run``.
"""
from __future__ import annotations

import numpy as np

from alcg.config.settings import Analysis
from alcg.analysis.statistics import holm, min_detectable_effect, paired_t_test, t_mean_ci

COLUMNS = ["endpoint", "role", "comparison", "metric", "round", "value", "mean_difference", "t_ci_low", "t_ci_high",
           "p_value", "p_holm", "min_detectable_effect", "n_seeds", "n_failed", "verdict"]


def endpoint(rows: list[dict], arm: str, plan: Analysis) -> dict[int, float]:
    """{seed: primary endpoint of ``arm``} from summary rows (failures already imputed)."""
    last = max(r["round"] for r in rows)
    k = last if plan.primary_round is None else plan.primary_round
    by = {(r["seed"], r["round"]): r.get(plan.primary_metric) for r in rows if r["arm"] == arm}
    out = {}
    for (seed, rnd), v in by.items():
        if rnd != k:
            continue
        base = by.get((seed, 0)) if plan.primary_value == "change" else 0.0
        out[seed] = np.nan if v is None or base is None else float(v) - float(base)
    return out


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
    k = max(r["round"] for r in rows) if plan.primary_round is None else plan.primary_round
    n_failed = sum(1 for s in seeds for arm in (a, b) for rnd in {0, k} if (s, arm, rnd) in failed
                   and (rnd == k or plan.primary_value == "change"))
    return {"comparison": f"{a} - {b}", "metric": plan.primary_metric, "round": k, "value": plan.primary_value,
            "mean_difference": mean, "t_ci_low": lo, "t_ci_high": hi,
            "p_value": paired_t_test([ea[s] for s in seeds], [eb[s] for s in seeds]),
            "min_detectable_effect": min_detectable_effect(sd, len(ok), mde_alpha or plan.alpha, plan.power),
            "n_seeds": int(len(ok)), "n_failed": n_failed}


def primary_rows(rows: list[dict], plan: Analysis, ci_level: float) -> list[dict]:
    """The pre-registered table (see module doc) from ``rounds.tsv``-style rows (with
    ``evaluation_failed``); failed evaluations enter with their imputed values. The primary
    endpoint's rows come first (``endpoint`` = primary), then each of
    ``plan.secondary_metrics`` analysed the same way (``endpoint`` = secondary; Holm within
    each endpoint's family)."""
    import dataclasses

    out = [{"endpoint": "primary", **r} for r in _endpoint_rows(rows, plan, ci_level)]
    for metric in plan.secondary_metrics:
        if metric == plan.primary_metric:
            continue
        plan_m = dataclasses.replace(plan, primary_metric=metric)
        out += [{"endpoint": "secondary", **r} for r in _endpoint_rows(rows, plan_m, ci_level)]
    return out


def _endpoint_rows(rows: list[dict], plan: Analysis, ci_level: float) -> list[dict]:
    """Family, positive control and null pair of ``plan.primary_metric``."""
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
    ci_level = 1.0 - plan.alpha  # the controls' intervals at the analysis' own level
    if plan.positive_control:
        row = _pair(rows, *plan.positive_control, plan, ci_level, failed)
        row.update(role="positive_control", p_holm=None,
                   verdict="discriminates" if row["t_ci_high"] < 0 else "cannot discriminate")
        out.append(row)
    if plan.null_pair:
        row = _pair(rows, *plan.null_pair, plan, ci_level, failed)
        covers = row["t_ci_low"] <= 0 <= row["t_ci_high"]
        row.update(role="null_pair", p_holm=None,
                   verdict="null, as expected" if covers else
                   "A/A difference (by chance in alpha of runs; else the design is noisier than its CI)")
        out.append(row)
    for row in out:
        if row.pop("not_run", False):
            row["verdict"] = "arm not run"
        elif row["n_seeds"] < 2:
            row["verdict"] = "too few seeds for a verdict"
    return out
