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
    table = {r["role"] + ":" + r["comparison"]: r for r in primary_rows(rows, plan, 0.95, 2000)}
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
    table = primary_rows(rows, plan, 0.95, 2000)
    assert table[0]["verdict"] == "no difference detected"
    assert table[1]["verdict"] == "cannot discriminate"


def test_holm_adjustment():
    from alcg.analysis.statistics import holm

    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, math.nan])[1])


def test_preregistered_pair_of_an_arm_not_run_says_so():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": 0.0, "md": 0.0})
    table = primary_rows(rows, _plan(comparisons=(("rmsd", "md"), ("rmsd", "random"))), 0.95, 2000)
    assert [r["verdict"] for r in table][1] == "arm not run" and table[0]["verdict"] != "arm not run"


def test_a_failed_simulation_keeps_its_measured_held_out_force_error():
    rows = _rows(failing=(1, "a", 1), values={"low_valid_fraction": True, "tica_w1": 0.2, "heldout_force_mse": 0.05})
    bad = {(r["seed"], r["arm"], r["round"]): r for r in impute_failures(rows)}[(1, "a", 1)]
    assert bad["heldout_force_mse"] == 0.05 and bad["tica_js"] == METRIC_BOUNDS["tica_js"]


def test_verdict_names_the_closer_arm_whatever_its_name():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"random_b": -0.1, "md_a": 0.0})
    table = primary_rows(rows, _plan(comparisons=(("random_b", "md_a"),)), 0.95, 2000)
    assert table[0]["verdict"] == "random_b closer"


def test_secondary_endpoints_follow_the_primary_with_their_own_family():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "md": 0.0, "iid": -0.3})
    for r in rows:  # a secondary metric on which rmsd is worse
        r["q_rg_js"] = r["tica_w1"] + (0.2 if r["arm"] == "rmsd" and r["round"] else 0.0)
    plan = _plan(comparisons=(("rmsd", "md"),), positive_control=("iid", "md"), secondary_metrics=("q_rg_js",))
    table = primary_rows(rows, plan, 0.95, 2000)
    assert [(r["endpoint"], r["metric"], r["role"]) for r in table] == [
        ("primary", "tica_w1", "primary"), ("primary", "tica_w1", "positive_control"),
        ("primary", "tica_w1", "gap_closed"),  # the primary endpoint alone
        ("secondary", "q_rg_js", "primary"), ("secondary", "q_rg_js", "positive_control")]
    assert table[0]["verdict"] == "rmsd closer" and table[3]["verdict"] == "md closer"
    assert table[2]["verdict"] == "closes < 50 %"  # rmsd: 0.1 of the 0.3 md-to-iid gap


# --------------------------------------------------------------------------- round_rows: derived columns
def _layout(tmp_path, monkeypatch, fallbacks: list[list[bool]], evals: list[dict]) -> dict:
    """One seed, one arm: round k has the slot starts ``fallbacks[k]`` (True: a fallback start)
    and evaluation ``evals[k]``; the last round queries nothing. Dataset frames and oracle ns
    are stubbed (the columns under test read neither)."""
    import json

    from alcg.analysis import summary
    from alcg.formats import slot_start

    monkeypatch.setattr(summary, "split_counts", lambda path: {"n_train_frames": 10, "n_val_frames": 0})
    monkeypatch.setattr(summary.run_file, "recorded_ns", lambda path: 0.002)
    monkeypatch.setattr(summary.run_file, "count", lambda paths, which: 0)
    rounds = []
    for k, ev in enumerate(evals):
        (tmp_path / f"ev{k}.json").write_text(json.dumps(ev))
        (tmp_path / f"tr{k}.json").write_text("{}")
        r = {"dataset": "unused", "train": str(tmp_path / f"tr{k}.json"), "evaluate": str(tmp_path / f"ev{k}.json")}
        if k < len(fallbacks):
            r["starts"] = []
            for x, fb in enumerate(fallbacks[k]):
                path = tmp_path / f"start_{k}_{x}.npz"
                slot_start.save_structure(path, "", slot=x, fallback=fb, n_rejected=2 if fb else 0)
                r["starts"].append(str(path))
            r["oracles"] = [f"oracle_{k}_{x}.npz" for x in range(len(fallbacks[k]))]
        rounds.append(r)
    return {1: {"rmsd": rounds}}


