"""The Snakemake profiles: every rule they name exists; in SLURM dry runs of three configs, a job
asks for a GPU and goes to the GPU partition (the SLURM plugin's own partition selection with
profiles/slurm/partitions.yaml) exactly when the config runs it on one, and its threads are
the config's. Three SLURM dry runs (seconds each)."""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "profiles").glob("*/config.yaml"))


def _rule_blocks() -> dict[str, str]:
    """{rule name: its text} of every rule in the Snakefile and workflow/rules."""
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))])
    parts = re.split(r"^ *rule (\w+):\n", text, flags=re.M)  # indented: rules under an if (query.smk)
    return dict(zip(parts[1::2], parts[2::2]))


def _local_rules() -> set[str]:
    line = re.search(r"^localrules:(.*)$", (ROOT / "Snakefile").read_text(), flags=re.M).group(1)
    return {name.strip() for name in line.split(",")}


def _named_rules(profile: dict) -> set[str]:
    names = set()
    for key in ("set-resources", "set-threads"):
        names |= set(profile.get(key) or {})
    return names


def _gpu_rules() -> set[str]:
    """Rules whose resources ask for a GPU (through common.smk's gpu_torch / gpu_md)."""
    return {name for name, body in _rule_blocks().items() if re.search(r"^\s+gpu=gpu_\w+\(\)", body, flags=re.M)}


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.parent.name)
def test_every_rule_a_profile_names_exists(path):
    profile = yaml.safe_load(path.read_text())
    unknown = _named_rules(profile) - set(_rule_blocks())
    assert not unknown, f"{path} names rules that do not exist: {sorted(unknown)}"


def test_every_torch_or_openmm_rule_asks_for_a_gpu_and_no_local_rule_does():
    gpu = _gpu_rules()
    assert {"train", "explore", "cg_evaluate", "reference_md", "pool_md", "initial_md", "oracle", "import_md",
            "backmap", "query", "prepare_system", "force_map_md"} <= gpu
    assert not gpu & _local_rules()
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    # the partition follows the job's GPU request: no per-rule or default partition overrides it
    assert not any("slurm_partition" in res for res in (slurm.get("set-resources") or {}).values())
    assert "slurm_partition" not in (slurm.get("default-resources") or {})
    assert not (slurm.get("set-threads") or {}), "threads are the config's (torch_threads, MD_THREADS)"


class _Resources(dict):
    """A job's resources as the SLURM plugin reads them (``.get`` and attributes)."""

    def __getattr__(self, name):
        return self[name]


@dataclass
class _Job:
    name: str
    threads: int
    resources: _Resources


def _dry_run_jobs(tmp_path: Path, config: str) -> list[_Job]:
    """The jobs of a SLURM dry run of the tiny config with ``config`` (YAML) over it."""
    if not (tmp_path / "Snakefile").exists():
        for name in ("Snakefile", "workflow", "scripts", "config", "profiles", "envs"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "over.yaml").write_text(config)
    # --cores: a dry run caps each job's threads at its cores (1 unless given); a SLURM run does not
    res = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n", "--cores", "64",
                          "--configfile", "config/test.yaml", "over.yaml"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = []
    for block in re.split(r"^(?:local)?rule ", res.stdout + res.stderr, flags=re.M)[1:]:
        name = block.split(":", 1)[0]
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        pairs = [kv.split("=", 1) for kv in line.group(1).split(", ")] if line else []
        threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.M)  # printed when > 1
        jobs.append(_Job(name, int(threads.group(1)) if threads else 1, _Resources(pairs)))
    return jobs


def _partition(job: _Job) -> str | None:
    """Where the SLURM plugin sends ``job``: its own partition selection with partitions.yaml."""
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    parts = read_partition_file(ROOT / "profiles/slurm/partitions.yaml")
    return get_best_partition(parts, job, logging.getLogger("slurm-partitions"))


TORCH_RULES = {"train", "explore", "cg_evaluate"}
MD_RULES = {"reference_md", "pool_md", "initial_md", "oracle", "import_md", "backmap", "prepare_system", "force_map_md"}


@pytest.mark.parametrize("config, gpu_rules, torch_threads, md_threads", [
    ("device: auto\nforcefield: {platform: auto}\n", TORCH_RULES | MD_RULES, 2, 2),
    ("device: cpu\ntorch_threads: 1\nforcefield: {platform: CPU}\n", set(), 1, 2),
    ("device: cuda\ntorch_threads: 3\nforcefield: {platform: Reference}\n", TORCH_RULES, 3, 1),
], ids=["all-on-gpu", "all-on-cpu", "torch-on-gpu"])
def test_slurm_dry_run_partitions_and_threads_follow_the_config(tmp_path, config, gpu_rules, torch_threads,
                                                                md_threads):
    """A job goes to the GPU partition exactly when the config runs it on a GPU, every other
    job (local rules included) asks for none and goes to the CPU partition; torch jobs get
    ``torch_threads`` threads, OpenMM jobs MD_THREADS (1 on the Reference platform)."""
    jobs = [j for j in _dry_run_jobs(tmp_path, config) if j.name != "all"]
    seen = {j.name for j in jobs}
    assert {"train", "explore", "oracle", "select", "merge", "evaluate"} <= seen
    for job in jobs:
        on_gpu = job.name in gpu_rules and job.name not in _local_rules()
        assert job.resources.get("gpu", "0") == ("1" if on_gpu else "0"), (job.name, job.resources)
        assert _partition(job) == ("gpu" if on_gpu else "cpu"), (job.name, job.resources)
        assert "slurm_partition" not in job.resources, job.resources
        assert int(job.resources["mem_mb"]) >= 2000 and int(job.resources["runtime"]) >= 20, job.resources
        if job.name in TORCH_RULES:
            assert job.threads == torch_threads, (job.name, job.threads)
        elif job.name in MD_RULES - {"backmap", "prepare_system"}:
            assert job.threads == md_threads, (job.name, job.threads)
