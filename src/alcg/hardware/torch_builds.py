"""Which torch build has kernels for which NVIDIA card: the one table that ``make setup``
(``envs/gpu_kind.sh``) and device choice (:mod:`alcg.hardware.device`) read.

Standard library only: ``make setup`` runs this file (``python3 src/alcg/hardware/torch_builds.py``)
before torch is installed. The table is torch 2.13's Linux x86_64 CUDA builds, as PyTorch's
release build matrix lists them (``TORCH_CUDA_ARCH_LIST`` of its manywheel builds; the 2.13
release builds CUDA 12.6, 12.9, 13.0 and 13.2, no 12.8); ``make gpu-check`` on a card shows
the real ``torch.cuda.get_arch_list()``:

=========  ================================================  ====================================
build      compute capabilities with kernels                 cards
=========  ================================================  ====================================
``cu126``  5.0, 6.0, 7.0, 7.5, 8.0, 8.6, 9.0                 Maxwell, Pascal, Volta .. Hopper
``cu129``  7.5, 8.0, 8.6, 9.0, 10.0, 12.0                    Turing .. Blackwell
CUDA 13    7.5, 8.0, 8.6, 9.0, 10.0, 12.0 (+ PTX of 12.0)    Turing .. Blackwell (and later)
=========  ================================================  ====================================

Kernels for X.Y run on X.Y and later minors of the same major (sm_86 on an 8.9 card), PTX on
any later capability. No torch 2.13 build runs on a card below 5.0.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

#: the torch release these builds are of (the Makefile's TORCH)
TORCH = "2.13.0"


@dataclass(frozen=True)
class Build:
    """One torch CUDA build: its wheel index tag, CUDA version, kernels and PTX."""

    tag: str  # cu126, cu129, or "default" (the default index's CUDA 13 build)
    cuda: str
    kernels: tuple[tuple[int, int], ...]  # compute capabilities with compiled kernels (sm_XY)
    ptx: tuple[int, int] | None = None  # capability whose PTX the build carries (compute_XY)

    def arch_list(self) -> list[str]:
        """What ``torch.cuda.get_arch_list()`` returns for this build."""
        archs = [f"sm_{a}{b}" for a, b in self.kernels]
        return archs + ([f"compute_{self.ptx[0]}{self.ptx[1]}"] if self.ptx else [])

    def describe(self) -> str:
        """Its kernels, e.g. ``5.0, 6.0, ..., 9.0``, for a one-line message."""
        caps = ", ".join(f"{a}.{b}" for a, b in self.kernels)
        return caps + (f" (+ PTX of {self.ptx[0]}.{self.ptx[1]})" if self.ptx else "")


BUILDS: dict[str, Build] = {
    "cu126": Build("cu126", "12.6", ((5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0))),
    "cu129": Build("cu129", "12.9", ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0))),
    "default": Build("default", "13", ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0)), ptx=(12, 0)),
}

#: the make-setup kind of each build (OpenMM's CUDA plugin goes with it: openmm[cuda12|cuda13])
KIND = {"cu126": "cuda12", "cu129": "cuda12", "default": "cuda13"}


def parse_arch(arch: str) -> tuple[str, tuple[int, int], str] | None:
    """One entry of ``torch.cuda.get_arch_list()``: ``sm_86`` -> ("sm", (8, 6), ""),
    ``sm_90a`` -> ("sm", (9, 0), "a"), ``sm_100f`` -> ("sm", (10, 0), "f"),
    ``compute_120`` -> ("compute", (12, 0), ""); None for anything else."""
    kind, _, num = arch.partition("_")
    suffix = num[-1:] if num[-1:] in ("a", "f") else ""
    num = num[:len(num) - len(suffix)]
    if kind not in ("sm", "compute") or not num.isdigit() or len(num) < 2:
        return None
    return kind, (int(num[:-1]), int(num[-1])), suffix


def _arch_runs_on(arch: str, capability: tuple[int, int]) -> bool:
    """Whether code built for ``arch`` (an entry of ``get_arch_list()``) runs on ``capability``.

    ``sm_XYa`` / ``compute_XYa`` (architecture-specific): X.Y only. ``sm_XYf`` /
    ``compute_XYf`` (family-specific) and plain ``sm_XY``: major X, minor >= Y. Plain
    ``compute_XY`` (PTX, compiled at load time): any capability >= X.Y.
    """
    parsed = parse_arch(arch)
    if parsed is None:
        return False
    kind, built, suffix = parsed
    if suffix == "a":
        return built == capability
    if kind == "compute" and not suffix:
        return built <= capability
    return built[0] == capability[0] and built[1] <= capability[1]


def runs_on_arch_list(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch build whose ``get_arch_list()`` is ``arch_list`` has a kernel (or PTX)
    that runs on a card of compute ``capability`` (major, minor); the one owner of that rule."""
    return any(_arch_runs_on(arch, capability) for arch in arch_list)


