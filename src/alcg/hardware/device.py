"""The torch device of a job (config key ``device``): the one place that decides it.

``auto`` takes CUDA only when a kernel really runs there: torch is built with CUDA, a device
is visible, its compute capability is among the build's kernels
(``torch.cuda.get_arch_list()``) and a tiny op gives the right answer. Otherwise it runs on
the CPU and logs one line saying why. ``cuda`` asked for and not usable is one line of
error (:class:`DeviceError`) before the job does any work. Before any job, the Snakemake
process checks the same in a child process (:func:`precheck`), never starting CUDA itself.

On a workstation with several visible GPUs (Snakemake assigns no GPU ids), each GPU job
claims one by an exclusive lock file (:func:`claim_gpu`), held until the job's process ends;
with ``--resources gpu=N`` (N GPUs) a free one always exists.
OpenMM's CUDA/OpenCL platform takes the same slot (:func:`alcg.finegrained.system.choose_platform`).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from alcg.hardware import torch_builds
from alcg.util.errors import ConfigError

log = logging.getLogger(__name__)

#: environment variable naming the folder of the per-GPU lock files (default: a folder in
#: the system's temporary directory, shared by every workflow on the machine)
LOCK_DIR_ENV = "ALCG_GPU_LOCK_DIR"
#: seconds between two looks for a free GPU when every one is held
POLL_S = 2.0

_held: dict[int, int] = {}  # GPU index -> open lock file descriptor, for the process's life


class DeviceError(ConfigError):
    """``device: cuda`` was asked for and CUDA cannot run a kernel here."""


def arch_reason(capability: tuple[int, int], arch_list: list[str]) -> str | None:
    """Why a device of compute ``capability`` (major, minor) has no kernels in a torch build
    whose ``get_arch_list()`` is ``arch_list``; None when it has
    (:func:`alcg.hardware.torch_builds.runs_on_arch_list` decides). The reason names the torch builds
    that do have kernels for the card (:mod:`alcg.hardware.torch_builds`).
    """
    if torch_builds.runs_on_arch_list(capability, arch_list):
        return None
    major, minor = capability
    return (f"compute capability {major}.{minor} (sm_{major}{minor}) is not among this torch build's "
            f"kernels ({', '.join(arch_list) or 'none'}); {_builds_hint(capability)}")


def _builds_hint(capability: tuple[int, int]) -> str:
    """Which torch build to install for a card of ``capability``, in a few words."""
    tags = torch_builds.builds_for(capability)
    if not tags:
        return f"no torch {torch_builds.TORCH} CUDA build has kernels for it"
    kinds = " or ".join(sorted({torch_builds.KIND[t] for t in tags}))
    names = ", ".join("CUDA 13" if t == "default" else t for t in tags)
    has = "builds have" if len(tags) > 1 else "build has"
    return f"torch {torch_builds.TORCH}'s {names} {has} them (make clean-venv setup GPU={kinds})"


def probe_cuda(index: int = 0) -> str | None:
    """None when CUDA device ``index`` runs a kernel correctly, else one line saying why not."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable CUDA device "
                "(no GPU, CUDA_VISIBLE_DEVICES empty, or a driver older than the build needs)")
    if index >= torch.cuda.device_count():
        return f"CUDA device {index} does not exist ({torch.cuda.device_count()} visible)"
    reason = arch_reason(torch.cuda.get_device_capability(index), torch.cuda.get_arch_list())
    if reason:
        return f"{torch.cuda.get_device_name(index)}: {reason}"
    try:
        x = torch.arange(8, dtype=torch.float32, device=f"cuda:{index}")
        value = float((x * 2).sum())
    except Exception as exc:  # noqa: BLE001 - any failure of the first kernel is the answer
        return f"a test kernel failed on {torch.cuda.get_device_name(index)}: {str(exc).splitlines()[0]}"
    if value != 56.0:
        return f"a test kernel gave a wrong result on {torch.cuda.get_device_name(index)} ({value} != 56)"
    return None


#: seconds the Snakemake process waits for the probe's child process (a first CUDA start can
#: take tens of seconds while the driver loads)
PROBE_TIMEOUT_S = 120.0
_CHILD_MARK = "alcg-gpu-probe: "
_CHILD = ("import json, sys; sys.path.insert(0, sys.argv[1]); from alcg.hardware import device; from alcg.finegrained import device_probe; "
          "print(device._CHILD_MARK + json.dumps(device_probe.verdict(sys.argv[2], sys.argv[3])))")


def probe_in_child(index: int | None, platform: str = "", timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, str | None]:
    """:func:`probe_cuda` (``index`` not None) and OpenMM's ``platform`` check in a fresh Python
    process, so that the calling process (Snakemake's) never starts CUDA: a CUDA context in a
    process that later forks is inherited broken by the children, and its start costs seconds.

    The verdict is cached for this process, per index, platform and ``CUDA_VISIBLE_DEVICES``. A
    child that fails or does not answer within ``timeout_s`` gives that as the reason.

    Returns
    -------
    ``{"cuda": reason or None, "platform": reason or None}``, the keys asked for only.
    """
    return dict(_probe_in_child(index, platform, os.environ.get("CUDA_VISIBLE_DEVICES"), timeout_s))


@lru_cache(maxsize=None)
def _probe_in_child(index: int | None, platform: str, visible: str | None,
                    timeout_s: float) -> tuple[tuple[str, str | None], ...]:
    src = str(Path(__file__).resolve().parents[2])
    args = [sys.executable, "-c", _CHILD, src, "" if index is None else str(index), platform]
    keys = (["cuda"] if index is not None else []) + (["platform"] if platform else [])
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return tuple((k, f"the GPU probe (a child process) did not answer within {timeout_s:.0f} s") for k in keys)
    for line in reversed(res.stdout.splitlines()):
        if line.startswith(_CHILD_MARK):
            return tuple(sorted(json.loads(line[len(_CHILD_MARK):]).items()))
    last = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
    return tuple((k, f"the GPU probe (a child process) failed: {last}") for k in keys)


