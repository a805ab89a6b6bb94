"""Stages of ``query.smk``: select -> backmap -> oracle -> project -> merge, shared by every arm."""
from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from alcg.formats import run_file, dataset, selection_file, slot_start
from alcg.formats.run_file import Status
from alcg.stages.validate import steps
from alcg.hardware.device import choose_local
from alcg.util.errors import SimulationError
from alcg.util.fileio import write_json
from alcg.config.settings import Backmap, ForceField, Oracle, Select

log = logging.getLogger(__name__)


def _committee(member_paths: list[str], device: str):
    import torch

    from alcg.cg.model import load_model

    device = choose_local(device)  # select is a local rule: it never needs a GPU
    fns = []
    for path in member_paths:
        model = load_model(path, device)

        def fn(x, model=model):
            xt = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
            return model.energy_and_forces(xt)[1].detach().cpu().numpy()
        fns.append(fn)
    return fns


def select(arm: str, traj: str | None, status: str | None, dataset_path: str, members: list[str],
           settings: Select, device: str, seed: int, out: str, table_out: str, plot_out: str,
           pool: tuple[list[str], str, str] | None = None) -> None:
    """Run the arm's selector; write the picks (``selected.npz``), a table and a histogram.

    ``pool``: the equilibrium pool's run files with the system PDB and XML (``iid`` only)."""
    from alcg.selection import selectors
    from alcg.formats import cg_trajectory
    from alcg.selection.rmsd_coverage import plot_histogram

    cls = selectors.of_arm(arm, settings)
    cols = dataset.columns(dataset_path, "coords", "split")  # no forces: selection needs none
    coords, idx = cols["coords"], np.flatnonzero(dataset.train_mask(cols["split"]))
    xyz, n_exploded = np.zeros((0, *coords.shape[1:]), np.float32), 0
    if cls.uses_cg:
        run = cg_trajectory.load(traj, status)
        xyz, n_exploded = run.xyz, run.n_exploded
        if len(xyz) == 0:
            raise SimulationError(f"{traj} holds no frames: every CG replica exploded before its first "
                                  "save; lower cg_sim.dt_ps or check the model")
    inp = selectors.SelectionInput(xyz, coords[idx], idx,
                                   _committee(members, device) if cls.uses_committee else [],
                                   _pool_coords(*pool) if cls.uses_pool else None)
    n_slots = settings.n_select
    ask = replace(settings, n_select=n_slots * (1 + settings.n_spare)) if cls.uses_cg else settings
    res = cls(ask, seed).fit(inp).fetch_model()
    n_primary = min(len(res.template), n_slots)
    table = {**res.table, "arm": arm, "n_exploded_replicas": n_exploded, "n_slots": n_slots,
             "n_selected": n_primary, "n_spares": int(len(res.template) - n_primary)}
    # a training frame per slot, drawn now (seeded): the start of a slot whose picks all fail
    fallback = np.random.default_rng([seed, 1]).choice(idx, n_slots, replace=len(idx) < n_slots)
    selection_file.save(out, selection_file.SelectionFile(
        targets=res.targets, template=res.template, backmap=res.backmap, picked=res.picked,
        n_slots=n_slots, fallback_template=fallback, table=table, source=res.source))
    write_json(table_out, table)
    plot_histogram(res.scores, res.picked[:n_slots], *res.window, res.score_label or "score", plot_out)
    log.info("selection (%s): %s", arm, table)


def _pool_coords(runs: list[str], system_pdb: str, system_xml: str) -> np.ndarray:
    """C-alpha frames (P, N, 3) nm the iid arm may start from: the leading part of every pool
    run (:func:`alcg.analysis.heldout.pool_query_count`; the rest is held out), runs in order."""
    from alcg.analysis.heldout import pool_query_count
    from alcg.stages.analysis import reference_trajs

    return np.concatenate([t[:pool_query_count(len(t))] for t in reference_trajs(runs, system_pdb, system_xml)])


def _pool_frame(runs: list[str], k: int) -> tuple[np.ndarray, str, int]:
    """Fine-grained positions (nm) of pool frame ``k`` (counted as :func:`_pool_coords` does)."""
    from alcg.analysis.heldout import pool_query_count

    for path in runs:
        n = pool_query_count(run_file.frame_count(path))
        if k < n:
            return run_file.positions_at(path, k).astype(np.float64), Path(path).name, k
        k -= n
    raise IndexError(f"pool frame beyond the {len(runs)} pool runs")


