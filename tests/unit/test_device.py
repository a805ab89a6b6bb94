"""Device choice (alcg.hardware.device), GPU slots on a workstation, and device-independent CG
checkpoints. Runs on the CPU: the CUDA probe is mocked, torch is not."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from alcg.hardware import device
from alcg.cg.simulate import simulate
from cg_helpers import N_BEADS, chain_prior, energy_force_fn, langevin, zigzag

ROOT = Path(__file__).resolve().parents[2]
ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


@pytest.fixture(autouse=True)
def _fresh_choice():
    device.choose.cache_clear()
    yield
    device.choose.cache_clear()


def test_arch_list_decides_whether_a_card_has_kernels():
    assert device.arch_reason((8, 6), ARCHS) is None
    assert device.arch_reason((8, 9), ARCHS) is None  # sm_86 kernels run on 8.9
    assert device.arch_reason((9, 0), ["sm_80", "compute_80"]) is None  # PTX compiles for newer cards
    why = device.arch_reason((6, 1), ARCHS)  # a Pascal card and a build without pre-Turing kernels
    assert "6.1" in why and "sm_61" in why and "sm_75" in why
    assert device.arch_reason((8, 0), ["sm_86"]) is not None  # 8.6 kernels do not run on 8.0
    assert device.arch_reason((7, 0), []) is not None


def test_unusable_cuda_falls_back_with_the_reason(monkeypatch, caplog):
    monkeypatch.setattr(device, "probe_cuda", lambda index=0: "the probe says: driver too old")
    with caplog.at_level(logging.WARNING, logger="alcg.hardware.device"):
        assert device.choose("auto") == "cpu"
    lines = [r.getMessage() for r in caplog.records if "driver too old" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "CPU" in lines[0]


def test_cuda_asked_for_and_unusable_is_one_line_of_error(monkeypatch):
    monkeypatch.setattr(device, "probe_cuda", lambda index=0: "a test kernel failed on GTX 1080")
    with pytest.raises(device.DeviceError) as err:
        device.choose("cuda")
    text = str(err.value)
    assert "\n" not in text and "'cuda'" in text and "GTX 1080" in text


def test_cpu_asked_for_never_probes(monkeypatch):
    def boom(index=0):
        raise AssertionError("probed")
    monkeypatch.setattr(device, "probe_cuda", boom)
    assert device.choose("cpu") == "cpu"
    with pytest.raises(device.ConfigError, match="'gpu'"):
        device.choose("gpu")


def test_local_rule_takes_cuda_as_auto(monkeypatch):
    monkeypatch.setattr(device, "probe_cuda", lambda index=0: "no GPU on the login node")
    assert device.choose_local("cuda") == "cpu"


def test_a_card_without_kernels_in_the_build_falls_back_naming_the_build_that_has_them(monkeypatch, caplog):
    """A Pascal card (6.1) and torch's CUDA 13 build: auto falls back in one line that names the
    build with kernels for it (cu126); cuda asked for is one line of error saying the same."""
    from alcg.hardware.torch_builds import BUILDS

    pascal = device.arch_reason((6, 1), BUILDS["default"].arch_list())
    monkeypatch.setattr(device, "probe_cuda", lambda index=0: f"NVIDIA GeForce GTX 1080: {pascal}")
    with caplog.at_level(logging.WARNING, logger="alcg.hardware.device"):
        assert device.choose("auto") == "cpu"
    (line,) = [r.getMessage() for r in caplog.records if "GTX 1080" in r.getMessage()]
    assert "6.1" in line and "cu126" in line and "GPU=cuda12" in line and "\n" not in line
    device.choose.cache_clear()
    with pytest.raises(device.DeviceError, match="cu126"):
        device.choose("cuda")


# ------------------------------------------------------------------ the check before any job
@pytest.fixture
def _fresh_precheck():
    device._probe_in_child.cache_clear()
    yield
    device._probe_in_child.cache_clear()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_precheck_probes_in_a_child_process_once(monkeypatch, _fresh_precheck):
    def in_this_process(index=0):
        raise AssertionError("CUDA probed in the Snakemake process")
    monkeypatch.setattr(device, "probe_cuda", in_this_process)
    notice = device.precheck("auto", "CPU")
    assert notice.startswith("device auto: the torch jobs will run on the CPU because ") and "\n" not in notice
    assert torch.__version__ in notice  # the child's real probe: this torch has no usable CUDA
    assert device.precheck("auto", "CPU") == notice
    assert device._probe_in_child.cache_info().hits == 1  # the verdict is cached
    with pytest.raises(device.DeviceError) as err:
        device.precheck("cuda", "CPU")
    assert "\n" not in str(err.value) and "'cuda' was asked for" in str(err.value)
    assert device.precheck("cpu", "CPU") is None and device.precheck("cpu", "auto") is None


def test_precheck_reports_a_child_that_hangs_or_fails(monkeypatch, _fresh_precheck):
    notice = device.precheck("auto", "CPU", timeout_s=0.01)
    assert "did not answer within 0 s" in notice
    with pytest.raises(device.DeviceError, match="did not answer"):
        device.precheck("cuda", "CPU", timeout_s=0.02)
    monkeypatch.setattr(device.sys, "executable", shutil.which("false"))
    assert "the GPU probe (a child process) failed: exit status 1" in device.precheck("auto", "CPU")


def test_precheck_stops_on_an_openmm_platform_that_is_not_here(_fresh_precheck):
    pytest.importorskip("openmm")
    from alcg.finegrained.system import platform_reason

    if platform_reason("CUDA") is None:
        pytest.skip("OpenMM has a CUDA platform here")
    with pytest.raises(device.ConfigError) as err:
        device.precheck("cpu", "CUDA")
    assert str(err.value).startswith("forcefield.platform: 'CUDA' is not available here") and "\n" not in str(err.value)


def test_choose_platform_gives_the_platform_asked_for_or_platform_reasons_line():
    pytest.importorskip("openmm")
    from alcg.finegrained.system import choose_platform, platform_reason

    assert choose_platform("Reference")[0].getName() == "Reference"
    assert choose_platform("auto")[0].getName() in ("CUDA", "OpenCL", "CPU", "Reference")
    with pytest.raises(device.ConfigError) as err:
        choose_platform("NoSuchPlatform")
    assert str(err.value) == platform_reason("NoSuchPlatform") and "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA device")
def test_the_real_probe_explains_why_there_is_no_cuda_here():
    why = device.probe_cuda()
    assert isinstance(why, str) and torch.__version__ in why


def test_gpu_slots_are_exclusive_and_freed_by_a_finished_job(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setenv(device.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(device, "_held", {})
    # a job that ends frees its GPU: a child claims GPU 0 and exits
    child = ("import sys; sys.path.insert(0, sys.argv[1]); from alcg.hardware import device; "
             "print(device.claim_gpu(3))")
    out = subprocess.run([sys.executable, "-c", child, str(ROOT / "src")], capture_output=True, text=True,
                         check=True, env={**os.environ, device.LOCK_DIR_ENV: str(tmp_path)})
    assert out.stdout.strip() == "0"
    other = os.open(tmp_path / "gpu_0.lock", os.O_RDWR)  # another running job holds GPU 0
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert device.claim_gpu(3) == 1
        assert device.claim_gpu(3) == 1  # the same job keeps its GPU
        monkeypatch.setattr(device, "_held", {})
        assert device.claim_gpu(3) == 2
        monkeypatch.setattr(device, "_held", {})
        with pytest.raises(device.DeviceError, match="no free GPU among 3"):
            device.claim_gpu(3, wait_s=0)
    finally:
        os.close(other)
    assert device.claim_gpu(1) == 0  # one GPU: nothing to lock


# ------------------------------------------------------------------ device-independent checkpoints
CFG = langevin(n_steps=400, save_interval=10, temperature_k=300.0, seed=5)
SHAPE = (4, 40, N_BEADS, 3)  # the run's frame array
MASSES = np.full(N_BEADS, 50.0)


def _run(ckpt: Path):
    return simulate(energy_force_fn(chain_prior(sigma=0.3)), zigzag(4, 1), MASSES, CFG,
                    progress=False, checkpoint=ckpt, checkpoint_every_steps=100)


def _last_chunk(ckpt: Path) -> Path:
    return sorted(ckpt.glob("*.npz"))[-1]


def _as_if_written_on_cuda(path: Path, monkeypatch, **changes) -> None:
    """Rewrite an earlier version's one-file checkpoint ``path`` with every tensor tagged
    ``cuda:0``, as a GPU run wrote it."""
    blob = torch.load(path, weights_only=False)
    blob.update(changes)
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(blob, path)
    if not torch.cuda.is_available():  # the file really names a CUDA device: a plain load fails
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=False)


def test_checkpoint_from_another_map_location_resumes_the_same_trajectory(tmp_path, monkeypatch):
    """Chunks hold numpy arrays, which name no device; an earlier version's one file written on a
    GPU (torch tensors tagged cuda:0) still resumes on the CPU, on the same noise stream."""
    from alcg.util.fileio import load_npz
    from alcg.cg.simulate import legacy_checkpoint
    from cg_helpers import legacy_checkpoint_from

    ckpt = tmp_path / "run.partial"
    whole = _run(ckpt)  # leaves the checkpoint of step 300
    assert load_npz(_last_chunk(ckpt))["metadata"]["step"] == 300
    shutil.copytree(ckpt, tmp_path / "copy.partial")
    resumed = _run(ckpt)
    assert resumed.info["resumed_from_step"] == 300
    np.testing.assert_array_equal(resumed.coords, whole.coords)
    legacy_checkpoint_from(tmp_path / "copy.partial", CFG, SHAPE, zigzag(4, 1), MASSES)
    _as_if_written_on_cuda(legacy_checkpoint(tmp_path / "copy.partial"), monkeypatch)
    resumed = _run(tmp_path / "copy.partial")
    assert resumed.info["resumed_from_step"] == 300
    np.testing.assert_array_equal(resumed.coords, whole.coords)  # the same noise stream


def test_checkpoint_of_a_cuda_generator_resumes_on_the_cpu(tmp_path, caplog):
    from alcg.util.fileio import load_npz, save_npz

    ckpt = tmp_path / "run.partial"
    whole = _run(ckpt)
    last = load_npz(_last_chunk(ckpt))
    meta = last.pop("metadata")
    cuda_state = np.zeros(16, dtype=np.uint8)  # a CUDA generator's state: seed and offset
    save_npz(_last_chunk(ckpt), metadata={**meta, "rng_device": "cuda"}, **{**last, "rng": cuda_state})
    with caplog.at_level(logging.WARNING, logger="alcg.cg.simulate"):
        resumed = _run(ckpt)
    assert resumed.info["resumed_from_step"] == 300
    np.testing.assert_array_equal(resumed.coords[:, :30], whole.coords[:, :30])  # frames before the stop
    assert np.isfinite(resumed.coords).all() and not np.array_equal(resumed.coords, whole.coords)
    assert any("written on cuda and resumes on cpu" in r.getMessage() for r in caplog.records)


def test_resume_moves_the_state_to_the_device_and_keeps_the_rng_on_the_cpu(tmp_path):
    """The tensors go where the job runs (here the ``meta`` device stands in for a GPU); the RNG
    state stays the CPU byte tensor that ``Generator.set_state`` needs on every device."""
    from alcg.util.fileio import load_npz
    from alcg.cg.simulate import _resume, _signature

    ckpt = tmp_path / "run.partial"
    _run(ckpt)
    saved = load_npz(_last_chunk(ckpt))
    gen = torch.Generator()
    st = _resume(ckpt, CFG, "meta", gen, SHAPE, _signature(CFG, SHAPE, zigzag(4, 1), MASSES, ""))
    assert st["x"].device.type == st["v"].device.type == st["active"].device.type == "meta"
    assert torch.equal(gen.get_state(), torch.from_numpy(saved["rng"])) and st["step"] == 300


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA device")
@pytest.mark.parametrize("asked, line", [
    ("cuda", "alcg: device: 'cuda' was asked for but CUDA is not usable here: "),
    ("auto", "alcg: device auto: the torch jobs will run on the CPU because "),
])
def test_workflow_says_in_one_line_before_any_job_what_cuda_it_has(tmp_path, asked, line):
    """``cuda`` not usable stops Snakemake; ``auto`` says why the torch jobs run on the CPU."""
    for name in ("Snakefile", "workflow", "scripts", "config", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    def snakemake(*args: str) -> tuple[int, list[str]]:
        res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "config/test.yaml",
                              "--config", f"device={asked}", *args], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
        return res.returncode, [t for t in (res.stdout + res.stderr).splitlines() if t.startswith("alcg: ")]

    target = "results/test/system/folded.pdb"  # one job (prepare_system)
    assert snakemake("-n", target) == (0, [])  # a dry run runs no job: nothing to check
    rc, lines = snakemake("--touch", target)  # the job "runs" (is touched): checked first, in one line
    assert len(lines) == 1 and lines[0].startswith(line) and torch.__version__ in lines[0], lines
    assert (rc != 0) == (asked == "cuda")
    if asked == "cuda":
        assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_gpu_locks_are_named_by_the_visible_ids(tmp_path, monkeypatch):
    """Two jobs that see different GPUs (CUDA_VISIBLE_DEVICES) lock different files."""
    monkeypatch.setenv(device.LOCK_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(device, "_held", {})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert device.claim_gpu(2) == 0 and (tmp_path / "gpu_2.lock").read_text().strip() == str(os.getpid())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-ab12/x,5")
    assert device._lock_names(2) == ["gpu_GPU-ab12_x.lock", "gpu_5.lock"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert device._lock_names(3) == ["gpu_0.lock", "gpu_1.lock", "gpu_2.lock"]
