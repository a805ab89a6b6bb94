"""Stages of ``evaluate.smk``: evaluation of one model against the reference, and the summaries."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from alcg import aarun
from alcg.errors import DataError
from alcg.io import write_json
from alcg.settings import Evaluate, Select

log = logging.getLogger(__name__)


def reference_trajs(run_files: list[str], system_pdb: str, system_xml: str) -> list[np.ndarray]:
    """C-alpha trajectories (T, N, 3) nm of reference runs, checked against the system's atoms."""
    from alcg.stages.aa import mapping_of

    mapping, pdb = mapping_of(system_pdb, system_xml)
    expected = [(a.residue.name, a.name) for a in pdb.topology.atoms()]
    out = []
    for f in run_files:
        run = aarun.load_run(f)
        aarun.check_topology(run, expected, f, system_pdb)
        out.append(mapping.map_coords(run["positions"], run["atom_indices"]))
    return out


def frame_interval_ps(run_files: list[str]) -> float:
    """Time between stored frames (ps), the same in every reference run (else DataError)."""
    intervals = {}
    for f in run_files:
        meta = aarun.metadata(f)
        intervals[f] = round(meta["record_interval_steps"] * meta["timestep_fs"] / 1000.0, 9)
        if intervals[f] <= 0:
            raise DataError(f"{f}: time between frames unknown, so the TICA lag (ps) cannot be set; "
                            "give reference_md.frame_interval_ps")
    if len(set(intervals.values())) > 1:
        raise DataError(f"reference runs have different frame intervals (ps) {intervals}; "
                        "TICA needs one lag: import them with one stride and frame interval")
    return next(iter(intervals.values()))


def expected_kept_frames(status: dict) -> int:
    """Frames the evaluation would keep had no replica stopped early (after burn-in).

    A replica that exploded stops saving frames, so the valid fraction is taken over this
    count, not over the frames that exist: an unstable model cannot look valid.
    """
    replicas = status["replicas"]
    per = status.get("frames_per_replica") or max((r["n_frames"] for r in replicas), default=0)
    return len(replicas) * max(per - status.get("burn_in_frames", 0), 0)


def kept_frames(xyz: np.ndarray, replicas: list[dict], burn_in_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames after each replica's burn-in, and a mask of those in the first half (in time)
    of each replica's kept frames (for the convergence check)."""
    keep, first = [], []
    for r in replicas:
        idx = np.arange(r["frame_offset"] + burn_in_frames, r["frame_offset"] + r["n_frames"])
        keep.append(idx)
        first.append(np.arange(len(idx)) < len(idx) // 2)
    if not keep:
        return xyz[:0], np.zeros(0, bool)
    return xyz[np.concatenate(keep)], np.concatenate(first)


def evaluate(reference_runs: list[str], reference_starts: list[str], system_pdb: str, system_xml: str,
             folded_pdb: str, traj: str, status: str, ev: Evaluate, sel: Select, seed: int, out: str,
             fes_plot: str, dist_plot: str) -> None:
    """Metrics of one evaluation simulation (after burn-in) against the reference ensemble.

    Invalid frames (broken bonds, clashes) are excluded from the distances but counted:
    ``valid_fraction`` is reported and ``low_valid_fraction`` flags a W1 computed on fewer
    than ``evaluate.min_valid_fraction`` of the frames.
    """
    import mdtraj as md

    from alcg import plots
    from alcg.cgtraj import load_trajectory
    from alcg.evaluate import TicaSpace, compare, w1_emd
    from alcg.select import physical_mask

    refs = reference_trajs(reference_runs, system_pdb, system_xml)
    ref_xyz = np.concatenate(refs)
    labels = np.concatenate([[s] * len(t) for s, t in zip(reference_starts, refs)])
    lag = max(1, int(round(ev.tica_lag_ps / frame_interval_ps(reference_runs))))
    tica = TicaSpace.fit(refs, lag, ev.tica_dim)
    folded = md.load(folded_pdb)
    folded_ca = folded.xyz[0][folded.topology.select("name CA")]
    xyz, replicas, _ = load_trajectory(traj, status)
    run_status = json.loads(Path(status).read_text())
    burn_in = run_status.get("burn_in_frames", 0)
    kept, first_half = kept_frames(xyz, replicas, burn_in)
    valid = physical_mask(kept, sel.bond_min_nm, sel.bond_max_nm, sel.min_distance_nm) \
        if len(kept) else np.zeros(0, bool)
    groups = {s: labels == s for s in dict.fromkeys(reference_starts)}
    metrics = compare(kept[valid], ref_xyz, tica, folded_ca, ev.folded_rmsd_nm, ev.n_subsamples,
                      ev.subsample_size, seed, ev.kl_bins, groups)
    valid_fraction = float(valid.sum()) / max(expected_kept_frames(run_status), len(valid), 1)
    a, b = kept[valid & first_half], kept[valid & ~first_half]
    metrics.update(
        tica_lag_frames=lag, burn_in_frames=burn_in, n_kept_frames=int(len(kept)),
        valid_fraction=valid_fraction, low_valid_fraction=valid_fraction < ev.min_valid_fraction,
        exploded_fraction=sum(r["status"] != "ok" for r in replicas) / max(len(replicas), 1),
        tica_w1_halves=w1_emd(tica.transform(a), tica.transform(b), 1, ev.subsample_size, seed)[0]
        if len(a) > 1 and len(b) > 1 else None)
    write_json(out, metrics)
    plots.tica_fes(tica.transform(ref_xyz), tica.transform(kept[valid]), fes_plot)
    plots.distributions(ref_xyz, kept[valid], dist_plot)
    log.info("evaluation: %s", metrics)


def summarize(layout: dict, ev: Evaluate, rounds_out: str, experiment_out: str, experiment_plot: str) -> None:
    """``rounds.tsv``, ``experiment.tsv`` and the W1-vs-oracle-cost plot."""
    from alcg import plots
    from alcg.summary import EXPERIMENT_COLUMNS, ROUND_COLUMNS, experiment_rows, round_rows, write_tsv

    rows = round_rows(layout)
    write_tsv(rows, ROUND_COLUMNS, rounds_out)
    write_tsv(experiment_rows(rows, ev.n_bootstrap, ev.ci_level), EXPERIMENT_COLUMNS, experiment_out)
    plots.experiment(rows, ev.n_bootstrap, ev.ci_level, experiment_plot)
