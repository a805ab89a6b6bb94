"""The summary tables: ``rounds.tsv`` (one row per seed, arm and round) and ``experiment.tsv``
(per arm and round: mean change vs round 0 over seeds, and paired differences between arms,
each with a bootstrap confidence interval over seeds).

Both are built from a *layout*: ``{seed: {arm: [round files, ...]}}`` where each round's files
are ``dataset``, ``train`` (training metrics JSON), ``evaluate`` (evaluation metrics JSON) and,
for rounds that queried, ``select`` (table JSON), ``starts`` (slot start files, one per oracle
slot) and ``oracles`` (run files).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from alcg.formats import run_file, dataset, slot_start
from alcg.formats.run_file import Status
from alcg.util.fileio import atomic_path
from alcg.analysis.heldout import Q_STRATA
from alcg.analysis.statistics import (bootstrap_mean_ci, change_pct, paired_difference_ci, paired_difference_t_ci,
                             t_mean_ci)

#: metrics compared between arms: each a distance from the reference (lower is better, always)
METRICS = ["tica_w1", "tica_js", "tica_unvisited_mass", "bond_w1_nm", "angle_w1_rad", "dihedral_w1_rad",
           "rg_w1_nm", "end_to_end_w1_nm", "rmsd_folded_w1_nm", "fraction_folded_error", "heldout_force_mse",
           "q_w1", "q_rg_js", "heldout_mean_force_error_weighted"]
#: pre-registered value of a failed evaluation where the metric has a bound (else: the worst
#: value any arm and seed reached in that round; see :func:`impute_failures`)
METRIC_BOUNDS = {"tica_js": float(np.log(2)), "tica_unvisited_mass": 1.0, "fraction_folded_error": 1.0,
                 "q_w1": 1.0, "q_rg_js": float(np.log(2))}
#: metrics measured on the model itself, not on its simulation: a failed run keeps them
NOT_SIMULATED = {"heldout_force_mse", "heldout_mean_force_error_weighted"}
#: the held-out set's absolute numbers (:func:`alcg.analysis.heldout.error_metrics`): meaningful with
#: mean-force labels; ``_weighted``: strata weighted by their populations
HELDOUT_COLUMNS = ["heldout_labels", "heldout_label_se2", "heldout_excess", "heldout_excess_weighted",
                   "heldout_fraction_removed", "heldout_fraction_removed_weighted", "heldout_force_mse_weighted",
                   "heldout_label_se2_weighted", "heldout_mean_force_error"]
#: the share of the prior's excess error removed in each Q stratum (:data:`alcg.analysis.heldout.Q_STRATA`);
#: empty where the held-out set has no such stratum
STRATUM_COLUMNS = [f"heldout_fraction_removed_{s}" for s in Q_STRATA]
ROUND_COLUMNS = ["seed", "arm", "round", "reference_converged", "n_train_frames", "n_val_frames", "oracle_ns", "n_queries", "n_selected",
                 "n_rejected_backmap", "n_slots", "n_fallback_starts", "fallback_share", "n_failed_oracle",
                 "n_candidates", "explore_bins_reached", "explore_mass_reached",
                 "prior_only_val_loss", "val_loss", "val_loss_over_prior",
                 "evaluation_failed", "valid_fraction", "low_valid_fraction", "exploded_fraction",
                 "tica_w1", "tica_w1_sd", "tica_w1_halves", "tica_w1_change_pct"] + \
                [m for m in METRICS if m != "tica_w1"] + ["heldout_prior_force_mse", *HELDOUT_COLUMNS,
                                                           "tica_js_same_bias", "fraction_folded",
                                                           "reference_fraction_folded", *STRATUM_COLUMNS]
#: ci_*: percentile bootstrap over seeds; t_ci_*: Student t (see alcg.analysis.statistics for which to trust);
#: n_failed: seeds whose evaluation failed (their value imputed by the pre-registered rule)
EXPERIMENT_COLUMNS = ["arm", "round", "oracle_ns", "metric", "comparison", "mean", "ci_low", "ci_high",
                      "t_ci_low", "t_ci_high", "n_seeds", "n_failed"]


def _json(path: str | None) -> dict:
    return json.loads(Path(path).read_text()) if path else {}


def _by_stratum(ev: dict, name: str) -> dict:
    """``{name}_{stratum}`` for each of :data:`Q_STRATA` from the evaluation's ``{name}_by_stratum``
    (None for a stratum it lacks)."""
    by = ev.get(f"{name}_by_stratum") or {}
    return {f"{name}_{s}": by.get(s) for s in Q_STRATA}


def _starts_sum(round_files: dict, field: str) -> int:
    """Sum of a slot start's ``field`` (``n_rejected``, ``fallback``) over the round's slots."""
    return sum(int(getattr(slot_start.load(f), field)) for f in round_files.get("starts", []))


def _coverage(path: str | None) -> dict:
    """``explore_bins_reached`` and ``explore_mass_reached`` of a round's exploration (None
    where the arm does not explore)."""
    cover = _json(path)
    return {"explore_bins_reached": cover.get("bins_reached"), "explore_mass_reached": cover.get("mass_reached")}


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def mean_force_error(force_mse: float | None, label_se2: float | None) -> float | None:
    """The model's force MSE against the exact mean force: ``force_mse - label_se2``.

    With mean-force labels the MSE against the labels is the MSE against the exact mean force
    plus the labels' own noise (their squared standard error, independent of the model), so
    removing it leaves the model's error alone; it can come out slightly negative by noise in
    the SE^2 estimate.

    Parameters
    ----------
    force_mse : the model's MSE against the held-out labels, (kJ/mol/nm)^2
    label_se2 : the labels' mean squared standard error on the same frames and weights,
        (kJ/mol/nm)^2

    Returns
    -------
    (kJ/mol/nm)^2, or None when either is missing (e.g. instantaneous labels: no SE^2)
    """
    if force_mse is None or label_se2 is None:
        return None
    return float(force_mse) - float(label_se2)


def derived_metrics(ev: dict) -> dict:
    """Columns computed from an evaluation's metrics (no evaluation rerun):
    ``heldout_mean_force_error`` (every held-out frame alike) and
    ``heldout_mean_force_error_weighted`` (strata weighted by their equilibrium populations),
    each :func:`mean_force_error` of the matching force MSE and label SE^2, (kJ/mol/nm)^2."""
    return {"heldout_mean_force_error": mean_force_error(ev.get("heldout_force_mse"), ev.get("heldout_label_se2")),
            "heldout_mean_force_error_weighted": mean_force_error(ev.get("heldout_force_mse_weighted"),
                                                                  ev.get("heldout_label_se2_weighted"))}


def split_counts(path: str) -> dict:
    """``n_train_frames`` and ``n_val_frames`` of the round's dataset (its training and its
    validation split)."""
    train = dataset.train_mask(dataset.columns(path, "split")["split"])
    return {"n_train_frames": int(train.sum()), "n_val_frames": int((~train).sum())}


def n_slots(round_files: dict) -> int | None:
    """Oracle slots of a round (its ``starts``; else its ``oracles``); None for a round that
    queries nothing (the last)."""
    slots = round_files.get("starts") or round_files.get("oracles")
    return len(slots) if slots else None


def fallback_share(n_fallback: int | None, slots: int | None) -> float | None:
    """Share of a round's slots that started from a fallback training frame (no accepted CG
    pick), so were not filled by the selector: ``n_fallback / slots`` in [0, 1]; None for a
    round without slots."""
    return n_fallback / slots if n_fallback is not None and slots else None


def evaluation_failed(ev: dict) -> bool:
    """Whether an evaluation failed: no TICA W1 (no valid model frames), a metric not finite
    (a NaN), or most model frames invalid (``low_valid_fraction``: replicas exploded). A metric
    that does not apply (``tica_js`` with one TICA dimension) is None and no failure; a round
    with no evaluation run by design (``simulated`` False: ``cg_evaluate.rounds``) did not fail."""
    if ev.get("simulated") is False:
        return False
    if ev.get("tica_w1") is None or ev.get("low_valid_fraction"):
        return True
    return any(ev.get(m) is not None and not np.isfinite(ev[m]) for m in METRICS)


def impute_failures(rows: list[dict]) -> list[dict]:
    """Rows whose failed evaluations carry the pre-registered value of every metric.

    Rule (fixed before any measured run): a failed evaluation (:func:`evaluation_failed`)
    counts as the worst possible outcome, the metric's bound where it has one
    (:data:`METRIC_BOUNDS`: JS ln 2, unvisited mass 1, fraction-folded error 1), else the
    worst (largest) value any arm and seed reached in that round (in any round, if none in
    that one); so a failure never drops out of a mean, and never looks better than a model
    that ran. Metrics that need no simulation (:data:`NOT_SIMULATED`: the held-out force
    error) keep their measured value.
    """
    worst = {}
    for r in rows:
        if r["evaluation_failed"]:
            continue
        for m in METRICS:
            v = r.get(m)
            if v is not None and np.isfinite(v):
                for key in ((r["round"], m), (None, m)):
                    worst[key] = max(worst.get(key, -np.inf), v)
    out = []
    for r in rows:
        if r["evaluation_failed"]:
            r = {**r, **{m: METRIC_BOUNDS.get(m, worst.get((r["round"], m), worst.get((None, m), math.nan)))
                         for m in METRICS if m not in NOT_SIMULATED or not _finite(r.get(m))}}
        out.append(r)
    return out


def _finite(v) -> bool:
    return v is not None and bool(np.isfinite(v))


def round_rows(layout: dict) -> list[dict]:
    """One row per seed, arm and round (see module doc for ``layout``).

    Besides the evaluation's metrics and :func:`derived_metrics`: ``oracle_ns`` and
    ``n_queries``, the fine-grained ns and the oracle queries (slots) spent before the round's
    model (cumulative over earlier rounds; round 0: 0); ``n_slots`` (the round's own slots,
    None for the last round, which queries nothing), ``n_fallback_starts`` (slots whose start is
    a fallback training frame: no accepted CG pick) and ``fallback_share`` (their share of the
    slots: 1 - the share the selector filled); for a selector that explores, ``n_candidates``
    (the exploration frames its table counts as candidates, e.g. inside the trust window) and
    ``explore_bins_reached`` / ``explore_mass_reached`` (the share of the reference's bins, and
    of its mass, that the round's exploration visited: ``explore/coverage.json``)."""
    rows = []
    for seed, arms in layout.items():
        for arm, rounds in arms.items():
            spent, queries, base = 0.0, 0, None
            for k, r in enumerate(rounds):
                ev, tr, sel = _json(r["evaluate"]), _json(r["train"]), _json(r.get("select"))
                ev = {**ev, **derived_metrics(ev)}
                oracles = r.get("oracles", [])
                fallbacks = _starts_sum(r, "fallback") if oracles else None
                row = {"seed": seed, "arm": arm, "round": k, "oracle_ns": spent, "n_queries": queries,
                       **split_counts(r["dataset"]),
                       "n_selected": sel.get("n_selected"),
                       "n_rejected_backmap": _starts_sum(r, "n_rejected") if oracles else None,
                       "n_slots": n_slots(r), "n_fallback_starts": fallbacks,
                       "fallback_share": fallback_share(fallbacks, n_slots(r)),
                       "n_failed_oracle": run_file.count(oracles, Status.FAILED) if oracles else None,
                       "n_candidates": sel.get("n_candidates") if r.get("coverage") else None,
                       **_coverage(r.get("coverage")),
                       "val_loss": tr.get("best_val_loss"), "prior_only_val_loss": tr.get("prior_only_val_loss"),
                       "val_loss_over_prior": _ratio(tr.get("best_val_loss"), tr.get("prior_only_val_loss")),
                       **{m: ev.get(m) for m in METRICS},
                       "tica_js_same_bias": ev.get("tica_js_same_bias"), "valid_fraction": ev.get("valid_fraction"),
                       "heldout_prior_force_mse": ev.get("heldout_prior_force_mse"),
                       **{c: ev.get(c) for c in HELDOUT_COLUMNS},
                       **_by_stratum(ev, "heldout_fraction_removed"),
                       "fraction_folded": ev.get("fraction_folded"),
                       "reference_fraction_folded": ev.get("reference_fraction_folded"),
                       "evaluation_failed": evaluation_failed(ev),
                       "low_valid_fraction": ev.get("low_valid_fraction"),
                       "exploded_fraction": ev.get("exploded_fraction"),
                       "tica_w1_sd": ev.get("tica_w1_sd"), "tica_w1_halves": ev.get("tica_w1_halves")}
                base = row["tica_w1"] if k == 0 else base
                row["tica_w1_change_pct"] = change_pct(row["tica_w1"], base)
                spent += sum(run_file.recorded_ns(f) for f in oracles)
                queries += n_slots(r) or 0
                rows.append(row)
    return rows


def experiment_rows(rows: list[dict], n_bootstrap: int, ci_level: float) -> list[dict]:
    """Per arm and round: mean change (%) vs round 0 over seeds with CI, and paired differences
    of that change against every other arm (same seeds) with CI. Failed evaluations enter with
    their imputed values (:func:`impute_failures`) and are counted in ``n_failed``. Rounds that
    queried also get the mean ``fallback_share`` over seeds (comparison :data:`VALUE_FRACTION`,
    a value, not a change)."""
    failed = {(r["seed"], r["arm"], r["round"]) for r in rows if r["evaluation_failed"]}
    rows = impute_failures(rows)
    arms = sorted({r["arm"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    n_rounds = max(r["round"] for r in rows) + 1
    by = {(r["seed"], r["arm"], r["round"]): r for r in rows}

    def changes(arm: str, k: int, metric: str) -> list[float]:
        return [change_pct(by[(s, arm, k)].get(metric), by[(s, arm, 0)].get(metric))
                if (s, arm, k) in by else math.nan for s in seeds]

    def n_failed(arm: str, k: int) -> int:
        return sum((s, arm, k) in failed or (s, arm, 0) in failed for s in seeds)

    out = []
    for arm in arms:
        for k in range(n_rounds):
            ns = float(np.mean([by[(s, arm, k)]["oracle_ns"] for s in seeds if (s, arm, k) in by]))
            out += _fallback_share_rows(arm, k, ns, [by.get((s, arm, k), {}) for s in seeds], n_bootstrap, ci_level)
            for metric in METRICS:
                mine = changes(arm, k, metric)
                mean, lo, hi = bootstrap_mean_ci(mine, n_bootstrap, ci_level)
                _, t_lo, t_hi = t_mean_ci(mine, ci_level)
                out.append(dict(arm=arm, round=k, oracle_ns=ns, metric=metric, comparison="change_vs_round0_pct",
                                mean=mean, ci_low=lo, ci_high=hi, t_ci_low=t_lo, t_ci_high=t_hi,
                                n_seeds=int(np.isfinite(mine).sum()), n_failed=n_failed(arm, k)))
                for other in arms:
                    if other == arm:
                        continue
                    theirs = changes(other, k, metric)
                    mean, lo, hi = paired_difference_ci(mine, theirs, n_bootstrap, ci_level)
                    _, t_lo, t_hi = paired_difference_t_ci(mine, theirs, ci_level)
                    ok = np.isfinite(np.asarray(mine) - np.asarray(theirs)).sum()
                    out.append(dict(arm=arm, round=k, oracle_ns=ns, metric=metric,
                                    comparison=f"minus_{other}_pct_points", mean=mean, ci_low=lo, ci_high=hi,
                                    t_ci_low=t_lo, t_ci_high=t_hi, n_seeds=int(ok),
                                    n_failed=n_failed(arm, k) + n_failed(other, k)))
    return out


#: experiment.tsv ``comparison`` of a row that gives a value's mean over seeds (a share in [0, 1]),
#: not a change from round 0 nor a difference between arms
VALUE_FRACTION = "value_fraction"


def _fallback_share_rows(arm: str, k: int, ns: float, seed_rows: list[dict], n_bootstrap: int,
                         ci_level: float) -> list[dict]:
    """The experiment.tsv row of ``fallback_share`` of ``arm`` in round ``k``: its mean over seeds
    (a fraction of the round's slots, :data:`VALUE_FRACTION`) with bootstrap and t intervals;
    none for a round without slots (the last). ``n_failed`` 0: no value of it is imputed."""
    shares = [r.get("fallback_share") for r in seed_rows]
    values = [float(v) for v in shares if v is not None and np.isfinite(v)]
    if not values:
        return []
    mean, lo, hi = bootstrap_mean_ci(values, n_bootstrap, ci_level)
    _, t_lo, t_hi = t_mean_ci(values, ci_level)
    return [dict(arm=arm, round=k, oracle_ns=ns, metric="fallback_share", comparison=VALUE_FRACTION, mean=mean,
                 ci_low=lo, ci_high=hi, t_ci_low=t_lo, t_ci_high=t_hi, n_seeds=len(values), n_failed=0)]


def curve(rows: list[dict], arm: str, metric: str, n_bootstrap: int, ci_level: float,
          x: str = "oracle_ns") -> tuple[np.ndarray, ...]:
    """(x, mean, ci low, ci high) per round of ``metric`` for ``arm`` over seeds; ``x`` the
    column on the curve's axis (``oracle_ns`` or ``n_queries``); rounds where no seed has a
    value (e.g. not simulated) are left out."""
    rounds = sorted({r["round"] for r in rows if r["arm"] == arm})
    pts = []
    for k in rounds:
        sel = [r for r in rows if r["arm"] == arm and r["round"] == k]
        values = [r.get(metric) for r in sel]
        if not any(v is not None and np.isfinite(v) for v in values):
            continue
        mean, lo, hi = bootstrap_mean_ci(values, n_bootstrap, ci_level)
        pts.append((np.mean([r[x] for r in sel]), mean, lo, hi))
    return tuple(np.array(c) for c in zip(*pts)) if pts else tuple(np.zeros(0) for _ in range(4))


def paired_curve(rows: list[dict], arm: str, metric: str, n_bootstrap: int, ci_level: float,
                 x: str = "oracle_ns", *, baseline: str) -> tuple[np.ndarray, ...]:
    """A learning curve of ``arm`` minus ``baseline``, paired within seeds (the arms of a seed
    share their random numbers).

    Parameters
    ----------
    rows : round rows (``rounds.tsv``: seed, arm, round, ``x`` and ``metric``)
    arm, baseline : the arms compared
    metric : a column, in its own units (e.g. (kJ/mol/nm)² for the mean-force error)
    n_bootstrap, ci_level : the percentile bootstrap over seeds
    x : the curve's axis column, as in :func:`curve`

    Returns
    -------
    (x, mean difference, CI low, CI high) per round, in ``metric``'s units; a seed enters a round
    only where both arms have a finite value there.
    """
    by = {(r["arm"], r["seed"], r["round"]): r for r in rows}
    rounds = sorted({r["round"] for r in rows if r["arm"] == arm})
    pts = []
    for k in rounds:
        seeds = sorted({s for (a, s, kk) in by if a == arm and kk == k})
        diffs, xs = [], []
        for s in seeds:
            a, b = by[(arm, s, k)].get(metric), by.get((baseline, s, k), {}).get(metric)
            if a is not None and b is not None and np.isfinite(a) and np.isfinite(b):
                diffs.append(a - b)
                xs.append(by[(arm, s, k)][x])
        if diffs:
            pts.append((np.mean(xs), *bootstrap_mean_ci(diffs, n_bootstrap, ci_level)))
    return tuple(np.array(c) for c in zip(*pts)) if pts else tuple(np.zeros(0) for _ in range(4))


def write_tsv(rows: list[dict], columns: list[str], path: str | Path) -> None:
    """Write a table atomically (empty cells where a value does not apply)."""
    def fmt(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.6g}"
        return str(v)
    lines = ["\t".join(columns)] + ["\t".join(fmt(row.get(c)) for c in columns) for row in rows]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def read_tsv(path: str | Path) -> list[dict]:
    """Rows of a table written by :func:`write_tsv` (all values as strings)."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


# --------------------------------------------------------------------------- where labels land
#: rounds.tsv columns of :func:`label_location` (issue: does a query label the configuration it
#: asked about, or drift back into the covered region?)
LABEL_COLUMNS = ["n_label_frames", "label_rmsd_target_nm", "label_rmsd_train_nm", "label_rmsd_train_slot_min_nm",
                 "label_rmsd_train_slot_max_nm"]


def label_location(round_files: dict) -> dict:
    """Where one round's labels land: C-alpha RMSD (nm, superposed) of every recorded oracle
    frame to its slot's selected target and to the nearest training frame of the round.

    Columns (:data:`LABEL_COLUMNS`): the number of labelled frames, the median over frames of
    each RMSD, and the smallest and largest per-slot median RMSD to the training set. A slot's
    target is its CG pick (backmapped slots), the pool frame (iid) or the training frame it
    started from. Empty for
    a round without queries.
    """
    import mdtraj as md

    from alcg.formats import selection_file
    from alcg.selection.rmsd_coverage import ca_trajectory

    oracles = round_files.get("oracles", [])
    if not oracles or "selected" not in round_files:
        return {}
    cols = dataset.columns(round_files["dataset"], "coords", "split")
    train = ca_trajectory(cols["coords"][dataset.train_mask(cols["split"])])
    sel = selection_file.load(round_files["selected"])
    to_target, to_train, slot_medians = [], [], []
    for slot, (start_path, run_path) in enumerate(zip(round_files["starts"], oracles)):
        start = slot_start.load(start_path)
        run = run_file.load(run_path)
        if not start.ok or run.status is not Status.OK:
            continue
        ca = [a.index for a in run.topology().atoms() if a.name == "CA"]
        frames = ca_trajectory(run.positions[:, ca])
        if sel.backmap and not start.fallback:
            target = sel.targets[int(start.metadata["pick"])]
        elif sel.source == "pool":  # iid: the pool frame it started from (targets hold its C-alphas)
            target = sel.targets[slot]
        else:
            target = cols["coords"][(sel.fallback_template if start.fallback else sel.template)[slot]]
        to_target += list(md.rmsd(frames, ca_trajectory(target[None]), 0, precentered=True))
        nearest = np.min([md.rmsd(train, frames, i, precentered=True) for i in range(frames.n_frames)], axis=1)
        to_train += list(nearest)
        slot_medians.append(float(np.median(nearest)))
    if not to_train:
        return {"n_label_frames": 0}
    return {"n_label_frames": len(to_train), "label_rmsd_target_nm": float(np.median(to_target)),
            "label_rmsd_train_nm": float(np.median(to_train)),
            "label_rmsd_train_slot_min_nm": min(slot_medians), "label_rmsd_train_slot_max_nm": max(slot_medians)}


def with_label_location(rows: list[dict], layout: dict) -> list[dict]:
    """:func:`round_rows` rows with the :func:`label_location` columns (same seed/arm/round order)."""
    files = [r for arms in layout.values() for rounds in arms.values() for r in rounds]
    return [{**row, **label_location(f)} for row, f in zip(rows, files)]
