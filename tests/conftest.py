"""Test tiers by folder, and shared fixtures: the tiny test config, a prepared CLN025 system.

Tiers (docs/dev/testing.md): the folder a test lives in is its tier, marked here.
- ``tests/unit``: fast tests (each under ~30 s on 2 cores) -- ``make test``;
- ``tests/smoke``: one end-to-end loop on the smallest Go config, a dry run of every shipped
  config, ``snakemake --lint`` -- ``make test``;
- ``tests/workflow``: every Snakemake workflow test, SLURM included -- ``make test-full``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# the shared helpers (cg_helpers, proc_helpers, slurm_cluster, cln025_cg) live beside this file
sys.path.insert(0, str(TESTS))

#: folder -> its tier marker; ``full`` marks the tiers that only ``make test-full`` runs
TIERS = {"unit": "unit", "smoke": "smoke", "workflow": "workflow"}
FULL_TIERS = {"workflow"}


def pytest_collection_modifyitems(config, items):
    """Mark every test by the tier folder it lives in; a test outside them is an error."""
    for item in items:
        rel = Path(str(item.path)).resolve().relative_to(TESTS)
        tier = TIERS.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if tier is None:
            raise pytest.UsageError(f"{rel}: a test must live in one of tests/{{{', '.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))
        if tier in FULL_TIERS:
            item.add_marker(pytest.mark.full)


@pytest.fixture(scope="session")
def test_config() -> dict:
    """The tiny config, validated (schema defaults applied)."""
    from alcg.stages.validate import validate

    return validate(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))


@pytest.fixture(scope="session")
def ff_cfg(test_config):
    """The tiny config's force field (typed settings)."""
    from alcg.config.settings import ForceField, parse

    return parse(ForceField, test_config["forcefield"])


@pytest.fixture(scope="session")
def cln025(tmp_path_factory, test_config, ff_cfg):
    """Folded CLN025: (pdb path, system xml path), prepared and minimized."""
    from alcg.finegrained.prepare import prepare_system

    out = tmp_path_factory.mktemp("cln025")
    pdb, xml = out / "folded.pdb", out / "folded.xml"
    start = test_config["system"]["starts"]["folded"]
    from alcg.config.settings import System, parse

    prepare_system(parse(System, test_config["system"]), ff_cfg, start, pdb, xml)
    return pdb, xml


@pytest.fixture(scope="session")
def cln025_run(tmp_path_factory, cln025, ff_cfg):
    """A short recorded oracle run of CLN025 (2 ps, 50 frames)."""
    from alcg.finegrained.md import MDSpec, run_md

    out = tmp_path_factory.mktemp("run") / "run.npz"
    run_md(cln025[0], cln025[1], out, MDSpec(n_steps=500, record_interval=10, checkpoint_every=50, restraint_k=0.0,
                                             equilibration_steps=50, seed=3), ff_cfg, progress=False)
    return out
