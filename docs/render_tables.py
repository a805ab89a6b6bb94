"""Render the results tables of docs/results/ from the measured files under benchmarks/measured/.

A results page holds marker pairs::

    <!-- table: NAME -->
    ...whatever this script last wrote...
    <!-- /table -->

(indented alike inside a list item). NAME is a renderer registered below (``RENDERERS``); each renderer reads its measured file(s)
and returns the table as Markdown, followed by a line naming the files it came from.

    python docs/render_tables.py           # rewrite every page's tables from the measured files
    python docs/render_tables.py --check   # exit 1, naming the pages, if a committed page differs

Only the standard library is used, so the check runs anywhere.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MEASURED = "benchmarks/measured"

OPEN = re.compile(r"^( *)<!-- table: ([A-Za-z0-9_]+) -->$")
CLOSE = "<!-- /table -->"

# Two-sided 95 % Student-t quantiles t(0.975, df).
T975 = {1: 12.7062047, 2: 4.3026527, 3: 3.1824463, 4: 2.7764451, 5: 2.5705818,
        6: 2.4469119, 7: 2.3646243, 8: 2.3060041, 9: 2.2621572, 10: 2.2281389,
        11: 2.2009852, 12: 2.1788128, 13: 2.1603687, 14: 2.1447867, 15: 2.1314495,
        16: 2.1199053, 17: 2.1098156, 18: 2.1009220, 19: 2.0930241, 20: 2.0859634}

MINUS = "\u2212"


# ---------------------------------------------------------------- formatting

def num(x, digits=3, sign=False):
    """``x`` with ``digits`` significant digits (no exponent below 1e6), a real minus sign."""
    if x is None or x == "":
        return "–"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if x == 0:
        s = "0"
    else:
        mag = math.floor(math.log10(abs(x)))
        dec = max(digits - 1 - mag, 0)
        s = f"{round(x, dec):.{dec}f}"
    if s.startswith("-"):
        s = MINUS + s[1:]
        if s == MINUS + "0" or set(s[1:]) <= {"0", "."}:
            s = s[1:]
    elif sign and x != 0:
        s = "+" + s
    return s


def fixed(x, dec, sign=False):
    """``x`` with ``dec`` decimals, a real minus sign."""
    if x is None or x == "":
        return "–"
    s = f"{float(x):.{dec}f}"
    if s.startswith("-"):
        s = MINUS + s[1:]
        if set(s[1:]) <= {"0", "."}:
            s = s[1:]
    elif sign and set(s) - {"0", "."}:
        s = "+" + s
    return s


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def source(*paths):
    return "Rendered from " + ", ".join(f"`{MEASURED}/{p}`" for p in paths) + " by `docs/render_tables.py`."


def tsv(path):
    with open(ROOT / MEASURED / path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def js(path):
    return json.loads((ROOT / MEASURED / path).read_text())


def mean_t(values):
    """Mean and 95 % t half-width over the values (seeds)."""
    values = [float(v) for v in values]
    n = len(values)
    m = statistics.fmean(values)
    if n < 2:
        return m, float("nan")
    return m, T975[n - 1] * statistics.stdev(values) / math.sqrt(n)


# ---------------------------------------------------------------- renderers

def go_experiment_arms():
    rows = tsv("go_experiment/rounds.tsv")
    cols = [("tica_w1", 3), ("heldout_force_mse", 0), ("q_rg_js", 3),
            ("fraction_folded_error", 3), ("val_loss_over_prior", 3)]

    def cell(sel, key, dec):
        m, h = mean_t([r[key] for r in sel])
        return f"{fixed(m, dec)} ± {fixed(h, dec)}"

    round0 = {r["seed"]: r for r in rows if r["round"] == "0"}  # shared by the seed's arms
    r0 = list(round0.values())
    out = [["floor: round 0 (shared)"] + [cell(r0, k, d) for k, d in cols]]
    prior = cell(r0, "heldout_prior_force_mse", 0)
    out.append(["floor: prior alone", "–", prior, "–", "–", "1"])
    last = max(int(r["round"]) for r in rows)
    names = {"random_aa": "random_aa (A/A)", "iid": "iid (positive control)"}
    for arm in ["rmsd", "random", "random_aa", "md", "committee", "iid"]:
        sel = [r for r in rows if r["arm"] == arm and int(r["round"]) == last]
        if sel:
            out.append([names.get(arm, arm)] + [cell(sel, k, d) for k, d in cols])
    head = ["arm (round %d)" % last, "TICA W1 (primary)", "held-out force MSE ((kJ/mol/nm)²)",
            "(Q, Rg) JS", "\\|fraction folded − reference\\|", "val loss / prior-only"]
    return table(head, out) + "\n\n" + source("go_experiment/rounds.tsv")


def go_experiment_primary():
    rows = tsv("go_experiment/primary.tsv")
    names = {"tica_w1": "TICA W1 (primary)", "heldout_force_mse": "held-out force MSE",
             "q_rg_js": "(Q, Rg) JS"}
    out, seen = [], set()
    for r in rows:
        metric = r["metric"]
        first = metric not in seen
        seen.add(metric)
        big = abs(float(r["mean_difference"])) >= 1
        f = (lambda x, sign=False: fixed(x, 0 if big else 3, sign))
        comp = r["comparison"].replace(" - ", " − ")
        if r["role"] == "positive_control":
            comp += " (positive control)"
        elif r["role"] == "null_pair":
            comp += " (A/A)"
        diff = f"{f(r['mean_difference'], True)} [{f(r['t_ci_low'])}, {f(r['t_ci_high'])}]"
        p = num(r["p_value"], 2)
        if r["p_holm"]:
            p += f" ({num(r['p_holm'], 2) if float(r['p_holm']) < 1 else '1'})"
        mde = f(r["min_detectable_effect"]) if big else num(r["min_detectable_effect"], 2)
        out.append([names.get(metric, metric) if first else "", comp, diff, p, mde, r["verdict"]])
    head = ["endpoint", "comparison", "mean difference [95 % CI]", "p (Holm)", "MDE", "verdict"]
    return table(head, out) + "\n\n" + source("go_experiment/primary.tsv")


def go_pilot_rounds():
    rows = tsv("go_pilot/rounds.tsv")
    seeds = sorted({r["seed"] for r in rows}, key=int)
    by = {(r["seed"], int(r["round"])): r for r in rows}
    out = []
    for k in sorted({int(r["round"]) for r in rows}):
        rs = [by[(s, k)] for s in seeds]
        queries = sum(int(by[(seeds[0], j)]["n_selected"] or 0) for j in range(k))
        ps = float(rs[0]["oracle_ns"]) * 1000
        j = lambda key, d: " / ".join(fixed(r[key], d) for r in rs)
        tica = j("tica_w1", 2) + " (" + j("tica_w1_halves", 2) + ")"
        held = " / ".join(fixed(float(r["heldout_force_mse"]) - float(r["heldout_prior_force_mse"]), 0)
                          for r in rs)
        out.append([k, f"{queries} ({ps:.0f})", rs[0]["n_train_frames"], tica, j("q_rg_js", 3),
                    j("rg_w1_nm", 3), held])
    head = ["round", "iid queries (oracle ps)", "training frames", "TICA W1 (model's own halves)",
            "(Q, Rg) JS", "Rg W1 (nm)", "held-out force MSE − prior-only ((kJ/mol/nm)²)"]
    return table(head, out) + "\n\n" + source("go_pilot/rounds.tsv") + \
        f" Seed {' / seed '.join(seeds)}."


CHIG_METRICS = [("tica_w1", "TICA W1"), ("kl_ref_model", "KL(ref‖model), TIC 1–2"),
                ("bond_w1_nm", "bond W1"), ("angle_w1_rad", "angle W1"),
                ("dihedral_w1_rad", "dihedral W1"), ("rg_w1_nm", "Rg W1"),
                ("end_to_end_w1_nm", "end-to-end W1"), ("rmsd_folded_w1_nm", "RMSD-to-folded W1"),
                ("fraction_folded", "fraction folded"), ("valid_fraction", "valid fraction")]


def _chig_cell(r, boot=True):
    m = float(r["mean"])
    if all(float(r[k]) == 0 for k in ("mean", "t_ci_low", "t_ci_high")):
        return "0.0"
    s = f"{fixed(m, 1, True)} [{fixed(r['t_ci_low'], 1, True)}, {fixed(r['t_ci_high'], 1, True)}]"
    if boot:
        s += f" ({fixed(r['ci_low'], 1, True)}, {fixed(r['ci_high'], 1, True)})"
    return s


def chignolin_cpu_change():
    rows = tsv("chignolin_cpu/experiment.tsv")
    idx = {(r["arm"], r["round"], r["metric"], r["comparison"]): r for r in rows}
    arms = ["rmsd", "random", "md"]
    out = []
    for key, name in CHIG_METRICS:
        out.append([name] + [_chig_cell(idx[(a, "2", key, "change_vs_round0_pct")]) for a in arms])
    head = ["metric", "`rmsd` (AL)", "`random`", "`md`"]
    return table(head, out) + "\n\n" + source("chignolin_cpu/experiment.tsv") + \
        " Mean [t 95 % CI] (bootstrap 95 % CI) over 5 seeds, %."


def chignolin_cpu_paired():
    rows = tsv("chignolin_cpu/experiment.tsv")
    idx = {(r["arm"], r["round"], r["metric"], r["comparison"]): r for r in rows}
    out = []
    for key, name in CHIG_METRICS:
        out.append([name] + [_chig_cell(idx[("rmsd", "2", key, f"minus_{c}_pct_points")])
                             for c in ("random", "md")])
    head = ["metric", "`rmsd` − `random`", "`rmsd` − `md`"]
    return table(head, out) + "\n\n" + source("chignolin_cpu/experiment.tsv") + \
        " Mean [t 95 % CI] (bootstrap 95 % CI) over 5 seeds, percentage points."


def go_cpu_convergence():
    d = js("go_cpu/convergence.json")
    out = []
    for start in ("folded", "extended"):
        g = d["groups"][start]
        # tau_fold and folding events are not in the report; see the page's text
        out.append([start, f"{g['p_fold']:.2f} ± {g['p_fold_se']:.3f}", f"{g['tau_ps'] / 1000:.2f} ns",
                    g["n_transitions"], f"{g['q']['mean']:.2f}", f"{g['rg_nm']['mean']:.3f}",
                    f"{g['length_ps'] / 1000:.0f} ns"])
    head = ["start", "P_fold (Q > 0.7) ± SE", "τ of the folded indicator", "core transitions",
            "mean Q", "mean Rg (nm)", "length"]
    z = ", ".join(f"{k} {v:.2f}" for k, v in d["z"].items())
    return table(head, out) + f"\n\nz between the starts: {z}; converged: {d['converged']}.\n\n" + \
        source("go_cpu/convergence.json")


def _timestep(path):
    d = js(path)
    ref = d.get("reference_dt_fs")
    out = [[f"{ref:g} fs (reference)", "", "", "", f"{d['reference_kinetic_temperature_k']:.1f}"]]
    for key, s in sorted(d["steps"].items(), key=lambda kv: float(kv[0].split("_")[0])):
        stat = s.get("max_abs_z_statistic")
        zcell = f"{s['max_abs_z']:.2f}" + (f" ({stat})" if stat else "")
        det = (f"{s['max_detectable_over_tolerance']:.2f} ({s['max_detectable_over_tolerance_means']:.2f}; "
               f"{s['max_detectable_over_tolerance_bins']:.2f})")
        verdict = f"**{s['verdict']}**" if s["verdict"] == "pass" else s["verdict"]
        out.append([key.replace("_", " "), verdict, zcell, det, f"{s['kinetic_temperature_k']:.1f}"])
    head = ["step", "verdict", "max \\|z\\| (statistic)",
            "smallest detectable bias / tolerance (means; bins)", "kinetic T (K)"]
    return table(head, out) + "\n\n" + source(path)


def timestep_go():
    return _timestep("timestep_validation_go.json")


def timestep_go_powered():
    return _timestep("timestep_validation_go_powered.json")


def timestep_go_replication():
    return _timestep("timestep_validation_go_replication.json")


def mean_force_labels_go():
    alone, base = js("mean_force_labels.json"), js("mean_force_labels_round0.json")
    qs = [int(q) for q in alone["curves"]["instantaneous"]]
    out = []
    for i, q in enumerate(qs):
        out.append([f"{q} ({alone['fine_grained_ns'][i]:g})",
                    f"{alone['mean_mse']['instantaneous'][i]:.0f}", f"{alone['mean_mse']['mean_force'][i]:.0f}",
                    f"{base['mean_mse']['instantaneous'][i]:.0f}", f"{base['mean_mse']['mean_force'][i]:.0f}"])
    r0 = statistics.fmean(base["round0_only_mse"])
    p_a, p_b = alone["prior_only_mse"], base["prior_only_mse"]
    out.append(["prior only / round-0 data only", f"{p_a:.0f}", f"{p_a:.0f}",
                f"{p_b:.0f} / {r0:.0f}", f"{p_b:.0f} / {r0:.0f}"])
    head = ["queries (fine-grained ns)", "labels alone: instantaneous", "labels alone: mean force",
            "round-0 data + queries: instantaneous", "round-0 data + queries: mean force"]
    return table(head, out) + "\n\n" + source("mean_force_labels.json", "mean_force_labels_round0.json") + \
        " Mean over the training seeds."


def _thousands(x):
    s = f"{abs(x):,.0f}".replace(",", " ")
    return ("+" if x > 0 else MINUS if x < 0 else "") + s


def _ci(e):
    return f"{_thousands(e['mean'])} [{_thousands(e['ci95'][0])}, {_thousands(e['ci95'][1])}]"


def mean_force_labels_atomistic():
    d = js("mean_force_labels_atomistic.json")
    inst = {c["queries"]: c for c in d["curves"]["instantaneous"]}
    mf = {c["queries"]: c for c in d["curves"]["mean_force"]}
    out = []
    for v in d["mean_force_vs_instantaneous"]:
        q = v["queries"]
        out.append([f"{q} ({v['oracle_ns'] * 1000:g})", _ci(inst[q]["mse_minus_round0"]),
                    _ci(mf[q]["mse_minus_round0"]), _ci(v["mean_force_minus_instantaneous"]),
                    _ci(v["by_stratum"]["folded"]), _ci(v["by_stratum"]["extended"])])
    head = ["queries (fine-grained ps)", "instantaneous − round 0", "mean force − round 0",
            "mean force − instantaneous", "same, folded frames", "same, extended frames"]
    return table(head, out) + "\n\n" + source("mean_force_labels_atomistic.json")


def scaling_forces():
    d = js("scaling.json")["forces"]
    out = []
    for beads, v in sorted(d.items(), key=lambda kv: int(kv[0])):
        a, b = v["dense_fast"], v["edges_exact"]
        out.append([beads,
                    f"{num(a['seconds_per_replica_eval'] * 1000, 2)} ms, {num(a['memory_per_replica_mb'], 3)} MB per replica",
                    f"{num(b['seconds_per_replica_eval'] * 1000, 2)} ms, {num(b['memory_per_replica_mb'], 3)} MB per replica",
                    f"{a['fraction_pairs_within_cutoff']:.2f}"])
    head = ["beads", "CG forces, simulation path (dense, tabulated)",
            "exact network, edge list (pairs within 3 nm)", "pairs within 3 nm (random walk)"]
    return table(head, out) + "\n\n" + source("scaling.json")


#: the tiers in the order of docs/dev/testing.md, and which make target runs each
TIER_TARGETS = {"unit": "make test", "smoke": "make test", "workflow": "make test-full"}


def test_durations():
    d = js("test_durations.json")
    rows = []
    for tier, target in TIER_TARGETS.items():
        t = d["tiers"].get(tier)
        rows.append([f"`tests/{tier}`", target] + (["not measured"] * 4 if t is None else
                    [t["tests"], f"{t['seconds'] / 60:.1f}", t["failed"], t["skipped"]]))
    quick = sum(d["tiers"].get(k, {}).get("seconds", 0.0) for k, v in TIER_TARGETS.items() if v == "make test")
    head = ["tier", "run by", "tests", "minutes", "failed", "skipped"]
    slow = [[f"`{c['test']}`", c["tier"], f"{c['seconds']:.0f}"] for c in d["slowest"]]
    failed = d.get("failed", [])
    return (table(head, rows) + f"\n\n`make test`'s tiers (unit + smoke) took {quick / 60:.1f} min of test time. "
            f"Measured {d['date']}, {d['cores']} cores; {d['note']}."
            + (f" Failed in that run: {', '.join(f'`{f}`' for f in failed)}." if failed else "")
            + f"\n\nTests of {d['list_from_s']:.0f} s or more:\n\n"
            + table(["test", "tier", "s"], slow) + "\n\n" + source("test_durations.json"))


def force_maps():
    d = js("force_maps.json")
    g, a = d["go"], d["atomistic"]
    rows = [[f"`{k}`", f"{num(g['noise'][k])} ± {num(g['noise_se'][k], 2)}", fixed(g["noise_ratio_to_constrained"][k], 3),
             num(a["second_moment_held_out"][k]), fixed(a["second_moment_ratio_to_constrained"][k], 3)]
            for k in ("constrained", "residue", "optimal")]
    head = ["force map", "Go: noise per component ± SE", "Go: ratio to constrained",
            "atomistic: held-out mean squared force", "atomistic: ratio (≥ noise ratio)"]
    note = (f"Go: fitted on {g['fit_frames']} frames {g['frame_spacing_ps']:g} ps apart; noise at "
            f"{g['held_out_configs']} other configurations, C-alphas fixed, {g['samples_per_config']} samples "
            f"{g['sample_spacing_ps']:g} ps apart each. Atomistic ({a['system']}): fitted on {a['fit_frames']} frames, "
            f"scored on the next {a['held_out_frames']}, {a['frame_spacing_ps']:g} ps apart. Units (kJ/mol/nm)²; "
            f"ridge {d['ridge']:g}; {d['wall_s']:.0f} s on {d.get('cores', 2)} cores.")
    return table(head, rows) + "\n\n" + note + "\n\n" + source("force_maps.json")


def learning_curve():
    d = js("learning_curve.json")
    rows = [[f"`{r['force_map']}`", f"{r['n_frames']:,}", fixed(r["fraction_removed"], 3),
             f"[{fixed(r['ci_low'], 3)}, {fixed(r['ci_high'], 3)}]", ", ".join(fixed(v, 3) for v in r["fits"]),
             num(r["heldout_excess"])] for r in d["curve"]]
    head = ["force map", "N frames", "fraction removed (mean)", "95 % t CI", "per fit", "excess MSE vs prior"]
    h = d["heldout"]
    note = (f"{d['draws']} data draws × {d['train_seeds']} training seeds per row; network and recipe "
            f"`{d['chosen']}`, {d['steps']} optimizer steps each. Held-out: {h['n_frames']} frames "
            f"({', '.join(f'{k} {v}' for k, v in h['per_stratum'].items())}), mean-force labels, mean SE² "
            f"{fixed(h['mean_se2'], 1)} (max {fixed(h['max_se2'], 1)}) (kJ/mol/nm)², weighted by the strata's "
            f"populations ({', '.join(f'{k} {fixed(v, 2)}' for k, v in zip(h['strata'], h['population']))}). "
            f"Excess MSE in (kJ/mol/nm)² per component (negative: better than the prior alone). "
            f"{d['wall_s'] / 60:.0f} min on {d.get('cores', 2)} cores (this invocation).")
    return table(head, rows) + "\n\n" + note + "\n\n" + source("learning_curve.json")


def learning_curve_choices():
    d = js("learning_curve.json")
    sel = [[f"`{r['candidate']}`", num(r["best_val_loss"]), num(r["prior_only_val_loss"]), r["best_candidate"],
            fixed(r["train_s"], 0)] for r in d["selection"]]
    out = table(["candidate", "validation MSE", "prior alone", "best state", "s"], sel)
    p = d["prior"]
    out += "\n\n" + table(["prior", "validation MSE alone"] + [f"{k}" for k in
                                                                next(iter(p["scores"].values()))["val_mse_by_stratum"]],
                           [[f"`{k}`", num(v["val_mse"])] + [num(x) for x in v["val_mse_by_stratum"].values()]
                            for k, v in p["scores"].items()])
    n = d["noise"]["go"]
    out += "\n\n" + table(["force map", "label noise per component on held-out frames"],
                           [[f"`{k}`", num(v)] for k, v in n.items()])
    w = d.get("warm_start")
    if w:
        out += "\n\n" + table(["N = " + f"{w['to_n']:,}", "validation MSE", "fraction removed", "best state"],
                               [[k, num(w[k]["best_val_loss"]), fixed(w[k]["fraction_removed"], 3),
                                 w[k]["best_candidate"]] for k in ("scratch", "warm")])
    return out + "\n\n" + source("learning_curve.json")


def learning_curve_pfold():
    p = js("learning_curve.json")["p_fold"]
    rows = [[f"model, {s} start", fixed(g["p_fold"], 3), fixed(g["p_fold_se"], 3), g["n_transitions"],
             f"{g['length_ps'] / 1000:.1f}"] for s, g in p["model_groups"].items()]
    rows += [[f"reference, {s} start", fixed(g["p_fold"], 3), fixed(g["p_fold_se"], 3), g["n_transitions"], ""]
             for s, g in p["reference_groups"].items()]
    rows += [["model, pooled", fixed(p["model"], 3), fixed(p["model_se"], 3), "", ""],
             ["reference, pooled", fixed(p["reference"], 3), fixed(p["reference_se"], 3), "", ""]]
    note = (f"Best model: `{p['force_map']}` map, N = {p['n_frames']:,} (fraction removed "
            f"{fixed(p['fit_fraction_removed'], 3)}); {p['replicas']} replicas, half per start, "
            f"{p['ns_per_replica']:g} ns each in {p['wall_s'] / 60:.0f} min (cap {p['cap_minutes']:g} min); "
            f"converged by `reference_check`'s criteria: {'yes' if p['converged'] else 'no'}"
            + ("" if p["converged"] else f" ({'; '.join(p['reasons'])})")
            + f". Model − reference: {fixed(p['difference'], 3)} [{fixed(p['ci_low'], 3)}, {fixed(p['ci_high'], 3)}] "
              "(95 %, from the standard errors).")
    return (table(["run", "P_fold (C-alpha Q > 0.7)", "SE", "transitions", "ns"], rows) + "\n\n" + note
            + "\n\n" + source("learning_curve.json"))


def prior_counts():
    d = js("prior_counts.json")
    strata = list(d["val_strata"])
    rows = []
    for key, label in (("workflow_round0", "workflow round 0"), ("curve", "learning curve's fit frames")):
        for name, v in d[key]["variants"].items():
            diff = "" if name == "frames" else f"{fixed(v['minus_frames'], 0, sign=True)} ± {fixed(v['minus_frames_se'], 0)}"
            rows.append([label, f"`{name}`", num(v["val_mse"]), num(v["val_mse_weighted"]), diff]
                        + [num(v["val_mse_by_stratum"][s]) for s in strata])
    head = ["prior fitted on", "dihedral counts", "validation MSE alone", "weighted", "minus `frames` (± block SE)"]
    head += strata
    r0 = d["round0"]
    note = (f"Force MSE per component of the prior alone, (kJ/mol/nm)², on {d['n_val_frames']:,} validation frames "
            f"({', '.join(f'{k} {v}' for k, v in d['val_strata'].items())}), labels: {d['labels']}; weighted: the "
            f"strata weighted by their populations in the curve's training runs "
            f"({', '.join(f'{k} {fixed(v, 2)}' for k, v in d['population'].items())}); block SE over blocks of "
            f"{d['block_frames']} frames (the frame difference). Workflow round 0: "
            f"{r0['runs']} runs from the folded start, {r0['frames']} frames each "
            f"{r0['interval_steps'] * 5 / 1000:g} ps apart; statistical inefficiency g per pseudo-dihedral "
            f"{', '.join(fixed(g, 1) for g in d['workflow_round0']['statistical_inefficiency'])} there, "
            f"{', '.join(fixed(g, 0) for g in d['curve']['statistical_inefficiency'])} on the curve's fit frames.")
    return table(head, rows) + "\n\n" + note + "\n\n" + source("prior_counts.json")


def explore_reach():
    """Issue 32 item 1: how far each exploration setting reached from the pilot's round-0 models,
    what the rmsd selector then found, and what it cost."""
    d = js("explore_reach.json")
    rows = []
    for r in d["rows"]:
        rows.append([f"`{r['variant']}`", str(r["seed"]), r["starts"], f"{r['temperature_k']:g}",
                     fixed(r["bins_reached"], 2), fixed(r["mass_reached"], 2), f"{r['n_candidates']:,}",
                     f"{r['n_selected']} + {r['n_spares']}", f"{r['n_slots'] - r['n_fallback']} of {r['n_slots']}",
                     fixed(r["wall_s"], 0)])
    head = ["variant", "seed", "starts", "T / K", "reference bins reached", "reference mass reached",
            "candidates", "picks + spares", "slots filled (backmap accepted)", "wall / s"]
    note = (f"Each row: the pilot seed's round-0 model explored from its own training frames, 64 replicas "
            f"of 100 ps from random starts at the system's temperature unless the variant says otherwise ({'; '.join(f'`{k}`: ' + ', '.join(f'{a} {b}' for a, b in v.items()) for k, v in d['variants'].items())}); "
            f"reach on the reference's (Q, Rg) grid; candidates: frames inside the rmsd selector's trust "
            f"window; {d['n_select']} slots, {d['n_spare']} spares each; a slot is filled when its pick or a "
            f"spare backmaps (else it falls back to a training frame); wall time of the exploration on one core.")
    return table(head, rows) + "\n\n" + note + "\n\n" + source("explore_reach.json")


def go_recipe_check():
    """Issue 31's 5-seed check: per arm, the share of the prior's mean-force error removed
    (population-weighted) after round 0 and the last round, and the change between them."""
    rows = tsv("go_recipe_check/rounds.tsv")
    last = max(int(r["round"]) for r in rows)
    key = "heldout_fraction_removed_weighted"
    value = {(r["arm"], int(r["seed"]), int(r["round"])): float(r[key]) for r in rows if r[key] not in ("", "None")}
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        seeds = sorted({s for a, s, k in value if a == arm and k == last and (a, s, 0) in value})
        first = [value[(arm, s, 0)] for s in seeds]
        final = [value[(arm, s, last)] for s in seeds]
        m0, h0 = mean_t(first)
        m1, h1 = mean_t(final)
        dm, dh = mean_t([b - a for a, b in zip(first, final)])
        out.append([f"`{arm}`", len(seeds), f"{fixed(m0, 3)} ± {fixed(h0, 3)}", f"{fixed(m1, 3)} ± {fixed(h1, 3)}",
                    f"{fixed(dm, 3, sign=True)} [{fixed(dm - dh, 3, sign=True)}, {fixed(dm + dh, 3, sign=True)}]",
                    sum(v < 0 for v in final)])
    head = ["arm", "seeds", "round 0", f"round {last}", f"round {last} − round 0 (95 % t CI)",
            "seeds worse than the prior"]
    note = ("Fraction of the prior's mean-force error removed on the held-out set, strata weighted by their "
            "populations (1: the mean force; 0: the prior alone; below 0: worse than the prior), mean ± 95 % t "
            "half-width over seeds. A change of −0.10 is the issue's bound: the round's extra held-out error equal "
            "to 10 % of the prior's excess error.")
    return table(head, out) + "\n\n" + note + "\n\n" + source("go_recipe_check/rounds.tsv")


def _curve_cells(folder, cell):
    """Per arm and round of a learning-curve run's ``rounds.tsv``: ``cell(values over seeds)`` of the
    primary metric, then the share of the round's slots the selector filled (mean over seeds);
    returns (header, rows, seeds)."""
    rows = tsv(f"{folder}/rounds.tsv")
    key = "heldout_mean_force_error_weighted"
    seeds = sorted({int(r["seed"]) for r in rows})
    rounds = sorted({int(r["round"]) for r in rows})
    by = {(r["arm"], int(r["seed"]), int(r["round"])): r for r in rows}
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        cells = []
        for k in rounds:
            v = [float(by[(arm, s, k)][key]) for s in seeds if by.get((arm, s, k), {}).get(key) not in (None, "")]
            fb = [float(by[(arm, s, k)]["fallback_share"]) for s in seeds
                  if by.get((arm, s, k), {}).get("fallback_share") not in (None, "")]
            text = cell(v) if v else "–"
            if fb:
                text += f"; filled {fixed(1 - statistics.mean(fb), 2)}"
            cells.append(text)
        out.append([f"`{arm}`"] + cells)
    head = ["arm"] + [f"round {k} ({int(by[(rows[0]['arm'], seeds[0], k)]['n_queries'])} queries)" for k in rounds]
    return head, out, seeds


METRIC_NOTE = ("`heldout_mean_force_error_weighted`: the model's force MSE against the held-out mean-force labels "
               "minus the labels' noise, strata weighted by population, (kJ/mol/nm)², lower is closer")
FILLED_NOTE = ("\"filled\": the share of the slots that the round's model's selector filled (1 − fallback_share), "
               "mean over seeds; those queries join the next round's data.")


def go_curves_pilot(folder="go_curves_pilot"):
    """Issue 32's pilot: per arm and round, the primary metric (the error against the exact mean
    force, population-weighted) and the share of slots the selector filled, mean over the pilot
    seeds (each seed in brackets)."""
    head, out, seeds = _curve_cells(
        folder, lambda v: f"{fixed(statistics.mean(v), 0)} ({', '.join(fixed(x, 0) for x in v)})")
    note = (f"{METRIC_NOTE}; mean over the pilot seeds {seeds} (each seed in brackets); {FILLED_NOTE}")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/rounds.tsv")


def go_curves_pilot2():
    """Issue 32's second pilot (seed 101 under the registered design): as :func:`go_curves_pilot`."""
    return go_curves_pilot("go_curves_pilot2")


