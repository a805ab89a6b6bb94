"""The benchmark scripts behind two docs tables run: force maps at smoke size, and the test
durations from a JUnit file (a failed test is named, a tier missing from the run is absent)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_a" name="test_fast" time="0.5"/>
<testcase classname="tests.unit.test_a" name="test_broken" time="21.0"><failure message="x"/></testcase>
<testcase classname="tests.smoke.test_smoke" name="test_loop" time="42.0"/>
</testsuite></testsuites>"""


def test_test_durations_from_a_junit_file(tmp_path):
    (tmp_path / "j.xml").write_text(JUNIT)
    out = tmp_path / "d.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/test_durations.py"), str(tmp_path / "j.xml"),
                    "--note", "synthetic", "--out", str(out)], check=True, timeout=60)
    d = json.loads(out.read_text())
    assert d["tiers"]["unit"] == {"tests": 2, "seconds": 21.5, "failed": 1, "skipped": 0}
    assert "workflow" not in d["tiers"] and d["failed"] == ["tests/unit/test_a.py::test_broken"]
    assert [c["test"] for c in d["slowest"]] == ["tests/smoke/test_smoke.py::test_loop", "tests/unit/test_a.py::test_broken"]


def test_force_maps_benchmark_at_smoke_size(tmp_path):
    out = tmp_path / "fm.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/force_maps.py"), "--quick", "--out", str(out)],
                   check=True, timeout=300, capture_output=True)
    d = json.loads(out.read_text())
    assert set(d["go"]["noise"]) == {"constrained", "residue", "optimal"}
    assert d["go"]["noise"]["residue"] < d["go"]["noise"]["constrained"]
    assert d["atomistic"]["second_moment_ratio_to_constrained"]["constrained"] == 1.0


def test_run_cost_names_each_benchmark_file_by_its_rule():
    """benchmarks/run_cost.py averages job times per rule: a member's train file, a per-start MD
    file and a per-slot oracle file each count for their rule."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run_cost import rule_of

    assert rule_of(Path("b/go/seed_1/round_000/train_2.tsv")) == "train"
    assert rule_of(Path("b/go/pool_md/extended_0.tsv")) == "pool_md"
    assert rule_of(Path("b/go/seed_1/rmsd/round_001/oracle/slot_003.tsv")) == "oracle"
    assert rule_of(Path("b/go/seed_1/rmsd/round_001/query.tsv")) == "query"
    assert rule_of(Path("b/go/seed_1/round_000/cg_evaluate.tsv")) == "cg_evaluate"