def test_round_rows_count_queries_slots_and_the_share_of_fallback_starts(tmp_path, monkeypatch):
    from alcg.analysis.summary import round_rows

    evals = [_ev() for _ in range(3)]
    layout = _layout(tmp_path, monkeypatch, [[True, False, False, False], [True, True, True, False, False]], evals)
    rows = round_rows(layout)
    assert [r["n_queries"] for r in rows] == [0, 4, 9]  # cumulative slots before each round's model
    assert [r["n_slots"] for r in rows] == [4, 5, None]
    assert [r["n_fallback_starts"] for r in rows] == [1, 3, None]
    assert [r["fallback_share"] for r in rows] == [0.25, 0.6, None]
    assert [r["n_rejected_backmap"] for r in rows] == [2, 6, None]
    assert rows[1]["oracle_ns"] == pytest.approx(0.008)


def test_round_rows_give_the_error_against_the_exact_mean_force():
    from alcg.analysis.summary import derived_metrics, mean_force_error

    ev = {"heldout_force_mse": 120.0, "heldout_label_se2": 15.0,
          "heldout_force_mse_weighted": 100.0, "heldout_label_se2_weighted": 12.5}
    assert derived_metrics(ev) == {"heldout_mean_force_error": 105.0, "heldout_mean_force_error_weighted": 87.5}
    # instantaneous labels carry no SE^2: no mean-force error, not the raw MSE
    assert derived_metrics({"heldout_force_mse": 120.0}) == {"heldout_mean_force_error": None,
                                                             "heldout_mean_force_error_weighted": None}
    assert mean_force_error(None, 3.0) is None and mean_force_error(2.0, 3.0) == -1.0


def test_mean_force_error_in_rounds_tsv_from_real_error_metrics(tmp_path, monkeypatch):
    """error_metrics on hand-made per-frame errors -> the evaluation JSON -> rounds.tsv."""
    from alcg.analysis.heldout import error_metrics
    from alcg.analysis.summary import NOT_SIMULATED, round_rows

    full = np.array([10.0, 20.0, 30.0, 50.0])  # folded frames 10, 20; unfolded 30, 50
    prior = full + 100.0
    stratum = np.array(["folded", "folded", "unfolded", "unfolded"])
    se2 = np.array([1.0, 3.0, 4.0, 6.0])
    m = error_metrics(full, prior, stratum, se2, {"folded": 0.75, "unfolded": 0.25})
    # unweighted: mean MSE 27.5 - mean SE^2 3.5; weighted: 0.75 * (15 - 2) + 0.25 * (40 - 5)
    ev = _ev(**{k: v for k, v in m.items() if not k.endswith("_by_stratum")})
    rows = round_rows(_layout(tmp_path, monkeypatch, [], [ev]))
    assert rows[0]["heldout_mean_force_error"] == pytest.approx(24.0)
    assert rows[0]["heldout_mean_force_error_weighted"] == pytest.approx(0.75 * 13 + 0.25 * 35)
    assert rows[0]["n_queries"] == 0 and rows[0]["fallback_share"] is None
    assert "heldout_mean_force_error_weighted" in NOT_SIMULATED


