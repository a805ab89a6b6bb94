"""Frames in pieces whose size a memory budget bounds (the one rule tica, coverage and train use)."""
from __future__ import annotations


def frame_slices(n_frames: int, per_frame: int, budget: int) -> list[slice]:
    """Consecutive slices covering ``n_frames`` frames, each of at most ``budget // per_frame``
    frames (at least one): ``per_frame`` entries (bead pairs, say) per frame, at most ``budget``
    entries per slice."""
    step = max(1, budget // max(per_frame, 1))
    return [slice(lo, min(lo + step, n_frames)) for lo in range(0, n_frames, step)]
