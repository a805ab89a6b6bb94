"""Stages of ``evaluate.smk``: evaluation of one model against the reference, and the summaries."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from alcg.formats import run_file
from alcg.util.errors import DataError
from alcg.util.fileio import write_json
from alcg.config.settings import Analysis, Evaluate, ForceField, PhysicalChecks

log = logging.getLogger(__name__)


def reference_trajs(run_files: list[str], system_pdb: str, system_xml: str) -> list[np.ndarray]:
    """C-alpha trajectories (T, N, 3) nm of reference runs, checked against the system's atoms."""
    from alcg.stages.finegrained import mapping_of

    mapping, pdb = mapping_of(system_pdb, system_xml)
    expected = [(a.residue.name, a.name) for a in pdb.topology.atoms()]
    out = []
    for f in run_files:
        run = run_file.load(f)
        run_file.check_topology(run, expected, f, system_pdb)
        out.append(mapping.map_coords(run.positions, run.atom_indices))
    return out


def frame_interval_ps(run_files: list[str]) -> float:
    """Time between stored frames (ps), the same in every reference run (else DataError)."""
    intervals = {}
    for f in run_files:
        meta = run_file.metadata(f)
        intervals[f] = round(meta["record_interval_steps"] * meta["timestep_fs"] / 1000.0, 9)
        if intervals[f] <= 0:
            raise DataError(f"{f}: time between frames unknown, so the TICA lag (ps) cannot be set; "
                            "give reference_md.frame_interval_ps")
    if len(set(intervals.values())) > 1:
        raise DataError(f"reference runs have different frame intervals (ps) {intervals}; "
                        "TICA needs one lag: import them with one stride and frame interval")
    return next(iter(intervals.values()))


def heldout_frames(runs: list[str], run_groups: list[str], system_pdb: str, system_xml: str, native: str | None,
                   q_threshold: float | None, n_per_stratum: int, seed: int, out: str, from_pool: bool = False,
                   label_kind: str | None = None, ff: ForceField | None = None, se2_target: float = 15.0,
                   max_ps: float = 500.0, threads: int | None = None, force_map_path: str | None = None,
                   pool_validation: bool = False) -> None:
    """The held-out force set (:mod:`alcg.analysis.heldout`) from ``runs``: stratified by Q for the Go
    model (``native``), else by each run's group (its start). ``from_pool``: the runs are the
    equilibrium pool, whose leading part the iid arm queries from: only the rest is used, and
    with ``pool_validation`` only what follows the validation part
    (:func:`alcg.analysis.heldout.pool_heldout_start`).
    ``label_kind``: ``instantaneous`` (or None: the runs' projected forces) or ``mean_force``
    (:func:`mean_force_labels` with ``ff``, ``se2_target`` (kJ/mol/nm)^2 and ``max_ps`` per frame).
    Instantaneous labels are the run's force map's (``force_map_path``; None: ``constrained``);
    a mean force is the same for every valid map."""
    from alcg.formats import dataset
    from alcg.analysis import heldout
    from alcg.stages.finegrained import load_force_map, mapping_of
    from alcg.finegrained.mapping import project_runs

    kind = label_kind or heldout.LABEL_KINDS[0]
    mapping, _ = mapping_of(system_pdb, system_xml)
    with_forces = [(r, g) for r, g in zip(runs, run_groups) if run_file.load(r).forces is not None]
    if not with_forces:  # e.g. an imported reference without forces: no paired force error
        log.warning("no held-out source run records forces: the paired force error is not computed")
        n = len(mapping.ca_indices)
        empty = np.zeros((0, n, 3), np.float32)
        heldout.save(out, heldout.HeldOut(empty, empty, np.zeros(0, str), np.zeros(0, str), np.zeros(0, np.int64)))
        return
    runs, run_groups = [r for r, _ in with_forces], [g for _, g in with_forces]
    data = project_runs(runs, mapping, 0, load_force_map(force_map_path))
    files = dataset.resolve_runs(set(data.source.tolist()), runs)
    if native:
        from alcg.finegrained import gomodel

        nat = gomodel.load_native(native)
        q = {key: gomodel.fraction_native_contacts(run_file.load(path).positions, nat) for key, path in files.items()}
        qs = np.array([q[s][k] for s, k in zip(data.source, data.frame)])
        strata = heldout.q_strata(qs, q_threshold, CORE_MARGIN_Q)
    else:
        group = {dataset.run_key(r): g for r, g in zip(runs, run_groups)}
        strata = np.array([group[s] for s in data.source])
    if from_pool:  # leave the iid arm's part of every pool run out
        n_run = {key: run_file.load(path).n_frames for key, path in files.items()}
        usable = np.array([f >= heldout.pool_heldout_start(n_run[s], pool_validation)
                           for s, f in zip(data.source, data.frame)])
        strata = np.where(usable, strata, "")
    pick = heldout.stratified_pick(strata, n_per_stratum, seed)
    pick = pick[strata[pick] != ""]
    forces, se2 = data.forces[pick], None
    if kind == "mean_force" and len(pick):
        positions, atom_indices = _recorded_positions(files, data.source[pick], data.frame[pick])
        mf = mean_force_labels(system_pdb, system_xml, positions, atom_indices, ff, se2_target, max_ps, seed, threads)
        forces, se2 = mf.forces.astype(np.float32), mf.se2
    heldout.save(out, heldout.HeldOut(data.coords[pick], forces, strata[pick], data.source[pick], data.frame[pick],
                                      force_se2=se2, label_kind=kind, populations=heldout.populations(strata)))
    log.info("held-out force set (%s labels): %s; populations %s", kind,
             {s: int((strata[pick] == s).sum()) for s in sorted(set(strata[pick].tolist()))}, heldout.populations(strata))


