"""Append-only chunk checkpoints (alcg.formats.checkpoint)."""
import numpy as np

from alcg.formats import checkpoint


def test_chunks_read_back_in_order_and_a_killed_writes_temporary_is_ignored(tmp_path):
    partial = checkpoint.folder(tmp_path / "run.npz")
    for start in (0, 3, 6):
        checkpoint.write(partial, "sig", start, frames=np.arange(start, start + 3))
    (partial / ".0000000009.k2j4h1.npz").write_bytes(b"PK\x03\x04 half-written")  # a write killed mid-way
    got = checkpoint.read(partial, "sig", lambda d: len(d["frames"]))
    assert [int(d["metadata"]["start"]) for d in got] == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate([d["frames"] for d in got]), np.arange(9))


def test_a_gap_stops_the_resume_and_another_runs_checkpoint_is_removed(tmp_path):
    partial = checkpoint.folder(tmp_path / "run.npz")
    checkpoint.write(partial, "sig", 0, frames=np.arange(3))
    checkpoint.write(partial, "sig", 5, frames=np.arange(3))
    assert len(checkpoint.read(partial, "sig", lambda d: len(d["frames"]))) == 1
    assert checkpoint.read(partial, "other", lambda d: len(d["frames"])) is None
    assert not partial.exists()