def test_rounds_tsv_has_the_fraction_removed_per_q_stratum(tmp_path, monkeypatch):
    """error_metrics' per-stratum fraction removed -> one rounds.tsv column per Q stratum; a
    stratum the held-out set lacks stays empty, not zero."""
    import json

    from alcg.analysis.heldout import error_metrics
    from alcg.analysis.summary import STRATUM_COLUMNS, round_rows

    full = np.array([10.0, 20.0, 30.0, 50.0])
    stratum = np.array(["folded", "folded", "unfolded", "unfolded"])
    m = error_metrics(full, full + 100.0, stratum, np.ones(4), {"folded": 0.5, "unfolded": 0.5})
    ev = json.loads(json.dumps(_ev(**m)))  # as the evaluation's JSON holds it
    row = round_rows(_layout(tmp_path, monkeypatch, [], [ev]))[0]
    assert STRATUM_COLUMNS == ["heldout_fraction_removed_folded", "heldout_fraction_removed_transition",
                               "heldout_fraction_removed_unfolded"]
    assert row["heldout_fraction_removed_folded"] == pytest.approx(m["heldout_fraction_removed_by_stratum"]["folded"])
    assert row["heldout_fraction_removed_unfolded"] == pytest.approx(m["heldout_fraction_removed_by_stratum"]["unfolded"])
    assert row["heldout_fraction_removed_folded"] != row["heldout_fraction_removed_unfolded"]
    assert row["heldout_fraction_removed_transition"] is None


def test_a_failed_simulation_keeps_its_mean_force_error():
    rows = _rows(failing=(1, "a", 1), values={"low_valid_fraction": True, "tica_w1": 0.2,
                                               "heldout_mean_force_error_weighted": 7.0})
    bad = {(r["seed"], r["arm"], r["round"]): r for r in impute_failures(rows)}[(1, "a", 1)]
    assert bad["heldout_mean_force_error_weighted"] == 7.0


def test_experiment_table_gives_the_mean_fallback_share_as_a_value(tmp_path, monkeypatch):
    rows = _rows()
    shares = {(1, 0): 0.25, (2, 0): 0.5, (3, 0): 0.75}  # arm a, round 0; arm b never falls back
    for r in rows:
        r["fallback_share"] = None if r["round"] == 1 else (shares[(r["seed"], 0)] if r["arm"] == "a" else 0.0)
    table = experiment_rows(rows, n_bootstrap=200, ci_level=0.95)
    fb = [t for t in table if t["metric"] == "fallback_share"]
    assert [(t["arm"], t["round"], t["comparison"]) for t in fb] == [("a", 0, "value_fraction"),
                                                                     ("b", 0, "value_fraction")]
    assert fb[0]["mean"] == pytest.approx(0.5) and fb[0]["n_seeds"] == 3 and fb[0]["n_failed"] == 0
    assert fb[0]["ci_low"] >= 0.25 and fb[0]["ci_high"] <= 0.75 and fb[1]["mean"] == 0.0


# --------------------------------------------------------------------------- primary.tsv: auc, fill, gap
def test_auc_is_the_mean_along_the_learning_curve_over_queries():
    from alcg.analysis.primary import auc

    # trapezoids (0..8: (3 + 1) / 2 * 8 = 16) + (8..12: (1 + 2) / 2 * 4 = 6), over 12 queries
    assert auc([0, 8, 12], [3.0, 1.0, 2.0]) == pytest.approx(22 / 12)
    assert auc([0], [0.4]) == 0.4  # round 0 alone: its value
    assert math.isnan(auc([0, 8, 12], [3.0, None, 2.0]))
    assert math.isnan(auc([0, None], [3.0, 1.0]))


def _curve_rows(curves: dict[tuple[int, str], list[float | None]], slots: int = 4, **extra) -> list[dict]:
    return [{"seed": s, "arm": a, "round": k, "n_queries": slots * k, "evaluation_failed": False,
             "tica_w1": v, **extra} for (s, a), vs in curves.items() for k, v in enumerate(vs)]


