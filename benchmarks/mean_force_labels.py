"""Instantaneous vs mean-force oracle labels on the Go model, at equal fine-grained time.

    python benchmarks/mean_force_labels.py            # the committed result (~10-20 min, loaded CPU)
    python benchmarks/mean_force_labels.py --quick    # a smoke run

The system is the two-bead Go model of CLN025 as ``config/go_cpu.yaml`` (merged over
``config/config.yaml``) builds it. The fine-grained side runs through the project's code:
:func:`alcg.finegrained.md.run_md` for instantaneous queries, :func:`alcg.finegrained.meanforce_query.run_mean_force`
for mean-force queries, :func:`alcg.finegrained.mapping.project_runs` for the labels, priors from
:func:`alcg.cg.priors.fit_priors`, training by :func:`alcg.cg.train.train` (label-variance weights).

Protocol
    1. A pool of configurations: one equilibrium Go run from the native structure (the
       reference friction), a frame every ``--pool-interval-ps``. Odd frames are query starts,
       the first ``--n-heldout`` even frames are held out.
    2. Held-out truth: the mean force on the beads of each held-out configuration, C-alphas
       fixed exactly, ``--heldout-ps`` of sampling each (its own standard error is reported and
       subtracted as a floor).
    3. Every query costs the same fine-grained time ``t_eq + t_s``: instantaneous = ``t_eq``
       restrained (the oracle's ``restraint_ps``) then ``t_s`` free MD recording the force every
       ``--record-interval-steps``; mean-force = ``t_eq`` held then ``t_s`` held, sampling the
       force every ``--record-interval-steps`` (so the baseline records forces as often as the
       mean-force mode samples them). One mean-force query gives one labelled configuration;
       one instantaneous query gives ``t_s / interval`` labelled frames.
    4. For budgets of 2, 4, ... ``--max-queries`` queries (the same starts for both modes), a
       model (priors fitted once on the pool, frozen; the config's network) is trained on
       each mode's labels with the same number of optimizer steps (``--epochs`` x 10 batches
       of 64) and scored on the held-out mean forces: MSE over components, (kJ/mol/nm)^2.
       ``--seeds`` repeat the training (and the query MD) with other seeds.

Outputs: ``benchmarks/measured/mean_force_labels.json`` and ``.png`` (learning curves).
Timings are from a shared, loaded 2-core machine: only the error-vs-fine-grained-time curves
and their ratio are the result.
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
import yaml
from snakemake.utils import update_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alcg.finegrained import gomodel, system as omm  # noqa: E402
from alcg.stages.validate import DEFAULT_CONFIG_PATH, validate  # noqa: E402
from alcg.config.settings import ForceField, Model, Priors, System, Train, parse  # noqa: E402

OUT = ROOT / "benchmarks" / "measured" / "mean_force_labels"


def load_config(path: Path) -> dict:
    """The config at ``path`` merged over config/config.yaml as Snakemake merges a --configfile
    (:func:`snakemake.utils.update_config`), validated."""
    base = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    update_config(base, yaml.safe_load(path.read_text()))
    return validate(base)


def build(cfg: dict, work: Path, seed: int):
    """(native, ForceField, pdb path, xml path) of the Go model."""
    from alcg.finegrained.models import GoModel

    ff = parse(ForceField, cfg["forcefield"])
    system_cfg = parse(System, cfg["system"])
    native = GoModel(ff).native(system_cfg, cfg["system"]["starts"]["folded"], seed)
    pdb, xml = work / "go.pdb", work / "go.xml"
    gomodel.write_pdb(pdb, native)
    xml.write_text(omm.serialize(gomodel.create_system(native, ff.go)))
    return native, ff, pdb, xml


def pool(native, ff: ForceField, xml: Path, n_frames: int, interval_ps: float, seed: int) -> np.ndarray:
    """Equilibrium bead configurations (n, n_beads, 3) nm, one every ``interval_ps``."""
    import openmm.unit as unit

    ref = dataclasses.replace(ff, friction_per_ps=ff.go.reference_friction_per_ps)
    sim = omm.make_simulation(native.topology, omm.deserialize(xml.read_text()), ref, seed)
    sim.context.setPositions(native.xyz_nm)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, seed)
    every = int(round(interval_ps * 1000 / ff.timestep_fs))
    sim.step(20 * every)
    out = []
    for _ in range(n_frames):
        sim.step(every)
        out.append(sim.context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    return np.asarray(out)


def _pdb_at(native, xyz: np.ndarray, path: Path) -> Path:
    gomodel.write_pdb(path, native, xyz)
    return path


def heldout_truth(native, ff, xml: Path, configs: np.ndarray, sample_ps: float, interval: int, work: Path,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean forces (n, N, 3), squared standard errors (n,)) of the held-out configurations."""
    from alcg.formats import run_file
    from alcg.finegrained.meanforce_query import MeanForceSpec, run_mean_force

    spec = MeanForceSpec(n_steps=int(round(sample_ps * 1000 / ff.timestep_fs)), record_interval=interval,
                         equilibration_steps=int(round(2.0 * 1000 / ff.timestep_fs)), restraint_k=1e5,
                         n_blocks=20, seed=seed)
    forces, var = [], []
    for i, x in enumerate(configs):
        out = work / f"heldout_{i}.npz"
        run_mean_force(_pdb_at(native, x, work / f"heldout_{i}.pdb"), xml, out, dataclasses.replace(spec, seed=seed + i), ff)
        run = run_file.load(out)
        forces.append(run.bead_forces[0])
        var.append(run.bead_force_var[0])
    return np.asarray(forces), np.asarray(var)


