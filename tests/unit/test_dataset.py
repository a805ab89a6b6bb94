"""Datasets that grow by appending (issue 21): a round's dataset is a manifest of shards that
reads back exactly as the merged file earlier versions wrote; readers read only what they need."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from alcg.formats import run_file, dataset
from alcg.util.errors import DataError
from alcg.util.fileio import npz_row, npz_shape

N_BEADS = 5


def _frames(n: int, tag: str, rnd: int, seed: int, split_val: int = 0, n_beads: int = N_BEADS) -> dataset.CGDataset:
    """``n`` random frames from one run ``tag`` (the last ``split_val`` of them validation)."""
    rng = np.random.default_rng(seed)
    data = dataset.empty(np.arange(n_beads, dtype=np.int64) % 3, np.full(n_beads, 110.0), "Y" * n_beads)
    if n == 0:
        return data
    return dataset.with_frames(
        data, coords=rng.normal(size=(n, n_beads, 3)).astype(np.float32),
        forces=rng.normal(scale=100, size=(n, n_beads, 3)).astype(np.float32),
        source=np.array([f"seed_1/{tag}.npz"] * n), frame=np.arange(n, dtype=np.int64),
        round=np.full(n, rnd, np.int64), traj=np.array([tag] * n),
        split=np.array(["train"] * (n - split_val) + ["val"] * split_val))


@pytest.fixture()
def rounds(tmp_path: Path) -> dict[str, Path]:
    """Round 0's frame file and three rounds of projected frames (one empty: every query failed),
    in a results-like layout."""
    seed = tmp_path / "results/x/seed_1"
    files = {"r0": seed / "round_000/dataset/dataset.npz"}
    dataset.save(files["r0"], dataset.merge([_frames(30, "initial/rep_0", 0, 0, split_val=6),
                                             _frames(20, "initial/rep_1", 0, 1, split_val=4)]))
    for j, n in enumerate((7, 0, 11)):
        files[f"p{j}"] = seed / f"rmsd/round_{j:03d}/oracle/projected.npz"
        dataset.save(files[f"p{j}"], _frames(n, f"rmsd/round_{j:03d}/oracle/slot_000", j, 10 + j))
    return files


def _merged_the_old_way(rounds: dict[str, Path], out: Path, k: int) -> Path:
    """The full merged file of round ``k`` as earlier versions wrote it, round after round."""
    previous = rounds["r0"]
    for j in range(k):
        path = out / f"merged_{j + 1}.npz"
        dataset.save(path, dataset.merge([dataset.load(previous), dataset.load(rounds[f"p{j}"])]))
        previous = path
    return previous


def _appended(rounds: dict[str, Path], k: int) -> Path:
    previous = rounds["r0"]
    for j in range(k):
        path = rounds["r0"].parents[2] / f"rmsd/round_{j + 1:03d}/dataset/dataset.npz"
        dataset.append(previous, rounds[f"p{j}"], path)
        previous = path
    return previous


def assert_same_dataset(a: dataset.CGDataset, b: dataset.CGDataset) -> None:
    assert a.sequence == b.sequence
    for f in ("bead_types", "bead_masses", *dataset.PER_FRAME):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.shape == y.shape, f
        np.testing.assert_array_equal(x, y, err_msg=f)  # NaN force_var of a lone frame compares equal


def test_appended_dataset_reads_back_identical_to_the_merged_file(rounds, tmp_path):
    for k in (1, 2, 3):
        old = dataset.load(_merged_the_old_way(rounds, tmp_path, k))
        manifest = _appended(rounds, k)
        assert_same_dataset(dataset.load(manifest), old)
        assert dataset.count_frames(manifest) == old.n_frames
        cols = dataset.columns(manifest, "coords", "split", "force_var")
        for key, value in cols.items():
            np.testing.assert_array_equal(value, getattr(old, key))
        assert [dataset.frame_source(manifest, i) for i in range(old.n_frames)] == \
            [old.frame_source(i) for i in range(old.n_frames)]
    # the manifest copies no frame: a few hundred bytes of paths and counts
    assert manifest.stat().st_size < 3000 < rounds["p2"].stat().st_size
    assert [s.n_frames for s in dataset.shards(manifest)] == [50, 7, 0, 11]


def test_round_k_plus_one_does_not_touch_round_k(rounds):
    one = _appended(rounds, 1)
    before = {p: p.read_bytes() for p in [*rounds.values(), one]}
    dataset.append(one, rounds["p1"], one.parents[2] / "round_002/dataset/dataset.npz")
    assert {p: p.read_bytes() for p in before} == before


def test_a_merged_file_of_an_earlier_version_is_read_and_appended_to(rounds, tmp_path):
    old_two = _merged_the_old_way(rounds, tmp_path, 2)
    dataset.append(old_two, rounds["p2"], tmp_path / "three.npz")
    assert_same_dataset(dataset.load(tmp_path / "three.npz"), dataset.load(_merged_the_old_way(rounds, tmp_path, 3)))
    assert len(dataset.shards(tmp_path / "three.npz")) == 2


def test_a_moved_results_folder_still_reads(rounds, tmp_path):
    manifest = _appended(rounds, 3)
    expected = dataset.load(manifest)
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "results", moved)
    assert_same_dataset(dataset.load(moved / manifest.relative_to(tmp_path / "results")), expected)


def test_a_rewritten_or_missing_shard_is_one_clear_error(rounds):
    manifest = _appended(rounds, 2)
    dataset.save(rounds["p0"], _frames(9, "rmsd/round_000/oracle/slot_000", 0, 99))
    with pytest.raises(DataError, match=r"projected.npz of dataset .* has 9 frames; the manifest says 7"):
        dataset.load(manifest)
    with pytest.raises(DataError, match="has 9 frames; the manifest says 7"):
        dataset.columns(manifest, "coords")
    rounds["p1"].unlink()
    with pytest.raises(DataError, match=r"shard .*round_001/oracle/projected.npz of dataset .* is missing"):
        dataset.count_frames(manifest)


def test_a_wrong_recorded_count_fails_at_append_naming_the_shard(rounds, tmp_path):
    """A manifest whose recorded count disagrees with its shard fails when appended to, not
    only later in load: the wrong count is never copied on."""
    manifest = _appended(rounds, 2)
    dataset.save(rounds["p1"], _frames(3, "rmsd/round_001/oracle/slot_000", 1, 99))  # recorded: 0
    with pytest.raises(DataError) as err:
        dataset.append(manifest, rounds["p2"], tmp_path / "three.npz")
    assert "round_001/oracle/projected.npz of dataset" in str(err.value) and "has 3 frames; the manifest says 0" \
        in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "three.npz").exists()
    with pytest.raises(DataError, match="has 3 frames; the manifest says 0"):
        dataset.count_frames(manifest)
    with pytest.raises(DataError, match="has 3 frames; the manifest says 0"):
        dataset.frame_source(manifest, 60)


def test_a_corrupt_manifest_or_a_file_without_frames_is_one_clear_error(rounds, tmp_path):
    manifest = _appended(rounds, 1)
    manifest.write_bytes(manifest.read_bytes()[:100])  # truncated
    for read in (dataset.shards, dataset.count_frames, lambda p: dataset.frame_source(p, 0)):
        with pytest.raises(DataError, match=f"^cannot read CG dataset {manifest}: ") as err:
            read(manifest)
        assert "\n" not in str(err.value)
    lone = tmp_path / "lone.npz"
    np.savez(lone, bead_types=np.arange(3))
    with pytest.raises(DataError, match=r"lone.npz is not a CG frame file \(missing \['frame'\]\)"):
        dataset.count_frames(lone)
    with pytest.raises(DataError, match="lone.npz is not a CG frame file"):
        dataset.frame_source(lone, 0)


def test_append_refuses_another_molecule_and_a_manifest_as_new_frames(rounds, tmp_path):
    other = tmp_path / "other.npz"
    dataset.save(other, _frames(4, "x", 1, 3, n_beads=N_BEADS + 1))
    with pytest.raises(DataError, match="its bead types differ"):
        dataset.append(rounds["r0"], other, tmp_path / "bad.npz")
    manifest = _appended(rounds, 1)
    with pytest.raises(DataError, match="is a shard manifest, not a frame file"):
        dataset.append(rounds["r0"], manifest, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    with pytest.raises(ValueError, match="not a per-frame dataset key: 'bead_types'"):
        dataset.columns(manifest, "bead_types")


def test_one_row_of_a_run_is_read_alone(tmp_path):
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(6, 4, 3)).astype(np.float32)
    run_file.save_run(tmp_path / "r.npz", pos, pos, np.arange(6.0), np.arange(6.0), np.arange(4), "", {})
    assert npz_shape(tmp_path / "r.npz", "positions") == (6, 4, 3) and run_file.frame_count(tmp_path / "r.npz") == 6
    for k in range(6):
        np.testing.assert_array_equal(run_file.positions_at(tmp_path / "r.npz", k), pos[k])
    np.testing.assert_array_equal(npz_row(tmp_path / "r.npz", "time_ps", 4), 4.0)
    with pytest.raises(IndexError, match="row 6 of positions in .*r.npz: it has 6 rows"):
        run_file.positions_at(tmp_path / "r.npz", 6)
    run_file.save_status(tmp_path / "f.npz", run_file.Status.FAILED, "boom")
    assert run_file.frame_count(tmp_path / "f.npz") == 0
    with pytest.raises(DataError, match="holds no trajectory"):
        run_file.positions_at(tmp_path / "f.npz", 0)


def test_backmap_reads_a_template_frame_from_the_shard_and_run_that_hold_it(rounds):
    from alcg.stages import query

    manifest = _appended(rounds, 3)
    data = dataset.load(manifest)
    results = rounds["r0"].parents[3]
    runs = []
    for key in sorted(set(data.source.tolist())):
        n = int(data.frame[data.source == key].max()) + 1
        pos = np.random.default_rng(len(runs)).normal(size=(n, 4, 3)).astype(np.float32)
        runs.append(str(results / key))
        run_file.save_run(runs[-1], pos, pos, np.zeros(n), np.arange(n, dtype=float), np.arange(4), "", {})
    for k in range(data.n_frames):
        key, frame = data.frame_source(k)
        positions, got_key, got_frame = query._frame(str(manifest), runs, k)
        assert (got_key, got_frame) == (key, frame)
        np.testing.assert_array_equal(positions, run_file.load(results / key).positions[frame].astype(np.float64))


def test_train_mask_is_every_frame_not_held_out_for_validation(rounds):
    data = dataset.load(rounds["r0"])
    mask = dataset.train_mask(data.split)
    assert mask.dtype == bool and mask.sum() == 40 and not mask[data.split == dataset.VAL].any()
    np.testing.assert_array_equal(data.train_indices(), np.flatnonzero(mask))
    np.testing.assert_array_equal(dataset.train_mask(np.array(["train", "val", "train"])), [True, False, True])


def test_added_validation_frames_validate_and_every_round0_frame_trains():
    r0, pool = _frames(30, "initial/rep_0", 0, 0), _frames(12, "pool/folded_0", 0, 5)
    data = dataset.add_validation(r0, pool)
    assert data.n_frames == 42 and (data.split[:30] == dataset.TRAIN).all() and (data.split[30:] == dataset.VAL).all()
    np.testing.assert_array_equal(data.coords[30:], pool.coords)
    np.testing.assert_array_equal(data.train_indices(), np.arange(30))
    with pytest.raises(DataError):
        dataset.add_validation(r0, _frames(0, "pool/none", 0, 6))
    with pytest.raises(ValueError, match="validation mode"):
        dataset.assign_validation(r0, 0.2, "pool")  # pool frames are added, never taken from round 0


@pytest.mark.parametrize("n", [4, 10, 401, 5000])
def test_the_pool_is_cut_in_time_into_iid_validation_and_heldout_parts(n):
    from alcg.analysis import heldout

    q = heldout.pool_query_count(n)
    start, stop = heldout.pool_validation_range(n)
    assert 0 < q == start < stop <= heldout.pool_heldout_start(n, True) < n
    assert heldout.pool_heldout_start(n, False) == q  # without pool validation, as before
