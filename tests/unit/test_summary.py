"""Summary tables: failed evaluations are counted and imputed by the pre-registered rule, never
dropped; every compared metric is a distance from the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from alcg.analysis.summary import METRIC_BOUNDS, METRICS, evaluation_failed, experiment_rows, impute_failures


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


def _plan(**changes):
    from alcg.config.settings import Analysis, defaults

    return defaults(Analysis, **changes)


def _seeded_rows(effects: dict[str, float], n_seeds: int = 10, noise: float = 0.02) -> list[dict]:
    """Rows of arms whose final tica_w1 is base + effect + per-seed noise shared by all arms
    (common random numbers) + a small arm-specific noise."""
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(n_seeds):
        shared = rng.normal(0, 0.2)
        for arm, effect in effects.items():
            for k in (0, 1):
                v = 1.0 + shared + (effect if k else 0.0) + rng.normal(0, noise)
                rows.append({"seed": seed, "arm": arm, "round": k, "evaluation_failed": False,
                             **{m: v for m in METRICS}})
    return rows


def test_preregistered_table_finds_a_real_effect_and_calls_the_null_pair_null():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "random": 0.0, "random_aa": 0.0, "md": 0.05, "iid": -0.3})
    plan = _plan(comparisons=(("rmsd", "random"), ("rmsd", "md")), positive_control=("iid", "md"),
                 null_pair=("random", "random_aa"))
    table = {r["role"] + ":" + r["comparison"]: r for r in primary_rows(rows, plan, 0.95)}
    primary = table["primary:rmsd - random"]
    assert primary["verdict"] == "rmsd closer" and primary["p_holm"] >= primary["p_value"]
    assert primary["mean_difference"] == pytest.approx(-0.1, abs=0.03)
    assert primary["min_detectable_effect"] < 0.1
    assert table["positive_control:iid - md"]["verdict"] == "discriminates"
    assert table["null_pair:random - random_aa"]["verdict"] == "null, as expected"


def test_preregistered_table_says_when_the_control_does_not_discriminate():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": 0.0, "md": 0.0, "iid": 0.0}, noise=0.05)
    plan = _plan(comparisons=(("rmsd", "md"),), positive_control=("iid", "md"), primary_value="change")
    table = primary_rows(rows, plan, 0.95)
    assert table[0]["verdict"] == "no difference detected"
    assert table[1]["verdict"] == "cannot discriminate"


def test_holm_adjustment():
    from alcg.analysis.statistics import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, math.nan])[1])


def test_preregistered_pair_of_an_arm_not_run_says_so():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": 0.0, "md": 0.0})
    table = primary_rows(rows, _plan(comparisons=(("rmsd", "md"), ("rmsd", "random"))), 0.95)
    assert [r["verdict"] for r in table][1] == "arm not run" and table[0]["verdict"] != "arm not run"


def test_a_failed_simulation_keeps_its_measured_held_out_force_error():
    rows = _rows(failing=(1, "a", 1), values={"low_valid_fraction": True, "tica_w1": 0.2, "heldout_force_mse": 0.05})
    bad = {(r["seed"], r["arm"], r["round"]): r for r in impute_failures(rows)}[(1, "a", 1)]
    assert bad["heldout_force_mse"] == 0.05 and bad["tica_js"] == METRIC_BOUNDS["tica_js"]


def test_verdict_names_the_closer_arm_whatever_its_name():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"random_b": -0.1, "md_a": 0.0})
    table = primary_rows(rows, _plan(comparisons=(("random_b", "md_a"),)), 0.95)
    assert table[0]["verdict"] == "random_b closer"


def test_secondary_endpoints_follow_the_primary_with_their_own_family():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "md": 0.0, "iid": -0.3})
    for r in rows:  # a secondary metric on which rmsd is worse
        r["q_rg_js"] = r["tica_w1"] + (0.2 if r["arm"] == "rmsd" and r["round"] else 0.0)
    plan = _plan(comparisons=(("rmsd", "md"),), positive_control=("iid", "md"), secondary_metrics=("q_rg_js",))
    table = primary_rows(rows, plan, 0.95)
    assert [(r["endpoint"], r["metric"], r["role"]) for r in table] == [
        ("primary", "tica_w1", "primary"), ("primary", "tica_w1", "positive_control"),
        ("secondary", "q_rg_js", "primary"), ("secondary", "q_rg_js", "positive_control")]
    assert table[0]["verdict"] == "rmsd closer" and table[2]["verdict"] == "md closer"
