"""Does the CG model learn? A learning curve on the Go model against exact mean forces (issue 31
item 6).

Go CLN025 at 340 K (today's Go defaults, ``config/go_cpu.yaml``'s model). Every data set is an
equilibrium run of its own (half started folded, half extended; the first ``--equil-ps`` of each
run discarded), each with its own seeds:

``train``
    ``--draws`` independent draws, each of ``--runs`` runs holding ``max(--sizes)`` frames
    ``--spacing-ps`` apart; a fit on N frames takes N frames of one draw at random.
``fit``
    the frames the priors (Boltzmann inversion, today's ``priors`` defaults) and the optimal force
    map are fitted on: one frozen prior and one map for the whole curve.
``val``
    validation frames (instantaneous labels, each fit's own force map): they choose each fit's
    best state (start, prior alone, or an epoch), never the held-out frames.
``heldout``
    the held-out frames: ``--per-stratum`` frames of each Q stratum (folded / transition /
    unfolded, as the workflow's held-out set), each labelled with its **mean force** (C-alphas
    held fixed, :func:`alcg.finegrained.meanforce_query.label_frames`) to a standard error
    ``SE^2 <= --label-se2`` (kJ/mol/nm)^2 per component; the strata's populations are the
    fraction of all the held-out runs' frames in each.

Metric (:func:`alcg.analysis.heldout.error_metrics`): ``fraction_removed`` = (MSE(prior) - MSE(model)) /
(MSE(prior) - mean SE^2) against the mean force, weighted by the strata's populations; per fit,
then mean and a t confidence interval (95 %) over the ``draws x seeds`` fits of each (map, N).

``noise``: per force map, the variance per component of its instantaneous label about the mean
force on the held-out frames (mean squared difference minus the labels' SE^2).

Every fit of the curve has the same network and recipe (chosen among ``CANDIDATES`` on the
validation frames) and the same fixed number of optimizer steps (``--steps``); the fits are
cached one file each under ``--work``, so a killed run resumes where it stopped. The P_fold
check (``--pfold-minutes``) simulates the best model at the largest N (:func:`p_fold_check`).

    python benchmarks/learning_curve.py                # the committed result
    python benchmarks/learning_curve.py --quick        # a smoke run (about a minute), not a result

Output: ``benchmarks/measured/learning_curve.json`` and ``learning_curve.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alcg.config.settings import ForceField, Model, Priors, System, Train, defaults, parse  # noqa: E402
from alcg.util.fileio import atomic_path, write_json  # noqa: E402

OUT = ROOT / "benchmarks" / "measured" / "learning_curve.json"
WORK = ROOT / "benchmarks" / ".work" / "learning_curve"
MAPS = ("constrained", "residue", "optimal")
SEEDS = {"train": 1000, "fit": 2000, "val": 3000, "heldout": 4000}

#: candidate (network, recipe) pairs; the one with the lowest validation loss at N =
#: ``--select-n`` (optimal map, draw 0, seed 0) runs the curve: chosen on validation frames,
#: never on the held-out ones. ``old``: the measured Go experiment's network and recipe.
CANDIDATES = {
    "old": ({"n_rbf": 16, "hidden": 32, "n_filters": 32, "n_interactions": 2, "zero_init_output": False},
            {"epochs": 20, "patience": 5, "optimizer": "adam", "weight_decay": 0.0, "schedule": "exponential",
             "ema_decay": 0.0}),
    "small": ({"n_rbf": 16, "hidden": 32, "n_filters": 32, "n_interactions": 2, "zero_init_output": True},
              {"optimizer": "adamw", "weight_decay": 1e-4, "schedule": "cosine", "ema_decay": 0.99}),
    "wide": ({"n_rbf": 16, "hidden": 64, "n_filters": 64, "n_interactions": 3, "zero_init_output": True},
             {"optimizer": "adamw", "weight_decay": 1e-4, "schedule": "cosine", "ema_decay": 0.99}),
}


# ------------------------------------------------------------------ the system and its runs
def go_forcefield() -> ForceField:
    """Go CLN025 at 340 K, 5 fs, on OpenMM's Reference platform (the fastest at 19 particles)."""
    return defaults(ForceField, files=["amber14-all.xml"], temperature_k=340.0, timestep_fs=5.0,
                    platform="Reference", kind="go")


def prepare(work: Path) -> None:
    """The native beads and the folded and extended starts (PDB + System XML) in ``work``."""
    from alcg.finegrained import gomodel
    from alcg.finegrained.models import GoModel
    from alcg.stages.validate import validate

    if (work / "extended.xml").exists():
        return
    cfg = validate(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))
    model, system_cfg = GoModel(go_forcefield()), parse(System, cfg["system"])
    starts = cfg["system"]["starts"]
    gomodel.save_native(work / "native.npz", model.native(system_cfg, starts["folded"], seed=0))
    for name in ("folded", "extended"):
        model.prepare(system_cfg, starts[name], str(work / "native.npz"), work / f"{name}.pdb",
                      work / f"{name}.xml", seed=0)


