"""``make run``'s choice of config: the GPU config only where CUDA runs a kernel, CONFIG= wins,
a missing CONFIG file is one line, and every shipped config names its results folder."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alcg.hardware import run_choice

ROOT = Path(__file__).resolve().parents[2]


def test_cpu_config_without_a_usable_gpu(monkeypatch):
    monkeypatch.setattr("alcg.hardware.device.probe_in_child", lambda index: {"cuda": "no CUDA driver"})
    path, why = run_choice.choose()
    assert path == run_choice.CPU_CONFIG and "no CUDA driver" in why


def test_gpu_config_where_cuda_runs_a_kernel(monkeypatch):
    monkeypatch.setattr("alcg.hardware.device.probe_in_child", lambda index: {"cuda": None})
    assert run_choice.choose()[0] == run_choice.GPU_CONFIG


def test_config_override_wins(monkeypatch):
    monkeypatch.setattr("alcg.hardware.device.probe_in_child", lambda index: pytest.fail("probed"))
    assert run_choice.choose("config/test.yaml") == ("config/test.yaml", "CONFIG was given")


def test_missing_config_is_one_line(capsys):
    assert run_choice.main(["--config", "config/no_such.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["make run: CONFIG=config/no_such.yaml: no such file: config/no_such.yaml"]


def test_an_overlay_after_its_base(monkeypatch):
    """CONFIG may name several files; the last run key wins, as in Snakemake."""
    pair = "config/go_experiment.yaml  config/go_pilot.yaml"
    assert run_choice.choose(pair)[0] == "config/go_experiment.yaml config/go_pilot.yaml"
    assert run_choice.results_folder(pair, ROOT) == Path("results/go_pilot")
    assert run_choice.results_folder("config/go_experiment.yaml", ROOT) != Path("results/go_pilot")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_every_shipped_config_has_a_results_folder(name):
    folder = run_choice.results_folder(f"config/{name}", ROOT)
    assert folder.parts[0] == "results" and folder.name not in ("None", "")


def test_both_choices_exist():
    assert (ROOT / run_choice.CPU_CONFIG).is_file() and (ROOT / run_choice.GPU_CONFIG).is_file()


def test_make_run_runs_the_choice_then_the_report():
    """The Makefile's recipe, as make would run it (make -n: printed, not run)."""
    out = subprocess.run(["make", "-n", "run", "CONFIG=config/go_test.yaml"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60).stdout
    recipe = out[out.index("run_choice --config"):]
    assert '--config "config/go_test.yaml"' in recipe and "--report" in recipe and "primary.tsv" in recipe
    assert recipe.index("--configfile") < recipe.index("--report") < recipe.index("Report:")
