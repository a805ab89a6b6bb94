"""Summary tables: failed evaluations are counted and imputed by the pre-registered rule, never
dropped; every compared metric is a distance from the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from alcg.summary import METRIC_BOUNDS, METRICS, evaluation_failed, experiment_rows, impute_failures


def _ev(**changes) -> dict:
    ev = {m: 0.1 for m in METRICS}
    ev.update({"low_valid_fraction": False, **changes})
    return ev


def _rows(failing: tuple[int, str, int] | None = None, values=None) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for seed in (1, 2, 3):
        for arm in ("a", "b"):
            for k in (0, 1):
                ev = _ev(**{m: float(rng.uniform(0.1, 0.3)) for m in METRICS})
                if (seed, arm, k) == failing:
                    ev = values
                rows.append({"seed": seed, "arm": arm, "round": k, "oracle_ns": 0.1 * k,
                             "evaluation_failed": evaluation_failed(ev), **{m: ev.get(m) for m in METRICS}})
    return rows


@pytest.mark.parametrize("ev", [{"n_model_frames": 0}, _ev(tica_w1=math.nan), _ev(tica_js=math.nan),
                                _ev(low_valid_fraction=True)])
def test_a_nan_or_empty_evaluation_is_a_failure(ev):
    assert evaluation_failed(ev)


def test_a_metric_that_does_not_apply_is_no_failure():
    assert not evaluation_failed(_ev(tica_js=None, tica_unvisited_mass=None))


def test_a_failed_evaluation_shows_in_the_summary_with_its_pre_registered_value():
    rows = _rows(failing=(2, "b", 1), values={"n_model_frames": 0})
    imputed = {(r["seed"], r["arm"], r["round"]): r for r in impute_failures(rows)}
    bad = imputed[(2, "b", 1)]
    for m in METRICS:  # bound where there is one, else the worst value of the round
        worst = max(r[m] for r in rows if r["round"] == 1 and not r["evaluation_failed"])
        assert bad[m] == METRIC_BOUNDS.get(m, worst)
    table = experiment_rows(rows, n_bootstrap=200, ci_level=0.95)
    b1 = [t for t in table if t["arm"] == "b" and t["round"] == 1]
    assert all(t["n_failed"] == 1 and t["n_seeds"] == 3 for t in b1)  # counted, not dropped
    a1 = [t for t in table if t["arm"] == "a" and t["round"] == 1 and t["comparison"] == "change_vs_round0_pct"]
    assert all(t["n_failed"] == 0 for t in a1)
    # the failure makes b worse than it would have been: the change of JS is the largest of b's seeds
    js_b = [t for t in b1 if t["metric"] == "tica_js" and t["comparison"] == "change_vs_round0_pct"][0]
    clean = experiment_rows(_rows(), n_bootstrap=200, ci_level=0.95)
    js_clean = [t for t in clean if t["arm"] == "b" and t["round"] == 1 and t["metric"] == "tica_js"
                and t["comparison"] == "change_vs_round0_pct"][0]
    assert js_b["mean"] > js_clean["mean"]
