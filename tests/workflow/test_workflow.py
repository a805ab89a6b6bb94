"""The tiny config end to end through Snakemake: 2 arms x 2 seeds x 2 rounds, no-op rerun, an
isolated rerun of one arm, a plugin selector, kill and resume, SLURM. These run real OpenMM,
training and CG simulation (minutes)."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import json
import re

import numpy as np
import torch

from alcg.formats import run_file, slot_start
from alcg.formats.dataset import load as load_dataset, shards
from alcg.util.fileio import load_npz
from alcg.analysis.summary import read_tsv
from workflow_helpers import copy_workflow

ROOT = Path(__file__).resolve().parents[2]



def _snakemake(cwd: Path, *args: str, timeout: int = 1800, extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake on the tiny config; ``extra`` is merged over it (an extra config file,
    since ``--config`` reads nested values as strings)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", *_configs(cwd, extra),
           "--rerun-incomplete", *args]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _configs(cwd: Path, extra: dict | None) -> list[str]:
    if not extra:
        return ["config/test.yaml"]
    import yaml

    path = cwd / f"extra_{abs(hash(repr(extra)))}.yaml"
    path.write_text(yaml.safe_dump(extra))
    return ["config/test.yaml", path.name]


def _digest(paths) -> dict[str, tuple[str, float]]:
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime) for p in paths}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


#: a one-seed, one-arm, one-round version of the tiny config (kill/resume and SLURM tests)
SMALL = {"experiment": {"seeds": [1], "arms": ["rmsd"]}, "loop": {"n_rounds": 1}}
ARMS, SEEDS = ("rmsd", "md"), (1, 2)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The tiny config: 2 arms x 2 seeds x 2 rounds, end to end."""
    work = copy_workflow(tmp_path_factory.mktemp("wf"))
    _snakemake(work)
    return work


def test_arms_and_seeds_end_to_end(finished):
    res_dir = finished / "results" / "test"
    for seed in SEEDS:
        r0 = res_dir / f"seed_{seed}/round_000"
        n0 = len(load_dataset(r0 / "dataset/dataset.npz").coords)
        assert n0 == 2 * 100  # 2 initial replicas x 4 ps / (10 steps x 4 fs)
        assert not (res_dir / f"seed_{seed}/rmsd/round_000/model").exists()  # round 0 is shared, not copied
        for arm in ARMS:
            sizes = [n0] + [load_dataset(res_dir / f"seed_{seed}/{arm}/round_{k:03d}/dataset/dataset.npz").n_frames
                            for k in (1, 2)]
            for k in (0, 1):
                runs = sorted((res_dir / f"seed_{seed}/{arm}/round_{k:03d}/oracle").glob("slot_*.npz"))
                ok = [r for r in runs if run_file.status(r) is run_file.Status.OK]
                assert sizes[k + 1] == sizes[k] + 25 * len(ok)  # 1 ps / (10 steps x 4 fs) per oracle run
            assert sizes[2] > sizes[0], f"no oracle data added to seed {seed} {arm}"
            data = load_dataset(res_dir / f"seed_{seed}/{arm}/round_002/dataset/dataset.npz")
            assert len(set(zip(data.source.tolist(), data.frame.tolist()))) == len(data.coords)
            for k in (1, 2):  # appended, not copied: round 0's frames and each round's projected ones
                manifest = res_dir / f"seed_{seed}/{arm}/round_{k:03d}/dataset/dataset.npz"
                assert [s.path.name for s in shards(manifest)] == ["dataset.npz"] + ["projected.npz"] * k
                assert manifest.stat().st_size < 5000
            assert (res_dir / f"seed_{seed}/{arm}/round_002/evaluate/tica_fes.png").stat().st_size > 5000
    # the md arm starts its queries from training frames, the rmsd arm from backmapped CG frames
    md_start = slot_start.load(res_dir / "seed_1/md/round_000/start/slot_000.npz")
    assert md_start.reason == "training frame, as is" and md_start.template_source.startswith("seed_1/")
    assert "ca_rmsd_nm" in slot_start.load(res_dir / "seed_1/rmsd/round_000/start/slot_000.npz").metadata
    assert (res_dir / "seed_1/rmsd/round_001/explore/trajectory.dcd").exists()  # viewer-friendly copy
    res = _snakemake(finished, "-n")
    assert "Nothing to be done" in res.stdout + res.stderr