def go_curves_pilot2_equilibrium():
    """The second pilot's equilibrium runs of the final models: P_fold per start group."""
    rows = tsv("go_curves_pilot2/equilibrium.tsv")
    out = [[f"`{r['arm']}`", fixed(float(r["p_fold_start_min"]), 3), fixed(float(r["p_fold_start_max"]), 3),
            r["converged"], fixed(float(r["order_w1"]), 3), fixed(float(r["tica_w1"]), 2), fixed(float(r["q_rg_js"]), 3)]
           for r in rows]
    head = ["arm", "P_fold, lower start group", "P_fold, higher start group", "groups agree", "W1 of Q",
            "TICA W1", "(Q, Rg) JS"]
    note = (f"16 CG replicas × 500 ps from the folded and 16 from the extended start per final model (seed "
            f"{rows[0]['seed']}); reference P_fold {fixed(float(rows[0]['reference_p_fold']), 3)} (C-alpha Q > 0.7).")
    return table(head, out) + "\n\n" + note + "\n\n" + source("go_curves_pilot2/equilibrium.tsv")


def curves_primary(folder):
    """The pre-registered table of a learning-curve run (``primary.tsv`` of
    :mod:`alcg.analysis.primary`): per endpoint, each comparison's mean paired difference with
    its t CI, p (Holm), MDE and verdict; the gap-closed rows' share with its bootstrap CI; the
    share of slots the selectors left to fallbacks."""
    rows = tsv(f"{folder}/primary.tsv")
    roles = {"positive_control": " (positive control)", "null_pair": " (A/A)", "primary": " (primary)"}
    out = []
    for r in rows:
        comp = r["comparison"].replace(" - ", " − ") + roles.get(r["role"], "")
        if r["role"] == "gap_closed":
            value = f"{fixed(r['share'], 2)} [{fixed(r['share_ci_low'], 2)}, {fixed(r['share_ci_high'], 2)}]"
            p, mde = "–", "–"
        else:
            value = (f"{fixed(r['mean_difference'], 0, sign=True)} "
                     f"[{fixed(r['t_ci_low'], 0, sign=True)}, {fixed(r['t_ci_high'], 0, sign=True)}]")
            p = num(r["p_value"], 2)
            if r["p_holm"]:
                p += f" ({num(r['p_holm'], 2) if float(r['p_holm']) < 1 else '1'})"
            mde = fixed(r["min_detectable_effect"], 0)
        fill = fixed(r["max_fallback_share"], 2) + (" (low fill)" if r["low_selector_fill"] == "True" else "")
        out.append([f"{r['endpoint']} ({r['value']})", comp, value, p, mde, r["n_seeds"], r["n_failed"], fill,
                    r["verdict"]])
    n_gap = max(1, len({r["comparison"] for r in rows if r["role"] == "gap_closed"}))
    gap_level = fixed(100 * (1 - 0.05 / n_gap), 2)
    head = ["endpoint", "comparison", "mean difference or share [CI]", "p (Holm)", "MDE", "seeds", "failed",
            "max fallback share", "verdict"]
    note = ("Differences in the metric's units (for the mean-force error, (kJ/mol/nm)²; for `auc`, the area under "
            "the curve divided by the queries spent, i.e. the curve's mean), arm minus arm, paired within seeds; below 0: the first arm is closer to the exact mean "
            "force. The t CIs are 95 %, unadjusted; the verdicts use the Holm-adjusted p. Gap closed: (md − arm) / "
            f"(md − iid), the share of the md → iid gap the arm closes, paired bootstrap CI over seeds at "
            f"{gap_level} % (95 % Bonferroni-adjusted over the {n_gap} arms asked). Max fallback share: the largest share of a round's slots either arm's "
            "selector left to training-frame restarts; low fill: either selector filled under half of a "
            "round's slots.")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/primary.tsv")


