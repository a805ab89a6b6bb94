"""The learning-curve benchmark runs end to end at smoke size (data, exact held-out labels, the
choices, the curve, the warm-start and P_fold checks) and writes what its results page renders."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_learning_curve_benchmark_at_smoke_size(tmp_path):
    out = tmp_path / "lc.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/learning_curve.py"), "--quick", "--jobs", "2",
                    "--pfold-minutes", "1", "--work", str(tmp_path / "work"), "--out", str(out)],
                   check=True, timeout=900, capture_output=True)
    d = json.loads(out.read_text())
    assert {(r["force_map"], r["n_frames"]) for r in d["curve"]} == {(k, n) for k in ("constrained", "residue",
                                                                                      "optimal") for n in (50, 200)}
    assert all(len(r["fits"]) == 2 and r["ci_low"] <= r["fraction_removed"] <= r["ci_high"] for r in d["curve"])
    assert d["chosen"] in d["candidates"] and len(d["selection"]) == len(d["candidates"])
    assert d["noise"]["go"]["residue"] < d["noise"]["go"]["constrained"]
    assert d["heldout"]["mean_se2"] > 0 and abs(sum(d["heldout"]["population"]) - 1) < 1e-9
    assert set(d["warm_start"]) >= {"warm", "scratch", "base"}
    assert d["p_fold"]["reference"] is not None and d["p_fold"]["cap_minutes"] > 0
    assert (tmp_path / "lc.png").exists()
    # the prior comparison of item 5 runs on the curve's data
    pc = tmp_path / "pc.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/prior_counts.py"), "--work", str(tmp_path / "work_quick"),
                    "--out", str(pc)], check=True, timeout=300, capture_output=True)
    p = json.loads(pc.read_text())
    for key in ("workflow_round0", "curve"):
        v = p[key]["variants"]
        assert set(v) == {"frames", "independent", "no_dihedrals"} and v["frames"]["minus_frames"] == 0.0
        assert v["independent"]["val_mse"] != v["frames"]["val_mse"]
        assert len(p[key]["statistical_inefficiency"]) == 7 and min(p[key]["statistical_inefficiency"]) >= 1.0