def queries(native, ff, xml: Path, configs: np.ndarray, mode: str, eq_ps: float, sample_ps: float, interval: int,
            work: Path, seed: int) -> list[Path]:
    """Run one query per configuration in ``mode``; return the run files."""
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.meanforce_query import MeanForceSpec, run_mean_force

    steps = lambda ps: int(round(ps * 1000 / ff.timestep_fs))  # noqa: E731
    files = []
    for i, x in enumerate(configs):
        pdb = _pdb_at(native, x, work / f"q_{i}.pdb")
        out = work / f"{mode}_{seed}_{i}.npz"
        if mode == "mean_force":
            run_mean_force(pdb, xml, out, MeanForceSpec(n_steps=steps(sample_ps), record_interval=interval,
                                                        equilibration_steps=steps(eq_ps), restraint_k=1e5,
                                                        n_blocks=10, seed=seed * 1000 + i), ff)
        else:
            run_md(pdb, xml, out, MDSpec(n_steps=steps(sample_ps), record_interval=interval,
                                         restraint_steps=steps(eq_ps), restraint_k=1000.0, checkpoint_every=0,
                                         seed=seed * 1000 + i), ff, progress=False)
        files.append(out)
    return files


def round0(native, ff, xml: Path, mapping, length_ps: float, work: Path):
    """Round-0 dataset: two free runs from the native (instantaneous labels), last 20 % validation."""
    from alcg.formats import dataset
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.mapping import project_runs

    pdb = _pdb_at(native, native.xyz_nm, work / "native.pdb")
    runs = []
    for r in range(2):
        out = work / f"round0_{r}.npz"
        run_md(pdb, xml, out, MDSpec(n_steps=int(round(length_ps * 1000 / ff.timestep_fs)), record_interval=100,
                                     equilibration_steps=2000, restraint_k=0.0, checkpoint_every=0, seed=50 + r),
               ff, progress=False)
        runs.append(out)
    return dataset.assign_validation(project_runs(runs, mapping, 0), 0.2)


