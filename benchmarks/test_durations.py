"""The test suite's measured durations per tier, from a pytest JUnit XML file.

``make test-full`` writes ``.pytest-full.xml`` (git-ignored); this script turns it into
``benchmarks/measured/test_durations.json``, from which ``docs/render_tables.py`` renders the
table of docs/dev/testing.md, so that the tiers' times are measured, not typed::

    python benchmarks/test_durations.py .pytest-full.xml --note "clean clone, .ci/run, 2 cores"

Durations are pytest's per-test times (setup + call + teardown, in s); module-scoped fixtures
(a workflow run shared by several tests) count in the first test that uses them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/measured/test_durations.json"
#: tests at least this long are listed one by one (s)
LIST_FROM_S = 20.0


def read_junit(path: Path) -> list[dict]:
    """One dict per test case: tier, test id, seconds, outcome."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")
        tier = parts[1] if len(parts) > 2 and parts[0] == "tests" else "?"
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        file = "/".join(parts[:-1] if parts[-1][:1].isupper() else parts) + ".py"
        cases.append({"tier": tier, "test": f"{file}::{case.get('name')}", "seconds": float(case.get("time", 0.0)),
                      "outcome": outcome})
    return cases


def summarize(cases: list[dict], note: str) -> dict:
    """Per-tier counts and total seconds, and every test of at least LIST_FROM_S seconds."""
    tiers: dict[str, dict] = {}
    for c in cases:
        t = tiers.setdefault(c["tier"], {"tests": 0, "seconds": 0.0, "failed": 0, "skipped": 0})
        t["tests"] += 1
        t["seconds"] = round(t["seconds"] + c["seconds"], 1)
        t["failed"] += c["outcome"] in ("failure", "error")
        t["skipped"] += c["outcome"] == "skipped"
    slow = sorted((c for c in cases if c["seconds"] >= LIST_FROM_S), key=lambda c: -c["seconds"])
    failed = [c["test"] for c in cases if c["outcome"] in ("failure", "error")]
    return {"date": dt.date.today().isoformat(), "cores": os.cpu_count(), "note": note,
            "list_from_s": LIST_FROM_S, "tiers": tiers, "failed": failed,
            "slowest": [{k: (round(v, 1) if k == "seconds" else v) for k, v in c.items()} for c in slow]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("junit", type=Path, help="pytest's --junitxml file")
    ap.add_argument("--note", default="", help="where and how it was measured")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.junit.is_file():
        print(f"test_durations: {args.junit}: no such file (make test-full writes .pytest-full.xml)", file=sys.stderr)
        return 2
    summary = summarize(read_junit(args.junit), args.note)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"test_durations: wrote {args.out} ({sum(t['tests'] for t in summary['tiers'].values())} tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
