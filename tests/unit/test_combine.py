"""Joining the parts of a run split by seeds gives the whole run's summary, and refuses parts
that do not belong together."""
import subprocess
import sys
from pathlib import Path

import pytest

from alcg.analysis.summary import read_tsv, write_tsv
from alcg.stages import combine
from alcg.util.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "benchmarks" / "measured" / "go_curves_pilot"
CONFIGS = [str(ROOT / "config" / "go_curves.yaml"), str(ROOT / "config" / "go_curves_pilot.yaml")]


def _split(tmp_path: Path) -> list[str]:
    """The pilot's rounds.tsv as two parts, one per seed."""
    rows = read_tsv(PILOT / "rounds.tsv")
    columns = list(rows[0])
    out = []
    for seed in sorted({r["seed"] for r in rows}):
        path = tmp_path / f"part_{seed}.tsv"
        write_tsv([r for r in rows if r["seed"] == seed], columns, path)
        out.append(str(path))
    return out


def test_parse_value_reads_back_what_write_tsv_writes():
    assert [combine.parse_value(v) for v in ["", "True", "False", "101", "0.0625", "-2e-05", "rmsd"]] == \
        [None, True, False, 101, 0.0625, -2e-05, "rmsd"]


def test_two_parts_give_the_whole_runs_summary(tmp_path):
    parts = _split(tmp_path)
    combine.combine(CONFIGS, parts, tmp_path / "joined")
    combine.combine(CONFIGS, [str(PILOT / "rounds.tsv")], tmp_path / "whole")
    for name in ["rounds.tsv", "experiment.tsv", "primary.tsv"]:
        assert (tmp_path / "joined" / name).read_text() == (tmp_path / "whole" / name).read_text()
    pilot, joined = read_tsv(PILOT / "rounds.tsv"), read_tsv(tmp_path / "joined" / "rounds.tsv")
    assert [{k: r.get(k, "") for k in pilot[0]} for r in joined] == pilot
    # against the workflow's own primary.tsv: equal up to the 6 significant digits rounds.tsv keeps
    ours, theirs = read_tsv(tmp_path / "joined" / "primary.tsv"), read_tsv(PILOT / "primary.tsv")
    assert [(r["comparison"], r["verdict"]) for r in ours] == [(r["comparison"], r["verdict"]) for r in theirs]
    for a, b in zip(ours, theirs):
        for col in ["mean_difference", "share", "t_ci_low", "share_ci_low"]:
            assert (a[col] == "") == (b[col] == "")
            if a[col]:
                assert float(a[col]) == pytest.approx(float(b[col]), rel=1e-2, abs=1e-3)


def test_parts_that_do_not_belong_together_are_refused(tmp_path):
    one, two = _split(tmp_path)
    seeds, arms = [101, 102], ["rmsd", "random", "random_aa", "md", "committee", "iid"]
    rows = {p: combine.read_rounds(p) for p in (one, two)}
    with pytest.raises(DataError, match="seed 101 is in two parts"):
        combine.join_parts({"a": rows[one], "b": rows[one]}, seeds, arms, 4)
    with pytest.raises(DataError, match=r"no part has seeds \[102\]"):
        combine.join_parts({"a": rows[one]}, seeds, arms, 4)
    assert len(combine.join_parts({"a": rows[one]}, seeds, arms, 4, partial=True)) == 30
    with pytest.raises(DataError, match=r"not in the config's experiment.seeds"):
        combine.join_parts(rows, [101], arms, 4)
    with pytest.raises(DataError, match="do not match the config's arms"):
        combine.join_parts(rows, seeds, arms[:-1], 4)
    with pytest.raises(DataError, match="do not match the config's arms"):
        combine.join_parts(rows, seeds, arms, 5)
    other = [{**r, "heldout_label_se2": r["heldout_label_se2"] * 1.01} for r in rows[two]]
    with pytest.raises(DataError, match="not measured against the same held-out labels"):
        combine.join_parts({one: rows[one], two: other}, seeds, arms, 4)
    assert len(combine.join_parts({one: rows[one], two: other}, seeds, arms, 4, mixed_references=True)) == 60


def test_the_command_line_names_a_bad_part_in_one_line(tmp_path):
    one, _ = _split(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "alcg.stages.combine", "--configfile", *CONFIGS,
                           "--out", str(tmp_path / "out"), one], capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == \
        "alcg: no part has seeds [102] of experiment.seeds (give --partial to summarize fewer)"
    assert not (tmp_path / "out" / "primary.tsv").exists()