def curves_rounds(folder):
    """A learning-curve run's curves as a table: per arm and round, the primary metric as mean ±
    95 % t half-width over seeds (how many in brackets), and the share of the round's slots the
    selector filled (mean over seeds)."""
    def cell(v):
        m, h = mean_t(v)
        return f"{fixed(m, 0)} ± {fixed(h, 0)} ({len(v)})" if len(v) > 1 else f"{fixed(m, 0)} (1)"

    head, out, seeds = _curve_cells(folder, cell)
    note = (f"{METRIC_NOTE}; mean ± 95 % t half-width over the seeds (how many in brackets; seeds "
            f"{', '.join(map(str, seeds))}). The arms share each seed's random numbers: compare arms by their "
            "paired differences (the pre-registered table, the figure's paired panel), not by the overlap of "
            f"these intervals. {FILLED_NOTE}")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/rounds.tsv")


def curves_equilibrium(folder, replicas="16 CG replicas × 500 ps from the folded and 16 from the extended start"):
    """A learning-curve run's equilibrium runs of its final models, per arm over the equilibrium
    seeds: P_fold of each start group, how many models passed the convergence check, and the
    distances to the reference (mean over seeds, each seed in brackets)."""
    rows = tsv(f"{folder}/equilibrium.tsv")
    seeds = sorted({int(r["seed"]) for r in rows})

    def cell(values, dec):
        v = [float(x) for x in values if x not in ("", None)]
        if not v:
            return "–"
        text = f"{fixed(statistics.fmean(v), dec)} ({', '.join(fixed(x, dec) if x not in ('', None) else '–' for x in values)})"
        return text if len(v) == len(values) else f"{text}, {len(v)} of {len(values)}"

    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        rs = sorted((r for r in rows if r["arm"] == arm), key=lambda r: int(r["seed"]))
        out.append([f"`{arm}`", cell([r["p_fold_start_min"] for r in rs], 2),
                    cell([r["p_fold_start_max"] for r in rs], 2),
                    f"{sum(r['converged'] == 'True' for r in rs)} of {len(rs)}",
                    cell([r["order_w1"] for r in rs], 3), cell([r["tica_w1"] for r in rs], 2),
                    cell([r["q_rg_js"] for r in rs], 3),
                    f"{sum(int(r['n_exploded_replicas']) for r in rs)} of {sum(int(r['n_replicas']) for r in rs)}"])
    head = ["arm", "P_fold, lower start group", "P_fold, higher start group", "converged", "W1 of Q",
            "TICA W1", "(Q, Rg) JS", "exploded replicas"]
    ref = rows[0]
    note = (f"{replicas} per final model, seeds {seeds}: mean over seeds (each seed in brackets, in seed "
            f"order; \"k of n\": only k seeds have a value); reference P_fold "
            f"{fixed(float(ref['reference_p_fold']), 3)} (SE {fixed(float(ref['reference_p_fold_se']), 3)}; "
            f"{ref['folded_by']}). Converged: the models whose runs pass the reference's own convergence check (the "
            "two start groups agree in P_fold and in the order parameter, with enough transitions and a small "
            "enough SE of P_fold in each); only those have a P_fold of their own, which is why each start group's "
            "is given. W1 of Q, TICA W1 and (Q, Rg) JS: distances of the runs' valid frames to the reference "
            "(lower is closer). Exploded replicas: summed over seeds, of all replicas run.")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/equilibrium.tsv")


