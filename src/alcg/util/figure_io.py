"""Matplotlib set-up shared by every figure: headless backend, atomic PNG writes."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from alcg.util.fileio import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path, tight: bool = True) -> None:
    """Write ``fig`` as PNG to ``path`` atomically and close it."""
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