def test_priors_frozen_and_validation_fixed(finished):
    res_dir = finished / "results" / "test"
    for seed in SEEDS:
        r0 = json.loads((res_dir / f"seed_{seed}/round_000/model/priors.json").read_text())
        assert not list((res_dir / f"seed_{seed}").glob("*/round_00[12]/model/priors.json"))
        val0 = None
        for arm in ARMS:
            for k in (1, 2):
                prior = torch.load(res_dir / f"seed_{seed}/{arm}/round_{k:03d}/model/member_0/model.pt",
                                   weights_only=False)["prior"]
                assert prior["bond_k"] == r0["bond_k"] and prior["dih_cos"] == r0["dih_cos"]
                data = load_dataset(res_dir / f"seed_{seed}/{arm}/round_{k:03d}/dataset/dataset.npz")
                val = set(zip(data.source[data.split == "val"].tolist(),
                              data.frame[data.split == "val"].tolist()))
                assert val and (val0 is None or val == val0)
                val0 = val
                assert all(src.startswith(f"seed_{seed}/initial/") for src, _ in val)  # no oracle frame
                assert set(data.round[data.split == "val"].tolist()) == {0}


def test_evaluation_uses_the_seeds_fixed_starts(finished):
    res_dir = finished / "results" / "test"
    for seed in SEEDS:
        labels = None
        for rd in ["round_000"] + [f"{a}/round_{k:03d}" for a in ARMS for k in (1, 2)]:
            info = json.loads((res_dir / f"seed_{seed}/{rd}/evaluate/replicas.json").read_text())
            assert info["purpose"] == "evaluation" and info["burn_in_frames"] == 5
            labels = labels or info["start_label"]
            assert info["start_label"] == labels  # the same starts for every arm and round
        assert labels[:4] == ["folded", "folded", "extended", "extended"]


def test_summary_tables_and_report(finished):
    res_dir = finished / "results" / "test"
    rows = read_tsv(res_dir / "summary/rounds.tsv")
    assert {(r["seed"], r["arm"], r["round"]) for r in rows} == \
        {(str(s), a, str(k)) for s in SEEDS for a in ARMS for k in range(3)}
    for r in rows:
        assert float(r["tica_w1"]) > 0 and 0 <= float(r["valid_fraction"]) <= 1
        assert 0 <= float(r["tica_js"]) <= np.log(2) and float(r["heldout_force_mse"]) > 0
        assert float(r["heldout_prior_force_mse"]) > 0 and r["evaluation_failed"] in ("True", "False")
    r0 = {(r["seed"], r["arm"]): r for r in rows if r["round"] == "0"}
    r1 = {(r["seed"], r["arm"]): r for r in rows if r["round"] == "1"}
    for s in SEEDS:  # the same oracle budget for every arm (spares and fallback starts fill slots)
        assert float(r1[(str(s), "rmsd")]["oracle_ns"]) > 0
        if all(r0[(str(s), a)]["n_failed_oracle"] == "0" for a in ARMS):
            assert len({r1[(str(s), a)]["oracle_ns"] for a in ARMS}) == 1, r1
    exp = read_tsv(res_dir / "summary/experiment.tsv")
    for arm, other in (("rmsd", "md"), ("md", "rmsd")):
        row = next(r for r in exp if r["arm"] == arm and r["round"] == "2" and r["metric"] == "tica_w1"
                   and r["comparison"] == f"minus_{other}_pct_points")
        assert float(row["ci_low"]) <= float(row["mean"]) <= float(row["ci_high"]) and row["n_seeds"] == "2"
    primary = read_tsv(res_dir / "summary/primary.tsv")  # test.yaml pre-registers rmsd - md
    assert [(r["role"], r["comparison"]) for r in primary] == [("primary", "rmsd - md")]
    assert primary[0]["n_seeds"] == "2" and primary[0]["verdict"]
    assert (res_dir / "summary/experiment.png").stat().st_size > 10000
    _snakemake(finished, "--report", "report.html")
    html = (finished / "report.html").read_text(errors="replace")
    assert "TICA free energy" in html and "Selection" in html and "experiment.tsv" in html