def _recorded_positions(files: dict, source: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions (F, n_recorded, 3) nm, recorded atom indices) of frames ``frame`` of runs ``source``."""
    runs = {key: run_file.load(files[key]) for key in sorted(set(source.tolist()))}
    positions = np.stack([runs[s].positions[k] for s, k in zip(source, frame)])
    return positions, next(iter(runs.values())).atom_indices


#: mean-force held-out labels: sampled time between force samples, the first (and each further)
#: sampled chunk, unsampled equilibration per frame (ps), and blocks of the standard error;
#: 10 blocks of at least 10 ps (the slowest Go side-chain force components decorrelate in ~5 ps)
HELDOUT_SAMPLE_PS, HELDOUT_CHUNK_PS, HELDOUT_EQUILIBRATION_PS, HELDOUT_BLOCKS = 0.1, 100.0, 2.0, 10


def mean_force_labels(system_pdb: str, system_xml: str, positions: np.ndarray, atom_indices: np.ndarray | None,
                      ff: ForceField, se2_target: float, max_ps: float, seed: int, threads: int | None = None):
    """Mean-force labels (:func:`alcg.finegrained.meanforce_query.label_frames`, residue force map
    built from the system) of recorded frames ``positions`` (F, n_recorded, 3) nm of the atoms
    ``atom_indices``; the other particles (none on the Go model) stay at the system PDB's."""
    import openmm.unit as unit

    from alcg.finegrained import force_maps
    from alcg.finegrained.mapping import CAMapping
    from alcg.finegrained.meanforce_query import MeanForceSpec, label_frames
    from alcg.finegrained.prepare import load_prepared
    from alcg.stages.validate import steps

    pdb, system = load_prepared(system_pdb, system_xml)
    full = np.repeat(np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))[None], len(positions), 0)
    if len(positions):
        full[:, atom_indices] = positions
    fmap = force_maps.residue(pdb.topology, CAMapping(pdb.topology, system), np.arange(system.getNumParticles()),
                              system)
    interval = max(1, steps(HELDOUT_SAMPLE_PS, ff.timestep_fs))
    spec = MeanForceSpec(n_steps=steps(HELDOUT_CHUNK_PS, ff.timestep_fs), record_interval=interval,
                         equilibration_steps=steps(HELDOUT_EQUILIBRATION_PS, ff.timestep_fs), restraint_k=0.0,
                         n_blocks=HELDOUT_BLOCKS, seed=seed)
    return label_frames(system, pdb.topology, full, spec, ff, fmap=fmap, se2_target=se2_target,
                        max_steps=steps(max_ps, ff.timestep_fs), threads=threads)


