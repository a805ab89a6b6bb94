"""How cost grows with protein size: CG forces, RMSD selection and the validity mask at 10, 35,
80 and 200 beads, with time and peak memory; prints JSON (and writes it with --out).

Each measurement runs in its own subprocess, so that its peak resident memory
(``ru_maxrss``) is its own. Memory per replica of the CG forces is the slope between two
replica counts. Parts:

- forces: one force evaluation of the network used in simulation
  (:class:`alcg.cg.fast_forces.FastForceField`, tabulated filters, eager) on all pairs
  (``dense_fast``) and on the pairs within the cutoff (``pruned_fast``; the force field's
  own choice above ``PRUNE_ABOVE_BEADS`` beads), and of the exact model on PyG's edge list
  (``pair_path="edges"``: only pairs within the cutoff), on random-walk chains with 0.38 nm
  bonds; the fraction of pairs within the 3 nm cutoff of those chains is reported: where it
  is high, dense does no wasted work;
- prune_ratio: pruned vs. dense network forces in one process on the same chains (time
  ratio, force difference), where the machine's noise would swamp two processes' times;
- select: :class:`alcg.selection.rmsd_coverage.RMSDSelector` (torch search), F x F frames of the
  selection benchmark's data (:func:`run_all.select_data`) at each size;
- mask: :func:`alcg.selection.rmsd_coverage.physical_mask` on 10^5 frames: peak memory in chunks, and the
  (F, P, 3) array the unchunked version built;
- train: force matching (:func:`alcg.cg.train.train`, one epoch, the default network) on the
  dense (``auto``) and edge-list pair paths: frames per second and peak memory;
- evaluate: the rule ``evaluate``'s work on frames in memory (:func:`alcg.stages.analysis.frame_metrics`
  and :func:`~alcg.stages.analysis.evaluation_plots`, all but reading the files) on random-walk
  chains (0.38 nm bonds) of 10^5 CG frames and ~10^5 reference frames (4 runs, 2 starts), with
  the TICA space fitted as rule ``fit_tica`` fits it (:meth:`alcg.analysis.tica.TicaSpace.fit`, measured
  in its own process too); ``--pair-budget`` sets :data:`alcg.analysis.tica.PAIR_BUDGET` (a huge value:
  one chunk, the memory of the unchunked code). Every frame passes the geometry checks
  (``min_distance_nm`` 0: the worst case, all frames evaluated).

    python benchmarks/scaling.py --out benchmarks/measured/scaling.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _chains(n_frames: int, n_beads: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(n_frames, n_beads - 1, 3))
    steps *= 0.38 / np.linalg.norm(steps, axis=-1, keepdims=True)
    return np.concatenate([np.zeros((n_frames, 1, 3)), np.cumsum(steps, 1)], 1)


def _model(n_beads: int):
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from alcg.config import settings as S
    from alcg.cg.model import CGModel
    from alcg.cg.priors import fit_priors

    x = _chains(400, n_beads)
    prior = fit_priors(x, 340.0, S.defaults(S.Priors))
    torch.manual_seed(0)
    types = torch.as_tensor(np.random.default_rng(0).integers(0, 20, n_beads))
    return CGModel(types, prior, S.defaults(S.Model, zero_init_output=False)), x


def part_forces(n_beads: int, replicas: int, path: str) -> dict:
    import numpy as np
    import torch

    from alcg.cg.fast_forces import FastForceField

    torch.set_num_threads(1)
    model, x = _model(n_beads)
    xt = torch.as_tensor(_chains(replicas, n_beads, seed=1), dtype=torch.float32)
    if path in ("dense_fast", "pruned_fast"):
        fn = FastForceField(model, compile=False, prune=path == "pruned_fast")
    else:
        model.pair_path = "edges"

        def fn(y):
            return model.energy_and_forces(y)
    fn(xt[:1])
    base = _peak_mb()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn(xt)
        times.append(time.perf_counter() - t0)
    d = np.linalg.norm(xt[:, :, None] - xt[:, None, :], axis=-1)[:, *np.triu_indices(n_beads, 1)]
    return {"seconds_per_eval": min(times), "peak_rss_mb": _peak_mb(), "rss_before_eval_mb": base,
            "fraction_pairs_within_cutoff": float((d < model.hparams["cutoff_nm"]).mean())}


def part_prune_ratio(n_beads: int, replicas: int) -> dict:
    """Pruned vs. dense network forces (tabulated, eager) in one process on the same chains:
    best-of-3 seconds of each, and the largest force difference between them (kJ/mol/nm)."""
    import functools

    import torch

    from alcg.cg.dense_schnet import network_forces, pruned_network_forces
    from alcg.cg.fast_forces import FastForceField, tabulated_pair_filters

    torch.set_num_threads(1)
    model, _ = _model(n_beads)
    x = torch.as_tensor(_chains(replicas, n_beads, seed=1), dtype=torch.float32)
    field = FastForceField(model, compile=False, validate=False)
    filters = functools.partial(tabulated_pair_filters, coef=field.weights.coef, spacing_nm=field.table.spacing_nm)
    paths = {"dense": lambda: network_forces(x, field.weights, model.pairs, filters),
             "pruned": lambda: pruned_network_forces(x, field.weights, model.pairs, filters, field.table.cutoff_nm)}
    out, forces = {}, {}
    with torch.no_grad():
        for name, fn in paths.items():
            forces[name] = fn()[1]
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[f"{name}_seconds"] = min(times)
    out["pruned_over_dense"] = out["pruned_seconds"] / out["dense_seconds"]
    out["max_force_difference"] = float((forces["pruned"] - forces["dense"]).abs().max())
    return out


def part_train(n_beads: int, n_frames: int, path: str) -> dict:
    """Force matching (:func:`alcg.cg.train.train`, the schema's training settings, one epoch) on
    ``n_frames`` random-walk frames with random forces, on the dense (``auto``) or edge-list
    pair path: frames per second and peak memory."""
    import dataclasses
    import tempfile

    import numpy as np
    import torch
    import yaml

    from alcg.config import settings as S
    from alcg.stages.validate import validate
    from alcg.cg.train import train

    torch.set_num_threads(1)
    model, _ = _model(n_beads)
    model.pair_path = path
    x = _chains(n_frames, n_beads, seed=2)
    f = np.random.default_rng(1).normal(0, 100, x.shape)
    cfg = validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    sets = dataclasses.replace(S.parse(S.Train, cfg["train"]), epochs=1, val_fraction=0.0)
    base = _peak_mb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        train(model, x, f, np.repeat(np.arange(8), n_frames // 8).astype(str), sets, 0, Path(d) / "s.pt",
              device="cpu", progress=False)
    return {"frames_per_s": n_frames / (time.perf_counter() - t0), "batch_size": sets.batch_size,
            "peak_rss_mb": _peak_mb(), "rss_before_mb": base}


def part_select(n_beads: int, n_frames: int) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run_all import bench_select

    torch.set_num_threads(1)
    out = bench_select((n_frames,), n_beads, "cpu", mdtraj=False)[f"{n_frames}x{n_frames}"]
    return {"seconds": out["seconds"], "n_candidates": out["n_candidates"], "peak_rss_mb": _peak_mb()}


def part_mask(n_beads: int, n_frames: int) -> dict:
    from alcg.selection.rmsd_coverage import physical_mask

    x = _chains(n_frames, n_beads)
    base = _peak_mb()
    t0 = time.perf_counter()
    physical_mask(x, 0.3, 0.45, 0.35)
    pairs = (n_beads - 2) * (n_beads - 3) // 2
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_mb(), "rss_with_frames_mb": base,
            "unchunked_pair_array_mb": n_frames * pairs * 3 * 8 / 2 ** 20}


def _evaluation_inputs(n_beads: int, n_frames: int, n_reference: int):
    """CG frames (float32, as a trajectory file holds them), their first-half mask, reference
    runs (float32, as the C-alpha mapping of a run gives them) and the settings."""
    import numpy as np

    from alcg.config import settings as S

    kept = _chains(n_frames, n_beads, seed=1).astype(np.float32)
    first_half = np.arange(n_frames) % 1000 < 500  # 100 replicas of 1000 kept frames
    refs = np.array_split(_chains(n_reference, n_beads, seed=2).astype(np.float32), 4)
    ev = S.defaults(S.Evaluate)
    sel = S.PhysicalChecks(bond_min_nm=0.3, bond_max_nm=0.45, min_distance_nm=0.0)
    return kept, first_half, refs, ev, sel


def part_fit_tica(n_beads: int, n_frames: int, n_reference: int, tica_out: str, pair_budget: int) -> dict:
    """The fit of rule ``fit_tica`` (lag: ``tica_lag_ps`` at 1 ps per frame), saved to ``tica_out``."""
    from alcg.analysis import tica

    tica.PAIR_BUDGET = pair_budget
    _, _, refs, ev, _ = _evaluation_inputs(n_beads, n_frames, n_reference)
    base = _peak_mb()
    t0 = time.perf_counter()
    space = tica.TicaSpace.fit(refs, max(1, int(round(ev.tica_lag_ps))), ev.tica_dim, frame_interval_ps=1.0)
    seconds = time.perf_counter() - t0
    tica.save(tica_out, space)
    return {"seconds": seconds, "peak_rss_mb": _peak_mb(), "rss_with_inputs_mb": base,
            "n_reference_frames": space.n_reference_frames}


def part_evaluate(n_beads: int, n_frames: int, n_reference: int, tica_in: str, pair_budget: int) -> dict:
    """The work of rule ``evaluate`` on frames in memory: metrics and plots."""
    import tempfile

    import numpy as np

    from alcg.analysis import tica
    from alcg.stages.analysis import evaluation_plots, frame_metrics

    tica.PAIR_BUDGET = pair_budget
    kept, first_half, refs, ev, sel = _evaluation_inputs(n_beads, n_frames, n_reference)
    ref_xyz = np.concatenate(refs)
    labels = np.repeat(["folded", "unfolded"], [len(refs[0]) + len(refs[1]), len(refs[2]) + len(refs[3])])
    space = tica.load(tica_in)
    base = _peak_mb()
    t0 = time.perf_counter()
    metrics, model_xyz = frame_metrics(kept, first_half, len(kept), ref_xyz, labels, space, ref_xyz[0], ev, sel, 0)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        evaluation_plots(ref_xyz, model_xyz, space, f"{tmp}/fes.png", f"{tmp}/dist.png")
    return {"seconds_metrics": t1 - t0, "seconds_plots": time.perf_counter() - t1, "peak_rss_mb": _peak_mb(),
            "rss_with_inputs_mb": base, "n_model_frames": metrics["n_model_frames"],
            "n_reference_frames": metrics["n_reference_frames"], "tica_w1": metrics["tica_w1"],
            "unchunked_pair_difference_array_mb": n_frames * n_beads * (n_beads - 1) // 2 * 3 * 4 / 2 ** 20}


def _sub(part: str, *args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import scaling; " \
           f"print(json.dumps(scaling.part_{part}(*{args!r})))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"rc {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _evaluate_row(n_beads: int, n_frames: int, pair_budget: int | None) -> dict:
    """fit_tica then evaluate, each in its own process, on ``n_frames`` CG and reference frames."""
    import tempfile

    from alcg.analysis.tica import PAIR_BUDGET

    budget = pair_budget or PAIR_BUDGET
    with tempfile.TemporaryDirectory() as tmp:
        fit = _sub("fit_tica", n_beads, n_frames, n_frames, f"{tmp}/tica.npz", budget)
        ev = _sub("evaluate", n_beads, n_frames, n_frames, f"{tmp}/tica.npz", budget) if "error" not in fit else {}
    return {"n_frames": n_frames, "pair_budget": budget, "fit_tica": fit, "evaluate": ev}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beads", nargs="*", type=int, default=[10, 35, 80, 200])
    ap.add_argument("--replicas", nargs=2, type=int, default=[2, 8], help="two counts: memory per replica is the slope")
    ap.add_argument("--select-frames", type=int, default=10_000)
    ap.add_argument("--select-beads", nargs="*", type=int, default=[10, 35, 80])
    ap.add_argument("--mask-frames", type=int, default=100_000)
    ap.add_argument("--train-beads", nargs="*", type=int, default=[10, 35, 80])
    ap.add_argument("--train-frames", type=int, default=512)
    ap.add_argument("--eval-beads", nargs="*", type=int, default=[10, 35, 80])
    ap.add_argument("--eval-frames", type=int, default=100_000, help="CG frames; as many reference frames")
    ap.add_argument("--pair-budget", type=int, default=None, help="alcg.analysis.tica.PAIR_BUDGET (default: its own)")
    parts = ["forces", "prune_ratio", "select", "mask", "evaluate", "train"]
    ap.add_argument("--parts", nargs="*", default=parts, choices=parts)
    ap.add_argument("--force-paths", nargs="*", default=["dense_fast", "pruned_fast", "edges_exact"],
                    choices=["dense_fast", "pruned_fast", "edges_exact"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = {"machine": {"cpu_count": os.cpu_count(), "threads": 1, "load_average_at_start": os.getloadavg(),
                       "note": "shared, loaded 2-core machine: compare ratios within this file"},
           "forces": {}, "prune_ratio": {}, "select": {}, "mask": {}, "evaluate": {}, "train": {}}
    r1, r2 = args.replicas
    for n in args.beads if "forces" in args.parts else []:
        row = {}
        for path in args.force_paths:
            a, b = _sub("forces", n, r1, path), _sub("forces", n, r2, path)
            if "error" in a or "error" in b:
                row[path] = {"error": a.get("error") or b.get("error")}
                continue
            row[path] = {"seconds_per_replica_eval": b["seconds_per_eval"] / r2,
                         "memory_per_replica_mb": (b["peak_rss_mb"] - a["peak_rss_mb"]) / (r2 - r1),
                         "fraction_pairs_within_cutoff": b["fraction_pairs_within_cutoff"],
                         f"peak_rss_mb_{r2}_replicas": b["peak_rss_mb"]}
        out["forces"][str(n)] = row
        print("forces", n, row, flush=True)
    for n in args.beads if "prune_ratio" in args.parts else []:
        out["prune_ratio"][str(n)] = _sub("prune_ratio", n, r2)
        print("prune_ratio", n, out["prune_ratio"][str(n)], flush=True)
    for n in args.select_beads if "select" in args.parts else []:
        out["select"][str(n)] = _sub("select", n, args.select_frames)
        print("select", n, out["select"][str(n)], flush=True)
    if "mask" in args.parts:
        out["mask"]["80"] = _sub("mask", 80, args.mask_frames)
    for n in args.eval_beads if "evaluate" in args.parts else []:
        out["evaluate"][str(n)] = _evaluate_row(n, args.eval_frames, args.pair_budget)
        print("evaluate", n, out["evaluate"][str(n)], flush=True)
    for n in args.train_beads if "train" in args.parts else []:
        out["train"][str(n)] = {path: _sub("train", n, args.train_frames, path) for path in ("auto", "edges")}
        print("train", n, out["train"][str(n)], flush=True)
    out["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
