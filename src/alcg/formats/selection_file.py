"""The selection file (``select/selected.npz``): the one owner of its layout.

Written by the ``select`` rule, read by every ``backmap`` job of the round. Arrays:
``targets`` (S, N, 3) nm, the picked CG structures; ``template`` (S,) dataset index of the AA
frame each pick starts from; ``backmap`` whether targets are CG frames to backmap (else the
templates are used as is); ``picked`` (S,) index of each pick in the exploration frames;
``n_slots`` oracle slots of the round; ``fallback_template`` (n_slots,) the training frame a
slot starts from when none of its picks is accepted; ``source`` where templates point:
``dataset`` (dataset frame indices) or ``pool`` (frames of the equilibrium pool, counted over
its run files in order; the ``iid`` arm). ``metadata``: the selection table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alcg.util.fileio import load_npz, save_npz


@dataclass(frozen=True)
class SelectionFile:
    """What one round's selection decided (see the module doc for units and shapes)."""

    targets: np.ndarray
    template: np.ndarray
    backmap: bool
    picked: np.ndarray
    n_slots: int
    fallback_template: np.ndarray
    table: dict
    source: str = "dataset"

    def slot_candidates(self, slot: int) -> list[int]:
        """Picks tried for ``slot``, in order: its own, then its spares (pick slot + k n_slots)."""
        return list(range(slot, len(self.template), self.n_slots))


def save(path: str | Path, sel: SelectionFile) -> None:
    """Write ``sel`` atomically."""
    save_npz(path, metadata=sel.table, targets=np.asarray(sel.targets, np.float32),
             template=np.asarray(sel.template, np.int64), backmap=np.array(bool(sel.backmap)),
             picked=np.asarray(sel.picked, np.int64), n_slots=np.array(int(sel.n_slots)),
             fallback_template=np.asarray(sel.fallback_template, np.int64), source=np.array(sel.source))


def load(path: str | Path) -> SelectionFile:
    """Read a selection file."""
    d = load_npz(path)
    return SelectionFile(targets=d["targets"], template=d["template"], backmap=bool(d["backmap"]),
                         picked=d["picked"], n_slots=int(d["n_slots"]),
                         fallback_template=d["fallback_template"], table=d["metadata"],
                         source=str(d["source"]) if "source" in d else "dataset")