def backmap(selected: str, dataset_path: str, runs: list[str], system_pdb: str, system_xml: str,
            native: str | None, ff: ForceField, bm: Backmap, slot: int, out: str,
            pool_runs: list[str] = ()) -> None:
    """The start structure of ``slot``: its CG pick backmapped, or a training frame as is.

    A rejected backmap tries the slot's spare picks in rank order; when none is accepted (or
    the selector found too few frames) the slot starts from its fallback training frame, so
    that the oracle budget is the same for every arm. ``runs`` are the AA run files the
    dataset may name (declared inputs); templates are read from them by run key.
    """
    import openmm.app as app

    sel = selection_file.load(selected)
    pdb = app.PDBFile(system_pdb)
    if not sel.backmap:
        if slot >= len(sel.template):
            slot_start.save_without_structure(out, Status.SKIPPED, "no frame selected for this slot", slot=slot)
            return
        if sel.source == "pool":
            from alcg.finegrained.structure import pdb_text

            positions, key, frame = _pool_frame(list(pool_runs), int(sel.template[slot]))
            meta = {"template_source": f"pool/{key}", "template_frame": frame, "slot": slot,
                    "reason": "equilibrium pool frame, as is"}
            log.info("start of slot %d: %s", slot, meta)
            slot_start.save_structure(out, pdb_text(pdb.topology, positions), **meta)
            return
        _write_training_start(out, pdb, dataset_path, runs, int(sel.template[slot]),
                              {"slot": slot, "reason": "training frame, as is"})
        return
    rejected = []
    for c in sel.slot_candidates(slot):
        template = _frame(dataset_path, runs, int(sel.template[c]))
        res, text = _backmap(pdb, system_xml, native, ff, bm, sel.targets[c].astype(np.float64), template[0])
        meta = {"template_source": template[1], "template_frame": template[2], "slot": slot, "pick": c,
                "ca_rmsd_nm": res.ca_rmsd_nm, "n_clashes": res.n_clashes, "chirality_ok": res.chirality_ok,
                "energy_kj_mol": res.energy_kj_mol, "reason": res.reason, **res.info}
        if res.accepted:
            meta.update(n_rejected=len(rejected), rejected=rejected, fallback=False)
            log.info("backmap slot %d: %s", slot, meta)
            slot_start.save_structure(out, text, **meta)
            return
        rejected.append({"pick": c, "reason": res.reason})
        log.info("backmap slot %d: pick %d rejected (%s)", slot, c, res.reason)
    _write_training_start(out, pdb, dataset_path, runs, int(sel.fallback_template[slot]),
                          {"slot": slot, "fallback": True, "n_rejected": len(rejected), "rejected": rejected,
                           "reason": "no accepted CG pick: a training frame as is (as the md arm)"})


def _frame(dataset_path: str, runs: list[str], k: int) -> tuple[np.ndarray, str, int]:
    """AA positions (nm) of dataset frame ``k``, with its run key and frame number; reads that
    frame's provenance and that one frame of its run, nothing else."""
    key, frame = dataset.frame_source(dataset_path, k)
    positions = run_file.positions_at(dataset.resolve_runs([key], runs)[key], frame)
    return positions.astype(np.float64), key, frame


def _write_training_start(out: str, pdb, dataset_path: str, runs: list[str], k: int, meta: dict) -> None:
    from alcg.finegrained.structure import pdb_text

    positions, key, frame = _frame(dataset_path, runs, k)
    meta = {"template_source": key, "template_frame": frame, **meta}
    log.info("start of slot %d: %s", meta["slot"], meta)
    slot_start.save_structure(out, pdb_text(pdb.topology, positions), **meta)


def _backmap(pdb, system_xml: str, native: str | None, ff: ForceField, bm: Backmap, target: np.ndarray,
             template: np.ndarray):
    from alcg.finegrained.backmap import RestrainedMinimizationBackmapper
    from alcg.finegrained.models import for_forcefield

    model = for_forcefield(ff)
    mapper = RestrainedMinimizationBackmapper(pdb.topology, model.backmap_system(pdb.topology, system_xml), bm,
                                              platform=ff.platform, place=model.backmap_placement(native))
    res = mapper.backmap(target, template)
    return res, mapper.pdb_text(res.positions_nm)


