"""benchmarks/gpu_check.py on the CPU (reduced sizes), so that the GPU check never rots; its
parts skip a missing package instead of failing; a failed part fails the check."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_gpu_check_runs_every_path_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == r
    parts = ("environment", "openmm", "cg_forces", "selection", "cg_simulation", "training", "committee_export")
    assert {p: r[p]["status"] for p in parts} == dict.fromkeys(parts, "ok")
    assert r["environment"]["device_used"] == "cpu" and r["environment"]["cuda_probe"] != "ok"
    assert r["openmm"]["platforms"] == ["CPU", "Reference"] and r["openmm"]["force_rel_rms"] < 1e-3
    assert r["openmm"]["aa_bare_openmm_ns_per_day"] > 0 and r["openmm"]["oracle_over_bare"] > 0
    runs = r["cg_forces"]["runs"]
    assert {(x["n_beads"], x["n_replicas"]) for x in runs} == {(b, n) for b in (10, 80) for n in (2, 8)}
    assert all(x["path"] == "tabulated" and x["force_rel_rms"] < 1e-4 and x["ms_per_call"] > 0 for x in runs)
    sim = r["cg_simulation"]
    assert sim["resume"]["ok"] and sim["resume"]["resumed_from_step"] == 10 and sim["dt_ps"] == 0.005
    assert sim["cg_aggregate_us_per_day"] > 0 and sim["cg_over_aa"] > 0
    assert r["training"]["loss_ok"] and r["training"]["frames_per_s"] > 0
    assert r["committee_export"]["forces_ok"] and r["committee_export"]["committee_max_force_deviation"] > 0
    assert all(r["targets"][k]["value"] is None for k in gpu_check.TARGETS)  # GPU targets: not on a CPU
    assert r["correctness_ok"] is True


def test_a_missing_package_is_skipped_not_failed(tmp_path, monkeypatch):
    for name in ("openmm", "mdtraj"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    for name in [m for m in sys.modules if m.startswith(("openmm.", "mdtraj.")) or m in ("alcg.selection.rmsd_coverage", "alcg.finegrained.system")]:
        monkeypatch.delitem(sys.modules, name)
    size = gpu_check.SIZES["reduced"]
    omm = gpu_check._part(gpu_check.openmm_part, "cpu", size, tmp_path)
    sel = gpu_check._part(gpu_check.selection, "cpu", size)
    assert omm["status"] == "skipped" and "openmm" in omm["reason"]
    assert sel["status"] == "ok"  # exact selection is torch alone: it runs without MDTraj
    env = gpu_check._part(gpu_check.environment, "cpu")
    assert env["status"] == "ok" and env["openmm"].startswith("missing") and env["mdtraj"].startswith("missing")


def test_a_failed_part_or_a_missed_bound_fails_the_check():
    def boom():
        raise RuntimeError("kernel launch failed")

    failed = gpu_check._part(boom)
    assert failed["status"] == "failed" and "kernel launch failed" in failed["error"]
    ok = {"status": "ok"}
    good = {"environment": ok, "openmm": {**ok, "forces_ok": True}, "cg_forces": {**ok, "forces_ok": True},
            "selection": ok, "cg_simulation": {**ok, "resume": {"ok": True}}, "training": {**ok, "loss_ok": True},
            "committee_export": {**ok, "forces_ok": True}}
    assert gpu_check.correctness_ok(good)
    assert not gpu_check.correctness_ok({**good, "selection": failed})
    assert not gpu_check.correctness_ok({**good, "training": {**ok, "loss_ok": False}})
    assert not gpu_check.correctness_ok({**good, "cg_simulation": {**ok, "resume": {"ok": False}}})
    skipped = {"status": "skipped", "reason": "missing package"}
    assert gpu_check.correctness_ok({**good, "openmm": skipped, "selection": skipped})