def test_auc_endpoint_compares_whole_curves_and_drops_a_seed_with_a_missing_round():
    from alcg.analysis.primary import endpoint, primary_rows

    curves = {(1, "rmsd"): [1.0, 0.6, 0.4], (1, "md"): [1.0, 0.8, 0.4],
              (2, "rmsd"): [2.0, 1.2, 1.0], (2, "md"): [2.0, 1.6, 1.0],
              (3, "rmsd"): [1.0, None, 0.5], (3, "md"): [1.0, 0.9, 0.5]}
    plan = _plan(primary_value="auc", comparisons=(("rmsd", "md"),))
    e = endpoint(_curve_rows(curves), "rmsd", plan)
    assert e[1] == pytest.approx((1.6 / 2 + 1.0 / 2) / 2) and e[2] == pytest.approx((3.2 / 2 + 2.2 / 2) / 2)
    assert math.isnan(e[3])
    row = primary_rows(_curve_rows(curves), plan, 0.95, 2000)[0]
    # same final value, rmsd lower along the way: AUC differences -0.1 and -0.2 (seed 3 left out)
    assert row["mean_difference"] == pytest.approx(-0.15) and row["n_seeds"] == 2
    final = primary_rows(_curve_rows(curves), _plan(comparisons=(("rmsd", "md"),)), 0.95, 2000)[0]
    assert final["mean_difference"] == pytest.approx(0.0)


def test_auc_counts_a_failed_evaluation_in_any_round_of_the_span():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "md": 0.0}, n_seeds=4)
    for r in rows:
        r["n_queries"] = 8 * r["round"]
    rows[0]["evaluation_failed"] = True  # seed 0, rmsd, round 0
    auc = primary_rows(rows, _plan(primary_value="auc", comparisons=(("rmsd", "md"),)), 0.95, 2000)[0]
    final = primary_rows(rows, _plan(comparisons=(("rmsd", "md"),)), 0.95, 2000)[0]
    assert auc["n_failed"] == 1 and final["n_failed"] == 0


def test_a_comparison_is_flagged_when_a_selector_filled_under_half_of_its_slots():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "random": 0.0, "md": 0.0, "iid": -0.3}, n_seeds=3)
    # rmsd's round-0 fallback shares over seeds 0.5, 0.75, 0.5: mean 0.58 > 0.5; random: 0.75, 0, 0
    fb = {"rmsd": [0.5, 0.75, 0.5], "random": [0.75, 0.0, 0.0], "md": [0.0] * 3, "iid": [0.0] * 3}
    for r in rows:
        r["fallback_share"] = fb[r["arm"]][r["seed"]] if r["round"] == 0 else None
    plan = _plan(comparisons=(("rmsd", "md"), ("random", "md")), positive_control=("iid", "md"))
    table = {r["role"] + ":" + r["comparison"]: r for r in primary_rows(rows, plan, 0.95, 2000)}
    assert table["primary:rmsd - md"]["low_selector_fill"] is True
    assert table["primary:rmsd - md"]["max_fallback_share"] == 0.75
    assert table["primary:rmsd - md"]["n_seeds_low_fill"] == 1  # only seed 1 above 0.5 (0.5 is not)
    # one seed at 0.75 but the mean over seeds 0.25: reported as the worst seed, not flagged
    assert table["secondary:random - md"]["low_selector_fill"] is False
    assert table["secondary:random - md"]["max_fallback_share"] == 0.75
    assert table["positive_control:iid - md"]["low_selector_fill"] is False
    assert table["gap_closed:(md - rmsd) / (md - iid)"]["low_selector_fill"] is True
    # rounds.tsv without fallback counts: no flag either way
    assert primary_rows(_seeded_rows({"rmsd": 0.0, "md": 0.0}), _plan(comparisons=(("rmsd", "md"),)),
                        0.95, 2000)[0]["low_selector_fill"] is None