def curves_tica_change(folder, claim_pct=-33.0):
    """The published claim's measure in a learning-curve run: per arm, each seed's change in TICA
    W1 from round 0 to the last round (short evaluation runs, ``tica_w1_change_pct``), and how many
    single runs would have reported a drop at least as large as the claim's (descriptive)."""
    rows = tsv(f"{folder}/rounds.tsv")
    last = max(int(r["round"]) for r in rows)
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        v = sorted(float(r["tica_w1_change_pct"]) for r in rows
                   if r["arm"] == arm and int(r["round"]) == last and r["tica_w1_change_pct"] not in ("", None))
        if not v:
            out.append([f"`{arm}`", "–", "–", "none"])
            continue
        out.append([f"`{arm}`", fixed(statistics.median(v), 0, sign=True), f"{fixed(v[0], 0, sign=True)} to "
                    f"{fixed(v[-1], 0, sign=True)}", f"{sum(x <= claim_pct for x in v)} of {len(v)}"])
    head = ["arm", "median change, %", "range over seeds, %", f"seeds with a drop of {fixed(-claim_pct, 0)} % or more"]
    note = (f"The change (%) in TICA W1 to the reference from round 0 to round {last}, per seed "
            "(`tica_w1_change_pct`, the published method's measure; the evaluation runs, short and from fixed "
            "starts, not equilibrium). "
            "Descriptive, not a pre-registered endpoint: it asks how often one run without a control "
            f"would report the published {fixed(claim_pct, 0)} %.")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/rounds.tsv")