def precheck(name: str, platform: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Before any job, where Snakemake runs the jobs itself: can the GPU do what the config
    asks (``device``: ``name``; ``forcefield.platform``: ``platform``)? Probed in a child
    process (:func:`probe_in_child`); nothing is probed for ``cpu`` and a CPU platform.

    Returns
    -------
    For ``device: auto`` without a usable CUDA, the one line saying that the torch jobs will
    run on the CPU and why; else None.

    Raises
    ------
    DeviceError
        ``cuda`` was asked for and CUDA cannot run a kernel here (one line).
    ConfigError
        ``platform`` is ``CUDA`` or ``OpenCL`` and OpenMM does not have it here (one line).
    """
    want_torch = name in ("auto", "cuda")
    want_platform = platform if platform in ("CUDA", "OpenCL") else ""
    if not (want_torch or want_platform):
        return None
    verdict = probe_in_child(0 if want_torch else None, want_platform, timeout_s)
    reason = verdict.get("cuda")
    if reason and name == "cuda":
        raise DeviceError(_cuda_error(reason))
    if verdict.get("platform"):
        raise ConfigError(verdict["platform"])
    return f"device auto: the torch jobs will run on the CPU because {reason}" if reason else None


def _cuda_error(reason: str) -> str:
    return f"device: 'cuda' was asked for but CUDA is not usable here: {reason}"


def _lock_dir() -> Path:
    # per user by default: a folder made under another user's umask would refuse our lock files
    path = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"alcg_gpu_locks_{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock_names(n_gpus: int) -> list[str]:
    """A lock file name per visible GPU, by the id the machine knows it by (the entries of
    ``CUDA_VISIBLE_DEVICES`` when set), so that jobs that see different GPUs never collide."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",")][:n_gpus] if visible else [str(i) for i in range(n_gpus)]
    return ["gpu_" + "".join(c if c.isalnum() or c in "-_" else "_" for c in i) + ".lock" for i in ids]


def _try_lock(index: int, name: str) -> bool:
    fd = os.open(_lock_dir() / name, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[index] = fd
    return True


def claim_gpu(n_gpus: int, wait_s: float | None = None) -> int:
    """Index (among the visible ones) of a GPU that this process holds alone, out of ``n_gpus``.

    The lock (``gpu_<id>.lock`` under :data:`LOCK_DIR_ENV`) lasts until the process ends, so a
    killed job frees its GPU. With one GPU, or one already held by this process, nothing is
    locked. When every GPU is held, waits (up to ``wait_s`` seconds; None: no limit).
    """
    if n_gpus <= 1:
        return 0
    if _held:
        return next(iter(_held))
    t0, told = time.monotonic(), False
    while True:
        for i, name in enumerate(_lock_names(n_gpus)):
            if _try_lock(i, name):
                log.info("GPU slot: this job holds GPU %d of %d (%s in %s)", i, n_gpus, name, _lock_dir())
                return i
        if wait_s is not None and time.monotonic() - t0 >= wait_s:
            raise DeviceError(f"no free GPU among {n_gpus} after {wait_s:.0f} s (locks in {_lock_dir()})")
        if not told:
            log.info("every one of %d GPUs is held by another job; waiting", n_gpus)
            told = True
        time.sleep(POLL_S)


def gpu_slot() -> int | None:
    """The GPU this job holds alone when several are visible (:func:`claim_gpu`), else None
    (one GPU, e.g. a scheduler gave the job one, or none: nothing to choose)."""
    import torch

    n_gpus = torch.cuda.device_count()
    return claim_gpu(n_gpus) if n_gpus > 1 else None


def gpu_index() -> int:
    """The visible CUDA device this job's torch uses: its slot, or 0."""
    slot = gpu_slot()
    return 0 if slot is None else slot


def _release(index: int) -> None:
    fd = _held.pop(index, None)
    if fd is not None:
        os.close(fd)


@lru_cache(maxsize=None)
def choose(name: str, claim: bool = True) -> str:
    """The torch device string for config value ``name`` (``auto``, ``cpu`` or ``cuda``).

    ``claim``: on several visible GPUs, hold one alone (:func:`gpu_index`); else use GPU 0.

    Raises
    ------
    DeviceError
        ``cuda`` was asked for and CUDA cannot run a kernel here (the reason in one line).
    """
    if name == "cpu":
        return "cpu"
    if name not in ("auto", "cuda"):
        raise ConfigError(f"device: bad value {name!r} (expected auto, cpu or cuda)")
    index = gpu_index() if claim else 0
    reason = probe_cuda(index)
    if reason is None:
        import torch

        device = f"cuda:{index}" if index else "cuda"
        log.info("device: %s (%s, torch %s, CUDA %s)", device, torch.cuda.get_device_name(index),
                 torch.__version__, torch.version.cuda)
        return device
    _release(index)
    if name == "cuda":
        raise DeviceError(_cuda_error(reason))
    log.warning("device auto: running on the CPU because %s", reason)
    return "cpu"


def choose_local(name: str) -> str:
    """The device of a local rule (it may run on a cluster's login node, which has no GPU):
    ``cuda`` is taken as ``auto`` and no GPU slot is claimed, so a local job never needs a GPU."""
    if name == "cuda":
        log.info("device: 'cuda' taken as 'auto' in a local job (it may run where there is no GPU)")
    return choose("auto" if name == "cuda" else name, claim=False)