def test_gap_closed_share_and_its_interval_by_hand():
    from alcg.analysis.primary import COLUMNS, primary_rows

    # every seed's md - iid gap is 1, so a share is the mean over seeds of what an arm closes per
    # seed: rmsd 0.45, 0.5, 0.55 (half), random 0.1, -0.1, 0 (none), committee 0.9, 1.0, 1.1 (all)
    base = [2.0, 3.0, 4.0]
    curves = {}
    for s, b in enumerate(base):
        curves.update({(s, "md"): [b, b], (s, "iid"): [b, b - 1.0], (s, "rmsd"): [b, b - 0.45 - 0.05 * s],
                       (s, "random"): [b, b - [0.1, -0.1, 0.0][s]], (s, "committee"): [b, b - 0.9 - 0.1 * s]})
    plan = _plan(comparisons=(("rmsd", "md"),), positive_control=("iid", "md"))
    rows = [r for r in primary_rows(_curve_rows(curves), plan, 0.95, 2000) if r["role"] == "gap_closed"]
    c = curves
    by = {r["comparison"]: r for r in rows}
    assert set(by) == {"(md - rmsd) / (md - iid)", "(md - random) / (md - iid)", "(md - committee) / (md - iid)"}
    rmsd, random, committee = (by[f"(md - {a}) / (md - iid)"] for a in ("rmsd", "random", "committee"))
    # a resampled mean of three values lies between their smallest and largest
    assert rmsd["share"] == pytest.approx(0.5) and 0.45 - 1e-9 <= rmsd["share_ci_low"] < 0.5 < rmsd["share_ci_high"]
    assert rmsd["verdict"] == "undetermined" and math.isnan(rmsd["mean_difference"])
    assert random["share"] == pytest.approx(0.0) and -0.1 - 1e-9 <= random["share_ci_low"] < 0
    assert 0 < random["share_ci_high"] <= 0.1 + 1e-9 and random["verdict"] == "closes < 50 %"
    assert committee["share"] == pytest.approx(1.0) and 0.9 - 1e-9 <= committee["share_ci_low"] < 1.0
    assert committee["verdict"] == "closes >= 50 %" and committee["n_seeds"] == 3
    assert {"share", "share_ci_low", "share_ci_high", "low_selector_fill", "max_fallback_share"} <= set(COLUMNS)
    # three arms ask "does any close half?": each interval at 1 - 0.05/3 (Bonferroni)
    from alcg.analysis.statistics import gap_share_ci

    trio = [[c[(s, a)][-1] for s in range(3)] for a in ("md", "rmsd", "iid")]
    assert (rmsd["share_ci_low"], rmsd["share_ci_high"]) == pytest.approx(gap_share_ci(*trio, 2000, 1 - 0.05 / 3)[1:])
    assert rmsd["share_ci_low"] <= gap_share_ci(*trio, 2000, 0.95)[1]


def test_gap_closed_says_when_the_control_does_not_resolve_the_gap():
    from alcg.analysis.primary import primary_rows

    rows = _seeded_rows({"rmsd": -0.1, "md": 0.0, "iid": 0.0}, noise=0.05)
    plan = _plan(comparisons=(("rmsd", "md"),), positive_control=("iid", "md"))
    table = primary_rows(rows, plan, 0.95, 2000)
    assert table[1]["verdict"] == "cannot discriminate"
    assert table[2]["role"] == "gap_closed" and table[2]["verdict"] == "gap not resolved"


def test_the_primary_metric_as_auc_and_its_final_round_as_a_secondary():
    """secondary_value: final analyses the primary metric's final round as a secondary endpoint
    (same comparisons, own Holm family); without it the repeated metric is skipped."""
    from alcg.analysis.primary import primary_rows

    curves = {(s, a): [5.0 + 0.1 * s, v + 0.1 * s + 0.01 * s * (a == "md"), 1.0 + 0.01 * s * (s % 2)]
              for s in range(1, 5) for a, v in (("rmsd", 3.0), ("md", 5.0))}  # same final values, a lower curve
    rows = _curve_rows(curves)
    plan = _plan(primary_value="auc", secondary_metrics=("tica_w1",), comparisons=(("rmsd", "md"),))
    assert [r["endpoint"] for r in primary_rows(rows, plan, 0.95, 2000)] == ["primary"]
    both = primary_rows(rows, _plan(primary_value="auc", secondary_value="final", secondary_metrics=("tica_w1",),
                                    comparisons=(("rmsd", "md"),)), 0.95, 2000)
    primary, secondary = both[0], both[1]
    assert (primary["endpoint"], primary["value"], secondary["endpoint"], secondary["value"]) == \
        ("primary", "auc", "secondary", "final")
    assert primary["mean_difference"] < 0 and abs(secondary["mean_difference"]) < 0.1


