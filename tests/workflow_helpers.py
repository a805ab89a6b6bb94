"""What the smoke and workflow tiers share: a copy of the workflow to run Snakemake in."""
from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_workflow(dest: Path) -> Path:
    """The workflow's files (no results) copied into ``dest``; returns ``dest``."""
    for name in ("Snakefile", "workflow", "scripts", "config", "profiles", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest
