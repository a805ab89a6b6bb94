"""Keep one part of a run split by seeds (docs/usage/reruns.md): its summary and how it was made.

Results folders do not outlive a session here, so each part of the learning-curve experiment
is committed as it finishes: its ``summary/`` tables and plot, and ``part.json`` with the seeds,
the commit and configs it ran, the CPU it ran on, its wall time, Snakemake's own CPU (from a
``schedmon`` sampling file: elapsed s and CPU s per line), the mean job time per rule, and the
SHA-256 of the shared inputs every seed is measured against (reference runs, held-out labels,
TICA fit), so that parts from different machines can be told apart
(``python -m alcg.stages.combine`` joins the parts).

    python benchmarks/collect_part.py --run go_curves --part 1 \\
        --configs config/go_curves.yaml config/go_curves_parts/part_1.yaml --wall-s 5400 \\
        [--scheduler-samples sched.txt] [--commit C] [--started EPOCH_S] [--snakemake-log part.log ...]

Output: ``benchmarks/measured/<run>/part_<N>/``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: summary files kept per part (equilibrium.tsv only where the part ran cg_equilibrium seeds)
SUMMARY = ["rounds.tsv", "experiment.tsv", "primary.tsv", "experiment.png", "equilibrium.tsv"]
#: run-level inputs every seed of a part is measured against
SHARED = ["reference/*.npz", "evaluate/heldout.npz", "evaluate/tica.npz", "pool/*.npz"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _seeds_in(path: Path) -> list[int]:
    with open(path, newline="") as f:
        return sorted({int(r["seed"]) for r in csv.DictReader(f, delimiter="\t")})


def summary_files(summary: Path, seeds: list[int], equilibrium_seeds: list[int]) -> list[Path]:
    """The files of ``summary/`` that belong to the part: refused (SystemExit, one line) when its
    ``rounds.tsv`` covers other seeds than the part's (a summary left by another part in the same
    results folder); ``equilibrium.tsv`` only when the part ran equilibrium seeds, and only its own."""
    found = _seeds_in(summary / "rounds.tsv")
    if found != sorted(seeds):
        raise SystemExit(f"collect_part: {summary / 'rounds.tsv'} has seeds {found}, "
                         f"the part's config {sorted(seeds)}: run the part's workflow to its end first")
    files = [summary / n for n in SUMMARY if n != "equilibrium.tsv" and (summary / n).exists()]
    eq = summary / "equilibrium.tsv"
    if equilibrium_seeds:
        if not eq.exists() or _seeds_in(eq) != sorted(equilibrium_seeds):
            raise SystemExit(f"collect_part: {eq} does not hold the part's equilibrium seeds {sorted(equilibrium_seeds)}")
        files.append(eq)
    return files


def jobs_done(logs: list[Path]) -> int:
    """The jobs Snakemake ran, summed over ``logs``: one log per Snakemake invocation of the part
    (a part stopped and restarted has two), each counted by its last ``X of Y steps (Z%) done``
    line. One line (SystemExit) when a log has no such line, or when the last log's run did not
    reach its Y (the part has not finished)."""
    total = 0
    for i, log in enumerate(logs):
        found = re.findall(r"^(\d+) of (\d+) steps \(\d+%\) done", log.read_text(), flags=re.M)
        if not found:
            raise SystemExit(f"collect_part: {log} has no 'X of Y steps done' line: not a Snakemake log")
        done, planned = map(int, found[-1])
        if i == len(logs) - 1 and done != planned:
            raise SystemExit(f"collect_part: {log}: {done} of {planned} jobs done; run the part to its end first")
        total += done
    return total


def collect(res: Path, bench: Path, out: Path, configs: list[str], part_no: int, wall_s: float,
            scheduler_samples: Path | None = None, commit: str | None = None, started: float | None = None,
            snakemake_logs: list[Path] | None = None) -> dict:
    """Copy the summary of results folder ``res`` to ``out`` and write ``out/part.json``; ``bench``
    is the run's Snakemake benchmark folder (``benchmarks/<run>/``). ``started``: the part's
    start (epoch s); only benchmark files written since count (parts in one results folder share
    ``bench``: an earlier part's jobs and the shared steps it ran are not this part's).
    ``snakemake_logs``: the part's Snakemake logs, for its number of jobs (``n_jobs``; the
    per-rule counts cover only rules with a benchmark file). Every refusal comes before a file
    is written."""
    from alcg.stages.validate import load_configs
    from run_cost import times_in

    cfg = load_configs(configs)
    files = summary_files(res / "summary", cfg["experiment"]["seeds"], cfg["cg_equilibrium"]["seeds"])
    n_jobs = jobs_done(snakemake_logs) if snakemake_logs else None
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy2(path, out / path.name)
    times = times_in(bench, since=started)
    part = {
        "run": res.name, "part": part_no, "seeds": cfg["experiment"]["seeds"],
        "cg_equilibrium_seeds": cfg["cg_equilibrium"]["seeds"], "configs": [str(c) for c in configs],
        "commit": commit or subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True).stdout.strip(),
        "cpu": cpu_model(), "cores": 2, "wall_s": wall_s,
        "per_rule_mean_s": {r: round(sum(v) / len(v), 2) for r, v in sorted(times.items())},
        "per_rule_jobs": {r: len(v) for r, v in sorted(times.items())},
        "shared_inputs_sha256": {str(p.relative_to(res)): sha256(p) for pat in SHARED for p in sorted(res.glob(pat))},
    }
    if n_jobs is not None:
        part["n_jobs"] = n_jobs
    if scheduler_samples:
        rows = [tuple(map(float, line.split())) for line in scheduler_samples.read_text().splitlines() if line]
        part["scheduler_cpu_s"], part["scheduler_elapsed_s"] = rows[-1][1], rows[-1][0]
        part["scheduler_cores"] = round(rows[-1][1] / max(rows[-1][0], 1.0), 3)
        if len(rows[-1]) > 2:
            part["scheduler_max_threads"] = int(max(r[2] for r in rows))
    (out / "part.json").write_text(json.dumps(part, indent=1) + "\n")
    return part


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--part", required=True, type=int)
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--wall-s", type=float, required=True, help="the part's wall time (s), its shared steps included")
    ap.add_argument("--scheduler-samples", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="instead of benchmarks/measured/<run>/part_<N>/")
    ap.add_argument("--commit", default=None, help="the commit the part ran at (default: HEAD now)")
    ap.add_argument("--started", type=float, default=None,
                    help="the part's start, epoch s (date +%%s): only jobs finished since count")
    ap.add_argument("--snakemake-log", type=Path, nargs="+", default=None,
                    help="the part's Snakemake output (one file per invocation), for its number of jobs")
    args = ap.parse_args()
    out = args.out or ROOT / "benchmarks" / "measured" / args.run / f"part_{args.part}"
    part = collect(ROOT / "results" / args.run, ROOT / "benchmarks" / args.run, out, args.configs, args.part,
                   args.wall_s, args.scheduler_samples, args.commit, args.started, args.snakemake_log)
    print(json.dumps({k: v for k, v in part.items() if k not in ("per_rule_mean_s", "per_rule_jobs")}, indent=1))


if __name__ == "__main__":
    main()
