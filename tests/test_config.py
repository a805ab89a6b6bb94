"""Config validation: schema + cross-key checks, also through the Snakemake command line."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alcg.config import validate
from alcg.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "chignolin_cpu.yaml"])
def test_shipped_configs_are_valid(name):
    validate(yaml.safe_load((ROOT / "config" / name).read_text()))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["train"].update(epoch=3), "unknown key 'train.epoch'"),
    (lambda c: c["cg_sim"].update(n_replicas="many"), "cg_sim.n_replicas: bad value 'many'"),
    (lambda c: c["forcefield"].update(temperature_k=-5), "forcefield.temperature_k: bad value -5"),
    (lambda c: c.update(device="tpu"), "device: bad value 'tpu'"),
    (lambda c: c["system"].update(sequence="YYDPXTGTWY"), "system.sequence: bad value 'YYDPXTGTWY'"),
    (lambda c: c.pop("loop"), "missing required key 'loop'"),
    (lambda c: c["initial_md"].update(start="unfolded"), "start 'unfolded' is not defined"),
    (lambda c: c["select"].update(rmsd_lo_nm=0.9), "select.rmsd_lo_nm (0.9) must be below"),
    (lambda c: c["system"]["starts"]["folded"].update(phi=[1.0]), "system.starts.folded.phi has 1 values"),
    (lambda c: c["system"].update(pdb="nowhere.pdb"), "system.pdb file not found: nowhere.pdb"),
])
def test_bad_config_names_the_key(test_config, edit, message):
    cfg = copy.deepcopy(test_config)
    edit(cfg)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg)


def _snakemake(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_dry_run_of_test_config_shows_all_rounds():
    res = _snakemake("-n", "--cores", "2", "--configfile", "config/test.yaml", "--config", "run=pytest_dry")
    assert res.returncode == 0, res.stderr + res.stdout
    out = res.stdout + res.stderr
    for rule in ("prepare_system", "reference_md", "initial_md", "train", "cg_simulate", "select",
                 "backmap", "oracle", "merge"):
        assert rule in out
    assert "round_002/model/model.pt" in out


def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    bad = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    bad["cg_sim"]["dt_ps"] = "fast"
    bad["run"] = "never_created"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    res = _snakemake("--cores", "1", "--configfile", str(path))
    assert res.returncode != 0
    assert "cg_sim.dt_ps: bad value 'fast'" in res.stderr + res.stdout
    assert not (ROOT / "results" / "never_created").exists()