def _dry_run_jobs(cwd: Path, extra: dict) -> list[str]:
    """Rule names and wildcards of the jobs a dry run would run with ``extra`` merged over."""
    out = _snakemake(cwd, "-n", extra=extra)
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return []
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:)", text, flags=re.M)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else ""))
    return jobs


def test_storage_switch_reruns_nothing(finished):
    assert _dry_run_jobs(finished, {"cg_sim": {"keep_exploration": False}}) == []


def test_one_arms_override_reruns_only_that_arm(finished):
    jobs = _dry_run_jobs(finished, {"select": {"overrides": {"md": {"n_spare": 3}}}})
    assert jobs and any(rule == "select" for rule, _ in jobs), jobs
    for rule, wildcards in jobs:
        assert rule in ("summary", "all") or "arm=md" in wildcards or "md/round" in wildcards, (rule, wildcards)


def test_bad_config_on_existing_results_changes_nothing(finished):
    import yaml

    before = _digest(_files(finished / "results"))
    cfg = yaml.safe_load((finished / "config/test.yaml").read_text())
    cfg["experiment"]["arms"] = ["rmsd", "bogus"]
    (finished / "bad.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "bad.yaml"],
                         cwd=finished, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "alcg: invalid config: experiment.arms: unknown selector 'bogus' for arm 'bogus'" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert _digest(_files(finished / "results")) == before


def test_new_selector_runs_without_editing_a_rule(finished):
    (finished / "toy.py").write_text(
        "import numpy as np\n"
        "from alcg.selection import selectors\n"
        "@selectors.register\n"
        "class Last(selectors.Selector):\n"
        "    name = 'toylast'\n"
        "    def fit(self, inp):\n"
        "        p = np.arange(len(inp.cg_frames))[::-1][:self.settings.n_select]\n"
        "        t = inp.train_index[p % len(inp.train_index)]  # any training frame as the template\n"
        "        self.result_ = selectors.Selection(inp.cg_frames[p], t, True,\n"
        "            np.arange(len(inp.cg_frames), dtype=float), p, 'frame', (0.0, 1.0), {'n_selected': len(p)})\n"
        "        return self\n")
    before = _digest(_files(finished / "results/test/seed_1/round_000"))
    target = "results/test/seed_1/toylast/round_000/select/selected.npz"
    res = _snakemake(finished, target, extra={"experiment": {"seeds": [1, 2], "arms": ["rmsd", "md", "toylast"],
                                                             "plugins": ["toy.py"]}})
    assert "localrule select:" in res.stdout + res.stderr
    sel = load_npz(finished / target)
    assert sel["picked"][0] == sel["metadata"]["n_selected"] and sel["metadata"]["arm"] == "toylast" or \
        sel["picked"].tolist() == sorted(sel["picked"].tolist(), reverse=True)
    assert _digest(_files(finished / "results/test/seed_1/round_000")) == before


def test_forcerun_of_one_arm_leaves_the_other_arms_untouched(finished):
    res_dir = finished / "results" / "test"
    others = _files(res_dir / "seed_1/md") + _files(res_dir / "seed_2") + _files(res_dir / "seed_1/round_000")
    kept = [res_dir / "seed_1/rmsd/round_001/model/member_0/model.pt", res_dir / "seed_1/rmsd/round_000/select/selected.npz"]
    before = _digest(others + kept)
    target = res_dir / "seed_1/rmsd/round_001/oracle/slot_000.npz"
    old_mtime = target.stat().st_mtime
    out = _snakemake(finished, "--forcerun", str(target.relative_to(finished)))
    log = out.stdout + out.stderr
    assert "rule oracle" in log and "rule prepare_system" not in log and "rule initial_md" not in log
    assert re.findall(r"wildcards: seed=(\d), arm=(\w+), k=001, slot=000", log) == [("1", "rmsd")]
    assert target.stat().st_mtime > old_mtime
    assert (res_dir / "seed_1/rmsd/round_002/model/member_0/model.pt").stat().st_mtime > old_mtime
    assert _digest(others + kept) == before
    load_dataset(res_dir / "seed_1/rmsd/round_002/dataset/dataset.npz")  # its shards and counts agree


def test_killed_workflow_resumes_to_same_counts(tmp_path):
    work = copy_workflow(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", *_configs(work, SMALL)]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    marker = work / "results/test/seed_1/round_000/model/member_0/model.pt"
    deadline = time.time() + 900
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert marker.exists() and proc.poll() is None, "the workflow ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--configfile", "config/test.yaml"],
                   cwd=work, check=True, capture_output=True)
    _snakemake(work, extra=SMALL)
    ds = load_dataset(work / "results/test/seed_1/rmsd/round_001/dataset/dataset.npz")
    ok = [r for r in (work / "results/test/seed_1/rmsd/round_000/oracle").glob("slot_*.npz")
          if run_file.status(r) is run_file.Status.OK]
    assert len(ds.coords) == 200 + 25 * len(ok)
    assert len(set(zip(ds.source.tolist(), ds.frame.tolist()))) == len(ds.coords)
    leftovers = [p for p in (work / "results").rglob(".*") if p.is_file()]
    assert not leftovers, leftovers


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
        work = copy_workflow(tmp_path / "wf")
        os.symlink("profiles/slurm", work / "slurm")
        cmd = [sys.executable, "-m", "snakemake", "--profile", "slurm", "--configfile", *_configs(work, SMALL)]
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
        for rd in ("round_000", "rmsd/round_001"):  # the same jobs as the local run of the full config
            a = load_dataset(work / f"results/test/seed_1/{rd}/dataset/dataset.npz")
            b = load_dataset(finished / f"results/test/seed_1/{rd}/dataset/dataset.npz")
            assert a.coords.shape == b.coords.shape, rd
        slurm_files = sorted(p.relative_to(work / "results") for p in (work / "results").rglob("*.npz"))
        assert all((finished / "results" / f).exists() for f in slurm_files)

        # a job killed with scancel mid-round is retried; finished rounds are untouched
        round0 = [p for p in (work / "results/test/seed_1/round_000").rglob("*") if p.is_file()]
        before = _digest(round0)
        target = "results/test/seed_1/rmsd/round_001/model/member_0/model.pt"
        proc = subprocess.Popen(cmd + ["--forcerun", target], cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        deadline, cancelled = time.time() + 600, None
        while cancelled is None and time.time() < deadline and proc.poll() is None:
            for job_id, comment, state in _squeue():
                if comment.startswith("rule_train") and "round_001" in comment and state == "R":
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


def test_tiny_loop_runs_on_imported_trajectories(finished):
    """Existing AA trajectories (DCD) as round-0 data: forces recomputed, then one AL round."""
    import io

    import mdtraj as md
    import openmm.app as app

    run = run_file.load(finished / "results/test/seed_1/initial/rep_0.npz")
    top_pdb = finished / "data/protein.pdb"
    top_pdb.parent.mkdir(exist_ok=True)
    top_pdb.write_text(str(run.topology_pdb))
    top = md.Topology.from_openmm(app.PDBFile(io.StringIO(str(run.topology_pdb))).topology)
    md.Trajectory(run.positions, top).save_dcd(str(finished / "data/run1.dcd"))
    target = "results/imported/seed_1/rmsd/round_001/model/member_0/model.pt"
    _snakemake(finished, target, extra={
        "run": "imported", "experiment": {"seeds": [1], "arms": ["rmsd"]}, "loop": {"n_rounds": 1},
        "initial_md": {"trajectories": ["data/run1.dcd"], "topology": "data/protein.pdb", "frame_interval_ps": 0.04}})
    imported = run_file.load(finished / "results/imported/imported/initial_md/run_0.npz")
    np.testing.assert_allclose(imported.positions, run.positions, atol=1e-5)
    rel = np.linalg.norm(imported.forces - run.forces) / np.linalg.norm(run.forces)
    assert rel < 1e-3  # the same force field at the same positions
    assert imported.metadata["source"].endswith("run1.dcd")
    data = load_dataset(finished / "results/imported/seed_1/rmsd/round_001/dataset/dataset.npz")
    sources = set(data.source.tolist())
    assert "imported/initial_md/run_0.npz" in sources  # round-0 data are the imported frames
    assert all(s == "imported/initial_md/run_0.npz" or s.startswith("seed_1/rmsd/round_000/oracle/")
               for s in sources)
    assert (finished / target).exists()


def test_tiny_loop_starts_from_a_pdb_overlay(finished):
    """A user's PDB through an overlay that names only it (merged over the tiny config): the
    sequence-built starts do not leak; one round runs end to end from the PDB."""
    pdb = finished / "data/mine.pdb"
    pdb.parent.mkdir(exist_ok=True)
    pdb.write_text((finished / "results/test/system/folded.pdb").read_text())
    target = "results/frompdb/seed_1/rmsd/round_001/dataset/dataset.npz"
    _snakemake(finished, target, extra={"run": "frompdb", "system": {"pdb": "data/mine.pdb"},
                                        "experiment": {"seeds": [1], "arms": ["rmsd"]}, "loop": {"n_rounds": 1}})
    data = load_dataset(finished / target)
    assert str(data.sequence) == "YYDPETGTWY" and len(data.coords) > 200
    pdb.write_text(pdb.read_text().replace("REMARK", "REMARK edited", 1) + "\n")
    res = _snakemake(finished, target, "-n", extra={"run": "frompdb", "system": {"pdb": "data/mine.pdb"},
                                                    "experiment": {"seeds": [1], "arms": ["rmsd"]},
                                                    "loop": {"n_rounds": 1}})
    assert "rule prepare_system:" in res.stdout  # the PDB is a declared input


#: named arms on the Go model: a twin of rmsd (same selector, same selection seed), an A/A
#: pair of md (another selection seed) and the iid positive control with its pool
GO_ARMS = {"experiment": {"arms": ["rmsd", "rmsd_twin", "md", "md_aa", "iid"]},
           "select": {"overrides": {"rmsd_twin": {"selector": "rmsd"}, "md_aa": {"selector": "md", "seed": 1}}},
           "pool_md": {"starts": ["folded", "extended"], "length_ps": 200.0, "equilibration_ps": 10.0,
                       "record_interval_steps": 100, "checkpoint_every": 200},
           "cg_sim": {"starts": "spread", "temperature_k": 360.0}}  # exploration beyond the data


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def _check_named_arms(out: Path) -> None:
    """Common random numbers: an arm given the same data as another trains the same model bit
    for bit and its queries run the same noise; an A/A arm differs in its picks only; iid
    starts only from its pool, never from the reference."""
    seed = out / "seed_1"
    for k in ("000",):
        a, b = (np.load(seed / f"{arm}/round_{k}/select/selected.npz") for arm in ("rmsd", "rmsd_twin"))
        assert np.array_equal(a["targets"], b["targets"])
        for slot in sorted((seed / f"rmsd/round_{k}/oracle").glob("slot_*.npz")):
            x, y = run_file.load(slot), run_file.load(seed / f"rmsd_twin/round_{k}/oracle/{slot.name}")
            assert np.array_equal(x.positions, y.positions) and np.array_equal(x.forces, y.forces)
    m1, m2 = (_state(seed / f"{arm}/round_001/model/member_0/model.pt") for arm in ("rmsd", "rmsd_twin"))
    assert m1.keys() == m2.keys() and all(torch.equal(m1[k], m2[k]) for k in m1)
    md, aa = (np.load(seed / f"{arm}/round_000/select/selected.npz") for arm in ("md", "md_aa"))
    assert not np.array_equal(md["template"], aa["template"])  # the A/A pair differs in its picks
    starts = [slot_start.load(p) for p in sorted((seed / "iid/round_000/start").glob("slot_*.npz"))]
    assert starts and all(s.ok and s.metadata["template_source"].startswith("pool/") for s in starts)
    assert str(np.load(seed / "iid/round_000/select/selected.npz")["source"]) == "pool"
    pool = sorted(p.name for p in (out / "pool").glob("*.npz"))
    assert pool == ["extended_0.npz", "folded_0.npz"]
    assert {s.metadata["template_source"][5:] for s in starts} <= set(pool)
    from alcg.analysis import heldout

    n_pool = {p: run_file.load(out / "pool" / p).n_frames for p in pool}
    for s in starts:  # iid starts from the leading part of a pool run, the held-out set from the rest
        assert s.metadata["template_frame"] < heldout.pool_query_count(n_pool[s.metadata["template_source"][5:]])
    held = heldout.load(out / "evaluate/heldout.npz")
    assert len(held.frame) and all(f >= heldout.pool_query_count(n_pool[src.split("/")[-1]])
                                   for src, f in zip(held.source, held.frame))
    rows = read_tsv(out / "summary/rounds.tsv")
    assert {r["arm"] for r in rows} == set(GO_ARMS["experiment"]["arms"])
    assert all(r["evaluation_failed"] in ("True", "False") and r["prior_only_val_loss"] for r in rows)


def test_go_model_loop_end_to_end(tmp_path):
    """The tiny loop on the two-bead Go model (5 named arms x 1 seed x 1 round): the same rules and
    stages; backmapped side chains are accepted and queried; the short reference fails its
    convergence check and the summary says so."""
    work = copy_workflow(tmp_path)
    import yaml

    (work / "arms.yaml").write_text(yaml.safe_dump(GO_ARMS))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/go_test.yaml", "arms.yaml"]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = work / "results/go_test"
    _check_named_arms(out)
    assert (out / "system/contact_map.png").stat().st_size > 5000
    check = json.loads((out / "reference/convergence.json").read_text())
    assert check["folded_by"].startswith("Q >") and not check["converged"]  # 2 x 400 ps: too short
    rows = read_tsv(out / "summary/rounds.tsv")
    assert {(r["arm"], r["round"]) for r in rows} == {(a, k) for a in GO_ARMS["experiment"]["arms"] for k in "01"}
    assert all(r["reference_converged"] == "False" for r in rows)
    starts = [slot_start.load(p) for p in sorted((out / "seed_1/rmsd/round_000/start").glob("slot_*.npz"))]
    assert any(s.ok and not s.fallback and s.metadata["ca_rmsd_nm"] < 0.05 for s in starts)
    oracles = sorted((out / "seed_1/rmsd/round_000/oracle").glob("slot_*.npz"))
    assert all(run_file.status(p) is run_file.Status.OK for p in oracles)
    r0, r1 = (load_dataset(out / f"seed_1/{d}/dataset/dataset.npz") for d in ("round_000", "rmsd/round_001"))
    assert r1.n_frames == r0.n_frames + sum(run_file.load(p).n_frames for p in oracles)
    assert r0.bead_masses.min() > 50  # mapped masses of the Go beads, not two carbon atoms
    _check_one_job_per_round(work, out, res.stdout + res.stderr)
    cover = json.loads((out / "seed_1/round_000/explore/coverage.json").read_text())
    assert cover["plane"] == "Q, Rg" and 0 < cover["bins_reached"] <= 1 and 0 < cover["mass_reached"] <= 1
    assert cover["starts"] == "spread" and cover["temperature_k"] == 360.0 and cover["n_frames"] > 0


def _check_one_job_per_round(work: Path, out: Path, log: str) -> None:
    """The Go model queries a round in one job (rule query), and its files are those of the
    per-slot stages run one by one with the per-slot oracle seed (config seed + crc32 of
    seed/oracle/round/slot, as common.smk's seed_of): the same data, however it was run."""
    import zlib

    import yaml
    from snakemake.utils import update_config

    from alcg.config import settings as S
    from alcg.stages import query
    from alcg.stages.validate import validate

    assert "rule query:" in log and "rule oracle:" not in log and "rule backmap:" not in log
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    for layer in ("config/go_test.yaml", "arms.yaml"):
        update_config(cfg, yaml.safe_load((work / layer).read_text()))
    cfg = validate(cfg)
    rnd, system = out / "seed_1/rmsd/round_000", out / "system"
    initial = sorted(str(p) for p in (out / "seed_1/initial").glob("rep_*.npz"))
    slot = 1
    seed = (cfg["seed"] + zlib.crc32(f"1/oracle/0/{slot:03d}".encode())) % (2**31 - 1)
    ff, start, run = S.parse(S.ForceField, cfg["forcefield"]), work / "start.npz", work / "run.npz"
    query.backmap(str(rnd / "select/selected.npz"), str(out / "seed_1/round_000/dataset/dataset.npz"), initial,
                  str(system / "folded.pdb"), str(system / "folded.xml"), str(system / "go_native.npz"), ff,
                  S.parse(S.Backmap, cfg["backmap"]), slot, str(start))
    query.oracle(str(start), str(system / "folded.xml"), ff, S.parse(S.Oracle, cfg["oracle"]), seed, str(run),
                 threads=1)
    assert slot_start.load(start).pdb == slot_start.load(rnd / f"start/slot_{slot:03d}.npz").pdb
    x, y = run_file.load(run), run_file.load(rnd / f"oracle/slot_{slot:03d}.npz")
    assert np.array_equal(x.positions, y.positions) and np.array_equal(x.forces, y.forces)


def test_35_bead_go_protein_runs_the_tiny_loop(tmp_path):
    """Villin headpiece HP35 (35 residues, built from its sequence and the folded dihedrals in
    config/go_hp35.yaml: nothing is downloaded) on the two-bead Go model through the tiny loop
    (config/go_test.yaml, one arm: 1 seed x 1 round). One TICA fit serves every evaluation."""
    import yaml

    from alcg.finegrained import gomodel
    from alcg.analysis import tica

    work = copy_workflow(tmp_path)
    # 5 held-out frames per stratum, not go_test's 20: HP35's mean-force labels take ~13 s a frame
    (work / "one_arm.yaml").write_text(yaml.safe_dump({"experiment": {"seeds": [1], "arms": ["rmsd"]},
                                                       "evaluate": {"heldout_per_stratum": 5}}))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/go_test.yaml",
           "config/go_hp35.yaml", "one_arm.yaml"]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = work / "results/go_hp35"
    native = gomodel.load_native(out / "system/go_native.npz")
    assert len(native.ca) == 35 and int((native.sc >= 0).sum()) == 33  # two glycines: no side-chain bead
    assert len(native.contact_beads) > 20
    r0, r1 = (load_dataset(out / f"seed_1/{d}/dataset/dataset.npz") for d in ("round_000", "rmsd/round_001"))
    assert r0.coords.shape[1:] == (35, 3) and r1.n_frames > r0.n_frames
    space = tica.load(out / "evaluate/tica.npz")
    assert space.mean.shape == (35 * 34 // 2,) and space.dim == 2
    metrics = [json.loads(p.read_text()) for p in sorted(out.glob("seed_1/**/evaluate/metrics.json"))]
    assert len(metrics) == 2  # round 0 (shared) and round 1
    for m in metrics:
        assert m["tica_lag_frames"] == space.lag_frames and np.isfinite(m["tica_w1"]) and m["n_model_frames"] > 0
    rows = read_tsv(out / "summary/rounds.tsv")
    assert {(r["arm"], r["round"]) for r in rows} == {("rmsd", "0"), ("rmsd", "1")}
