"""What :func:`alcg.hardware.device.probe_in_child` runs in its child process (apart from
:mod:`alcg.hardware.device`, so that neither :mod:`alcg.hardware.device` nor :mod:`alcg.finegrained.system` imports the other)."""
from __future__ import annotations


def verdict(index: str, platform: str) -> dict[str, str | None]:
    """The CUDA probe of device ``index`` and whether OpenMM has ``platform`` (either skipped
    when empty), each None or one line of why not."""
    from alcg.hardware import device

    out: dict[str, str | None] = {}
    if index:
        out["cuda"] = device.probe_cuda(int(index))
    if platform:
        from alcg.finegrained.system import platform_reason

        out["platform"] = platform_reason(platform)
    return out