def fit_tica(reference_runs: list[str], system_pdb: str, system_xml: str, lag_ps: float, dim: int,
             out: str) -> None:
    """The run's TICA space (:mod:`alcg.analysis.tica`), fitted once on the reference's C-alpha pair
    distances at a lag of ``lag_ps`` ps (``evaluate.tica_lag_ps``, rounded to whole frames, at
    least one), keeping ``dim`` components (``evaluate.tica_dim``); every ``evaluate`` job
    reads it."""
    from alcg.analysis import tica

    interval = frame_interval_ps(reference_runs)
    lag = max(1, int(round(lag_ps / interval)))
    space = tica.TicaSpace.fit(reference_trajs(reference_runs, system_pdb, system_xml), lag, dim,
                               frame_interval_ps=interval)
    tica.save(out, space)
    log.info("TICA fitted on %d reference frames: lag %d frames (%.4g ps), %d components",
             space.n_reference_frames, lag, lag * interval, space.dim)


def evaluate(reference_runs: list[str], reference_starts: list[str], system_pdb: str, system_xml: str,
             folded_pdb: str, tica_path: str, traj: str | None, status: str | None, ev: Evaluate, sel: PhysicalChecks,
             seed: int,
             out: str, fes_plot: str, dist_plot: str, model_path: str | None = None, heldout_path: str | None = None,
             native: str | None = None) -> None:
    """Metrics of one evaluation simulation (after burn-in) against the reference ensemble,
    and of its model on the held-out force set (:func:`alcg.analysis.heldout.force_errors`); for the Go
    model (``native``) also on its C-alpha fraction of native contacts Q and (Q, Rg).

    TICA coordinates are those of the run's one fit (``tica_path``: :func:`fit_tica`).

    Invalid frames (broken bonds, clashes) are excluded from the distances but counted:
    ``valid_fraction`` is reported and ``low_valid_fraction`` flags a W1 computed on fewer
    than ``evaluate.min_valid_fraction`` of the frames.

    ``traj`` None: the round has no evaluation run by design (``cg_evaluate.rounds``): only the
    held-out numbers, ``simulated`` False, and figures that say so.
    """
    import mdtraj as md

    from alcg.formats import cg_trajectory
    from alcg.analysis import tica as tica_file

    refs = reference_trajs(reference_runs, system_pdb, system_xml)
    ref_xyz = np.concatenate(refs)
    labels = np.concatenate([[s] * len(t) for s, t in zip(reference_starts, refs)])
    tica = tica_file.load(tica_path)
    folded = md.load(folded_pdb)
    folded_ca = folded.xyz[0][folded.topology.select("name CA")]
    if traj is None:
        metrics, model_xyz = {"simulated": False}, ref_xyz[:0]
    else:
        sim = cg_trajectory.load(traj, status)
        kept, first_half = sim.kept_frames()
        metrics, model_xyz = frame_metrics(kept, first_half, sim.expected_kept_frames(), ref_xyz, labels, tica,
                                           folded_ca, ev, sel, seed)
        metrics.update(simulated=True, burn_in_frames=sim.run.burn_in_frames, exploded_fraction=sim.exploded_fraction)
    if native and len(model_xyz):
        metrics.update(_go_order_metrics(model_xyz, ref_xyz, native, ev.divergence_bins))
    if model_path and heldout_path:
        from alcg.analysis import heldout
        from alcg.cg.model import load_model

        metrics.update(heldout.force_errors(load_model(model_path, "cpu"), heldout.load(heldout_path)))
    write_json(out, metrics)
    if traj is None:
        from alcg.analysis.plots import note_figure

        for path in (fes_plot, dist_plot):
            note_figure("no evaluation run in this round (cg_evaluate.rounds: ends); the held-out force "
                        "error is in metrics.json", path)
    else:
        evaluation_plots(ref_xyz, model_xyz, tica, fes_plot, dist_plot)
    log.info("evaluation: %s", metrics)