def _md(job: tuple) -> str:
    """One equilibrium run (a worker process): ``job`` = (work, name, start, n_frames, interval, equil, seed)."""
    import torch

    from alcg.finegrained.md import MDSpec, run_md

    torch.set_num_threads(1)
    work, name, start, n_frames, interval, equil_steps, seed = job
    out = work / "runs" / f"{name}.npz"
    if not out.exists():
        spec = MDSpec(n_steps=n_frames * interval, record_interval=interval, checkpoint_every=10**7,
                      restraint_k=0.0, equilibration_steps=equil_steps, seed=seed)
        run_md(work / f"{start}.pdb", work / f"{start}.xml", out, spec, go_forcefield(), threads=1, progress=False)
    return str(out)


def run_plan(args) -> dict[str, list[tuple]]:
    """Per data set, its runs as ``_md`` jobs: half from the folded start, half from the extended."""
    ff = go_forcefield()
    interval = int(round(args.spacing_ps * 1000 / ff.timestep_fs))
    equil = int(round(args.equil_ps * 1000 / ff.timestep_fs))
    per_draw = -(-max(args.sizes) // args.runs)
    sets = {f"train{d}": (args.runs, per_draw, SEEDS["train"] + 100 * d) for d in range(args.draws)}
    sets.update(fit=(2, args.fit_frames // 2, SEEDS["fit"]), val=(2, args.val_frames // 2, SEEDS["val"]),
                heldout=(args.heldout_runs, args.heldout_frames_per_run, SEEDS["heldout"]))
    plan = {}
    for name, (n_runs, n_frames, seed) in sets.items():
        step = interval * (5 if name == "heldout" else 1)
        plan[name] = [(args.work, f"{name}_{r}", ("folded", "extended")[r % 2], n_frames, step, equil, seed + r)
                      for r in range(n_runs)]
    return plan


def simulate(args, pool: ProcessPoolExecutor) -> tuple[dict[str, list[Path]], float]:
    """Run every data set's runs (cached); return their files and the core-seconds they took now."""
    (args.work / "runs").mkdir(parents=True, exist_ok=True)
    plan = run_plan(args)
    jobs = [j for js in plan.values() for j in js]
    todo = [j for j in jobs if not (args.work / "runs" / f"{j[1]}.npz").exists()]
    t0 = time.time()
    list(pool.map(_md, todo))
    print(f"MD: {len(todo)} of {len(jobs)} runs simulated in {time.time() - t0:.0f} s", flush=True)
    return {k: [args.work / "runs" / f"{j[1]}.npz" for j in js] for k, js in plan.items()}, time.time() - t0


# ------------------------------------------------------------------ data on the beads
def load_set(files: list[Path]):
    """Positions (n, P, 3) nm, atom forces (n, P, 3) kJ/mol/nm and run index (n,) of runs."""
    from alcg.formats import run_file

    runs = [run_file.load(f) for f in files]
    return (np.concatenate([r.positions for r in runs]), np.concatenate([r.forces for r in runs]),
            np.concatenate([np.full(r.n_frames, i) for i, r in enumerate(runs)]), runs[0].atom_indices)


def system_of(work: Path):
    import openmm as mm
    import openmm.app as app

    from alcg.finegrained.mapping import CAMapping

    system = mm.XmlSerializer.deserialize((work / "folded.xml").read_text())
    topology = app.PDBFile(str(work / "folded.pdb")).topology
    return system, topology, CAMapping(topology, system)


def force_maps(work: Path, fit_forces: np.ndarray, atoms: np.ndarray, ridge: float) -> dict:
    from alcg.finegrained import force_maps as FM

    system, topology, mapping = system_of(work)
    maps = {"constrained": FM.constrained(mapping, atoms), "residue": FM.residue(topology, mapping, atoms, system),
            "optimal": FM.optimal(fit_forces, system, mapping, atoms, ridge)}
    for k, m in maps.items():
        bad = FM.violations(m, system, mapping)
        if bad:
            raise SystemExit(f"force map {k} is invalid: {bad[0]}")
    return maps


def heldout_set(args, files: list[Path]) -> dict:
    """The held-out frames, their exact labels and the strata's populations (cached)."""
    path = args.work / "heldout.npz"
    if path.exists():
        d = np.load(path)
        return {k: d[k] for k in d.files}
    from alcg.analysis import heldout
    from alcg.finegrained import force_maps as FM, gomodel, meanforce_query
    from alcg.stages.analysis import CORE_MARGIN_Q

    pos, forces, run, atoms = load_set(files)
    native = gomodel.load_native(args.work / "native.npz")
    strata = heldout.q_strata(gomodel.fraction_native_contacts(pos, native), go_forcefield().go.q_threshold,
                              CORE_MARGIN_Q)
    pops = heldout.populations(strata)
    names, population = np.array(list(pops)), np.array(list(pops.values()))
    pick = heldout.stratified_pick(strata, args.per_stratum, SEEDS["heldout"])
    system, topology, mapping = system_of(args.work)
    spec = meanforce_query.MeanForceSpec(n_steps=args.label_chunk_steps, record_interval=args.label_interval,
                                         equilibration_steps=20 * args.label_interval, restraint_k=0.0,
                                         n_blocks=10, seed=SEEDS["heldout"])
    t0 = time.time()
    labels = meanforce_query.label_frames(
        system, topology, pos[pick], spec, go_forcefield(), fmap=FM.residue(topology, mapping, atoms, system),
        se2_target=args.label_se2, max_steps=args.label_max_steps, threads=1, progress=False)
    label, se2, n_samples = labels.forces, labels.se2, labels.n_samples
    out = {"coords": mapping.map_coords(pos[pick]), "positions": pos[pick], "inst_forces": forces[pick],
           "mean_force": label, "se2": se2, "n_samples": n_samples, "stratum": strata[pick],
           "strata": names, "population": population, "label_s": np.array(time.time() - t0),
           "label_ps": np.array(labels.simulated_ps)}
    np.savez(path, **out)
    return out


# ------------------------------------------------------------------ the prior
#: prior variants (``priors`` settings over the schema defaults), compared on validation frames
#: the curve's prior candidates, spelled out (not the schema's defaults, which may change after
#: a curve is frozen): "default" is the +1 pseudocount on frame counts the curve was fitted with
#: (the data-derived ``dihedral_counts: independent`` came later: benchmarks/prior_counts.py)
PRIOR_VARIANTS = {"default": {"dihedral_counts": "frames"}, "no_dihedrals": {"dihedral_terms": 0}}


#: the options that define the cached data (runs, held-out labels, force maps): a cache folder
#: made with other values is refused rather than silently reused
DATA_OPTIONS = ("sizes", "draws", "runs", "spacing_ps", "equil_ps", "fit_frames", "val_frames", "heldout_runs",
                "heldout_frames_per_run", "per_stratum", "label_se2", "label_interval", "label_chunk_steps",
                "label_max_steps", "ridge")


def guard_cache(args) -> None:
    """Record the data-defining options in ``--work`` on first use; refuse a later run whose
    options differ (one line naming them), since its cached runs, labels and maps would not match."""
    path = args.work / "data_options.json"
    now = {k: getattr(args, k) for k in DATA_OPTIONS}
    now["sizes"] = max(args.sizes)  # the runs hold max(--sizes) frames; smaller N are subsets
    if not path.exists():
        write_json(path, now)
        return
    before = json.loads(path.read_text())
    changed = [k for k in DATA_OPTIONS if before.get(k) != now[k]]
    if changed:
        raise SystemExit(f"learning_curve: {args.work} was made with other {', '.join(changed)} "
                         f"({', '.join(f'{before.get(k)} != {now[k]}' for k in changed)}); use another --work")


def prior_key(path: Path) -> str:
    """A short digest of a ``priors.json``'s parameters: the fit caches are keyed by it, so a
    changed prior never reuses fits of another."""
    import hashlib

    params = {k: v for k, v in json.loads(Path(path).read_text()).items() if k not in ("fitted_on", "n_frames")}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def choose_prior(args, sets: dict, fit_coords: np.ndarray, fmap) -> dict:
    """Fit every prior variant on the ``fit`` frames, score its force MSE alone on the validation
    frames (per Q stratum and over all: they are equilibrium frames), save the best as the curve's
    one frozen prior (``priors.json``) and return the comparison."""
    import torch

    from alcg.analysis import heldout
    from alcg.cg import priors
    from alcg.finegrained import gomodel
    from alcg.stages.analysis import CORE_MARGIN_Q

    pos, f, _, _ = load_set(sets["val"])
    _, _, mapping = system_of(args.work)
    x = torch.as_tensor(mapping.map_coords(pos), dtype=torch.float64).requires_grad_(True)
    labels = fmap.apply(f)
    strata = heldout.q_strata(gomodel.fraction_native_contacts(pos, gomodel.load_native(args.work / "native.npz")),
                              go_forcefield().go.q_threshold, CORE_MARGIN_Q)
    out, fitted = {}, {}
    for name, overrides in PRIOR_VARIANTS.items():
        prior = priors.fit_priors(fit_coords, 340.0, defaults(Priors, **overrides)).double()
        (g,) = torch.autograd.grad(prior(x).sum(), x)
        err = ((-g.detach().numpy() - labels) ** 2).mean((1, 2))
        out[name] = {"val_mse": float(err.mean()),
                     "val_mse_by_stratum": {s: float(err[strata == s].mean()) for s in sorted(set(strata.tolist()))}}
        fitted[name] = prior.float()
    chosen = min(out, key=lambda k: out[k]["val_mse"])
    priors.save(args.work / "priors.json", fitted[chosen], f"fit runs ({chosen})", len(fit_coords))
    print(f"prior: {chosen} ({ {k: round(v['val_mse']) for k, v in out.items()} })", flush=True)
    return {"chosen": chosen, "variants": PRIOR_VARIANTS, "scores": out}


# ------------------------------------------------------------------ one fit
def _fit(job: dict) -> dict:
    """Train one model (a worker process) and score it on the held-out frames; cached as JSON."""
    import torch

    from alcg.analysis import heldout
    from alcg.cg import priors
    from alcg.cg.model import CGModel
    from alcg.cg.train import train

    torch.set_num_threads(1)
    out = Path(job["out"])
    if out.exists():
        return json.loads(out.read_text())
    d = np.load(job["data"])
    prior = priors.load(job["priors"]).energy()
    torch.manual_seed(job["seed"])
    network, recipe = CANDIDATES[job["candidate"]]
    if "steps" not in recipe and "epochs" not in recipe:
        recipe = {**recipe, "steps": job["steps"]}
    model = CGModel(torch.as_tensor(d["bead_types"]), prior, defaults(Model, **network))
    if job.get("init"):  # a warm start: the network of an earlier fit
        model.net.load_state_dict(torch.load(job["init"]))
    n_train = len(d["train_coords"])
    coords = np.concatenate([d["train_coords"], d["val_coords"]])
    forces = np.concatenate([d["train_forces"], d["val_forces"]])
    split = (np.arange(n_train), np.arange(n_train, len(coords)))
    t0 = time.time()
    metrics = train(model, coords, forces, np.zeros(len(coords), int), defaults(Train, **recipe), job["seed"],
                    out.with_suffix(".state.pt"), progress=False, split=split)
    h = heldout.HeldOut(coords=d["held_coords"], forces=d["held_labels"], stratum=d["held_stratum"],
                        source=np.zeros(len(d["held_coords"]), str), frame=np.arange(len(d["held_coords"])))
    full, prior_only = heldout.frame_errors(model, h)
    m = heldout.error_metrics(full, prior_only, d["held_stratum"], d["held_se2"],
                              dict(zip(d["strata"].tolist(), d["population"].tolist())))
    scores = {"fraction_removed": m["heldout_fraction_removed_weighted"],
              "heldout_excess": m["heldout_excess_weighted"],
              "mse_model": m["heldout_force_mse_weighted"], "mse_prior": m["heldout_prior_force_mse_weighted"],
              "fraction_removed_by_stratum": m["heldout_fraction_removed_by_stratum"]}
    result = {k: job[k] for k in ("candidate", "force_map", "n_frames", "draw", "seed")}
    result.update(scores, train_s=round(time.time() - t0, 1), n_steps=metrics.get("n_steps"),
                  best_epoch=metrics["best_epoch"],
                  best_candidate=metrics.get("best_candidate"), best_val_loss=metrics["best_val_loss"],
                  prior_only_val_loss=metrics["prior_only_val_loss"])
    if job.get("save"):
        with atomic_path(job["save"]) as tmp:
            torch.save(model.net.state_dict(), tmp)
    write_json(out, result)
    out.with_suffix(".state.pt").unlink(missing_ok=True)
    return result


def warm_start_check(args, pool: ProcessPoolExecutor, maps: dict, sets: dict, held: dict, chosen: str) -> dict:
    """The workflow's warm start against training from scratch: a model fitted on the first
    ``--warm-from`` frames of draw 0, trained on the first ``--warm-to`` (a superset, as a
    round's data is) with the same recipe, vs the curve's fit from scratch on those frames
    (optimal map, seed 0)."""
    k = "optimal" if "optimal" in maps else next(iter(maps))
    fits, key = args.work / "fits", prior_key(args.work / "priors.json")
    [base] = fit_jobs(args, {k: maps[k]}, sets, held, chosen, [args.warm_from], 1, 1)
    base.update(out=str(fits / f"warm_base_{chosen}_st{args.steps}_{k}_n{args.warm_from}_p{key}.json"),
                save=str(fits / f"warm_base_{chosen}_st{args.steps}_{k}_n{args.warm_from}_p{key}.pt"))
    [scratch] = fit_jobs(args, {k: maps[k]}, sets, held, chosen, [args.warm_to], 1, 1)
    warm = {**scratch, "init": base["save"],
            "out": str(fits / f"warm_{chosen}_st{args.steps}_{k}_n{args.warm_from}_to_n{args.warm_to}_p{key}.json")}
    r_base = run_fits(pool, [base])[0]
    r_warm, r_scratch = run_fits(pool, [warm, scratch])
    keys = ("best_val_loss", "best_candidate", "fraction_removed", "heldout_excess")
    return {"force_map": k, "from_n": args.warm_from, "to_n": args.warm_to,
            "base": {x: r_base[x] for x in keys}, "warm": {x: r_warm[x] for x in keys},
            "scratch": {x: r_scratch[x] for x in keys}}


def fit_jobs(args, maps: dict, sets: dict, held: dict, candidate: str, sizes: list[int], draws: int,
             seeds: int) -> list[dict]:
    """Write one data file per (map, draw, N) (cached) and return the fit jobs of ``candidate``."""
    from alcg.finegrained.mapping import bead_types

    _, _, mapping = system_of(args.work)
    types = bead_types(_sequence())
    val_pos, val_f, _, _ = load_set(sets["val"])
    jobs, key = [], prior_key(args.work / "priors.json")
    (args.work / "fits").mkdir(exist_ok=True)
    for d in range(draws):
        pos, f, _, _ = load_set(sets[f"train{d}"])
        order = np.random.default_rng(SEEDS["train"] + d).permutation(len(pos))
        for k, fmap in maps.items():
            for n in sizes:
                path = args.work / "fits" / f"data_{k}_d{d}_n{n}.npz"
                if not path.exists():
                    idx = np.sort(order[:n])
                    with atomic_path(path) as tmp:
                        np.savez(tmp, bead_types=types, train_coords=mapping.map_coords(pos[idx]),
                                 train_forces=fmap.apply(f[idx]), val_coords=mapping.map_coords(val_pos),
                                 val_forces=fmap.apply(val_f), held_coords=held["coords"],
                                 held_labels=held["mean_force"], held_se2=held["se2"],
                                 held_stratum=held["stratum"], strata=held["strata"],
                                 population=held["population"])
                for s in range(seeds):
                    name = f"fit_{candidate}_st{args.steps}_{k}_d{d}_n{n}_s{s}_p{key}.json"
                    jobs.append({"candidate": candidate, "steps": args.steps, "force_map": k, "n_frames": n,
                                 "draw": d, "seed": s, "data": str(path), "priors": str(args.work / "priors.json"),
                                 "out": str(args.work / "fits" / name)})
    return sorted(jobs, key=lambda j: (j["n_frames"], j["force_map"], j["draw"], j["seed"]))


def run_fits(pool: ProcessPoolExecutor, jobs: list[dict]) -> list[dict]:
    fits = []
    for r in pool.map(_fit, jobs):
        fits.append(r)
        print(f"{r['candidate']:>6} {r['force_map']:>11} N={r['n_frames']:>6} draw {r['draw']} seed {r['seed']}: "
              f"val {r['best_val_loss']:.0f} (prior {r['prior_only_val_loss']:.0f}, best {r['best_candidate']}) "
              f"fraction_removed {r['fraction_removed']:.3f} ({r['train_s']:.0f} s)", flush=True)
    return fits


def _sequence() -> str:
    from alcg.stages.validate import validate

    cfg = validate(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))
    return cfg["system"]["sequence"]


# ------------------------------------------------------------------ P_fold of the best model
def _ca_q_groups(runs_by_start: dict[str, list[np.ndarray]], native) -> dict:
    """:func:`alcg.analysis.convergence.check` groups from C-alpha trajectories (per start, a
    list of (frames, N, 3) nm): folded by the C-alpha Q (the order parameter a CG frame has)."""
    from alcg.analysis import convergence
    from alcg.finegrained import gomodel
    from alcg.stages.analysis import CORE_MARGIN_Q

    qt = go_forcefield().go.q_threshold
    out = {}
    for start, trajs in runs_by_start.items():
        for ca in trajs:
            q = gomodel.ca_fraction_native_contacts(ca, native)
            out.setdefault(start, []).append({"folded": q > qt, "q": q,
                                              "core": convergence.core_sets(q, qt, CORE_MARGIN_Q, True)})
    return out


def p_fold_check(args, pool: ProcessPoolExecutor, maps: dict, sets: dict, held: dict, chosen: str,
                 rows: list[dict]) -> dict:
    """The best model at the largest N (its map: the best curve there; draw 0, seed 0, refitted
    and saved), simulated from the folded and the extended start (half the replicas each) at
    ``cg_sim``'s defaults in chunks until ``reference_check``'s criteria hold or
    ``--pfold-minutes`` of wall time pass; P_fold by the C-alpha Q against the benchmark's own
    equilibrium runs (the training draws' runs, C-alpha Q likewise)."""
    import openmm.app as app
    import openmm.unit as unit
    import torch

    from alcg.analysis import convergence
    from alcg.cg.model import CGModel
    from alcg.cg.simulate import LangevinRun, model_force_fn, simulate
    from alcg.cg import priors
    from alcg.config.settings import CGSim
    from alcg.finegrained import gomodel

    n_max = max(args.sizes)
    k = max((r for r in rows if r["n_frames"] == n_max), key=lambda r: r["fraction_removed"])["force_map"]
    key = prior_key(args.work / "priors.json")
    cached = args.work / "fits" / (f"pfold_{chosen}_st{args.steps}_{k}_n{n_max}_r{args.pfold_replicas}"
                                   f"_c{args.pfold_chunk_ps:g}_s{args.pfold_save_ps:g}_b{args.pfold_burn_ps:g}"
                                   f"_m{args.pfold_minutes:g}_p{key}.json")
    if cached.exists():  # the check is the slowest step: one result per setting
        return json.loads(cached.read_text())
    [job] = fit_jobs(args, {k: maps[k]}, sets, held, chosen, [n_max], 1, 1)
    net_path = args.work / "fits" / f"best_{chosen}_st{args.steps}_{k}_n{n_max}_p{key}.pt"
    job.update(out=str(net_path.with_suffix(".json")), save=str(net_path))
    fit = run_fits(pool, [job])[0]
    native = gomodel.load_native(args.work / "native.npz")
    _, _, mapping = system_of(args.work)
    network, _ = CANDIDATES[chosen]
    prior = priors.load(args.work / "priors.json").energy()
    model = CGModel(torch.as_tensor(np.load(job["data"])["bead_types"]), prior,
                    defaults(Model, **network))
    model.net.load_state_dict(torch.load(net_path))
    model.eval()
    force_fn = model_force_fn(model, compile=False)
    sim = defaults(CGSim)
    starts = {s: mapping.map_coords(app.PDBFile(str(args.work / f"{s}.pdb")).getPositions(asNumpy=True)
                                    .value_in_unit(unit.nanometer)[None])[0] for s in ("folded", "extended")}
    half = args.pfold_replicas // 2
    x = np.concatenate([np.repeat(starts["folded"][None], half, 0), np.repeat(starts["extended"][None], half, 0)])
    masses = mapping.bead_masses
    save = max(1, int(round(args.pfold_save_ps / sim.dt_ps)))
    chunk = save * int(round(args.pfold_chunk_ps / args.pfold_save_ps))
    trajs, t0, report, chunks = [[] for _ in range(len(x))], time.time(), None, 0
    torch.set_num_threads(args.jobs)
    while time.time() - t0 < args.pfold_minutes * 60:
        res = simulate(force_fn, x, masses, LangevinRun.of(sim, n_steps=chunk, save_interval=save, temperature_k=340.0,
                                                             seed=7000 + chunks), progress=False)
        chunks += 1
        for r in range(len(x)):
            trajs[r].append(res.coords[r, :res.n_frames[r]])
        if any(st != "ok" for st in res.status):
            print(f"P_fold: {sum(st != 'ok' for st in res.status)} replicas exploded", flush=True)
            break
        x = res.coords[:, -1]
        burn = int(round(args.pfold_burn_ps / args.pfold_save_ps))
        by_start = {"folded": [np.concatenate(t)[burn:] for t in trajs[:half]],
                    "extended": [np.concatenate(t)[burn:] for t in trajs[half:]]}
        if min(len(v[0]) for v in by_start.values()) > 10:
            report = convergence.check(_ca_q_groups(by_start, native), args.pfold_save_ps)
            g = report["groups"]
            print(f"P_fold after {chunks * chunk * sim.dt_ps / 1000:.2f} ns per replica: "
                  + ", ".join(f"{s} {g[s]['p_fold']:.3f} ± {g[s]['p_fold_se']:.3f} ({g[s]['n_transitions']} tr.)"
                              for s in g), flush=True)
            if report["converged"]:
                break
    ref_runs = {"folded": [], "extended": []}  # the training draws' runs: 2 ps apart, even runs folded
    for name in (n for n in sets if n.startswith("train")):
        for r, f in enumerate(sets[name]):
            ref_runs[("folded", "extended")[r % 2]].append(mapping.map_coords(load_set([f])[0]))
    ref = convergence.check(_ca_q_groups(ref_runs, native), args.spacing_ps)

    def pooled(rep):
        if rep is None:
            return None
        g = list(rep["groups"].values())
        w = np.array([x["length_ps"] for x in g])
        p = float(np.average([x["p_fold"] for x in g], weights=w))
        se = float(np.sqrt(np.sum((w / w.sum()) ** 2 * np.array([x["p_fold_se"] for x in g]) ** 2)))
        return p, se

    model_p, ref_p = pooled(report), pooled(ref)
    out = {"model": None if model_p is None else model_p[0], "model_se": None if model_p is None else model_p[1],
           "reference": ref_p[0], "reference_se": ref_p[1], "force_map": k, "n_frames": n_max,
           "fit_fraction_removed": fit["fraction_removed"], "replicas": len(x),
           "ns_per_replica": chunks * chunk * sim.dt_ps / 1000, "wall_s": round(time.time() - t0, 1),
           "cap_minutes": args.pfold_minutes, "converged": bool(report and report["converged"]),
           "reasons": None if report is None else report["reasons"], "model_groups": None if report is None else
           {s: {k2: v for k2, v in g.items() if k2 in ("p_fold", "p_fold_se", "n_transitions", "tau_ps", "length_ps")}
            for s, g in report["groups"].items()},
           "reference_groups": {s: {k2: v for k2, v in g.items() if k2 in ("p_fold", "p_fold_se", "n_transitions")}
                                for s, g in ref["groups"].items()}}
    if model_p is not None:
        d = out["model"] - out["reference"]
        se = float(np.hypot(out["model_se"], out["reference_se"]))
        out.update(difference=d, ci_low=d - 1.96 * se, ci_high=d + 1.96 * se)
    write_json(cached, out)
    return out


# ------------------------------------------------------------------ summary
def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval of ``values`` (NaN bounds for fewer than two)."""
    from scipy import stats

    v = np.asarray(values, float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - h, m + h


def curve(fits: list[dict]) -> list[dict]:
    rows = []
    for k in MAPS:
        for n in sorted({f["n_frames"] for f in fits}):
            sel = [f for f in fits if f["force_map"] == k and f["n_frames"] == n]
            if not sel:
                continue
            m, lo, hi = t_interval([f["fraction_removed"] for f in sel])
            rows.append({"force_map": k, "n_frames": n, "fraction_removed": m, "ci_low": lo, "ci_high": hi,
                         "n_fits": len(sel), "fits": [f["fraction_removed"] for f in sel],
                         "heldout_excess": float(np.mean([f["heldout_excess"] for f in sel]))})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    from alcg.util.figure_io import plt, save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k in MAPS:
        r = [x for x in rows if x["force_map"] == k]
        if not r:
            continue
        n = [x["n_frames"] for x in r]
        ax.plot(n, [x["fraction_removed"] for x in r], "o-", label=k)
        ax.fill_between(n, [x["ci_low"] for x in r], [x["ci_high"] for x in r], alpha=0.2)
    ax.axhline(0, c="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training frames N")
    ax.set_ylabel("fraction of the prior's error removed")
    ax.legend(title="force map")
    save_figure(fig, path)


# ------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a result")
    ap.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 4000, 16000], help="training frames N")
    ap.add_argument("--draws", type=int, default=2, help="independent data draws")
    ap.add_argument("--train-seeds", type=int, default=2, help="training seeds per draw")
    ap.add_argument("--maps", nargs="+", default=list(MAPS), choices=MAPS)
    ap.add_argument("--runs", type=int, default=8, help="equilibrium runs per draw")
    ap.add_argument("--spacing-ps", type=float, default=2.0, help="frame spacing of the training runs (ps)")
    ap.add_argument("--equil-ps", type=float, default=1000.0, help="discarded start of every run (ps)")
    ap.add_argument("--fit-frames", type=int, default=4000, help="frames the priors and optimal map are fitted on")
    ap.add_argument("--val-frames", type=int, default=2000, help="validation frames")
    ap.add_argument("--heldout-runs", type=int, default=4)
    ap.add_argument("--heldout-frames-per-run", type=int, default=1000, help="10 ps apart")
    ap.add_argument("--per-stratum", type=int, default=200, help="held-out frames per Q stratum")
    ap.add_argument("--label-se2", type=float, default=15.0, help="target SE^2 of a label, (kJ/mol/nm)^2")
    ap.add_argument("--label-interval", type=int, default=20, help="steps between force samples")
    ap.add_argument("--label-chunk-steps", type=int, default=2000, help="steps sampled between SE checks")
    ap.add_argument("--label-max-steps", type=int, default=200000, help="cap on sampled steps per frame")
    ap.add_argument("--ridge", type=float, default=1e-6, help="the optimal map's ridge (relative)")
    ap.add_argument("--steps", type=int, default=2000, help="optimizer steps of every fit (fixed-budget recipes)")
    ap.add_argument("--select-n", type=int, default=4000, help="N at which the candidates are compared")
    ap.add_argument("--candidate", choices=list(CANDIDATES), help="skip the choice: fit this candidate (a check "
                    "of what limits the curve, never the committed choice)")
    ap.add_argument("--warm-from", type=int, default=1000, help="warm-start check: the earlier fit's frames")
    ap.add_argument("--warm-to", type=int, default=4000, help="warm-start check: the later fit's frames (0: no check)")
    ap.add_argument("--pfold-minutes", type=float, default=0.0, help="P_fold check: wall-time cap (0: none)")
    ap.add_argument("--pfold-replicas", type=int, default=32, help="P_fold check: replicas, half per start")
    ap.add_argument("--pfold-chunk-ps", type=float, default=100.0, help="P_fold check: ps per chunk")
    ap.add_argument("--pfold-save-ps", type=float, default=1.0, help="P_fold check: ps between frames")
    ap.add_argument("--pfold-burn-ps", type=float, default=200.0, help="P_fold check: ps dropped per replica")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--work", type=Path, default=WORK, help="cache folder (resumable)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.draws, args.train_seeds, args.runs = [50, 200], 1, 2, 2
        args.equil_ps, args.fit_frames, args.val_frames, args.heldout_runs = 20.0, 200, 100, 2
        args.heldout_frames_per_run, args.per_stratum, args.label_se2, args.steps = 100, 10, 400.0, 40
        args.select_n, args.warm_from, args.warm_to = 200, 50, 200
        args.pfold_minutes = args.pfold_minutes and 0.2
        args.pfold_replicas, args.pfold_chunk_ps, args.pfold_save_ps, args.pfold_burn_ps = 4, 5.0, 0.5, 1.0
        args.work = args.work.with_name(args.work.name + "_quick")
        args.out = args.work / "learning_curve_quick.json" if args.out == OUT else args.out
    args.work.mkdir(parents=True, exist_ok=True)
    guard_cache(args)
    t0 = time.time()
    prepare(args.work)
    with ProcessPoolExecutor(args.jobs) as pool:
        sets, md_s = simulate(args, pool)
        fit_pos, fit_f, _, atoms = load_set(sets["fit"])
        _, _, mapping = system_of(args.work)
        from alcg.cg import priors

        maps = {k: m for k, m in force_maps(args.work, fit_f, atoms, args.ridge).items() if k in args.maps}
        val_map = maps.get("optimal") or next(iter(maps.values()))
        prior_choice = choose_prior(args, sets, mapping.map_coords(fit_pos), val_map)
        held = heldout_set(args, sets["heldout"])
        inst = {k: m.apply(held["inst_forces"]) for k, m in maps.items()}
        noise = {k: float(np.mean((v - held["mean_force"]) ** 2) - np.mean(held["se2"])) for k, v in inst.items()}
        print("noise per component:", {k: round(v) for k, v in noise.items()}, flush=True)
        best_map = {"optimal": maps["optimal"]} if "optimal" in maps else maps
        select = [] if args.candidate else run_fits(
            pool, [j for c in CANDIDATES for j in fit_jobs(args, best_map, sets, held, c, [args.select_n], 1, 1)])
        chosen = args.candidate or min(select, key=lambda r: r["best_val_loss"])["candidate"]
        print(f"chosen on validation frames: {chosen}" if select else f"candidate given: {chosen}", flush=True)
        fits = run_fits(pool, fit_jobs(args, maps, sets, held, chosen, args.sizes, args.draws, args.train_seeds))
        warm = warm_start_check(args, pool, maps, sets, held, chosen) if args.warm_to else None
        rows = curve(fits)
        p_fold = p_fold_check(args, pool, maps, sets, held, chosen, rows) if args.pfold_minutes else None
    given = sys.argv[1:] if argv is None else list(argv)
    result = {"command": " ".join(["python benchmarks/learning_curve.py", *given]),
              "system": "Go CLN025, 340 K, today's Go defaults", "candidates": CANDIDATES, "chosen": chosen,
              "selection": [{k: r[k] for k in ("candidate", "best_val_loss", "prior_only_val_loss", "best_candidate",
                                               "train_s")} for r in select], "steps": args.steps,
              "sizes": args.sizes, "draws": args.draws, "train_seeds": args.train_seeds,
              "spacing_ps": args.spacing_ps, "equil_ps": args.equil_ps,
              "heldout": {"n_frames": int(len(held["se2"])), "strata": held["strata"].tolist(),
                          "population": held["population"].tolist(), "mean_se2": float(np.mean(held["se2"])),
                          "max_se2": float(np.max(held["se2"])), "label_s": float(held["label_s"]),
                          "label_ps": float(held["label_ps"]),
                          "per_stratum": {s: int((held["stratum"] == s).sum()) for s in held["strata"].tolist()}},
              "md_s_this_run": round(md_s, 1), "prior": prior_choice, "warm_start": warm,
              "noise": {"go": noise}, "curve": rows, "fits": fits,
              "p_fold": p_fold}
    result.update(wall_s=round(time.time() - t0, 1), date=time.strftime("%Y-%m-%d"), cores=os.cpu_count())
    write_json(args.out, result)
    plot(rows, args.out.with_suffix(".png"))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
