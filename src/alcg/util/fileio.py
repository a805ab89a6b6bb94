"""Atomic file writing and small array-file helpers.

Every file that a rule hands to the next one is written to a temporary name in the
same folder and renamed into place, so a killed job never leaves a file that looks
complete.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps the suffix of ``path`` (libraries such as numpy or mdtraj
    choose the format from it). On an exception the temporary file is removed and
    ``path`` is left as it was. A job killed outright (SIGKILL, node loss) cannot clean
    up, so temporaries of ``path`` left by an earlier attempt are removed first: only
    the job that owns ``path`` writes it, so none of them can still be in use.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{path.stem}.", "".join(path.suffixes) or ".tmp"
    _remove_stale_temporaries(path.parent, prefix, suffix)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(folder: Path, prefix: str, suffix: str) -> None:
    """Remove ``prefix + <8 random characters> + suffix`` files, as ``mkstemp`` names them."""
    for stale in folder.glob(glob.escape(prefix) + "?" * 8 + glob.escape(suffix)):
        stale.unlink(missing_ok=True)


def save_npz(path: str | os.PathLike, metadata: dict[str, Any] | None = None, **arrays: Any) -> None:
    """Write arrays (and a JSON ``metadata`` dict) to ``path`` atomically, uncompressed."""
    if metadata is not None:
        arrays["metadata"] = np.array(json.dumps(metadata))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, Any]:
    """Read an npz written by :func:`save_npz` into a dict; ``metadata`` is decoded."""
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in data.files}
    if "metadata" in out:
        out["metadata"] = json.loads(str(out["metadata"]))
    return out


def load_npz_keys(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, Any]:
    """Read only the arrays ``keys`` of an npz (those it holds); the others are never read."""
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in keys if key in data.files}
    if "metadata" in out:
        out["metadata"] = json.loads(str(out["metadata"]))
    return out


def npz_shape(path: str | os.PathLike, key: str) -> tuple[int, ...]:
    """Shape of array ``key`` of an npz, from its ``.npy`` header only (no data read)."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(read(fh)[0])


def npz_row(path: str | os.PathLike, key: str, index: int) -> np.ndarray:
    """Row ``index`` of array ``key`` of an uncompressed npz, reading only that row's bytes.

    :func:`save_npz` writes uncompressed (stored) members, so the row lies at a fixed offset:
    the member's local zip header, then the ``.npy`` header, then C-ordered rows. A compressed
    member (another writer) is read whole.
    """
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path, allow_pickle=False) as data:
            return _row(data[key], index, key, path)
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        raw.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(raw)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(raw)
        if fortran or dtype.hasobject or not shape:
            raw.seek(0)
            with np.load(path, allow_pickle=False) as data:
                return _row(data[key], index, key, path)
        _check_row(shape[0], index, key, path)
        row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        raw.seek(raw.tell() + index * row_bytes)
        return np.frombuffer(raw.read(row_bytes), dtype).reshape(shape[1:]).copy()


def _row(array: np.ndarray, index: int, key: str, path: str | os.PathLike) -> np.ndarray:
    _check_row(len(array), index, key, path)
    return array[index]


def _check_row(n: int, index: int, key: str, path: str | os.PathLike) -> None:
    if not 0 <= index < n:
        raise IndexError(f"row {index} of {key} in {path}: it has {n} rows")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
