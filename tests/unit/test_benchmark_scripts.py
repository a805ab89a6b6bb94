"""The benchmark scripts behind two docs tables run: force maps at smoke size, and the test
durations from a JUnit file (a failed test is named, a tier missing from the run is absent)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def test_collect_part_keeps_a_parts_summary_and_what_it_was_measured_against(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from collect_part import collect

    res, bench = tmp_path / "results" / "go_curves", tmp_path / "bench"
    (res / "summary").mkdir(parents=True)
    (res / "reference").mkdir()
    (res / "summary" / "rounds.tsv").write_text("seed\tarm\n1\tmd\n")
    (res / "summary" / "equilibrium.tsv").write_text("seed\tarm\n1\tmd\n")
    (res / "reference" / "folded_0.npz").write_bytes(b"abc")
    (bench / "seed_1" / "round_000").mkdir(parents=True)
    for m, s in [(0, 40.0), (1, 50.0), (2, 90.0)]:
        (bench / "seed_1" / "round_000" / f"train_{m}.tsv").write_text(f"s\th:m:s\n{s}\t0:00:40\n")
    started = time.time() - 10
    os.utime(bench / "seed_1" / "round_000" / "train_2.tsv", (started - 100, started - 100))  # an earlier part's
    (tmp_path / "sched.txt").write_text("30 3 5\n60 6 7\n")
    configs = [str(ROOT / "config/go_curves.yaml"), str(ROOT / "config/go_curves_parts/part_1.yaml")]
    # stopped after 2 of 5 jobs, then restarted: 3 more
    (tmp_path / "first.log").write_text("Building DAG\n1 of 5 steps (20%) done\n2 of 5 steps (40%) done\n")
    (tmp_path / "part.log").write_text("Building DAG\n1 of 3 steps (33%) done\n3 of 3 steps (100%) done\n")
    part = collect(res, bench, tmp_path / "out", configs, 1, 3600.0, tmp_path / "sched.txt", started=started,
                   snakemake_logs=[tmp_path / "first.log", tmp_path / "part.log"])
    assert part["seeds"] == [1] and part["cg_equilibrium_seeds"] == [1] and part["n_jobs"] == 5
    assert part["per_rule_mean_s"] == {"train": 45.0} and part["per_rule_jobs"] == {"train": 2}
    assert part["shared_inputs_sha256"] == {
        "reference/folded_0.npz": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    assert part["scheduler_cores"] == 0.1 and part["scheduler_max_threads"] == 7
    assert (tmp_path / "out" / "rounds.tsv").read_text() == "seed\tarm\n1\tmd\n"
    assert json.loads((tmp_path / "out" / "part.json").read_text()) == part
    assert (tmp_path / "out" / "equilibrium.tsv").exists()
    # part 6 (seed 10, no equilibrium seeds) in the same results folder: part 1's summary is refused,
    # and part 1's equilibrium table is not part 6's
    part_6 = [configs[0], str(ROOT / "config/go_curves_parts/part_6.yaml")]
    with pytest.raises(SystemExit, match=r"has seeds \[1\], the part's config \[10\]"):
        collect(res, bench, tmp_path / "out6", part_6, 6, 60.0)
    (res / "summary" / "rounds.tsv").write_text("seed\tarm\n10\tmd\n")
    (tmp_path / "part.log").write_text("2 of 3 steps (67%) done\n")  # a part that did not finish
    with pytest.raises(SystemExit, match=r"2 of 3 jobs done"):
        collect(res, bench, tmp_path / "out6", part_6, 6, 60.0, snakemake_logs=[tmp_path / "part.log"])
    assert not (tmp_path / "out6").exists()  # refused before anything was written
    collect(res, bench, tmp_path / "out6", part_6, 6, 60.0)
    assert sorted(p.name for p in (tmp_path / "out6").iterdir()) == ["part.json", "rounds.tsv"]
