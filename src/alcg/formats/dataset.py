"""The CG dataset file (``dataset.npz``): the one owner of its keys, splits and provenance.

Keys
    ``coords`` (n, N, 3) nm and ``forces`` (n, N, 3) kJ/mol/nm, float32; ``bead_types`` (N,)
    and ``bead_masses`` (N,) amu; ``sequence``; per frame: ``source`` (the run key of the AA
    run file it was projected from, see :func:`run_key`), ``frame`` (index in that run),
    ``round`` (the round whose query produced it; round-0 data is 0), ``traj`` (trajectory id),
    ``split`` (``train`` or ``val``) and ``force_var`` (float64, (kJ/mol/nm)^2: the error
    variance of the frame's force label, averaged over its components; see
    :func:`instantaneous_force_var` and :mod:`alcg.finegrained.meanforce`). Files written before
    ``force_var`` existed are read with it computed by :func:`instantaneous_force_var` (every
    label then was instantaneous): the one place old files are migrated.

The validation frames are fixed once, in round 0 (:func:`assign_validation`): the last
``val_fraction`` (in time) of every round-0 trajectory (``train.validation: tail``), or whole
round-0 trajectories holding ``val_fraction`` of the frames (``trajectories``: none of their
frames is next in time to a training frame). Later rounds only append ``train`` frames, so
every arm and round validates on the same frames and no oracle frame is in them.

Datasets that grow by appending (issue 21)
    A dataset file is either a *frame file* (the keys above: round 0's dataset, a round's
    projected oracle frames) or a *shard manifest* (:func:`append`): ``shards``, the paths of
    the frame files it is made of, in order and relative to the manifest's folder (so a moved
    results folder still reads), ``shard_frames`` (their frame counts, checked against each
    shard on every read and append), ``bead_types``, ``bead_masses``, ``sequence`` and
    ``metadata`` (``format`` = :data:`MANIFEST_FORMAT`). A round's dataset is a manifest: round
    0's frame file, then each earlier round's projected frames; it names frame files only, never
    another manifest, and copies no frame. :func:`load` reads a manifest as the concatenation of
    its shards, which is exactly the merged frame file earlier versions wrote (same frames,
    order, dtypes); a merged frame file from such a run is itself read as is (a one-shard
    dataset). Readers that need part of a dataset read only that: :func:`columns` (some
    per-frame arrays), :func:`count_frames`, :func:`frame_source` (one frame's provenance).

    In the workflow each shard is a declared input of the merge that appended it, so a job
    that declares a round's dataset depends on every shard through the chain of merges: a
    rewritten or missing shard reruns that merge and everything after it in its arm, as with
    merged files. Readers declare the manifest only (listing the shards too would change the
    input sets Snakemake recorded for existing results and rerun them all); shards must
    therefore never be ``temp()``. A shard rewritten behind the workflow's back with another
    frame count is one clear error on reading or appending to it.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from alcg.util.errors import DataError
from alcg.util.fileio import load_npz, load_npz_keys, npz_row, npz_shape, save_npz

KEYS = ("coords", "forces", "bead_types", "bead_masses", "sequence", "source", "frame", "round",
        "traj", "split", "force_var")
PER_FRAME = ("coords", "forces", "source", "frame", "round", "traj", "split", "force_var")
#: keys a dataset file may lack, filled on reading (see the module doc)
MIGRATED = ("force_var",)
TRAIN, VAL = "train", "val"
#: ``metadata["format"]`` of a shard manifest (see the module doc)
MANIFEST_FORMAT = "alcg.formats.dataset.shards/1"


def run_key(path: str | Path) -> str:
    """A location-independent name of an AA run file: its path from the ``seed_*`` folder on.

    ``results/x/seed_1/rmsd/round_000/oracle/slot_000.npz`` -> ``seed_1/rmsd/round_000/oracle/slot_000.npz``.
    Imported runs (``results/x/imported/...``) are keyed from ``imported`` on. Keys survive a
    moved results folder; stages resolve them against their declared inputs.
    """
    parts = Path(path).parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].startswith("seed_") or parts[i] == "imported":
            return "/".join(parts[i:])
    return "/".join(parts[-2:])


def resolve_runs(keys: Iterable[str], run_files: Iterable[str | Path]) -> dict[str, str]:
    """Map each run key to one of ``run_files`` (the job's declared inputs)."""
    by_key = {run_key(f): str(f) for f in run_files}
    missing = sorted(set(keys) - set(by_key))
    if missing:
        raise DataError(f"AA run {missing[0]} is named in the dataset but is not a declared input "
                        f"of this job ({len(missing)} missing)")
    return {k: by_key[k] for k in keys}


def train_mask(split: np.ndarray) -> np.ndarray:
    """Which frames of per-frame ``split`` labels are training frames (bool, same shape): every
    frame not held out for validation; the one rule that selects the training split."""
    return np.asarray(split) != VAL


@dataclass(frozen=True)
class CGDataset:
    """A CG dataset (see the module doc for each field's meaning and units)."""

    coords: np.ndarray
    forces: np.ndarray
    bead_types: np.ndarray
    bead_masses: np.ndarray
    sequence: str
    source: np.ndarray
    frame: np.ndarray
    round: np.ndarray
    traj: np.ndarray
    split: np.ndarray
    force_var: np.ndarray | None = None  # None: computed by instantaneous_force_var

    def __post_init__(self) -> None:
        if self.force_var is None:
            object.__setattr__(self, "force_var", instantaneous_force_var(self.forces, self.traj))

    @property
    def n_frames(self) -> int:
        return len(self.coords)

    @property
    def n_beads(self) -> int:
        return len(self.bead_types)

    def train_indices(self) -> np.ndarray:
        """Indices of training frames."""
        return np.flatnonzero(train_mask(self.split))

    def val_indices(self) -> np.ndarray:
        """Indices of validation frames."""
        return np.flatnonzero(self.split == VAL)

    def frame_source(self, k: int) -> tuple[str, int]:
        """(run key, frame in that run) of frame ``k``."""
        return str(self.source[k]), int(self.frame[k])


def empty(bead_types: np.ndarray, bead_masses: np.ndarray, sequence: str) -> CGDataset:
    """A dataset with no frames."""
    n = len(bead_types)
    return CGDataset(bead_types=np.asarray(bead_types, np.int64), bead_masses=np.asarray(bead_masses),
                     sequence=str(sequence), coords=np.zeros((0, n, 3), np.float32),
                     forces=np.zeros((0, n, 3), np.float32), source=np.array([], dtype="<U1"),
                     frame=np.zeros(0, np.int64), round=np.zeros(0, np.int64),
                     traj=np.array([], dtype="<U1"), split=np.array([], dtype="<U5"),
                     force_var=np.zeros(0, np.float64))


def instantaneous_force_var(forces: np.ndarray, traj: np.ndarray) -> np.ndarray:
    """Error variance (n,) of instantaneous force labels, (kJ/mol/nm)^2.

    Per trajectory: the variance over its frames of each bead force component, averaged over
    components (NaN for a one-frame trajectory). An upper bound on the label noise: it also
    holds the spread of the mean force over the trajectory's configurations, which is small
    next to the thermal noise (~1000 vs ~10-30 kJ/mol/nm with atoms).
    """
    forces = np.asarray(forces, np.float64)
    out = np.full(len(forces), np.nan)
    for t in np.unique(traj):
        idx = np.flatnonzero(traj == t)
        if len(idx) > 1:
            out[idx] = forces[idx].var(axis=0, ddof=1).mean()
    return out


def with_frames(data: CGDataset, **per_frame: np.ndarray) -> CGDataset:
    """``data`` with its per-frame arrays replaced (all of :data:`PER_FRAME`, or ``split``;
    ``force_var`` left out of a full replacement is computed by :func:`instantaneous_force_var`)."""
    if "coords" in per_frame and "force_var" not in per_frame:
        per_frame = {**per_frame, "force_var": instantaneous_force_var(per_frame["forces"], per_frame["traj"])}
    return dataclasses.replace(data, **per_frame)


#: the ``train.validation`` modes that take the validation frames from the round-0 frames
#: (:func:`assign_validation`); ``pool`` adds frames of their own (:func:`add_validation`)
ROUND0_VALIDATION_MODES = ("tail", "trajectories")
#: seeds the draw of validation trajectories: a function of the trajectory ids alone, so the
#: same round-0 runs give the same validation set in every arm
TRAJECTORY_DRAW_SEED = 0


def held_out_trajectories(traj: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Mask (n,) of the frames of whole trajectories held out for validation.

    Trajectories are drawn in a random order (``seed``) until at least ``val_fraction`` of the
    frames are held out; at least one trajectory is held out and at least one kept. Needs two
    or more trajectories and ``val_fraction > 0``.
    """
    traj = np.asarray(traj)
    ids = np.unique(traj)
    if len(ids) < 2 or val_fraction <= 0:
        raise ValueError(f"holding out whole trajectories needs >= 2 of them and val_fraction > 0 "
                         f"(got {len(ids)} and {val_fraction})")
    order = np.random.default_rng(seed).permutation(ids)
    sizes = np.array([(traj == t).sum() for t in order])
    n_val = int(np.searchsorted(np.cumsum(sizes), val_fraction * len(traj))) + 1
    n_val = min(max(n_val, 1), len(ids) - 1)
    return np.isin(traj, order[:n_val])


def assign_validation(data: CGDataset, val_fraction: float, mode: str = "tail") -> CGDataset:
    """Mark the fixed validation frames (``mode``, see :data:`ROUND0_VALIDATION_MODES`).

    ``tail``: the last ``val_fraction`` of every trajectory (by frame index). ``trajectories``:
    whole trajectories (:func:`held_out_trajectories`, seeded by :data:`TRAJECTORY_DRAW_SEED`);
    with fewer than two trajectories, the tail.
    """
    if mode not in ROUND0_VALIDATION_MODES:
        raise ValueError(f"validation mode must be one of {ROUND0_VALIDATION_MODES}, not {mode!r}")
    split = np.full(data.n_frames, TRAIN, dtype="<U5")
    if mode == "trajectories" and val_fraction > 0 and len(np.unique(data.traj)) >= 2:
        split[held_out_trajectories(data.traj, val_fraction, TRAJECTORY_DRAW_SEED)] = VAL
        return dataclasses.replace(data, split=split)
    for t in np.unique(data.traj):
        idx = np.flatnonzero(data.traj == t)
        idx = idx[np.argsort(data.frame[idx], kind="stable")]
        n_val = int(round(len(idx) * val_fraction))
        if n_val and len(idx) - n_val >= 1:
            split[idx[-n_val:]] = VAL
    return dataclasses.replace(data, split=split)


def add_validation(data: CGDataset, val: CGDataset) -> CGDataset:
    """``data``'s frames as they are, followed by ``val``'s, every one of them marked ``val``:
    validation frames of their own (``train.validation: pool``), not taken from ``data``."""
    if not val.n_frames:
        raise DataError("no validation frames to add")
    return merge([data, dataclasses.replace(val, split=np.full(val.n_frames, VAL, dtype="<U5"))])


def merge(datasets: Iterable[CGDataset]) -> CGDataset:
    """Concatenate datasets of the same molecule (bead types must match)."""
    datasets = list(datasets)
    first = datasets[0]
    for d in datasets[1:]:
        if not np.array_equal(d.bead_types, first.bead_types):
            raise DataError(f"cannot merge datasets of different molecules: {first.sequence} vs {d.sequence}")
    return dataclasses.replace(first, **{k: np.concatenate([getattr(d, k) for d in datasets]) for k in PER_FRAME})


def save(path: str | Path, data: CGDataset) -> None:
    """Write a CG dataset as one frame file, atomically."""
    arrays = {k: getattr(data, k) for k in KEYS}
    arrays["sequence"] = np.array(data.sequence)
    save_npz(path, metadata={"units": {"coords": "nm", "forces": "kJ/mol/nm", "bead_masses": "amu"},
                             "n_frames": int(data.n_frames), "n_val": int((data.split == VAL).sum())},
             **arrays)


#: what reading a truncated, corrupt or vanished npz raises (numpy, zipfile and the OS)
_READ_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile)


def _unreadable(path: str | Path, exc: Exception) -> DataError:
    """The one-line error for a dataset file that cannot be read (``exc``: why)."""
    return DataError(f"cannot read CG dataset {path}: {exc}")


@dataclass(frozen=True)
class Shard:
    """One frame file of a dataset and its frame count (None: not recorded, a lone file)."""

    path: Path
    n_frames: int | None


def shards(path: str | Path) -> list[Shard]:
    """The frame files the dataset at ``path`` is read from, in order (reads no frame).

    A manifest lists its shards; a frame file is its own one shard."""
    path = Path(path)
    try:
        raw = load_npz_keys(path, ("shards", "shard_frames"))
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    if "shards" not in raw:
        return [Shard(path, None)]
    if "shard_frames" not in raw or len(raw["shard_frames"]) != len(raw["shards"]):
        raise DataError(f"cannot read CG dataset {path}: a shard manifest needs one 'shard_frames' "
                        f"count per shard ({len(raw['shards'])} shards)")
    base = path.parent
    return [Shard(Path(os.path.normpath(base / str(rel))), int(n))
            for rel, n in zip(raw["shards"], raw["shard_frames"])]


def _shard_frames(shard: Shard, manifest: str | Path) -> int:
    """Frame count of frame file ``shard`` of dataset ``manifest``, from the ``frame`` array's header
    (no frame read), checked against the count the manifest recorded: the one place a
    shard's frame count is read."""
    try:
        with zipfile.ZipFile(shard.path) as zf:
            has_frame = "frame.npy" in zf.namelist()
        n = npz_shape(shard.path, "frame")[0] if has_frame else None
    except _READ_ERRORS as exc:
        raise _unreadable(shard.path, exc) from exc
    if n is None:
        raise DataError(f"{shard.path} is not a CG frame file (missing ['frame'])")
    _check_count(shard, n, manifest)
    return n


def append(previous: str | Path, new: str | Path, out: str | Path) -> None:
    """Write at ``out``, atomically, the dataset ``previous`` followed by the frame file ``new``,
    as a shard manifest: no frame is copied (see the module doc).

    ``previous`` is a manifest or a frame file; ``new`` must be a frame file of the same molecule.
    """
    out = Path(out)
    parts = shards(previous) + [Shard(Path(new), None)]
    first = _molecule(parts[0].path)
    counts = []
    for shard in parts:
        mol = _molecule(shard.path)
        if mol["manifest"]:
            raise DataError(f"{shard.path} is a shard manifest, not a frame file: a manifest lists frame files only")
        if not np.array_equal(mol["bead_types"], first["bead_types"]):
            raise DataError(f"cannot append {shard.path}: its bead types differ from {parts[0].path} "
                            f"({str(mol['sequence'])} vs {str(first['sequence'])})")
        counts.append(_shard_frames(shard, previous))
    rel = [os.path.relpath(os.path.abspath(s.path), os.path.abspath(out.parent)) for s in parts]
    save_npz(out, metadata={"format": MANIFEST_FORMAT, "n_frames": int(sum(counts)), "n_shards": len(parts)},
             shards=np.array(rel), shard_frames=np.array(counts, np.int64), bead_types=first["bead_types"],
             bead_masses=first["bead_masses"], sequence=first["sequence"])


def _molecule(path: Path) -> dict:
    """``bead_types``, ``bead_masses`` and ``sequence`` of a dataset file, and ``manifest``
    (whether it is a shard manifest). No frame is read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in ("bead_types", "bead_masses", "sequence") if k in data.files}
            out["manifest"] = "shards" in data.files
    except _READ_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    if "bead_types" not in out:
        raise DataError(f"{path} is not a CG dataset (missing ['bead_types'])")
    return out


def _frame_files(path: str | Path) -> list[Shard]:
    """:func:`shards`, each checked to be a frame file (a manifest's shards: not manifests)."""
    parts = shards(path)
    for shard in parts:
        if not shard.path.exists():
            raise DataError(f"shard {shard.path} of dataset {path} is missing (rerun the round that made it)")
    return parts


def _check_count(shard: Shard, n: int, manifest: str | Path) -> None:
    if shard.n_frames is not None and shard.n_frames != n:
        raise DataError(f"shard {shard.path} of dataset {manifest} has {n} frames; the manifest says "
                        f"{shard.n_frames} (the shard was rewritten after it: rerun the merge)")


def _load_frame_file(path: Path) -> CGDataset:
    raw = load_npz(path)
    if "shards" in raw:
        raise DataError(f"{path} is a shard manifest where a frame file was expected (manifests do not nest)")
    missing = [k for k in KEYS if k not in raw and k not in MIGRATED]
    if missing:
        raise DataError(f"{path} is not a CG dataset (missing {missing})")
    if "force_var" not in raw:
        raw["force_var"] = instantaneous_force_var(raw["forces"], raw["traj"])
    return CGDataset(**{k: raw[k] for k in KEYS if k != "sequence"}, sequence=str(raw["sequence"]))


def load(path: str | Path, n_beads: int | None = None) -> CGDataset:
    """Read a CG dataset (a frame file or a manifest's shards, concatenated); with ``n_beads``,
    check it matches the model's bead count."""
    parts = []
    for shard in _frame_files(path):
        data = _load_frame_file(shard.path)
        _check_count(shard, data.n_frames, path)
        parts.append(data)
    data = parts[0] if len(parts) == 1 else merge(parts)
    if n_beads is not None and data.coords.shape[1] != n_beads:
        raise DataError(f"{path} has {data.coords.shape[1]} beads per frame; the model expects {n_beads}")
    return data


def columns(path: str | Path, *keys: str) -> dict[str, np.ndarray]:
    """Only the per-frame arrays ``keys`` (of :data:`PER_FRAME`) of a dataset, over all its frames
    in order, as :func:`load` would give them; no other array is read."""
    bad = [k for k in keys if k not in PER_FRAME]
    if bad:
        raise ValueError(f"not a per-frame dataset key: {bad[0]!r} (one of {', '.join(PER_FRAME)})")
    out: dict[str, list] = {k: [] for k in keys}
    need = set(keys) | ({"forces", "traj"} if "force_var" in keys else set())
    for shard in _frame_files(path):
        _shard_frames(shard, path)
        try:
            raw = load_npz_keys(shard.path, tuple(sorted(need)))
        except _READ_ERRORS as exc:
            raise _unreadable(shard.path, exc) from exc
        if "force_var" in keys and "force_var" not in raw:
            raw["force_var"] = instantaneous_force_var(raw["forces"], raw["traj"])
        for k in keys:
            out[k].append(raw[k])
    return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in out.items()}


def count_frames(path: str | Path) -> int:
    """Number of frames of a dataset (from each shard's array header, checked against the
    manifest: no frame read)."""
    return sum(_shard_frames(s, path) for s in _frame_files(path))


def frame_source(path: str | Path, k: int) -> tuple[str, int]:
    """(run key, frame in that run) of frame ``k`` of a dataset, as :meth:`CGDataset.frame_source`;
    reads the provenance arrays of the one shard that holds it."""
    k0 = k
    for shard in _frame_files(path):
        n = _shard_frames(shard, path)
        if 0 <= k < n:
            try:
                return str(npz_row(shard.path, "source", k)), int(npz_row(shard.path, "frame", k))
            except _READ_ERRORS as exc:
                raise _unreadable(shard.path, exc) from exc
        k -= n
    raise DataError(f"frame {k0} is beyond the {count_frames(path)} frames of dataset {path}")
