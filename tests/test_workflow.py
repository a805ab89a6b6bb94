"""The tiny config end to end through Snakemake: 2 rounds, no-op rerun, single-round rerun,
kill and resume. These run real OpenMM, training and CG simulation (a few minutes)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alcg.mapping import load_dataset
from alcg.stages import run_status

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "scripts", "config", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def _snakemake(cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/test.yaml",
           "--rerun-incomplete", *args]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _digest(paths) -> dict[str, tuple[str, float]]:
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime) for p in paths}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    work = _copy_workflow(tmp_path_factory.mktemp("wf"))
    _snakemake(work)
    return work


def test_two_rounds_end_to_end(finished):
    res_dir = finished / "results" / "test"
    sizes = [len(load_dataset(res_dir / f"round_{k:03d}/dataset/dataset.npz")["coords"]) for k in range(3)]
    assert sizes[0] == 2 * 100  # 2 initial replicas x 4 ps / (10 steps x 4 fs)
    for k in (0, 1):
        runs = sorted((res_dir / f"round_{k:03d}/oracle").glob("slot_*.npz"))
        ok = [r for r in runs if run_status(r) == "ok"]
        assert sizes[k + 1] == sizes[k] + 25 * len(ok)  # 1 ps / (10 steps x 4 fs) per oracle run
    assert sizes[2] > sizes[0], "no oracle data was added in two rounds"
    data = load_dataset(res_dir / "round_002/dataset/dataset.npz")
    pairs = set(zip(data["source"].tolist(), data["frame"].tolist()))
    assert len(pairs) == len(data["coords"])  # no duplicated frames
    assert set(data["round"].tolist()) <= {0, 1}
    for k in range(3):
        assert (res_dir / f"round_{k:03d}/model/loss.png").stat().st_size > 1000
        assert (res_dir / f"round_{k:03d}/cg_sim/trajectory.h5").exists()
    assert (finished / "logs/test/round_001/train.log").read_text().count("epoch") >= 1
    res = _snakemake(finished, "-n")
    assert "Nothing to be done" in res.stdout + res.stderr


def test_summary_table_and_report(finished):
    res_dir = finished / "results" / "test"
    lines = (res_dir / "summary/rounds.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    assert [r["round"] for r in rows] == ["0", "1", "2"]
    assert all(float(r["tica_w1"]) > 0 for r in rows)
    assert float(rows[0]["tica_w1_change_pct"]) == 0.0
    assert float(rows[2]["oracle_ns"]) > float(rows[1]["oracle_ns"]) > 0
    for k in range(3):
        assert (res_dir / f"round_{k:03d}/evaluate/tica_fes.png").stat().st_size > 5000
    _snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    assert "TICA free energy" in html and "Selection" in html


def test_bad_config_on_existing_results_changes_nothing(finished):
    import yaml

    before = _digest([p for p in (finished / "results").rglob("*") if p.is_file()])
    cfg = yaml.safe_load((finished / "config/test.yaml").read_text())
    cfg["select"]["rmsd_hi_nm"] = 0.01  # below rmsd_lo_nm
    (finished / "bad.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bad.yaml"],
                         cwd=finished, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "select.rmsd_lo_nm (0.03) must be below select.rmsd_hi_nm (0.01)" in res.stdout + res.stderr
    assert _digest([p for p in (finished / "results").rglob("*") if p.is_file()]) == before


def test_rerun_single_round_leaves_round_0_untouched(finished):
    res_dir = finished / "results" / "test"
    round0 = [p for p in (res_dir / "round_000").rglob("*") if p.is_file()]
    kept_r1 = [res_dir / "round_001/model/model.pt", res_dir / "round_001/select/selected.npz"]
    before = _digest(round0 + kept_r1)
    target = res_dir / "round_001/oracle/slot_000.npz"
    old_mtime = target.stat().st_mtime
    out = _snakemake(finished, "--forcerun", str(target.relative_to(finished)))
    log = out.stdout + out.stderr
    assert "rule oracle" in log and "rule prepare_system" not in log and "rule initial_md" not in log
    assert target.stat().st_mtime > old_mtime
    assert _digest(round0 + kept_r1) == before


def test_killed_workflow_resumes_to_same_counts(finished, tmp_path):
    work = _copy_workflow(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/test.yaml"]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    marker = work / "results/test/round_001/model/model.pt"
    deadline = time.time() + 600
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert marker.exists() and proc.poll() is None, "the workflow ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--configfile", "config/test.yaml"],
                   cwd=work, check=True, capture_output=True)
    _snakemake(work)
    for k in range(3):
        a = load_dataset(work / f"results/test/round_{k:03d}/dataset/dataset.npz")
        b = load_dataset(finished / f"results/test/round_{k:03d}/dataset/dataset.npz")
        assert len(a["coords"]) == len(b["coords"]), k
        assert len(set(zip(a["source"].tolist(), a["frame"].tolist()))) == len(a["coords"])
    leftovers = [p for p in (work / "results").rglob(".*") if p.is_file()]
    assert not leftovers, leftovers


def test_control_arm_spends_the_same_oracle_budget(tmp_path):
    import yaml

    work = _copy_workflow(tmp_path)
    cfg = yaml.safe_load((work / "config/test.yaml").read_text())
    cfg["control"]["enabled"] = True
    cfg["loop"]["n_rounds"] = 1
    (work / "config/test.yaml").write_text(yaml.safe_dump(cfg))
    _snakemake(work)
    res_dir = work / "results/test"
    al = [run_status(p) for p in sorted((res_dir / "round_000/oracle").glob("slot_*.npz"))]
    ctrl = [run_status(p) for p in sorted((res_dir / "control/round_000/oracle").glob("slot_*.npz"))]
    assert sum(s != "skipped" for s in al) == sum(s != "skipped" for s in ctrl) > 0
    lines = (res_dir / "summary/rounds.tsv").read_text().splitlines()
    row1 = dict(zip(lines[0].split("\t"), lines[2].split("\t")))
    assert row1["oracle_ns"] == row1["control_oracle_ns"] and float(row1["control_tica_w1"]) > 0
    # the control arm starts from the same round-0 model and data
    a = load_dataset(res_dir / "round_001/dataset/dataset.npz")
    c = load_dataset(res_dir / "control/round_001/dataset/dataset.npz")
    assert len(a["coords"]) == len(c["coords"])


# ------------------------------------------------------------------ SLURM (a real local cluster)
def _slurm_cluster(tmp_path):
    from slurm_cluster import LocalCluster, missing_reason

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    return LocalCluster(tmp_path / "slurm", mem_mb=20000).start()


def _squeue() -> list[tuple[str, str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%t"], capture_output=True, text=True).stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line.strip()]


def test_profile_slurm_submits_every_job_and_survives_scancel(finished, tmp_path):
    import re

    cluster = _slurm_cluster(tmp_path)
    try:
        (tmp_path / "wf").mkdir()
        work = _copy_workflow(tmp_path / "wf")
        os.symlink("profiles/slurm", work / "slurm")
        cmd = [sys.executable, "-m", "snakemake", "--profile", "slurm", "--configfile", "config/test.yaml"]
        res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=2400)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-4000:] + cluster.log_tail()
        # every non-local job went through sbatch, with its SLURM job id and log
        submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)", out)
        n_remote = len(re.findall(r"^rule \w+:", out, flags=re.M))
        assert n_remote > 10 and len(submitted) == n_remote
        assert re.search(r"^localrule select:", out, flags=re.M)  # bookkeeping stays local
        assert all(Path(log).exists() for _, log in submitted)
        # same counts and shapes as the local run
        for k in range(3):
            a = load_dataset(work / f"results/test/round_{k:03d}/dataset/dataset.npz")
            b = load_dataset(finished / f"results/test/round_{k:03d}/dataset/dataset.npz")
            assert a["coords"].shape == b["coords"].shape, k
        local_files = sorted(p.relative_to(finished / "results") for p in (finished / "results").rglob("*.npz"))
        slurm_files = sorted(p.relative_to(work / "results") for p in (work / "results").rglob("*.npz"))
        assert local_files == slurm_files

        # a job killed with scancel mid-round is retried; finished rounds are untouched
        round0 = [p for p in (work / "results/test/round_000").rglob("*") if p.is_file()]
        before = _digest(round0)
        target = "results/test/round_001/model/model.pt"
        proc = subprocess.Popen(cmd + ["--forcerun", target], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        deadline, cancelled = time.time() + 600, None
        while cancelled is None and time.time() < deadline and proc.poll() is None:
            for job_id, comment, state in _squeue():
                if comment == "rule_train_wildcards_001" and state == "R":
                    subprocess.run(["scancel", job_id], check=True)
                    cancelled = job_id
            time.sleep(0.5)
        log, _ = proc.communicate(timeout=1800)
        assert cancelled, "the train job was never seen running"
        assert proc.returncode == 0, log[-4000:]
        assert "--attempt 2" in log or "attempt 2" in log.lower() or log.count("rule train:") >= 2
        assert _digest(round0) == before
    finally:
        cluster.stop()
