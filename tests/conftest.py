"""Shared fixtures: the tiny test config and a prepared CLN025 system (built once)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


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