def _rg(xyz: np.ndarray) -> np.ndarray:
    """Radius of gyration (nm) of each C-alpha frame of ``xyz`` (F, N, 3) nm."""
    from alcg.analysis.evaluate import internal_coordinates

    return internal_coordinates(xyz)["rg"][:, 0]


def _go_order_metrics(model_xyz: np.ndarray, ref_xyz: np.ndarray, native: str, bins: int) -> dict:
    """:func:`alcg.analysis.evaluate.order_parameter_metrics` of model and reference C-alpha frames:
    the C-alpha Q of the Go model's native contacts and Rg."""
    from alcg.analysis.evaluate import order_parameter_metrics
    from alcg.finegrained import gomodel

    nat = gomodel.load_native(native)
    return order_parameter_metrics(gomodel.ca_fraction_native_contacts(model_xyz, nat),
                                   gomodel.ca_fraction_native_contacts(ref_xyz, nat),
                                   _rg(model_xyz), _rg(ref_xyz), bins)


def explore_coverage(reference_runs: list[str], system_pdb: str, system_xml: str, traj: str, status: str,
                     bins: int, out: str, native: str | None = None, tica_path: str | None = None) -> None:
    """How far one exploration run reached: :func:`alcg.analysis.evaluate.plane_coverage` of its
    frames (every saved frame, also those of replicas that later exploded) on the reference's
    plane: (Q, Rg) for the Go model (``native``), else TIC 1/TIC 2 of the run's one fit (TIC 1
    and Rg with one TICA dimension), on ``bins`` x ``bins`` bins (``evaluate.divergence_bins``).
    An evaluation job: only evaluation reads the reference."""
    from alcg.formats import cg_trajectory
    from alcg.analysis.evaluate import plane_coverage

    ref_xyz = np.concatenate(reference_trajs(reference_runs, system_pdb, system_xml))
    run = cg_trajectory.load(traj, status)
    plane, label = _coverage_plane(native, tica_path)
    cover = plane_coverage(plane(ref_xyz), plane(run.xyz), bins) if len(run.xyz) else \
        {"bins_reached": 0.0, "mass_reached": 0.0, "share_outside": None}
    info = json.loads(Path(status).read_text())  # the run's totals: how it was started, how hot
    result = {"plane": label, **cover, "n_frames": int(len(run.xyz)), "n_exploded_replicas": int(run.n_exploded),
              **{k: info.get(k) for k in ("starts", "temperature_k", "n_distinct_starts") if k in info}}
    write_json(out, result)
    log.info("exploration coverage: %s", result)


def _coverage_plane(native: str | None, tica_path: str | None):
    """(function (F, N, 3) nm -> (F, 2), its axis names) of :func:`explore_coverage`."""
    if native:
        from alcg.finegrained import gomodel

        nat = gomodel.load_native(native)
        return (lambda x: np.column_stack([gomodel.ca_fraction_native_contacts(x, nat), _rg(x)])), "Q, Rg"
    from alcg.analysis import tica as tica_file

    tica = tica_file.load(tica_path)
    if tica.dim >= 2:
        return (lambda x: tica.transform(x)[:, :2]), "TIC 1, TIC 2"
    return (lambda x: np.column_stack([tica.transform(x)[:, 0], _rg(x)])), "TIC 1, Rg"


