"""benchmarks/timestep_validation.py at a tiny size, so that the production time-step benchmark
never rots: replicas run in pieces, each seeded by the stated rule, and the JSON is written."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import timestep_validation as tv  # noqa: E402


def test_paired_run_in_pieces_writes_every_step(tmp_path, monkeypatch):
    out = tmp_path / "tsv.json"
    tv.main(["--paired", "--replicas", "6", "--chunk-replicas", "4", "--ps", "0.2", "--equil-ps", "0.1",
             "--equil-dt-fs", "2", "--reference-dt-fs", "2", "--steps-fs", "5", "30", "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["design"] == "paired" and r["replicas"] == 6 and r["reference_dt_fs"] == 2.0
    assert set(r["steps"]) == {"5_fs", "30_fs"}
    assert all(s["verdict"] in ("pass", "fail", "underpowered") and s["exploded"] == 0 for s in r["steps"].values())
    assert np.isfinite(r["reference_kinetic_temperature_k"])


def test_pieces_are_seeded_by_the_stated_rule(monkeypatch):
    system = tv._cln025(prior_only=True, readout_scale=1.0, n=5)
    monkeypatch.setattr(tv, "CHUNK_REPLICAS", 3)
    joined, _ = tv._run(system, system.frames, 0.002, 0.1, seed=7)
    assert joined.coords.shape[0] == 5 and len(joined.status) == 5
    monkeypatch.setattr(tv, "CHUNK_REPLICAS", 8)
    first, _ = tv._run(system, system.frames[:3], 0.002, 0.1, seed=700_000)
    second, _ = tv._run(system, system.frames[3:], 0.002, 0.1, seed=700_001)
    np.testing.assert_array_equal(joined.coords, np.concatenate([first.coords, second.coords]))


def test_seed_zero_repeats_the_earlier_runs_and_another_seed_draws_afresh():
    system = tv._cln025(prior_only=True, readout_scale=1.0, n=8)

    def starts(seed: int) -> np.ndarray:
        args = tv._args(["--paired", "--replicas", "4", "--equil-ps", "0.05", "--equil-dt-fs", "2", "--seed", str(seed)])
        return tv._starts(system, args)[0]

    zero = tv._args([])
    assert [tv._seed(zero, s) for s in (1, 2, 10)] == [1, 2, 10]
    np.testing.assert_array_equal(starts(0), starts(0))
    assert not np.allclose(starts(0), starts(1))
