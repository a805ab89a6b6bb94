"""Instantaneous vs mean-force oracle labels on atomistic CLN025, at equal fine-grained time,
scored by the paired held-out force error.

    python benchmarks/mean_force_labels_atomistic.py            # the committed result (~15 CPU-min)
    python benchmarks/mean_force_labels_atomistic.py --quick    # a smoke run (~2 CPU-min)
    # on a loaded machine, share it between processes (run files and per-model errors cached):
    #   ... --work DIR --md-only --modes mean_force --queries 0 8   (and 8 16, and instantaneous)
    #   ... --work DIR --seeds 1 --train-keys round0 instantaneous   (and mean_force; per seed)
    #   ... --work DIR                                                (assembles the result)

The system is ``config/chignolin_cpu.yaml`` merged over ``config/config.yaml`` (amber14 +
GBn2, 340 K, 4 fs, HBonds, hydrogen mass 1.5 amu) with its network (``model``), priors and
oracle settings. Everything fine-grained runs through the project's code: preparation
(:func:`alcg.finegrained.prepare.prepare_system`), :func:`alcg.finegrained.md.run_md` (reference and
instantaneous queries), :func:`alcg.finegrained.meanforce_query.run_mean_force` (mean-force queries, C-alphas
restrained at ``oracle.mean_force_restraint_k`` and corrected by umbrella integration),
:func:`alcg.finegrained.mapping.project_runs`, :func:`alcg.stages.analysis.heldout_frames` (the held-out
set), :func:`alcg.cg.priors.fit_priors`, :func:`alcg.cg.train.train` (label-variance weights with
``train.model_force_var``) and :func:`alcg.analysis.heldout.frame_errors` / :func:`alcg.analysis.heldout.paired_difference`.

Protocol
    1. Reference: one run per start (``folded``, ``extended``), ``--ref-eq-ps`` unrecorded then
       ``--ref-ps`` recording every ``--ref-interval-steps``. As the workflow's pool
       (:func:`alcg.analysis.heldout.pool_query_count`), the leading half of each run is where queries
       start from; the rest is the held-out set (stratified by start, ``--heldout-per-start``
       frames each, instantaneous projected forces).
    2. Round-0 data: the leading half of the folded run (instantaneous labels; the last 20 %
       the validation frames the workflow would use, here only reported). Priors are fitted on
       it once and frozen (as the workflow fits them on round 0).
    3. Queries: ``--max-queries`` starts, alternately from the folded and the extended run's
       leading half, evenly spaced; the same starts for both modes. Every query costs
       ``--eq-ps + --sample-ps`` of fine-grained time in both modes, with a force every
       ``--record-interval-steps`` during the last ``--sample-ps``: instantaneous = the oracle's
       restrained equilibration (``oracle.restraint_k``) then free MD, every recorded frame a
       label; mean force = C-alphas restrained throughout, one label (the umbrella-integration
       mean force, its squared jackknife error as ``force_var``). So the baseline records forces
       exactly as often as the mean-force mode samples them.
    4. For each budget (``--budgets`` queries) and mode, round-0 data + the first n queries'
       labels train the config's network for the same number of optimizer steps (``--steps``
       batches of 64; the best training-loss epoch is kept: the round-0 validation frames,
       with ~1e6 (kJ/mol/nm)^2 noise, cannot rank models this close), for each ``--seeds``.
    5. Score: per-frame force MSE on the held-out frames. An instantaneous force is the mean
       force plus model-independent noise, so the difference of two models' MSE on the same
       frames estimates the difference of their mean-force errors (:mod:`alcg.analysis.heldout`). Every
       model is reported as its paired difference to the round-0-only model of its seed, and
       the modes against each other at each budget (block standard error over frames and the
       spread over seeds, in quadrature; 95 % interval).
    6. ``train.model_force_var``: (a) the model's residual mean-force variance, measured on the
       mean-force labels it was not trained on, ``mean((pred - label)^2) - mean(label SE^2)``;
       (b) the mean-force arm at the largest budget retrained with each ``--model-force-vars``
       value, paired against the default.

Outputs: ``benchmarks/measured/mean_force_labels_atomistic.{json,png}``. CPU seconds (user +
system, this process, one OpenMM and one torch thread) are recorded per part; the machine was
shared and loaded, so wall time is not a result.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mean_force_labels import load_config  # noqa: E402

from alcg.util.fileio import load_npz, save_npz  # noqa: E402
from alcg.config.settings import ForceField, Model, Oracle, Priors, System, Train, parse  # noqa: E402

OUT = ROOT / "benchmarks" / "measured" / "mean_force_labels_atomistic"
MODES = ("instantaneous", "mean_force")


class Clock:
    """CPU seconds (``time.process_time``: every thread of this process) per named part."""

    def __init__(self):
        self.parts: dict[str, float] = {}
        self.unrecorded: list[str] = []  # run files made by an invocation that did not log its CPU time

    def add(self, name: str, t0: float) -> None:
        self.parts[name] = self.parts.get(name, 0.0) + time.process_time() - t0


def steps(ps: float, ff: ForceField) -> int:
    return int(round(ps * 1000 / ff.timestep_fs))


def reference(ff: ForceField, cfg: dict, work: Path, eq_ps: float, ps: float, interval: int) -> tuple[list, Path, Path]:
    """Prepare both starts and run one reference run each; return (run files, pdb, xml)."""
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.prepare import prepare_system

    system_cfg = parse(System, cfg["system"])
    runs = []
    for i, start in enumerate(("folded", "extended")):
        pdb, xml = work / f"{start}.pdb", work / f"{start}.xml"
        out = work / f"reference_{start}.npz"
        runs.append(out)
        if out.exists():  # --work: made by an earlier invocation
            continue
        t0 = time.process_time()
        prepare_system(system_cfg, ff, cfg["system"]["starts"][start], pdb, xml, seed=1)
        run_md(pdb, xml, out, MDSpec(n_steps=steps(ps, ff), record_interval=interval,
                                     equilibration_steps=steps(eq_ps, ff), restraint_k=0.0, checkpoint_every=0,
                                     seed=100 + i), ff, threads=1, progress=False)
        _log_cpu(out, time.process_time() - t0)
    return runs, work / "folded.pdb", work / "folded.xml"


def write_start(topology, positions_nm: np.ndarray, path: Path) -> Path:
    import openmm.app as app
    import openmm.unit as unit

    with open(path, "w") as fh:
        app.PDBFile.writeFile(topology, positions_nm * unit.nanometer, fh, keepIds=True)
    return path


def query_starts(runs: list[Path], topology, n: int, work: Path) -> list[Path]:
    """``n`` start PDBs, alternately from each run's leading (query) half, evenly spaced."""
    from alcg.formats import run_file
    from alcg.analysis.heldout import pool_query_count

    loaded = [run_file.load(r) for r in runs]
    per = [-(-n // len(runs)) if k < n % len(runs) or n % len(runs) == 0 else n // len(runs) for k in range(len(runs))]
    picks = []
    for k, (run, m) in enumerate(zip(loaded, per)):
        usable = pool_query_count(run.n_frames)
        picks.append([int(f) for f in np.linspace(0, usable - 1, m + 1)[1:].round()])
    out = []
    for i in range(n):
        k = i % len(runs)
        frame = picks[k][i // len(runs)]
        out.append(write_start(topology, loaded[k].positions[frame].astype(np.float64), work / f"start_{i}.pdb"))
    return out


def queries(starts: list[Path], xml: Path, mode: str, ff: ForceField, oracle: Oracle, eq_ps: float,
            sample_ps: float, interval: int, work: Path, seed: int, only: range | None = None) -> list[Path]:
    """One query per start in ``mode`` (module doc, step 3); return the run files. Files that exist
    (``--work``) are reused; ``only``: run just these queries."""
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.meanforce_query import MeanForceSpec, run_mean_force

    files = []
    for i, pdb in enumerate(starts):
        out = work / f"{mode}_{i}.npz"
        files.append(out)
        if out.exists() or (only is not None and i not in only):
            continue
        t0 = time.process_time()
        if mode == "mean_force":
            run_mean_force(pdb, xml, out, MeanForceSpec(
                n_steps=steps(sample_ps, ff), record_interval=interval, equilibration_steps=steps(eq_ps, ff),
                restraint_k=oracle.mean_force_restraint_k, n_blocks=oracle.n_blocks, seed=seed * 1000 + i), ff,
                threads=1)
        else:
            run_md(pdb, xml, out, MDSpec(n_steps=steps(sample_ps, ff), record_interval=interval,
                                         restraint_steps=steps(eq_ps, ff), restraint_k=oracle.restraint_k,
                                         checkpoint_every=0, seed=seed * 1000 + i), ff, threads=1, progress=False)
        _log_cpu(out, time.process_time() - t0)
    return files


def _cpu_file(run: Path) -> Path:
    """The CPU log of one run file (``cpu_<run stem>.json`` next to it): one file per run, so
    processes sharing a work folder never write the same file."""
    return run.with_name(f"cpu_{run.stem}.json")


def _log_cpu(run: Path, seconds: float) -> None:
    """Record, atomically, the CPU seconds the invocation that made ``run`` spent on it."""
    from alcg.util.fileio import write_json

    write_json(_cpu_file(run), {"run": run.name, "cpu_seconds": float(seconds)})


def _cpu_seconds(runs: list[Path]) -> dict[str, float]:
    """CPU seconds per run file name, of the ``runs`` whose CPU log exists (a run missing here
    was made by an invocation that did not log it). Work folders of earlier versions kept one
    shared ``cpu_seconds.json``; it is read too, the per-run logs taking precedence."""
    out: dict[str, float] = {}
    for folder in {r.parent for r in runs}:
        legacy = folder / "cpu_seconds.json"
        if legacy.exists():
            out.update({k: float(v) for k, v in json.loads(legacy.read_text()).items()})
    for run in runs:
        if _cpu_file(run).exists():
            out[run.name] = float(json.loads(_cpu_file(run).read_text())["cpu_seconds"])
    return {r.name: out[r.name] for r in runs if r.name in out}


def subset(data, mask: np.ndarray):
    """The frames of ``data`` where ``mask``."""
    from alcg.formats import dataset

    return dataclasses.replace(data, **{k: getattr(data, k)[mask] for k in dataset.PER_FRAME})


def fit(data, prior, model_cfg: Model, train_cfg: Train, seed: int, work: Path):
    """The config's network on ``data`` (weights 1/(sigma^2 + model_force_var)), module doc step 4."""
    import torch

    from alcg.cg.model import CGModel
    from alcg.cg.train import train

    torch.manual_seed(seed)
    model = CGModel(torch.as_tensor(data.bead_types), prior, model_cfg)
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state.pt"
    state.unlink(missing_ok=True)
    idx = data.train_indices()
    train(model, data.coords, data.forces, data.traj, train_cfg, seed, state, progress=False,
          split=(idx, np.zeros(0, np.int64)), force_var=data.force_var)
    return model


def predict(model, x: np.ndarray) -> np.ndarray:
    import torch

    _, f = model.energy_and_forces(torch.as_tensor(x, dtype=torch.float32))
    return f.detach().numpy().astype(np.float64)


def residual_var(model, labels) -> dict:
    """The model's residual mean-force variance on mean-force labels it did not train on:
    ``mean((pred - label)^2) - mean(label SE^2)``, (kJ/mol/nm)^2, with a standard error over labels."""
    per = ((predict(model, labels.coords) - labels.forces) ** 2).mean((1, 2)) - labels.force_var
    return {"value": float(per.mean()), "se": float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else None,
            "n_labels": int(len(per))}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "config" / "chignolin_cpu.yaml")
    p.add_argument("--ref-eq-ps", type=float, default=5.0)
    p.add_argument("--ref-ps", type=float, default=40.0)
    p.add_argument("--ref-interval-steps", type=int, default=10)
    p.add_argument("--heldout-per-start", type=int, default=500)
    p.add_argument("--budgets", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--eq-ps", type=float, default=1.0)
    p.add_argument("--sample-ps", type=float, default=4.0)
    p.add_argument("--record-interval-steps", type=int, default=5)
    p.add_argument("--steps", type=int, default=500, help="optimizer steps (batches of 64) per model")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--query-seed", type=int, default=1, help="seed of the query MD (one set of queries per mode)")
    p.add_argument("--model-force-var", type=float, default=100.0,
                   help="train.model_force_var ((kJ/mol/nm)^2) of every model but the sweep's: the default when "
                        "the result was measured, pinned so that it reproduces")
    p.add_argument("--model-force-vars", type=float, nargs="*", default=[2000.0, 100000.0],
                   help="train.model_force_var values ((kJ/mol/nm)^2) retried on the mean-force arm at the largest budget")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--work", type=Path, default=None,
                   help="keep run files and per-model errors here and reuse them (default: a temporary folder); "
                        "lets several processes share the work: --md-only with --modes/--queries, then --seeds")
    p.add_argument("--md-only", action="store_true", help="run the fine-grained part only")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="with --md-only")
    p.add_argument("--train-keys", nargs="+", default=None, metavar="PREFIX",
                   help="with --work: train only the models whose key starts with one of these (round0, "
                        "instantaneous, mean_force) and stop; a last invocation without it assembles the result")
    p.add_argument("--queries", type=int, nargs=2, default=None, metavar=("FIRST", "STOP"),
                   help="with --md-only: run queries FIRST..STOP-1 only")
    a = p.parse_args(argv)
    if a.quick:
        a.ref_ps, a.heldout_per_start, a.budgets, a.sample_ps, a.steps, a.seeds = 10.0, 100, [2, 4], 2.0, 50, [1]
        a.model_force_vars = a.model_force_vars[:1]
    import openmm.app as app
    import torch

    from alcg.cg import priors as P
    from alcg.analysis.heldout import frame_errors, load as load_heldout, paired_difference, pool_query_count

    def paired_difference_20(a, b):  # 20 blocks of held-out frames per start
        return paired_difference(a, b, n_blocks=20)
    from alcg.finegrained.mapping import project_runs
    from alcg.stages.finegrained import mapping_of
    from alcg.stages.analysis import heldout_frames
    from alcg.formats import run_file, dataset

    torch.set_num_threads(1)
    clock = Clock()
    cfg = load_config(a.config)
    ff = parse(ForceField, cfg["forcefield"])
    oracle = parse(Oracle, cfg["oracle"])
    model_cfg = parse(Model, cfg["model"])
    base_train = parse(Train, cfg["train"])
    per_epoch = 10
    train_cfg = dataclasses.replace(base_train, batch_size=64, max_frames=64 * per_epoch,
                                    epochs=-(-a.steps // per_epoch), patience=10 ** 6,
                                    model_force_var=a.model_force_var)
    max_q = max(a.budgets)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if a.work is None else a.work
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.process_time()
        runs, pdb, xml = reference(ff, cfg, work, a.ref_eq_ps, a.ref_ps, a.ref_interval_steps)
        cpu = _cpu_seconds(runs)
        clock.parts["reference_md"] = sum(cpu.get(r.name, 0.0) for r in runs)
        clock.unrecorded += [r.name for r in runs if r.name not in cpu]
        t0 = time.process_time()
        if not (work / "heldout.npz").exists():
            heldout_frames([str(r) for r in runs], ["folded", "extended"], str(pdb), str(xml), None, None,
                           a.heldout_per_start, 2026, str(work / "heldout.npz"), from_pool=True)
        h = load_heldout(work / "heldout.npz")
        mapping, prepared = mapping_of(str(pdb), str(xml))
        folded = project_runs([runs[0]], mapping, 0)
        base = dataset.assign_validation(subset(folded, folded.frame < pool_query_count(run_file.load(runs[0]).n_frames)),
                                         base_train.val_fraction)
        prior = P.fit_priors(base.coords, ff.temperature_k, parse(Priors, cfg["priors"]))
        starts = query_starts(runs, prepared.topology, max_q, work)
        clock.add("setup", t0)
        labels = {}
        for mode in (a.modes if a.md_only else MODES):
            t0 = time.process_time()
            files = queries(starts, xml, mode, ff, oracle, a.eq_ps, a.sample_ps, a.record_interval_steps, work,
                            a.query_seed, None if a.queries is None else range(*a.queries))
            if a.md_only:
                continue
            labels[mode] = [project_runs([f], mapping, 1) for f in files]
            sim_ps = [run_file.load(f).metadata.get("simulated_ps") for f in files]
            cpu = _cpu_seconds(files)
            clock.parts[f"queries_{mode}"] = sum(cpu.get(f.name, 0.0) for f in files)
            clock.unrecorded += [f.name for f in files if f.name not in cpu]
            print(f"{mode}: {len(files)} queries, simulated ps per query {sim_ps[0]}", flush=True)
        if a.md_only:
            print(json.dumps(clock.parts))
            return {}
        mf_all = dataset.merge(labels["mean_force"])
        # what every model is scored on, per frame
        errs: dict = {}

        def run(key: str, data, seed: int, cfg_t: Train, unseen=None) -> dict | None:
            """Train, score on the held-out frames (and the residual on ``unseen`` mean-force
            labels); cached in the work folder per (key, seed)."""
            cache = work / f"errors_{key}_{seed}.npz"
            if cache.exists():
                c = load_npz(cache)
                errs.setdefault(key, {})[seed], errs.setdefault("prior", {})[seed] = c["full"], c["prior"]
                clock.parts["train_and_score"] = clock.parts.get("train_and_score", 0.0) + float(c["cpu"])
                return json.loads(str(c["residual"])) if unseen is not None else None
            if a.train_keys and not key.startswith(tuple(a.train_keys)):
                return None
            t0 = time.process_time()
            model = fit(data, prior, model_cfg, cfg_t, seed, work / f"train_{key}_{seed}")
            full, prior_err = frame_errors(model, h)
            res = residual_var(model, unseen) if unseen is not None else None
            errs.setdefault(key, {})[seed] = full
            errs.setdefault("prior", {})[seed] = prior_err
            save_npz(cache, full=full, prior=prior_err, residual=np.array(json.dumps(res)),
                     cpu=np.float64(time.process_time() - t0))
            clock.add("train_and_score", t0)
            print(f"seed {seed} {key:28s} {data.n_frames:5d} frames: held-out MSE {full.mean():.6g}", flush=True)
            return res

        residual: dict = {"round0_on_all_mean_force_labels": [], "instantaneous_at_half_on_unseen_labels": [],
                          "mean_force_at_half_on_unseen_labels": []}
        half = max_q // 2
        for seed in a.seeds:
            residual["round0_on_all_mean_force_labels"].append(run("round0", base, seed, train_cfg, mf_all))
            for n in a.budgets:
                for mode in MODES:
                    data = dataset.merge([base, *labels[mode][:n]])
                    unseen = dataset.merge(labels["mean_force"][half:]) if n == half else None
                    res = run(f"{mode}_{n}", data, seed, train_cfg, unseen)
                    if n == half:
                        residual[f"{mode}_at_half_on_unseen_labels"].append(res)
            for v in a.model_force_vars:
                data = dataset.merge([base, *labels["mean_force"][:max_q]])
                run(f"mean_force_{max_q}_var{v:g}", data, seed, dataclasses.replace(train_cfg, model_force_var=v))
        if a.train_keys:
            return {}
        label_stats = {
            "mean_force_label_sem2_mean": float(mf_all.force_var.mean()),
            "mean_force_label_sem2_range": [float(mf_all.force_var.min()), float(mf_all.force_var.max())],
            "instantaneous_query_force_var_mean": float(np.mean([d.force_var.mean() for d in labels["instantaneous"]])),
            "round0_force_var_mean": float(np.nanmean(base.force_var)),
            "mean_force_uncorrected_rms_difference_kj_mol_nm": [
                run_file.load(work / f"mean_force_{i}.npz").metadata.get("uncorrected_rms_difference_kj_mol_nm")
                for i in range(max_q)],
            "heldout_frames_by_stratum": {s: int((h.stratum == s).sum()) for s in h.strata},
            "round0_frames": {"train": int(len(base.train_indices())), "val": int(len(base.val_indices()))}}
    seeds = a.seeds
    stack = lambda key: np.stack([errs[key][s] for s in seeds])  # noqa: E731
    per_query_ps = a.eq_ps + a.sample_ps
    result_curves = {}
    for mode in MODES:
        result_curves[mode] = [{"queries": n, "oracle_ns": n * per_query_ps / 1000,
                                "labels": int(dataset.merge(labels[mode][:n]).n_frames),
                                "mse_minus_round0": paired_difference_20(stack(f"{mode}_{n}"), stack("round0"))}
                               for n in a.budgets]
    modes_vs = [{"queries": n, "oracle_ns": n * per_query_ps / 1000,
                 "mean_force_minus_instantaneous": paired_difference_20(stack(f"mean_force_{n}"),
                                                                     stack(f"instantaneous_{n}")),
                 "by_stratum": {s: paired_difference_20(stack(f"mean_force_{n}")[:, h.stratum == s],
                                                     stack(f"instantaneous_{n}")[:, h.stratum == s])
                                for s in h.strata}}
                for n in a.budgets]
    var_sweep = [{"model_force_var": train_cfg.model_force_var, "minus_default": None,
                  "mse_minus_round0": paired_difference_20(stack(f"mean_force_{max_q}"), stack("round0"))}]
    for v in a.model_force_vars:
        key = f"mean_force_{max_q}_var{v:g}"
        var_sweep.append({"model_force_var": v,
                          "minus_default": paired_difference_20(stack(key), stack(f"mean_force_{max_q}")),
                          "mse_minus_round0": paired_difference_20(stack(key), stack("round0"))})
    clock.parts["total_recorded"] = sum(clock.parts.values())
    result = {
        "what": "held-out force MSE (paired, (kJ/mol/nm)^2) of models trained on round-0 data + instantaneous vs "
                "mean-force oracle labels at equal fine-grained time, atomistic CLN025 (config/chignolin_cpu.yaml)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "model_force_var_default": train_cfg.model_force_var,
        "fine_grained_ps_per_query": per_query_ps,
        "samples_per_query": steps(a.sample_ps, ff) // a.record_interval_steps,
        "heldout_mse": {"round0": float(stack("round0").mean()), "prior_only": float(stack("prior").mean()),
                        "prior_minus_round0": paired_difference_20(stack("prior"), stack("round0"))},
        "labels": label_stats,
        "curves": result_curves, "mean_force_vs_instantaneous": modes_vs,
        "model_force_var_sweep": var_sweep,
        "residual_mean_force_var": {k: {"per_seed": v, "mean": float(np.mean([x["value"] for x in v]))}
                                    for k, v in residual.items() if v},
        "per_frame_mse_seed_means": {k: float(stack(k).mean()) for k in errs},
        "cpu_seconds": {k: round(v, 1) for k, v in clock.parts.items()},
        "cpu_seconds_not_recorded_for": clock.unrecorded,
        "note": "one set of query MD (--query-seed); seeds repeat the training. Intervals: 95 %, block standard "
                "error over held-out frames and standard error over seeds in quadrature. CPU seconds on a shared, "
                "loaded 2-core machine, one thread."}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    _plot(result, a.out.with_suffix(".png"))
    print(json.dumps({k: result[k] for k in ("mean_force_vs_instantaneous", "model_force_var_sweep",
                                             "residual_mean_force_var", "labels", "cpu_seconds")}, indent=1))
    return result


def _plot(result: dict, path: Path) -> None:
    from alcg.util.figure_io import plt, save_figure

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
    for k, (mode, c) in enumerate((("instantaneous", "C0"), ("mean_force", "C1"))):
        pts = result["curves"][mode]
        ns = np.array([0.0] + [q["oracle_ns"] for q in pts]) * 1000
        y = np.array([0.0] + [q["mse_minus_round0"]["mean"] for q in pts])
        e = np.array([0.0] + [1.96 * q["mse_minus_round0"]["se"] for q in pts])
        ax.errorbar(ns * (1 + 0.03 * (k - 0.5)), y, yerr=e, fmt="o-", c=c, capsize=3, label=mode.replace("_", " "))
    ax.axhline(0, c="gray", lw=0.8)
    ax.set_xlabel("oracle fine-grained time / ps")
    ax.set_ylabel("held-out force MSE − round-0 model's\n/ (kJ/mol/nm)$^2$ (paired)")
    ax.set_title("CLN025 amber14/GBn2: round-0 data + queries", fontsize=9)
    ax.legend(fontsize=8)
    sweep = result["model_force_var_sweep"]
    v = [s["model_force_var"] for s in sweep]
    y = [s["mse_minus_round0"]["mean"] for s in sweep]
    e = [1.96 * s["mse_minus_round0"]["se"] for s in sweep]
    bx.errorbar(v, y, yerr=e, fmt="o", c="C1", capsize=3)
    bx.axhline(0, c="gray", lw=0.8)
    bx.set_xscale("log")
    bx.set_xlabel("train.model_force_var / (kJ/mol/nm)$^2$")
    bx.set_ylabel("held-out force MSE − round-0 model's")
    bx.set_title(f"mean-force arm, {max(q['queries'] for q in result['curves']['mean_force'])} queries", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