def equilibrium(reference_runs: list[str], reference_starts: list[str], system_pdb: str, system_xml: str,
                folded_pdb: str, tica_path: str, traj: str, status: str, frame_ps: float, ev: Evaluate,
                sel: PhysicalChecks, seed: int, out: str, plot: str, *, native: str | None,
                q_threshold: float | None) -> dict:
    """The equilibrium evaluation of one model (``cg_equilibrium``): its runs from each reference
    start, after burn-in, checked as the reference is (:func:`alcg.analysis.convergence.check`
    per start group) and compared with the reference by the same criterion.

    Folded: the C-alpha fraction of native contacts above ``q_threshold`` for the Go model
    (``native``; the order parameter a CG frame has, computed alike on the reference's
    C-alphas), else the C-alpha RMSD to the folded start below ``evaluate.folded_rmsd_nm``.

    Writes ``metrics.json``: the model's own verdict (``converged``, ``reasons``: do its start
    groups agree, by the reference check's criteria?); ``p_fold`` (mean of the start groups'
    P_fold, with ``p_fold_se``) and ``p_fold_error`` (|model - reference|) only when they do
    (else None: runs that never crossed would read ~0.5, the share of their starts);
    ``p_fold_start_min`` / ``p_fold_start_max`` (the start groups' P_fold, always);
    ``reference_p_fold`` (``reference_p_fold_se``); the per-group reports (``groups``,
    ``reference_groups``: P_fold, its SE, transitions); the W1 of the
    order parameter (``order_w1``: F(Q) agreement), and :func:`frame_metrics`' distances on the
    valid frames (TICA W1, JS, (Q, Rg) JS for the Go model); a plot of F = -kT ln p of the order
    parameter, model and reference, in kT.
    """
    import mdtraj as md

    from alcg.analysis import convergence, tica as tica_file
    from alcg.formats import cg_trajectory

    folded = md.load(folded_pdb)
    folded_ca = folded.xyz[0][folded.topology.select("name CA")]
    order, name, threshold, above = _fold_order(native, q_threshold, folded_ca, ev)
    refs = reference_trajs(reference_runs, system_pdb, system_xml)
    ref_groups: dict[str, list[dict]] = {}
    for start, ca in zip(reference_starts, refs):
        ref_groups.setdefault(start, []).append(_fold_run(order(ca), name, threshold, above))
    sim = cg_trajectory.load(traj, status)
    burn, labels = sim.run.burn_in_frames, sim.run.start_label
    groups: dict[str, list[dict]] = {}
    for r in sim.replicas:
        x = sim.xyz[r.frame_offset + burn:r.frame_offset + r.n_frames]
        if len(x) >= 2:
            groups.setdefault(labels[r.replica], []).append(_fold_run(order(x), name, threshold, above))
    metrics: dict = {"folded_by": f"{name} {'>' if above else '<'} {threshold}",
                     "n_replicas": len(sim.replicas), "n_exploded_replicas": int(sim.n_exploded)}
    ref_report = convergence.check(ref_groups, frame_interval_ps(reference_runs))
    metrics.update(_p_fold(ref_report, "reference_"), reference_groups=_group_summary(ref_report))
    if groups:
        report = convergence.check(groups, frame_ps)
        metrics.update(model_p_fold(report, metrics["reference_p_fold"]), groups=_group_summary(report),
                       converged=report["converged"], reasons=report["reasons"])
    kept, first_half = sim.kept_frames()
    ref_xyz = np.concatenate(refs)
    ref_labels = np.concatenate([[s] * len(t) for s, t in zip(reference_starts, refs)])
    frames, model_xyz = frame_metrics(kept, first_half, sim.expected_kept_frames(), ref_xyz, ref_labels,
                                      tica_file.load(tica_path), folded_ca, ev, sel, seed)
    metrics.update({k: frames.get(k) for k in ("tica_w1", "tica_js", "valid_fraction", "low_valid_fraction",
                                               "n_model_frames")})
    if len(model_xyz):
        from scipy.stats import wasserstein_distance

        metrics["order_w1"] = float(wasserstein_distance(order(model_xyz), order(ref_xyz)))
        if native:
            metrics["q_rg_js"] = _go_order_metrics(model_xyz, ref_xyz, native, ev.divergence_bins)["q_rg_js"]
    write_json(out, metrics)
    from alcg.analysis.plots import free_energy_profiles

    free_energy_profiles(order(ref_xyz), order(model_xyz) if len(model_xyz) else np.zeros(0), name, threshold, plot)
    log.info("equilibrium evaluation: P_fold %s (start groups %s-%s) vs reference %.3f; %s", metrics.get("p_fold"),
             metrics.get("p_fold_start_min"), metrics.get("p_fold_start_max"),
             metrics["reference_p_fold"], metrics.get("reasons"))
    return metrics


