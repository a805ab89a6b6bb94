"""make setup's choice of torch build (src/alcg/hardware/torch_builds.py through envs/gpu_kind.sh): the
driver's CUDA version and the card's compute capability, read from a stand-in nvidia-smi."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alcg.hardware import torch_builds as tb

ROOT = Path(__file__).resolve().parents[2]


def _fake_nvidia_smi(folder: Path, cuda: str, caps: list[str]) -> None:
    script = folder / "nvidia-smi"
    header = f"| NVIDIA-SMI 580.65  Driver Version: 580.65  CUDA Version: {cuda} |"
    script.write_text("#!/bin/sh\n"
                      'case "$*" in *compute_cap*) printf "%s\\n" ' + " ".join(caps) + " ;;\n"
                      f"  *) echo '{header}' ;;\nesac\n")
    script.chmod(0o755)


def _gpu_kind(tmp_path: Path, gpu: str, cuda: str | None = None, caps: list[str] | None = None):
    env = {**os.environ, "GPU": gpu, "PY": sys.executable}
    if cuda is not None:
        _fake_nvidia_smi(tmp_path, cuda, caps or [])
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    res = subprocess.run(["sh", str(ROOT / "envs/gpu_kind.sh")], capture_output=True, text=True, env=env)
    return res.returncode, res.stdout.split(), res.stderr.strip()


@pytest.mark.parametrize("cuda, caps, expected", [
    ("13.0", ["8.6"], ["cuda13", "default"]),
    ("13.0", ["8.6", "6.1"], ["cuda12", "cu126"]),  # the oldest card decides: a Pascal one
    ("13.0", ["7.0"], ["cuda12", "cu126"]),  # Volta: only the 12.6 build has kernels
    ("12.4", ["8.9"], ["cuda12", "cu126"]),
    ("12.8", ["12.0"], ["cuda12", "cu129"]),  # Blackwell on a CUDA 12 driver
    ("11.8", ["8.0"], ["cpu", "cpu"]),
    ("13.0", ["3.7"], ["cpu", "cpu"]),  # Kepler: no torch 2.13 build
])
def test_gpu_kind_reads_the_driver_and_the_oldest_card(tmp_path, cuda, caps, expected):
    rc, out, why = _gpu_kind(tmp_path, "auto", cuda, caps)
    assert rc == 0 and out == expected, why
    assert why.startswith("make setup: ") and "\n" not in why
    if expected[1] != "cpu":
        assert f"compute capability {tb.BUILDS[expected[1]].describe()}" in why


def test_gpu_kind_without_a_driver_and_forced(tmp_path):
    rc, out, why = _gpu_kind(tmp_path, "auto", None)
    if "nvidia-smi" not in why:
        pytest.skip("this machine has an NVIDIA driver")
    assert out == ["cpu", "cpu"]
    assert _gpu_kind(tmp_path, "cpu", "13.0", ["9.0"])[1] == ["cpu", "cpu"]
    assert _gpu_kind(tmp_path, "cuda12", None)[1] == ["cuda12", "cu126"]
    assert _gpu_kind(tmp_path, "cuda13", None)[1] == ["cuda13", "default"]
    rc, out, why = _gpu_kind(tmp_path, "rocm", None)
    assert rc == 2 and out == [] and why == "make setup: GPU=rocm: expected auto, cpu, cuda12 or cuda13"


def test_the_chosen_build_runs_on_the_card():
    """For every capability and driver, make setup picks a build that runs on the card, or the
    CPU build when none that the driver runs has kernels for it."""
    for cap in [(major, minor) for major in range(3, 14) for minor in range(10)]:
        for driver in (12, 13):
            kind, tag, why = tb.choose("auto", driver, cap)
            if tag == "cpu":
                assert not any(tb.runs_on(tb.BUILDS[t], cap) for t in tb.preference(driver)), (cap, driver, why)
            else:
                assert tb.runs_on(tb.BUILDS[tag], cap) and kind == tb.KIND[tag], (cap, driver, tag)
    assert tb.choose("auto", 12, (13, 0))[0] == "cpu"  # only CUDA 13's PTX runs there
    assert tb.choose("auto", 13, (13, 0))[:2] == ("cuda13", "default")


@pytest.mark.parametrize("cap, archs, runs", [
    ((8, 6), ["sm_86"], True),
    ((8, 9), ["sm_86"], True),  # sm_XY runs on later minors of the same major
    ((8, 0), ["sm_86"], False),  # ... not on earlier ones
    ((9, 0), ["sm_86"], False),  # ... nor on another major
    ((9, 0), ["sm_80", "compute_80"], True),  # PTX compiles for any later card
    ((7, 5), ["compute_80"], False),
    ((9, 0), ["sm_90a"], True),  # architecture-specific: that capability only
    ((9, 1), ["sm_90a"], False),
    ((10, 3), ["sm_100a"], False),
    ((10, 3), ["sm_100f"], True),  # family-specific: the major's later minors too
    ((10, 0), ["sm_100f"], True),
    ((11, 0), ["sm_100f"], False),
    ((12, 1), ["compute_120f"], True),
    ((13, 0), ["compute_120f"], False),
    ((13, 0), ["compute_120a"], False),
    ((7, 0), [], False),
    ((8, 6), ["gfx90a", "sm_", "sm_8x"], False),  # entries that are no CUDA arch count for nothing
])
def test_runs_on_arch_list(cap, archs, runs):
    assert tb.runs_on_arch_list(cap, archs) is runs


@pytest.mark.parametrize("cap, tags", [
    ((3, 7), []), ((6, 1), ["cu126"]), ((7, 0), ["cu126"]), ((8, 9), ["cu126", "cu129", "default"]),
    ((10, 3), ["cu129", "default"]), ((12, 1), ["cu129", "default"]), ((13, 0), ["default"]),
])
def test_builds_for_reads_each_builds_arch_list(cap, tags):
    assert tb.builds_for(cap) == tags