def curves_cost(folder):
    """A learning-curve run split in parts (``<folder>/part_<N>/part.json`` of
    ``benchmarks/collect_part.py``): per part its seeds, jobs, wall time and Snakemake's own CPU,
    and the whole run's totals."""
    parts = sorted((ROOT / MEASURED / folder).glob("part_*/part.json"), key=lambda p: int(p.parent.name[5:]))
    out, wall, jobs, sched_cpu, sched_s = [], 0.0, 0, 0.0, 0.0  # jobs: None once a part lacks its count
    for path in parts:
        d = json.loads(path.read_text())
        n = d.get("n_jobs")
        # a part whose Snakemake process was restarted records each process's share (segments)
        segs = d.get("scheduler_segments") or ([{"cpu_s": d["scheduler_cpu_s"], "elapsed_s": d["scheduler_elapsed_s"],
                                                 "cores": d["scheduler_cores"], "max_threads": d["scheduler_max_threads"]}]
                                               if "scheduler_cpu_s" in d else [])
        wall, jobs = wall + d["wall_s"], (jobs + n if n is not None and jobs is not None else None)
        sched_cpu, sched_s = sched_cpu + sum(g["cpu_s"] for g in segs), sched_s + sum(g["elapsed_s"] for g in segs)
        out.append([str(d["part"]), ", ".join(map(str, d["seeds"])), ", ".join(map(str, d["cg_equilibrium_seeds"])) or "–",
                    str(n) if n is not None else "–", fixed(d["wall_s"] / 60, 1),
                    " then ".join(fixed(g["cores"], 3) for g in segs) or "–",
                    " then ".join(str(g["max_threads"]) for g in segs) or "–", f"{d['cpu']}, {d['cores']} cores",
                    d["commit"][:7]])
    out.append(["all", "", "", str(jobs) if jobs is not None else "–", fixed(wall / 60, 1),
                fixed(sched_cpu / sched_s, 3) if sched_s else "–", "", "", ""])
    head = ["part", "seeds", "equilibrium seeds", "jobs", "wall, min", "Snakemake, cores", "Snakemake, max threads",
            "machine", "commit"]
    note = ("Wall: from the part's start to its last job, the machine to itself; \"all\": the parts' sum. "
            "Snakemake, cores: its own process's CPU seconds over its wall seconds (sampled every 30 s; "
            "\"then\": the process was restarted, see the part's note); \"all\": all its CPU seconds over all "
            "its wall seconds. Jobs: every job Snakemake ran, from its log.")
    return (table(head, out) + "\n\n" + note + "\n\n"
            + source(*(str(p.relative_to(ROOT / MEASURED)) for p in parts)))


