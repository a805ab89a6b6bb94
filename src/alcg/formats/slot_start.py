"""The slot start file (``start/slot_<n>.npz``): the one owner of its layout.

Written by a ``backmap`` job, read by the ``oracle`` job of the same slot and by the summary.
It holds ``metadata`` (JSON: ``status`` as in :class:`alcg.formats.run_file.Status`, ``reason``, the
template's run key and frame, backmap checks) and, for status ``ok``, ``pdb``: the PDB text of
the fine-grained start structure (positions in the PDB's Angstrom).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alcg.formats.run_file import Status
from alcg.util.fileio import load_npz, save_npz


@dataclass(frozen=True)
class SlotStart:
    """A slot's start structure, or why it has none."""

    status: Status
    reason: str
    pdb: str | None
    metadata: dict

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def template_source(self) -> str | None:
        """Run key of the fine-grained frame the start was built from (None without one)."""
        return self.metadata.get("template_source")

    @property
    def n_rejected(self) -> int:
        """CG picks of this slot whose backmap was rejected before this start."""
        return int(self.metadata.get("n_rejected") or 0)

    @property
    def fallback(self) -> bool:
        """True when no CG pick was accepted and the slot starts from a training frame."""
        return bool(self.metadata.get("fallback"))


def save_structure(path: str | Path, pdb: str, **metadata: Any) -> None:
    """Write an ``ok`` start: the structure's PDB text and its provenance."""
    save_npz(path, metadata={**metadata, "status": Status.OK.value}, pdb=np.array(pdb))


def save_without_structure(path: str | Path, status: Status, reason: str, **metadata: Any) -> None:
    """Write a start that holds no structure (``skipped`` or ``rejected``)."""
    if status is Status.OK:
        raise ValueError("an 'ok' start needs a structure: use save_structure")
    save_npz(path, metadata={**metadata, "status": Status(status).value, "reason": reason})


def load(path: str | Path) -> SlotStart:
    """Read a slot start file."""
    d = load_npz(path)
    meta = d["metadata"]
    return SlotStart(Status(meta["status"]), meta.get("reason", ""), str(d["pdb"]) if "pdb" in d else None, meta)
