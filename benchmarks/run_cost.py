"""The cost of a run before it starts, from a measured run of the same design (issue 32 item 6).

Reads every job's Snakemake benchmark file of the measured run (``benchmarks/<run>/``: wall
seconds per job), averages them per rule, and multiplies by the job counts of a dry run of the
target configs. Rules without a benchmark file (local rules: select's neighbours, merges,
projections, summaries) are covered by the measured run's parallel efficiency: the predicted
wall time is the target's benchmarked job time divided by the measured run's benchmarked job
time per wall second. The measured run's Snakemake process CPU (its own, not its jobs') comes
from a sampling file when given (``schedmon``: elapsed s and CPU s per line).

    python benchmarks/run_cost.py --measured go_curves_pilot --wall-s 3600 \\
        --configs config/go_curves.yaml [--scheduler-samples sched.txt] [--skip-rules ...]

Output: ``benchmarks/measured/<target run>_cost.json`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: benchmark folders named for their rule (the file is the start / replica)
RULE_FOLDERS = {"pool_md", "reference_md", "initial_md", "prepare_system", "backmap", "oracle"}


def rule_of(path: Path) -> str:
    """The rule a benchmark file belongs to, from its path."""
    if path.parent.name in RULE_FOLDERS:
        return path.parent.name
    return re.sub(r"_\d+$", "", path.stem)


def measured_times(run: str) -> dict[str, list[float]]:
    """{rule: [wall s per job]} of a run's benchmark files."""
    return times_in(ROOT / "benchmarks" / run)


def times_in(folder: Path, since: float | None = None) -> dict[str, list[float]]:
    """{rule: [wall s per job]} of the Snakemake benchmark files under ``folder``; ``since``
    (epoch s): only the files written since then."""
    out: dict[str, list[float]] = defaultdict(list)
    for path in sorted(folder.rglob("*.tsv")):
        if since is not None and path.stat().st_mtime < since:
            continue
        lines = path.read_text().splitlines()
        if len(lines) >= 2:
            out[rule_of(path)].append(float(lines[-1].split("\t")[0]))
    return dict(out)


def dry_run_counts(configs: list[str], forcerun: bool = True) -> dict[str, int]:
    """{rule: jobs} of ``snakemake -n`` on ``configs`` (every job: ``--forceall``)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", *(["--forceall"] if forcerun else []),
           "--configfile", *configs]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    text = res.stdout + res.stderr
    return {m[1]: int(m[2]) for m in re.finditer(r"^([a-z_]+)\s+(\d+)$", text, flags=re.M) if m[1] != "total"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measured", required=True, help="the measured run's name (benchmarks/<run>/)")
    ap.add_argument("--measured-configs", nargs="+", required=True, help="the measured run's configs")
    ap.add_argument("--wall-s", type=float, required=True, help="the measured run's wall time (s)")
    ap.add_argument("--configs", nargs="+", required=True, help="the target run's configs")
    ap.add_argument("--skip-rules", nargs="*", default=["reference_md", "pool_md", "prepare_system", "force_map_md",
                                                        "force_map", "heldout_frames", "go_native"],
                    help="run-level rules the measured run's wall time did not include")
    ap.add_argument("--scheduler-samples", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    times = measured_times(args.measured)
    mean = {r: sum(v) / len(v) for r, v in times.items()}
    skip = set(args.skip_rules)
    measured_counts = {r: n for r, n in dry_run_counts(args.measured_configs).items() if r not in skip}
    target_counts = {r: n for r, n in dry_run_counts(args.configs).items() if r not in skip}
    measured_job_s = sum(n * mean.get(r, 0.0) for r, n in measured_counts.items())
    target_job_s = sum(n * mean.get(r, 0.0) for r, n in target_counts.items())
    unmeasured = sorted(r for r in target_counts if r not in mean)
    out = {
        "measured_run": args.measured, "measured_configs": args.measured_configs, "measured_wall_s": args.wall_s,
        "target_configs": args.configs, "skipped_rules": sorted(skip),
        "per_rule": {r: {"mean_s": round(mean[r], 2) if r in mean else None, "measured_jobs": measured_counts.get(r, 0),
                         "target_jobs": n} for r, n in sorted(target_counts.items())},
        "rules_without_benchmark": unmeasured,
        "measured_jobs": sum(measured_counts.values()), "target_jobs": sum(target_counts.values()),
        "measured_benchmarked_job_s": round(measured_job_s), "target_benchmarked_job_s": round(target_job_s),
        "predicted_wall_s": round(target_job_s * args.wall_s / measured_job_s),
    }
    if args.scheduler_samples:
        rows = [tuple(map(float, line.split())) for line in args.scheduler_samples.read_text().splitlines() if line]
        out["scheduler_cpu_s"], out["scheduler_elapsed_s"] = rows[-1][1], rows[-1][0]
        out["scheduler_cores"] = round(rows[-1][1] / rows[-1][0], 3)
    path = args.out or ROOT / "benchmarks" / "measured" / f"{Path(args.configs[0]).stem}_cost.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "per_rule"}, indent=1))


if __name__ == "__main__":
    main()