def curves_selection(folder):
    """How the selectors of a learning-curve run filled their slots, per exploring arm and round
    (the selection after that round's model): the share filled (mean over seeds, range), how many
    seeds filled under half, the candidates in the selector's window (median over seeds), the
    picks rejected at backmapping, and the share of the reference's (Q, Rg) bins the exploration
    reached (mean over seeds)."""
    rows = [r for r in tsv(f"{folder}/rounds.tsv") if r["n_candidates"] not in ("", None)]
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        for k in sorted({int(r["round"]) for r in rows if r["arm"] == arm}):
            rs = [r for r in rows if r["arm"] == arm and int(r["round"]) == k]
            filled = [1 - float(r["fallback_share"]) for r in rs]
            cand = [float(r["n_candidates"]) for r in rs]
            out.append([f"`{arm}`", str(k), f"{fixed(statistics.fmean(filled), 2)} ({fixed(min(filled), 2)}–"
                        f"{fixed(max(filled), 2)})", f"{sum(f < 0.5 for f in filled)} of {len(rs)}",
                        f"{fixed(statistics.median(cand), 0)} ({fixed(min(cand), 0)}–{fixed(max(cand), 0)})",
                        fixed(statistics.fmean(float(r["n_rejected_backmap"]) for r in rs), 1),
                        fixed(statistics.fmean(float(r["explore_bins_reached"]) for r in rs), 2)])
    head = ["arm", "after round", "filled (range over seeds)", "seeds under half filled", "candidates (range)",
            "rejected at backmap, mean", "(Q, Rg) bins reached, mean"]
    note = ("Per exploring arm and round, over the seeds: filled, the share of the round's slots the selector "
            "filled (1 − fallback_share; the rest restart from training frames, as `md` does); candidates, the "
            "exploration frames in the selector's window; rejected at backmap, picks whose backmapped structure "
            "failed its check (a slot then tries its spare picks in rank order, and falls back when none passes); bins reached, the share of the reference's "
            "populated (Q, Rg) bins the round's exploration visited (evaluation information, never read by a "
            "selector). `md` and `iid` do not explore and always fill.")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/rounds.tsv")


