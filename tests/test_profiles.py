"""The Snakemake profiles: every rule they name exists, GPU jobs go to the GPU partition and
ask for a GPU, the others (local rules included) neither. One SLURM dry run (seconds)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "profiles").glob("*/config.yaml"))


def _rule_blocks() -> dict[str, str]:
    """{rule name: its text} of every rule in the Snakefile and workflow/rules."""
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))])
    parts = re.split(r"^rule (\w+):\n", text, flags=re.M)
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
    assert {"train", "explore", "cg_evaluate", "reference_md", "initial_md", "oracle", "import_md",
            "backmap", "prepare_system"} <= gpu
    assert not gpu & _local_rules()
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    on_gpu_partition = {r for r, res in slurm["set-resources"].items() if res.get("slurm_partition")}
    assert on_gpu_partition == gpu, "the SLURM profile's GPU partition and the rules that ask for GPUs differ"


def _dry_run_jobs(tmp_path: Path) -> list[tuple[str, dict[str, str]]]:
    for name in ("Snakefile", "workflow", "scripts", "config", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    (tmp_path / "gpu.yaml").write_text("device: auto\nforcefield: {platform: auto}\n")
    res = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n", "--configfile",
                          "config/test.yaml", "gpu.yaml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = []
    for block in re.split(r"^(?:local)?rule ", res.stdout + res.stderr, flags=re.M)[1:]:
        name = block.split(":", 1)[0]
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        pairs = [kv.split("=", 1) for kv in line.group(1).split(", ")] if line else []
        jobs.append((name, {k: v for k, v in pairs}))
    return jobs


def test_slurm_dry_run_puts_gpu_jobs_on_the_gpu_partition(tmp_path):
    jobs = _dry_run_jobs(tmp_path)
    seen = {name for name, _ in jobs}
    assert {"train", "explore", "oracle", "select", "merge", "evaluate"} <= seen
    local = _local_rules()
    for name, res in jobs:
        if name == "all":
            continue
        if name in local or name in ("evaluate", "fit_tica", "reference_check", "heldout_frames", "go_native"):
            assert res.get("slurm_partition") == "" and res.get("gpu", "0") == "0", (name, res)
        else:
            assert res.get("slurm_partition") == "gpu" and res.get("gpu") == "1", (name, res)
