"""Append-only checkpoints: a run's progress as chunk files in the folder ``<output>.partial/``.

A long job (all-atom MD, a force recomputation of an imported trajectory, a CG simulation)
checkpoints by writing one chunk file per checkpoint holding only the frames recorded since
the previous one, plus whatever the caller needs to continue (its integrator state): so
checkpointing costs O(n) I/O over a run of n frames, where rewriting every frame so far at
each checkpoint cost O(n^2) (issue 21). The caller owns what a chunk holds; this module owns
the folder and the chunk files:

- a chunk is an npz written atomically by :func:`alcg.util.fileio.save_npz`, named after the index of
  its first frame (``0000000040.npz``), so that the names sort in frame order; its metadata
  holds the run's ``signature`` (a hash of everything that makes the run what it is) and
  ``start``, plus the caller's own entries;
- reading back (:func:`read`) takes the chunks whose frames follow on one another from a
  given frame on, and stops at a gap; a chunk of another signature (a checkpoint of a
  different run) removes the whole checkpoint and resumes nothing.

A job ends by writing its output atomically and then removing its checkpoint (:func:`remove`).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from alcg.util.fileio import load_npz, save_npz

log = logging.getLogger(__name__)


def folder(output: str | Path) -> Path:
    """The checkpoint folder ``<output>.partial`` of the job writing ``output``."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def legacy_file(partial: Path, suffix: str) -> Path:
    """The one-file checkpoint of earlier versions next to folder ``partial`` (``<partial><suffix>``)."""
    return partial.with_name(partial.name + suffix)


def write(partial: Path, signature: str, start: int, metadata: dict[str, Any] | None = None,
          **arrays: Any) -> Path:
    """Write one chunk of frames ``start`` .. into ``partial`` atomically; return its path.

    ``arrays`` are the chunk's arrays (frames and state), ``metadata`` the caller's JSON
    entries besides ``signature`` and ``start``.
    """
    partial.mkdir(parents=True, exist_ok=True)
    path = partial / f"{start:010d}.npz"
    save_npz(path, metadata={**(metadata or {}), "signature": signature, "start": start}, **arrays)
    return path


def chunks(partial: Path, legacy: Path | None = None) -> list[Path]:
    """Chunk files in frame order: ``legacy`` (an earlier version's one file, frames from 0)
    when it exists, then the chunks of ``partial``."""
    first = [legacy] if legacy is not None and legacy.exists() else []
    # digits only: a killed write leaves its temporary (".<start>.<random>.npz") behind
    return first + (sorted(p for p in partial.glob("*.npz") if p.stem.isdigit()) if partial.is_dir() else [])


def read(partial: Path, signature: str, n_frames: Callable[[dict], int], first_frame: int = 0,
         legacy: Path | None = None) -> list[dict] | None:
    """The chunks (as :func:`alcg.util.fileio.load_npz` dicts) whose frames follow on one another from
    frame ``first_frame`` on.

    Parameters
    ----------
    n_frames : the number of frames a chunk holds, from its dict
    legacy : an earlier version's one-file checkpoint, read first as a chunk starting at 0
        (it has no ``start``), with the same signature

    Returns
    -------
    list or None
        The chunks in order (empty: nothing to resume), or None when a chunk belongs to a
        different run: the checkpoint (``partial`` and ``legacy``) is then removed.
    """
    found: list[dict] = []
    start = first_frame
    for path in chunks(partial, legacy):
        data = load_npz(path)
        meta = data["metadata"]
        if meta.get("signature") != signature:
            log.warning("removing checkpoint %s: %s belongs to a different run", partial, path.name)
            remove(partial, legacy)
            return None
        if meta.get("start", 0) != start:
            break  # not the next frames: resume after the consecutive ones
        found.append(data)
        start += n_frames(data)
    return found


def remove(partial: Path, legacy: Path | None = None) -> None:
    """Remove the checkpoint folder ``partial`` and an earlier version's file ``legacy``."""
    shutil.rmtree(partial, ignore_errors=True)
    if legacy is not None:
        legacy.unlink(missing_ok=True)