def go_curves_primary():
    """The measured learning-curve run's pre-registered table (all seeds)."""
    return curves_primary("go_curves/all")


def go_curves_rounds():
    """The measured learning-curve run's curves per arm and round (all seeds)."""
    return curves_rounds("go_curves/all")


def go_curves_selection():
    """The measured learning-curve run's selector fill and exploration reach (all seeds)."""
    return curves_selection("go_curves/all")


def go_curves_equilibrium():
    """The measured learning-curve run's equilibrium runs of the final models (seeds 1-3)."""
    return curves_equilibrium("go_curves/all")


def go_curves_tica_change():
    """The published claim's measure in the measured learning-curve run (descriptive)."""
    return curves_tica_change("go_curves/all")


def go_curves_cost():
    """The measured learning-curve run's cost, per part and in all."""
    return curves_cost("go_curves")


def curves_strata(folder):
    """Where a learning-curve run's models learned: per arm, the share of the prior's excess
    mean-force error removed in each Q stratum of the held-out set, at round 0 and after the last
    round (mean ± 95 % t half-width over seeds)."""
    rows = tsv(f"{folder}/rounds.tsv")
    last = max(int(r["round"]) for r in rows)
    strata = ("folded", "transition", "unfolded")

    def cell(rs, s):
        v = [float(r[f"heldout_fraction_removed_{s}"]) for r in rs if r.get(f"heldout_fraction_removed_{s}") not in ("", None)]
        if not v:
            return "–"
        m, h = mean_t(v)
        return f"{fixed(m, 2, sign=True)} ± {fixed(h, 2)}" if len(v) > 1 else fixed(m, 2, sign=True)

    out = []
    first = rows[0]["arm"]
    out.append(["round 0 (all arms)"] + [cell([r for r in rows if r["arm"] == first and int(r["round"]) == 0], s)
                                         for s in strata])
    for arm in dict.fromkeys(r["arm"] for r in rows):
        rs = [r for r in rows if r["arm"] == arm and int(r["round"]) == last]
        out.append([f"`{arm}`, round {last}"] + [cell(rs, s) for s in strata])
    head = ["model", "folded", "transition", "unfolded"]
    note = ("The share of the prior's excess error against the exact mean force removed in each stratum of the "
            "held-out set by C-alpha Q (`heldout_fraction_removed_<stratum>`: 1 − the model's excess over the "
            "prior's; 0: no better than the prior, below 0: worse), mean ± 95 % t half-width over the seeds. "
            "Descriptive, not a pre-registered endpoint.")
    return table(head, out) + "\n\n" + note + "\n\n" + source(f"{folder}/rounds.tsv")