def oracle(start: str, prepared_xml: str, ff: ForceField, oracle_cfg: Oracle, seed: int, out: str,
           threads: int | None = None, force_map_path: str | None = None) -> None:
    """One query from the slot's start structure, as ``oracle.labels`` says: ``instantaneous``
    (restrained equilibration + unrestrained recorded MD) or ``mean_force`` (C-alphas held, one
    labelled configuration: :mod:`alcg.finegrained.meanforce_query`, whose bead samples are
    mapped with the force map of ``force_map_path``; None: the constrained map).

    A failure (exception, NaN, energy blow-up) is recorded in ``out`` as status ``failed``.
    """
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.models import for_forcefield

    begin = slot_start.load(start)
    if not begin.ok:
        run_file.save_status(out, Status.SKIPPED, begin.reason)
        return
    work = Path(out).parent / f".{Path(out).stem}.work"
    try:
        work.mkdir(parents=True, exist_ok=True)
        pdb_in = work / "start_in.pdb"
        pdb_in.write_text(begin.pdb)
        pdb_out, xml_out = work / "start.pdb", work / "start.xml"
        if not xml_out.exists():
            for_forcefield(ff).query_files(pdb_in, prepared_xml, pdb_out, xml_out, seed)
        if oracle_cfg.labels == "mean_force":
            _mean_force_query(pdb_out, xml_out, out, oracle_cfg, ff, seed, threads, force_map_path)
        else:
            spec = MDSpec(n_steps=steps(oracle_cfg.length_ps, ff.timestep_fs),
                          record_interval=oracle_cfg.record_interval_steps,
                          restraint_steps=steps(oracle_cfg.restraint_ps, ff.timestep_fs),
                          restraint_k=oracle_cfg.restraint_k, checkpoint_every=oracle_cfg.checkpoint_every,
                          seed=seed)
            run_md(pdb_out, xml_out, out, spec, ff, threads=threads)
        shutil.rmtree(work, ignore_errors=True)
    except Exception as exc:  # a failed query is data, not a crash of the round
        log.exception("oracle run failed")
        run_file.save_status(out, Status.FAILED, f"{type(exc).__name__}: {exc}")


def query_round(selected: str, dataset_path: str, runs: list[str], system_pdb: str, system_xml: str,
                native: str | None, ff: ForceField, bm: Backmap, oracle_cfg: Oracle, seeds: list[int],
                starts_out: list[str], runs_out: list[str], threads: int | None = None,
                force_map_path: str | None = None, pool_runs: list[str] = ()) -> None:
    """Every slot of a round in one job (the Go model's queries take seconds each): slot by
    slot, :func:`backmap` then :func:`oracle`, writing the same files with the same per-slot
    seeds as the one-job-per-slot rules, so a round's data do not depend on how it was run.

    Parameters
    ----------
    seeds : the oracle seed of each slot (common to every arm)
    starts_out, runs_out : each slot's start file and oracle run file, in slot order
    """
    if not len(seeds) == len(starts_out) == len(runs_out):
        raise ValueError(f"{len(seeds)} seeds, {len(starts_out)} start files and {len(runs_out)} run files")
    for slot, (seed, start, run) in enumerate(zip(seeds, starts_out, runs_out)):
        backmap(selected, dataset_path, runs, system_pdb, system_xml, native, ff, bm, slot, start, pool_runs)
        oracle(start, system_xml, ff, oracle_cfg, seed, run, threads=threads, force_map_path=force_map_path)
        log.info("slot %d of %d: %s", slot + 1, len(seeds), run_file.status(run).value)


def _mean_force_query(pdb: Path, xml: Path, out: str, oracle_cfg: Oracle, ff: ForceField, seed: int,
                      threads: int | None, force_map_path: str | None = None) -> None:
    from alcg.finegrained.meanforce_query import MeanForceSpec, run_mean_force
    from alcg.stages.finegrained import load_force_map

    spec = MeanForceSpec(n_steps=steps(oracle_cfg.length_ps, ff.timestep_fs),
                         record_interval=oracle_cfg.record_interval_steps,
                         equilibration_steps=steps(oracle_cfg.equilibration_ps, ff.timestep_fs),
                         restraint_k=oracle_cfg.mean_force_restraint_k, n_blocks=oracle_cfg.n_blocks, seed=seed)
    fmap = load_force_map(force_map_path)
    run_mean_force(pdb, xml, out, spec, ff, threads=threads, **({} if fmap is None else {"fmap": fmap}))


def merge(previous: str, new_frames: str, oracle_runs: list[str], max_failure_fraction: float, out: str) -> None:
    """dataset(k+1) = dataset(k) + projected oracle frames, appended (a manifest of shards, no
    frame copied: :func:`alcg.formats.dataset.append`); fail if too many queries failed."""
    status = [run_file.status(f) for f in oracle_runs]
    attempted = [s for s in status if s is not Status.SKIPPED]
    failed = sum(s is Status.FAILED for s in attempted)
    if attempted and failed / len(attempted) > max_failure_fraction:
        raise SimulationError(f"{failed} of {len(attempted)} oracle runs failed, more than "
                              f"oracle.max_failure_fraction={max_failure_fraction}")
    dataset.append(previous, new_frames, out)
    log.info("appended %d frames to %d, as a manifest of %d shards (%d oracle runs failed, %d skipped)",
             dataset.count_frames(new_frames), dataset.count_frames(previous), len(dataset.shards(out)),
             failed, len(status) - len(attempted))