#: summary/equilibrium.tsv: one row per seed and arm (metrics.json of :func:`equilibrium`)
EQUILIBRIUM_COLUMNS = ["seed", "arm", "folded_by", "converged", "p_fold", "p_fold_se", "p_fold_start_min",
                       "p_fold_start_max", "reference_p_fold", "reference_p_fold_se", "p_fold_error", "order_w1",
                       "tica_w1", "tica_js", "q_rg_js", "valid_fraction", "n_replicas", "n_exploded_replicas"]


def equilibrium_table(layout: dict, out: str) -> None:
    """``summary/equilibrium.tsv`` from ``{seed: {arm: metrics.json}}`` (:data:`EQUILIBRIUM_COLUMNS`);
    ``converged``: whether the model's own start groups agree (reference_check's criteria)."""
    from alcg.analysis.summary import write_tsv

    rows = []
    for seed, arms in layout.items():
        for arm, path in arms.items():
            m = json.loads(Path(path).read_text())
            rows.append({"seed": seed, "arm": arm, **{c: m.get(c) for c in EQUILIBRIUM_COLUMNS[2:]}})
    write_tsv(rows, EQUILIBRIUM_COLUMNS, out)
    log.info("equilibrium evaluations: %d models", len(rows))


def _fold_order(native: str | None, q_threshold: float | None, folded_ca: np.ndarray, ev: Evaluate):
    """(order parameter of C-alpha frames, its name, the folded threshold, folded above it?)."""
    from alcg.analysis.evaluate import rmsd_to_structure

    if native:
        from alcg.finegrained import gomodel

        nat = gomodel.load_native(native)
        return (lambda x: gomodel.ca_fraction_native_contacts(x, nat)), "C-alpha Q", q_threshold, True
    return (lambda x: rmsd_to_structure(x, folded_ca)), "C-alpha RMSD to folded / nm", ev.folded_rmsd_nm, False


def _fold_run(values: np.ndarray, name: str, threshold: float, above: bool) -> dict:
    """One run as :func:`alcg.analysis.convergence.check` reads it."""
    from alcg.analysis import convergence

    margin = CORE_MARGIN_Q if above else CORE_MARGIN_RMSD_FRACTION * threshold
    return {"folded": values > threshold if above else values < threshold, "order": values,
            "core": convergence.core_sets(values, threshold, margin, folded_above=above)}


def model_p_fold(report: dict, reference_p_fold: float) -> dict:
    """A model's P_fold from its convergence report: the start groups' range always; the mean,
    its SE and the error against ``reference_p_fold`` only when the groups agree
    (``report["converged"]``), else None (a mean of groups that never crossed measures the
    starts, not the model)."""
    p = [g["p_fold"] for g in report["groups"].values()]
    out = {"p_fold_start_min": float(min(p)), "p_fold_start_max": float(max(p)),
           "p_fold": None, "p_fold_se": None, "p_fold_error": None}
    if report["converged"]:
        out.update(_p_fold(report, ""))
        out["p_fold_error"] = abs(out["p_fold"] - reference_p_fold)
    return out


def _p_fold(report: dict, prefix: str) -> dict:
    """P_fold as the mean of the start groups' (equal weight) and its standard error."""
    g = list(report["groups"].values())
    p = float(np.mean([x["p_fold"] for x in g]))
    se = float(np.sqrt(np.sum([x["p_fold_se"] ** 2 for x in g])) / len(g))
    return {f"{prefix}p_fold": p, f"{prefix}p_fold_se": se}


def _group_summary(report: dict) -> dict:
    return {s: {k: g[k] for k in ("p_fold", "p_fold_se", "n_transitions", "tau_ps", "length_ps")}
            for s, g in report["groups"].items()}