def go_curves_strata():
    """The measured learning-curve run's fraction removed per Q stratum (all seeds)."""
    return curves_strata("go_curves/all")


def go_curves_pilot2_primary():
    """The second pilot's pre-registered table (one seed: no verdicts; shows the table's form)."""
    return curves_primary("go_curves_pilot2")


RENDERERS = {f.__name__: f for f in [explore_reach, go_curves_pilot, go_curves_pilot2, go_curves_pilot2_equilibrium,
    go_curves_pilot2_primary, go_curves_primary, go_curves_rounds, go_curves_selection,
    go_curves_equilibrium, go_curves_tica_change, go_curves_cost, go_curves_strata, go_recipe_check, test_durations, force_maps, learning_curve, learning_curve_choices,
    learning_curve_pfold, prior_counts,
    go_experiment_arms, go_experiment_primary, go_pilot_rounds, chignolin_cpu_change,
    chignolin_cpu_paired, go_cpu_convergence, timestep_go, timestep_go_powered,
    timestep_go_replication, mean_force_labels_go, mean_force_labels_atomistic, scaling_forces]}


# ---------------------------------------------------------------- pages

class MarkerError(ValueError):
    pass


def markers(text, page="page"):
    """The renderer names of a page's marker pairs, in order; MarkerError if one is broken."""
    names, open_name = [], None
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("<!-- table"):
            m = OPEN.match(line)
            if not m:
                raise MarkerError(f"{page}:{i}: malformed marker {line!r}")
            if open_name:
                raise MarkerError(f"{page}:{i}: table {open_name!r} not closed before {m.group(2)!r}")
            if m.group(2) not in RENDERERS:
                raise MarkerError(f"{page}:{i}: no renderer named {m.group(2)!r}")
            open_name = m.group(2)
            names.append(open_name)
        elif line.strip() == CLOSE:
            if not open_name:
                raise MarkerError(f"{page}:{i}: {CLOSE} without an opening marker")
            open_name = None
    if open_name:
        raise MarkerError(f"{page}: table {open_name!r} never closed")
    return names


def render_page(text, page="page"):
    """The page with every marked table rendered anew."""
    markers(text, page)
    out, skipping = [], False
    for line in text.splitlines():
        m = OPEN.match(line)
        if m:
            indent = m.group(1)
            body = [(indent + x).rstrip() for x in RENDERERS[m.group(2)]().splitlines()]
            out += [line, ""] + body + ["", indent + CLOSE]
            skipping = True
            continue
        if skipping:
            if line.strip() == CLOSE:
                skipping = False
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def pages():
    return sorted(DOCS.rglob("*.md"))


def check():
    """Pages (relative to the repository) whose committed text differs from the rendering."""
    stale = []
    for p in pages():
        text = p.read_text()
        if render_page(text, str(p.relative_to(ROOT))) != text:
            stale.append(str(p.relative_to(ROOT)))
    return stale


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page differs from its rendering")
    args = ap.parse_args(argv)
    try:
        if args.check:
            stale = check()
            for s in stale:
                print(f"render_tables: {s} differs from its measured files; run python docs/render_tables.py",
                      file=sys.stderr)
            return 1 if stale else 0
        for p in pages():
            text = p.read_text()
            new = render_page(text, str(p.relative_to(ROOT)))
            if new != text:
                p.write_text(new)
                print(f"render_tables: rewrote {p.relative_to(ROOT)}")
    except MarkerError as e:
        print(f"render_tables: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