def train_and_score(data, prior, model_cfg: Model, train_cfg: Train, seed: int, x_test, f_test, work: Path) -> float:
    """Held-out force MSE ((kJ/mol/nm)^2, mean over components) of a model trained on ``data``
    (validated on its ``val`` frames, with early stopping, when it has some)."""
    import torch

    from alcg.cg.model import CGModel
    from alcg.cg.train import train

    torch.manual_seed(seed)
    model = CGModel(torch.as_tensor(data.bead_types), prior, model_cfg)
    idx, val = data.train_indices(), data.val_indices()
    # equal optimizer steps for every dataset (epochs x batches per epoch), so a small
    # mean-force dataset is not simply trained less than a large instantaneous one; the same
    # learning-rate decay per step
    per_epoch = -(-min(len(idx), train_cfg.max_frames) // train_cfg.batch_size)
    train_cfg = dataclasses.replace(train_cfg, epochs=-(-train_cfg.epochs * 10 // per_epoch),
                                    lr_decay=train_cfg.lr_decay ** (per_epoch / 10))
    state = work / f"state_{seed}.pt"
    state.unlink(missing_ok=True)
    train(model, data.coords, data.forces, data.traj, train_cfg, seed, state, progress=False,
          split=(idx, val), force_var=data.force_var)
    _, pred = model.energy_and_forces(torch.as_tensor(x_test, dtype=torch.float32))
    return float(((pred.detach().numpy() - f_test) ** 2).mean())


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "config" / "go_cpu.yaml")
    p.add_argument("--max-queries", type=int, default=64)
    p.add_argument("--n-heldout", type=int, default=40)
    p.add_argument("--pool-interval-ps", type=float, default=20.0)
    p.add_argument("--heldout-ps", type=float, default=100.0)
    p.add_argument("--eq-ps", type=float, default=1.0)
    p.add_argument("--sample-ps", type=float, default=5.0)
    p.add_argument("--record-interval-steps", type=int, default=10)
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--max-frames", type=int, default=640)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--base-ps", type=float, default=0.0,
                   help="round-0 data: two free runs of this length (ps) from the native, instantaneous "
                        "labels every 100 steps, the last 20 %% validation (early stopping); 0: labels alone")
    p.add_argument("--model-force-var", type=float, default=None,
                   help="train.model_force_var ((kJ/mol/nm)^2); default: the config's")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args(argv)
    if a.quick:
        a.max_queries, a.n_heldout, a.heldout_ps, a.epochs, a.seeds = 8, 8, 20.0, 10, [1]
    import torch

    from alcg.formats import dataset
    from alcg.cg import priors as P
    from alcg.finegrained.mapping import CAMapping, project_runs

    torch.set_num_threads(1)
    cfg = load_config(a.config)
    model_cfg = parse(Model, cfg["model"])
    train_cfg = dataclasses.replace(parse(Train, cfg["train"]), epochs=a.epochs, patience=10 ** 6,
                                    max_frames=a.max_frames, batch_size=64)
    if a.model_force_var is not None:
        train_cfg = dataclasses.replace(train_cfg, model_force_var=a.model_force_var)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        native, ff, pdb, xml = build(cfg, work, 1)
        mapping = CAMapping(native.topology, omm.deserialize(xml.read_text()))
        frames = pool(native, ff, xml, 2 * max(a.max_queries, a.n_heldout), a.pool_interval_ps, 1)
        starts, held = frames[1::2][:a.max_queries], frames[0::2][:a.n_heldout]
        f_test, var_test = heldout_truth(native, ff, xml, held, a.heldout_ps, a.record_interval_steps, work, 10 ** 6)
        x_test = held[:, mapping.ca_indices]
        floor = float(var_test.mean())
        prior = P.fit_priors(frames[:, mapping.ca_indices], ff.temperature_k, parse(Priors, cfg["priors"]))
        prior_only = float(((_prior_forces(prior, x_test) - f_test) ** 2).mean())
        budgets = [n for n in (2, 4, 8, 16, 32, 64, 128) if n <= a.max_queries]
        per_query_ps = a.eq_ps + a.sample_ps
        curves: dict = {"instantaneous": {}, "mean_force": {}}
        base = round0(native, ff, xml, mapping, a.base_ps, work) if a.base_ps else None
        base_only = []
        if base is not None:
            train_cfg = dataclasses.replace(train_cfg, patience=parse(Train, cfg["train"]).patience)
            base_only = [train_and_score(base, prior, model_cfg, train_cfg, seed, x_test, f_test, work)
                         for seed in a.seeds]
            print(f"round-0 data alone ({base.n_frames} frames): held-out MSE {np.mean(base_only):.1f}", flush=True)
        label_sem = []
        for seed in a.seeds:
            for mode in curves:
                runs = queries(native, ff, xml, starts, mode, a.eq_ps, a.sample_ps, a.record_interval_steps,
                               work, seed)
                for n in budgets:
                    data = project_runs(runs[:n], mapping, 1)
                    if mode == "mean_force":
                        label_sem.append(float(np.sqrt(np.mean(data.force_var))))
                    if base is not None:
                        data = dataset.merge([base, data])
                    mse = train_and_score(data, prior, model_cfg, train_cfg, seed, x_test, f_test, work)
                    curves[mode].setdefault(n, []).append(mse)
                    print(f"seed {seed} {mode:13s} {n:3d} queries ({n * per_query_ps / 1000:.3f} ns, "
                          f"{data.n_frames} labels): held-out MSE {mse:.1f}", flush=True)
    result = _summarize(a, curves, budgets, per_query_ps, floor, prior_only, label_sem, time.perf_counter() - t0)
    result["round0_only_mse"] = base_only
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    _plot(result, a.out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in result.items() if k != "curves"}, indent=1))
    return result