def frame_metrics(kept: np.ndarray, first_half: np.ndarray, expected_frames: int, ref_xyz: np.ndarray,
                  ref_labels: np.ndarray, tica, folded_ca: np.ndarray, ev: Evaluate, sel: PhysicalChecks,
                  seed: int) -> tuple[dict, np.ndarray]:
    """The metrics of :func:`evaluate` computed from frames in memory, and the valid model frames.

    Parameters
    ----------
    kept : (F, N, 3) nm, the evaluation run's frames after burn-in
    first_half : (F,) True for frames in the first half (in time) of their replica's kept frames
    expected_frames : frames the run would keep had no replica stopped early
    ref_xyz : (G, N, 3) nm reference C-alpha frames; ``ref_labels`` (G,) the start of each
    tica : the run's :class:`alcg.analysis.tica.TicaSpace`
    folded_ca : (N, 3) nm C-alpha coordinates of the folded structure
    """
    from alcg.selection.rmsd_coverage import physical_mask
    from alcg.analysis.evaluate import compare, w1_emd

    valid = physical_mask(kept, sel.bond_min_nm, sel.bond_max_nm, sel.min_distance_nm) \
        if len(kept) else np.zeros(0, bool)
    model_xyz = kept[valid]
    groups = {s: ref_labels == s for s in dict.fromkeys(ref_labels.tolist())}
    metrics = compare(model_xyz, ref_xyz, tica, folded_ca, ev, seed, groups)
    valid_fraction = float(valid.sum()) / max(expected_frames, len(valid), 1)
    a, b = kept[valid & first_half], kept[valid & ~first_half]
    metrics.update(
        tica_lag_frames=tica.lag_frames, n_kept_frames=int(len(kept)),
        valid_fraction=valid_fraction, low_valid_fraction=valid_fraction < ev.min_valid_fraction,
        tica_w1_halves=w1_emd(tica.transform(a), tica.transform(b), n_subsamples=1,
                              subsample_size=ev.subsample_size, seed=seed)[0]
        if len(a) > 1 and len(b) > 1 else None)
    return metrics, model_xyz


def evaluation_plots(ref_xyz: np.ndarray, model_xyz: np.ndarray, tica, fes_plot: str, dist_plot: str) -> None:
    """The TICA free-energy and the internal-coordinate plots of :func:`evaluate`."""
    from alcg.analysis import plots

    plots.tica_fes(tica.transform(ref_xyz), tica.transform(model_xyz), fes_plot)
    plots.distributions(ref_xyz, model_xyz, dist_plot)


def summarize(layout: dict, ev: Evaluate, plan: Analysis, reference_report: str, rounds_out: str,
              experiment_out: str, primary_out: str, experiment_plot: str) -> None:
    """``rounds.tsv``, ``experiment.tsv``, the pre-registered ``primary.tsv`` and the
    W1-vs-oracle-cost plot. Every row says whether the reference its metrics are measured
    against passed its convergence check."""
    from alcg.analysis import convergence
    from alcg.analysis.summary import round_rows, with_label_location

    converged = bool(convergence.load(reference_report)["converged"])
    if not converged:
        log.warning("the reference is NOT converged: every metric against it is marked "
                    "(rounds.tsv reference_converged = False)")
    rows = [{**r, "reference_converged": converged} for r in round_rows(layout)]
    write_summary(with_label_location(rows, layout), ev, plan, rounds_out, experiment_out, primary_out,
                  experiment_plot)


