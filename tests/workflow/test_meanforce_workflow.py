"""The tiny Go-model loop end to end with ``oracle.labels: mean_force`` (minutes: real OpenMM,
training and CG simulation)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from alcg.formats import run_file
from alcg.formats.dataset import load as load_dataset
from alcg.analysis.summary import read_tsv
from workflow_helpers import copy_workflow


MEAN_FORCE = {"experiment": {"seeds": [1], "arms": ["rmsd"]},
              "oracle": {"labels": "mean_force", "equilibration_ps": 0.5, "length_ps": 1.0,
                         "record_interval_steps": 10, "n_blocks": 5},
              "loop": {"n_rounds": 2}, "cg_evaluate": {"rounds": "ends"}}  # round 1: no evaluation run


def test_go_model_loop_with_mean_force_labels(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "mean_force.yaml").write_text(yaml.safe_dump(MEAN_FORCE))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/go_test.yaml",
           "mean_force.yaml"]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = work / "results/go_test"
    oracles = sorted((out / "seed_1/rmsd/round_000/oracle").glob("slot_*.npz"))
    runs = [run_file.load(p) for p in oracles]
    assert runs and all(r.status is run_file.Status.OK for r in runs)
    for r in runs:  # one labelled configuration per query, C-alphas held exactly
        assert r.n_frames == 1 and r.metadata["labels"] == "mean_force" and r.metadata["held"] == "fixed"
        assert r.metadata["simulated_ps"] == pytest.approx(1.5)  # equilibration counted
    r0, r1 = (load_dataset(out / f"seed_1/{d}/dataset/dataset.npz") for d in ("round_000", "rmsd/round_001"))
    assert r1.n_frames == r0.n_frames + len(runs)
    new = np.arange(r1.n_frames) >= r0.n_frames
    assert np.all(np.isfinite(r1.force_var)) and r1.force_var[new].max() < r0.force_var.min()
    # the label is the held configuration's: its C-alphas are the backmapped start's
    start_ca = np.stack([r.positions[0, [a.index for a in r.topology().atoms() if a.name == "CA"]] for r in runs])
    assert np.allclose(r1.coords[new], start_ca, atol=1e-5)
    rows = {r["round"]: r for r in read_tsv(out / "summary/rounds.tsv")}
    assert float(rows["1"]["oracle_ns"]) == pytest.approx(1.5e-3 * len(runs))
    assert int(rows["0"]["n_label_frames"]) == len(runs)
    assert float(rows["0"]["label_rmsd_target_nm"]) < 0.05  # labelled where it asked
    assert float(rows["0"]["label_rmsd_train_nm"]) > 0.0
    # cg_evaluate.rounds: ends: round 1 has no evaluation run, keeps its held-out error, did not fail
    assert not (out / "seed_1/rmsd/round_001/evaluate/trajectory.h5").exists()
    assert (out / "seed_1/rmsd/round_002/evaluate/trajectory.h5").exists()
    assert rows["1"]["tica_w1"] == "" and rows["1"]["evaluation_failed"] == "False"
    assert rows["1"]["heldout_force_mse"] != "" and rows["2"]["tica_w1"] != ""
