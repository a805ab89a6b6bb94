"""Validation frames reserved from the equilibrium pool in a real run: config/go_test.yaml with
``train.validation: pool`` up to the round-0 dataset and the held-out set (seconds: the Go model
on OpenMM's Reference platform)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import yaml

from alcg.analysis import heldout
from alcg.formats import dataset, run_file
from workflow_helpers import copy_workflow

POOL = {"experiment": {"seeds": [1], "arms": ["md"]}, "train": {"validation": "pool"},
        "pool_md": {"starts": ["folded", "extended"], "replicas_per_start": 1, "length_ps": 40.0,
                    "equilibration_ps": 1.0, "record_interval_steps": 20, "checkpoint_every": 100}}


def test_pool_validation_frames_are_neither_iid_starts_nor_heldout_frames(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "pool.yaml").write_text(yaml.safe_dump(POOL))
    res_dir = work / "results/go_test"
    targets = ["results/go_test/seed_1/round_000/dataset/dataset.npz", "results/go_test/evaluate/heldout.npz"]
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/go_test.yaml", "pool.yaml",
           "--", *targets]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = dataset.load(work / targets[0])
    n_pool = {dataset.run_key(p): run_file.frame_count(p) for p in (res_dir / "pool").glob("*.npz")}
    assert len(n_pool) == 2 and set(n_pool.values()) == {400}  # 40 ps, 20 steps of 5 fs
    val, train = data.split == dataset.VAL, data.split == dataset.TRAIN
    # every round-0 frame trains; the validation frames are the pool's reserved part, all of it
    assert set(data.source[train].tolist()) == {dataset.run_key(p) for p in
                                                (res_dir / "seed_1/initial").glob("rep_*.npz")}
    assert set(data.source[val].tolist()) == set(n_pool)
    for key, n in n_pool.items():
        start, stop = heldout.pool_validation_range(n)
        frames = np.sort(data.frame[val & (data.source == key)])
        np.testing.assert_array_equal(frames, np.arange(start, stop))
        assert start >= heldout.pool_query_count(n)  # never a frame the iid arm may start from
    held = heldout.load(work / targets[1])
    assert len(held.frame) > 0
    for s, f in zip(held.source, held.frame):
        assert f >= heldout.pool_validation_range(n_pool[s])[1]  # never a validation frame