def _prior_forces(prior, x: np.ndarray) -> np.ndarray:
    import torch

    xt = torch.as_tensor(x, dtype=torch.float32).requires_grad_(True)
    (g,) = torch.autograd.grad(prior(xt).sum(), xt)
    return -g.numpy()


def _time_to_reach(ns: np.ndarray, err: np.ndarray, target: float) -> float | None:
    """Fine-grained ns at which a curve (decreasing in ns, log-log interpolated) reaches ``target``."""
    for i in range(len(ns) - 1):
        lo, hi = err[i], err[i + 1]
        if (lo - target) * (hi - target) <= 0 and lo != hi:
            t = (np.log(target) - np.log(lo)) / (np.log(hi) - np.log(lo))
            return float(np.exp(np.log(ns[i]) + t * (np.log(ns[i + 1]) - np.log(ns[i]))))
    return None


def _summarize(a, curves: dict, budgets: list[int], per_query_ps: float, floor: float, prior_only: float,
               label_sem: list[float], seconds: float) -> dict:
    ns = np.array(budgets) * per_query_ps / 1000
    mean = {m: np.array([np.mean(curves[m][n]) for n in budgets]) for m in curves}
    ratios = []
    for i, n in enumerate(budgets):
        t_inst = _time_to_reach(ns, mean["instantaneous"], mean["mean_force"][i])
        ratios.append({"queries": n, "mean_force_ns": float(ns[i]), "instantaneous_ns_for_same_error": t_inst,
                       "ratio": None if t_inst is None else t_inst / float(ns[i])})
    return {
        "what": "held-out mean-force MSE ((kJ/mol/nm)^2) of models trained on instantaneous vs mean-force labels "
                "at equal fine-grained time, Go model of CLN025 (config/go_cpu.yaml)",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
        "fine_grained_ps_per_query": per_query_ps,
        "samples_per_query": int(a.sample_ps * 1000 / 5.0 / a.record_interval_steps),
        "heldout_truth_sem2_floor": floor, "prior_only_mse": prior_only,
        "mean_force_label_rms_sem_kj_mol_nm": float(np.mean(label_sem)) if label_sem else None,
        "curves": {m: {str(n): curves[m][n] for n in budgets} for m in curves},
        "mean_mse": {m: mean[m].tolist() for m in mean}, "fine_grained_ns": ns.tolist(),
        "time_ratio_instantaneous_over_mean_force": ratios,
        "note": "timings on a shared, loaded 2-core machine; ratio = instantaneous fine-grained time needed for the "
                "mean-force curve's error (log-log interpolation; null where the instantaneous curve never reaches it "
                "within the budgets measured)",
        "seconds": round(seconds, 1)}


def _plot(result: dict, path: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from alcg.util.figure_io import plt, save_figure

    ns = np.array(result["fine_grained_ns"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for mode, c in (("instantaneous", "C0"), ("mean_force", "C1")):
        per = result["curves"][mode]
        pts = np.array([per[k] for k in per])
        ax.plot(ns, pts.mean(1), "o-", c=c, label=mode.replace("_", " "))
        if pts.shape[1] > 1:
            ax.fill_between(ns, pts.min(1), pts.max(1), color=c, alpha=0.2)
    ax.axhline(result["prior_only_mse"], ls=":", c="gray", label="prior only")
    if result.get("round0_only_mse"):
        ax.axhline(np.mean(result["round0_only_mse"]), ls="-.", c="C2", label="round-0 data only")
    ax.axhline(result["heldout_truth_sem2_floor"], ls="--", c="k", lw=0.8, label="truth SE$^2$ (floor)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ns, [f"{v:g}" for v in ns], fontsize=7)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_title(f"Go model CLN025, {'round-0 data + queries' if result['settings'].get('base_ps') else 'query labels alone'}",
                 fontsize=9)
    ax.set_xlabel("oracle fine-grained time / ns")
    ax.set_ylabel("held-out mean-force MSE / (kJ/mol/nm)$^2$")
    ax.legend(fontsize=8)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