def runs_on(build: Build, capability: tuple[int, int]) -> bool:
    """Whether ``build`` has a kernel (or PTX) that runs on a card of ``capability``."""
    return runs_on_arch_list(capability, build.arch_list())


def builds_for(capability: tuple[int, int]) -> list[str]:
    """Tags of the builds that run on a card of ``capability`` (empty: none does)."""
    return [tag for tag, build in BUILDS.items() if runs_on(build, capability)]


def parse_capability(text: str) -> tuple[int, int] | None:
    """``"8.6"`` -> (8, 6); None for an empty or unreadable value (e.g. ``N/A``)."""
    major, _, minor = text.strip().partition(".")
    if not (major.isdigit() and (minor or "0").isdigit()):
        return None
    return int(major), int(minor or 0)


def preference(driver_cuda: int) -> list[str]:
    """Builds a driver for CUDA ``driver_cuda`` (>= 12) runs, in the order ``make setup`` prefers
    them: CUDA 13 where the driver allows it, then 12.6 (any CUDA 12 driver), then 12.9."""
    return (["default"] if driver_cuda >= 13 else []) + ["cu126", "cu129"]


def choose(gpu: str, driver_cuda: int | None, capability: tuple[int, int] | None) -> tuple[str, str, str]:
    """(kind, build tag, reason) for ``make setup``.

    Parameters
    ----------
    gpu
        ``GPU=``: ``auto`` (decide from the driver and the card), ``cpu``, ``cuda12`` or ``cuda13``.
    driver_cuda
        Major CUDA version the driver supports (``nvidia-smi``'s header); None: no working driver.
    capability
        The lowest compute capability among the cards (None: unknown).

    Returns
    -------
    kind is ``cpu``, ``cuda12`` or ``cuda13``; tag is ``cpu`` or a key of :data:`BUILDS`: the
    first build of :func:`preference` that runs on the card (unknown card: 12.6, the widest).
    """
    if gpu not in ("auto", "cpu", "cuda12", "cuda13"):
        raise ValueError(f"GPU={gpu}: expected auto, cpu, cuda12 or cuda13")
    card = f"compute capability {capability[0]}.{capability[1]}" if capability else "compute capability unknown"
    if gpu == "cpu":
        return "cpu", "cpu", "GPU=cpu given"
    if gpu == "cuda13":
        return "cuda13", "default", "GPU=cuda13 given"
    if gpu == "cuda12":
        tag = "cu129" if capability and capability >= (10, 0) else "cu126"
        return "cuda12", tag, "GPU=cuda12 given"
    if driver_cuda is None:
        return "cpu", "cpu", "no working NVIDIA driver (nvidia-smi)"
    if driver_cuda < 12:
        return "cpu", "cpu", f"the driver supports CUDA {driver_cuda} (< 12): too old for torch {TORCH}'s builds"
    why = f"driver for CUDA {driver_cuda}, {card}"
    if capability is None:
        return "cuda12", "cu126", why
    for tag in preference(driver_cuda):
        if runs_on(BUILDS[tag], capability):
            return KIND[tag], tag, why
    return "cpu", "cpu", f"{why}: no torch {TORCH} build for this driver has kernels for it"


def message(kind: str, tag: str, reason: str) -> str:
    """The one line ``make setup`` prints: what it installs, and which cards that torch runs on."""
    if tag == "cpu":
        return f"make setup: CPU builds ({reason})"
    build = BUILDS[tag]
    where = "the default index" if tag == "default" else f"PyTorch's {tag} index"
    return (f"make setup: {kind} builds ({reason}): torch {TORCH} CUDA {build.cuda} from {where}, "
            f"kernels for compute capability {build.describe()}")


def main(argv: list[str]) -> int:
    """``torch_builds.py GPU DRIVER_CUDA CAPABILITY``: prints ``kind tag``; the message to stderr."""
    gpu, driver, cap = (argv + ["", "", ""])[:3]
    try:
        kind, tag, reason = choose(gpu or "auto", int(driver) if driver.isdigit() else None, parse_capability(cap))
    except ValueError as exc:
        print(f"make setup: {exc}", file=sys.stderr)
        return 2
    print(message(kind, tag, reason), file=sys.stderr)
    print(kind, tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
