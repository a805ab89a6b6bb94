"""The optimal force map in a real run: config/go_test.yaml with ``mapping.force_map: optimal``
up to the round-0 dataset (seconds: the Go model on OpenMM's Reference platform)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import yaml

from alcg.formats import dataset, force_map_file, run_file
from alcg.stages import finegrained
from workflow_helpers import copy_workflow

OPTIMAL = {"experiment": {"seeds": [1], "arms": ["md"]},
           "mapping": {"force_map": "optimal", "fit_ps": 50.0, "fit_equilibration_ps": 2.0,
                       "fit_record_interval_steps": 20}}


def test_round_zero_dataset_is_labelled_with_the_fitted_optimal_map(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "optimal.yaml").write_text(yaml.safe_dump(OPTIMAL))
    target = "results/go_test/seed_1/round_000/dataset/dataset.npz"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/go_test.yaml", "optimal.yaml",
           "--", target]
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    system = work / "results/go_test/system"
    fmap = force_map_file.load(system / "force_map.npz")
    fit = run_file.load(system / "force_map_fit.npz")
    assert fmap.kind == "optimal" and fmap.metadata["n_frames"] == fit.n_frames == 500  # 50 ps, 20 steps of 5 fs
    assert fmap.metadata["fitted_on"].endswith("system/force_map_fit.npz") and fmap.metadata["fit_cost_ns"] > 0.05
    assert set(fmap.metadata["heldout_second_moment"]) == {"constrained", "optimal", "residue"}
    assert (system / "force_map.png").stat().st_size > 0
    assert "ns of fine-grained MD" in (work / "logs/go_test/force_map.log").read_text()
    data = dataset.load(work / target)
    runs = sorted(str(p) for p in (work / "results/go_test/seed_1/initial").glob("rep_*.npz"))
    forces = np.concatenate([run_file.load(p).forces for p in runs])
    np.testing.assert_allclose(data.forces, finegrained.load_force_map(str(system / "force_map.npz")).apply(forces),
                               rtol=1e-5, atol=1e-3)
    constrained = tmp_path / "constrained.npz"
    finegrained.project(runs, str(system / "folded.pdb"), str(system / "folded.xml"), 0, str(constrained), None, "tail")
    old = dataset.load(constrained)
    np.testing.assert_array_equal(old.coords, data.coords)
    assert np.sqrt(np.mean((old.forces - data.forces) ** 2)) > 1.0  # kJ/mol/nm: another label