def write_summary(rows: list[dict], ev: Evaluate, plan: Analysis, rounds_out: str, experiment_out: str,
                  primary_out: str, experiment_plot: str) -> None:
    """Write ``rounds.tsv``, ``experiment.tsv``, ``primary.tsv`` and the plot from round rows."""
    from alcg.analysis import plots, primary
    from alcg.analysis.summary import EXPERIMENT_COLUMNS, LABEL_COLUMNS, ROUND_COLUMNS, experiment_rows, write_tsv

    converged = all(r["reference_converged"] for r in rows)
    write_tsv(rows, ROUND_COLUMNS + LABEL_COLUMNS, rounds_out)
    write_tsv(experiment_rows(rows, ev.n_bootstrap, ev.ci_level), EXPERIMENT_COLUMNS, experiment_out)
    primary_table = primary.primary_rows(rows, plan, ev.ci_level, ev.n_bootstrap)
    write_tsv(primary_table, primary.COLUMNS, primary_out)
    for row in primary_table:
        gap = row["role"] == "gap_closed"
        log.info("pre-registered %s endpoint %s (%s), %s: %s (%s %.4g, CI [%.4g, %.4g], %d seeds%s)",
                 row["endpoint"], row["metric"], row["role"], row["comparison"], row["verdict"],
                 "share" if gap else "mean", row["share"] if gap else row["mean_difference"],
                 row["share_ci_low"] if gap else row["t_ci_low"], row["share_ci_high"] if gap else row["t_ci_high"],
                 row["n_seeds"], "" if converged else "; reference NOT converged")
    plots.experiment(rows, ev.n_bootstrap, ev.ci_level, experiment_plot, plan.primary_metric,
                     plan.positive_control[1] if plan.positive_control else None)


#: core sets of the transition count (:func:`alcg.analysis.convergence.core_sets`): Q this far beyond
#: the Go model's Q*, or the RMSD to the folded start this fraction of its threshold beyond it
CORE_MARGIN_Q = 0.15
CORE_MARGIN_RMSD_FRACTION = 0.25


def reference_check(reference_runs: list[str], reference_starts: list[str], system_pdb: str, system_xml: str,
                    folded_pdb: str, native: str | None, ev: Evaluate, q_threshold: float | None,
                    shared_start: bool, out: str, plot: str) -> dict:
    """The convergence report of the reference (:mod:`alcg.analysis.convergence`): do its start groups
    agree? Folded: C-alpha RMSD to the folded start below ``ev.folded_rmsd_nm``, or, for the Go
    model (``native``: its native file), a fraction of native contacts Q above ``q_threshold``.
    ``shared_start``: every start is the same structure (``system.pdb``), so agreement cannot
    show convergence from unfolded states and the verdict is refused."""
    import mdtraj as md

    from alcg.analysis import convergence, evaluate as ev_mod, plots

    folded = md.load(folded_pdb)
    folded_ca = folded.xyz[0][folded.topology.select("name CA")]
    nat = None
    if native:
        from alcg.finegrained import gomodel

        nat = gomodel.load_native(native)
    groups: dict[str, list[dict]] = {}
    for f, start, ca in zip(reference_runs, reference_starts, reference_trajs(reference_runs, system_pdb, system_xml)):
        rmsd = ev_mod.rmsd_to_structure(ca, folded_ca)
        run = {"folded": rmsd < ev.folded_rmsd_nm, "rmsd_folded_nm": rmsd,
               "core": convergence.core_sets(rmsd, ev.folded_rmsd_nm, CORE_MARGIN_RMSD_FRACTION * ev.folded_rmsd_nm,
                                             folded_above=False),
               "rg_nm": ev_mod.internal_coordinates(ca)["rg"][:, 0]}
        if nat is not None:
            q = gomodel.fraction_native_contacts(run_file.load(f).positions, nat)
            run.update(folded=q > q_threshold, q=q,
                       core=convergence.core_sets(q, q_threshold, CORE_MARGIN_Q, folded_above=True))
        groups.setdefault(start, []).append(run)
    report = convergence.check(groups, frame_interval_ps(reference_runs))
    if shared_start:
        report["converged"] = False
        report["reasons"].append("every start is the same structure (system.pdb): agreement of the starts "
                                 "cannot show convergence from unfolded states")
    report["folded_by"] = f"Q > {q_threshold}" if nat is not None else f"C-alpha RMSD < {ev.folded_rmsd_nm} nm"
    convergence.save(out, report)
    plots.reference_halves(groups, report, plot)
    log.info("reference %s: %s", "converged" if report["converged"] else "NOT converged",
             report["reasons"] or report["z"])
    return report