def test_round_rows_report_the_explorations_reach_and_the_candidates_found(tmp_path, monkeypatch):
    """A round that explored: its coverage file's shares and its selector table's candidates; a
    round without exploration (the md arm, the last round): None."""
    import json

    from alcg.analysis.summary import round_rows

    layout = _layout(tmp_path, monkeypatch, [[False, False]], [_ev(), _ev()])
    r0 = layout[1]["rmsd"][0]
    (tmp_path / "cov.json").write_text(json.dumps({"plane": "Q, Rg", "bins_reached": 0.4, "mass_reached": 0.9}))
    (tmp_path / "sel.json").write_text(json.dumps({"n_candidates": 37, "n_selected": 2}))
    r0.update(coverage=str(tmp_path / "cov.json"), select=str(tmp_path / "sel.json"))
    rows = round_rows(layout)
    assert [(r["explore_bins_reached"], r["explore_mass_reached"], r["n_candidates"]) for r in rows] == \
        [(0.4, 0.9, 37), (None, None, None)]


def test_paired_curve_is_the_mean_within_seed_difference_and_skips_unpaired_seeds():
    from alcg.analysis.summary import paired_curve

    rows = _curve_rows({(1, "a"): [5.0, 3.0], (1, "md"): [5.0, 4.0], (2, "a"): [6.0, 2.0], (2, "md"): [6.0, 5.0],
                        (3, "a"): [7.0, 1.0], (3, "md"): [7.0, None]})
    x, mean, lo, hi = paired_curve(rows, "a", "tica_w1", 200, 0.95, x="n_queries", baseline="md")
    assert list(x) == [0, 4]
    assert mean[0] == 0.0 and (lo[0], hi[0]) == (0.0, 0.0)
    assert mean[1] == pytest.approx(-2.0)  # seeds 1 and 2: -1 and -3; seed 3 has no md value
    assert -3.0 <= lo[1] <= hi[1] <= -1.0


def test_experiment_figure_has_the_paired_panel_when_the_baseline_ran(tmp_path):
    from alcg.analysis import plots

    rows = _curve_rows({(s, a): [5.0 + s, 4.0 + s - (a == "a")] for s in (1, 2) for a in ("a", "md")},
                       oracle_ns=0.0, tica_js=0.1)
    plots.experiment(rows, 50, 0.95, tmp_path / "with.png", "tica_w1", baseline="md")
    plots.experiment(rows, 50, 0.95, tmp_path / "without.png", "tica_w1", baseline="iid")
    from PIL import Image

    wide, narrow = (Image.open(tmp_path / f).size[0] for f in ("with.png", "without.png"))
    assert wide > narrow * 1.2  # four panels against three


def test_free_energy_panels_one_per_arm_and_final_models_name_what_is_missing(tmp_path, caplog):
    from alcg.analysis import plots
    from alcg.stages.profiles import final_models
    from alcg.util.errors import DataError

    rng = np.random.default_rng(0)
    models = {arm: {1: rng.uniform(0, 1, 500), 2: np.zeros(0)} for arm in ("a", "b", "c", "d")}
    plots.free_energy_panels(rng.uniform(0, 1, 1000), models, "C-alpha Q", 0.7, tmp_path / "fq.png")
    assert (tmp_path / "fq.png").stat().st_size > 0
    (tmp_path / "seed_1/a/round_002/equilibrium").mkdir(parents=True)
    (tmp_path / "seed_1/a/round_002/equilibrium/replicas.json").write_text("{}")
    assert final_models(tmp_path, [1, 2], ["a"], 2) == {"a": {1: tmp_path / "seed_1/a/round_002/equilibrium"}}
    assert "seed_2/a/round_002/equilibrium" in caplog.text
    with pytest.raises(DataError, match="no final model has equilibrium runs"):
        final_models(tmp_path, [1], ["a"], 3)
