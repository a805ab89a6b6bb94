"""Benchmarks of the pipeline's cost; prints one JSON object (and writes it with --out).

    python benchmarks/run_all.py                 # all, CPU-sized
    python benchmarks/run_all.py --only cg_sim   # one part

Parts, all in one process on the same torch/OpenMM threads:

- oracle: all-atom ns/day of CLN025 (config force field), bare OpenMM and through alcg.finegrained.md;
- matmul: dense fp32 matmul GFLOP/s, the practical peak of this machine;
- cg_sim: aggregate CG ns/day of CLN025 with 100 replicas and the default network, by the
  fast path the workflow uses (:func:`alcg.cg.simulate.model_force_fn`: tabulated filters,
  all pairs, explicit backward, torch.compile) and by the exact model; FLOPs of one force
  evaluation (torch.utils.flop_counter: matmul-like ops only) and the GFLOP/s achieved;
  cg_over_aa at the config's time step and at the validated one
  (:data:`alcg.cg.simulate.VALIDATED_DT_PS`);
- train: force-matching frames/s of :func:`alcg.cg.train.train`, exact network, by the dense
  all-pairs path (the default for small molecules) and by PyG's edge-list path;
- select: RMSD selection, 10^4 and 10^5 frames against as many training frames;
- e2e: wall time per stage of the tiny run, from Snakemake's benchmark files, if present.

Throughputs are the best of a few repeats (also the median), since a shared machine makes
single timings noisy; ``machine.load_average`` tells how busy it was.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from alcg.config import settings as S
import torch

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    from alcg.stages.validate import load

    return load(ROOT / "config" / "config.yaml")


CFG = _config()


def _ff():
    from alcg.config.settings import ForceField, parse

    return parse(ForceField, CFG["forcefield"])


def _system(tmp: Path):
    from alcg.finegrained.prepare import prepare_system
    from alcg.config.settings import System, parse

    pdb, xml = tmp / "f.pdb", tmp / "f.xml"
    if not pdb.exists():
        prepare_system(parse(System, CFG["system"]), _ff(), CFG["system"]["starts"]["folded"], pdb, xml)
    return pdb, xml


def _best_and_median(values: list[float]) -> dict:
    return {"best": max(values), "median": statistics.median(values), "runs": len(values)}


def _bare_openmm_ns_per_day(pdb, xml, n_steps: int, record_interval: int, repeats: int = 2) -> list[float]:
    import openmm.app as app
    import openmm.unit as unit

    from alcg.finegrained import system as omm

    ff = _ff()
    p = app.PDBFile(str(pdb))
    sim = omm.make_simulation(p.topology, omm.deserialize(Path(xml).read_text()), ff, 1,
                              threads=torch.get_num_threads())
    sim.context.setPositions(p.positions)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, 1)
    sim.step(100)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_steps // record_interval):
            sim.step(record_interval)
            sim.context.getState(getPositions=True, getForces=True, getEnergy=True)
        rates.append(n_steps * ff.timestep_fs * 1e-6 / (time.perf_counter() - t0) * 86400)
    return rates


def bench_oracle(tmp: Path, n_steps: int = 5000) -> dict:
    """All-atom ns/day: bare OpenMM (what CG is compared with) and through alcg.finegrained.md."""
    from alcg.finegrained.md import MDSpec, run_md

    pdb, xml = _system(tmp)
    rec = CFG["initial_md"]["record_interval_steps"]
    bare = _bare_openmm_ns_per_day(pdb, xml, n_steps, rec)
    t0 = time.perf_counter()
    run_md(pdb, xml, tmp / "r.npz", MDSpec(n_steps=n_steps, record_interval=rec, checkpoint_every=100, restraint_k=0.0, seed=1),
           _ff(), threads=torch.get_num_threads(), progress=False)
    alcg_rate = n_steps * CFG["forcefield"]["timestep_fs"] * 1e-6 / (time.perf_counter() - t0) * 86400
    return {"aa_bare_openmm_ns_per_day": max(bare), "aa_bare_openmm_ns_per_day_runs": bare,
            "aa_alcg_oracle_ns_per_day": alcg_rate, "oracle_over_bare": alcg_rate / max(bare),
            "record_interval_steps": rec, "n_steps": n_steps, "timestep_fs": CFG["forcefield"]["timestep_fs"],
            "force_field": CFG["forcefield"]["files"]}


def bench_matmul(n: int = 2048, repeats: int = 5) -> dict:
    """Dense fp32 matmul GFLOP/s (n x n times n x n): the machine's practical FLOP peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return {"gflop_per_s": best, "n": n}


def _cln025_model(device: str):
    from alcg.finegrained.mapping import bead_types
    from alcg.cg.model import CGModel
    from alcg.cg.priors import fit_priors

    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.22, (10, 3)), 0)[None] + rng.normal(0, 0.02, (500, 10, 3))
    prior = fit_priors(x, 340.0, S.parse(S.Priors, CFG["priors"]))
    torch.manual_seed(0)
    model = CGModel(torch.as_tensor(bead_types(CFG["system"]["sequence"])), prior,
                    S.parse(S.Model, CFG["model"])).to(device)
    return model, x


class _NoModuleTracking:
    """Stands in for FlopCounterMode's module tracker, whose backward hooks refuse the
    autograd.grad calls inside force evaluations; FLOPs are then counted globally only."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def _flops(fn, x: torch.Tensor) -> int:
    """FLOPs of fn(x) counted by torch.utils.flop_counter (matmul-like ops only)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _NoModuleTracking()
    with counter:
        fn(x)
    return int(counter.get_total_flops())


def _ms_per_call(fn, x: torch.Tensor, n: int, repeats: int = 3) -> float:
    fn(x)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(x)
        best = min(best, (time.perf_counter() - t0) / n * 1e3)
    return best


def _sim_steps_per_s(force_fn, x0: np.ndarray, device: str, n_steps: int, repeats: int) -> list[float]:
    from alcg.cg.simulate import LangevinRun, simulate

    sim = S.parse(S.CGSim, {**CFG["cg_sim"], "max_bond_nm": 10.0, "max_force_kj_mol_nm": 1e12})  # never stop
    rates = []
    for r in range(repeats):
        cfg = LangevinRun.of(sim, n_steps=n_steps, save_interval=50, temperature_k=CFG["forcefield"]["temperature_k"],
                             seed=r)
        rates.append(simulate(force_fn, x0, np.full(10, 110.0), cfg, device=device, progress=False).steps_per_s)
    return rates


def bench_cg_sim(device: str, matmul_gflop_per_s: float | None, aa_ns_per_day: float | None,
                 n_steps: int = 300, repeats: int = 3) -> dict:
    """Aggregate CG ns/day of 100 CLN025 replicas, default network: fast path vs exact."""
    from alcg.cg.fast_forces import FastForceField
    from alcg.cg.simulate import VALIDATED_DT_PS, model_force_fn

    model, x = _cln025_model(device)
    n_rep = 100
    x0 = x[:n_rep]
    xt = torch.as_tensor(x0, dtype=torch.float32, device=device)
    fast = FastForceField(model, compile=True, compile_after_calls=1)  # the workflow's path, compiled now
    t0 = time.perf_counter()
    fast(xt)  # validation against the exact model, table, compilation
    setup_s = time.perf_counter() - t0
    rates = _sim_steps_per_s(fast, x0, device, n_steps, repeats)
    exact = model_force_fn(model, compile=False, fast=False)  # exact network: dense path, explicit backward
    model.pair_path = "edges"
    baseline_rate = max(_sim_steps_per_s(exact, x0, device, 20, 1))  # PyG edge list, autograd
    flops = {"fast": _flops(fast.eager, xt), "exact_edges": _flops(exact, xt)}
    ms = {"exact_edges": _ms_per_call(exact, xt, 5)}
    model.pair_path = "auto"
    flops["exact_dense"] = _flops(exact, xt)
    ms.update(fast=_ms_per_call(fast, xt, 50), fast_eager=_ms_per_call(fast.eager, xt, 10),
              exact_dense=_ms_per_call(exact, xt, 5))
    best = max(rates)
    out = {"device": device, "n_replicas": n_rep, "model": CFG["model"], "force_path": fast.describe(),
           "setup_s": setup_s, "steps_per_s": _best_and_median(rates),
           "baseline_edges_exact_steps_per_s": baseline_rate, "speedup_over_baseline": best / baseline_rate,
           "force_eval_ms": ms,
           "flops_per_force_eval": {**flops, "counted": "matmul-like ops (torch.utils.flop_counter)"},
           "achieved_gflop_per_s": {k: flops[k] / ms[k] / 1e6 for k in flops}}
    if matmul_gflop_per_s:
        out["fraction_of_matmul_peak"] = {k: v / matmul_gflop_per_s for k, v in out["achieved_gflop_per_s"].items()}
    for name, dt_ps in (("config_dt", CFG["cg_sim"]["dt_ps"]), ("validated_dt", VALIDATED_DT_PS)):
        agg = best * n_rep * dt_ps * 1e-3 * 86400
        row = {"dt_ps": dt_ps, "cg_aggregate_ns_per_day": agg,
               "cg_aggregate_ns_per_day_median": statistics.median(rates) * n_rep * dt_ps * 1e-3 * 86400}
        if aa_ns_per_day:
            row.update(aa_ns_per_day=aa_ns_per_day, cg_over_aa=agg / aa_ns_per_day)
        out[name] = row
    out["config_dt"]["baseline_edges_exact_ns_per_day"] = baseline_rate * n_rep * CFG["cg_sim"]["dt_ps"] * 1e-3 * 86400
    return out


def bench_train(device: str, n_frames: int = 1024, epochs: int = 2, repeats: int = 2) -> dict:
    """Force-matching frames/s of alcg.cg.train.train (exact network), dense vs edge-list path.

    The two paths alternate, ``repeats`` times each; best and median are reported.
    """
    import dataclasses

    from alcg.cg.train import train

    rates: dict[str, list[float]] = {"dense": [], "edges": []}
    for _ in range(repeats):
        for name, path in (("dense", "auto"), ("edges", "edges")):
            model, x = _cln025_model(device)
            model.pair_path = path
            xs = np.concatenate([x, x])[:n_frames]
            f = np.random.default_rng(1).normal(0, 100, xs.shape)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                train(model, xs, f, np.repeat(np.arange(8), len(xs) // 8).astype(str),
                      dataclasses.replace(S.parse(S.Train, CFG["train"]), epochs=epochs, val_fraction=0.0), 0,
                      Path(d) / "s.pt", device=device, progress=False)
            rates[name].append(epochs * len(xs) / (time.perf_counter() - t0))
    return {"device": device, "batch_size": CFG["train"]["batch_size"], "frames_per_s": max(rates["dense"]),
            "frames_per_s_dense": _best_and_median(rates["dense"]),
            "frames_per_s_edges": _best_and_median(rates["edges"]),
            "dense_over_edges": max(rates["dense"]) / max(rates["edges"])}


def select_data(n_cg: int, n_train: int, n_beads: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The selection benchmark's frames: a training blob, CG frames from it, 10 % far away.

    At 10 beads the far frames are another fold (the data of earlier measurements); a random
    fold of more beads lies beyond ``rmsd_hi_nm`` (failed by the bounds, no search), so there
    the far frames are the same fold with 0.25 nm noise: inside the window, searched.
    """
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 0.22, (n_beads, 3)), 0)
    train = base[None] + rng.normal(0, 0.06, (n_train, n_beads, 3))
    cg = base[None] + rng.normal(0, 0.07, (n_cg, n_beads, 3))
    far = rng.random(n_cg) < 0.1  # 10 % of the CG frames drift away: candidates need exact RMSD
    if n_beads == 10:
        cg[far] = np.cumsum(rng.normal(0, 0.22, (n_beads, 3)), 0)[None] + rng.normal(0, 0.07, (far.sum(), n_beads, 3))
    else:
        cg[far] = base[None] + rng.normal(0, 0.25, (far.sum(), n_beads, 3))
    return cg, train


def bench_select(sizes=(10_000, 100_000), n_beads: int = 10, device: str = "cpu", mdtraj: bool = True) -> dict:
    """Selection by the torch search and (``mdtraj``) by the previous MDTraj path, on the same data.

    Reports seconds of each, ``speedup_over_mdtraj`` and whether categories, picks and the
    candidates' nearest values (within 1e-5 nm) agree.
    """
    import sys

    from alcg.selection.rmsd_coverage import RMSDSelector

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from mdtraj_select import MDTrajSelector

    out = {}
    for n in sizes:
        cg, train = select_data(n, n, n_beads)
        s = S.defaults(S.Select, rmsd_lo_nm=0.15, rmsd_hi_nm=0.8, n_select=8, n_centers=CFG["select"]["n_centers"],
                       bond_min_nm=0.0, bond_max_nm=9.0, min_distance_nm=0.0)
        t0 = time.perf_counter()
        res = RMSDSelector(s, 0, device=device).fit(cg, train).fetch_model()
        row = {"n_beads": n_beads, "device": device, "seconds": time.perf_counter() - t0, **res.table()}
        if mdtraj:
            t0 = time.perf_counter()
            ref = MDTrajSelector(s, 0).fit(cg, train).fetch_model()
            row["seconds_mdtraj"] = time.perf_counter() - t0
            row["speedup_over_mdtraj"] = row["seconds_mdtraj"] / row["seconds"]
            cand = ref.category == "candidate"
            row["same_categories"] = bool((ref.category == res.category).all())
            row["same_picks"] = bool(np.array_equal(ref.selected, res.selected))
            row["max_candidate_nearest_diff_nm"] = float(np.abs(ref.nearest_rmsd[cand] - res.nearest_rmsd[cand]).max()) \
                if cand.any() else 0.0
        out[f"{n}x{n}"] = row
    return out


def bench_e2e(run: str = "test") -> dict:
    out = {}
    for tsv in sorted((ROOT / "benchmarks" / run).rglob("*.tsv")):
        lines = tsv.read_text().splitlines()
        row = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
        out[str(tsv.relative_to(ROOT / "benchmarks" / run))] = float(row["s"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=["oracle", "matmul", "cg_sim", "train", "select", "e2e"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--select-sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--select-beads", type=int, default=10)
    ap.add_argument("--no-mdtraj", action="store_true", help="time only the torch selection")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from alcg.hardware.device import choose as resolve_device

    device = resolve_device(args.device)
    result = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "device": device, "load_average_at_start": os.getloadavg(),
                          "cuda": torch.cuda.get_device_name(device) if device.startswith("cuda") else None}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "oracle" in args.only:
            result["oracle"] = bench_oracle(tmp)
        if "matmul" in args.only:
            result["matmul_fp32"] = bench_matmul()
        if "cg_sim" in args.only:
            aa = result.get("oracle", {}).get("aa_bare_openmm_ns_per_day")
            if aa is None:
                aa = max(_bare_openmm_ns_per_day(*_system(tmp), 2000, 25))
            peak = result.get("matmul_fp32", {}).get("gflop_per_s")
            result["cg_sim"] = bench_cg_sim(device, peak, aa)
        if "train" in args.only:
            result["train"] = bench_train(device)
        if "select" in args.only:
            result["select"] = bench_select(tuple(args.select_sizes), args.select_beads, device,
                                            not args.no_mdtraj)
        if "e2e" in args.only:
            result["e2e_seconds_per_job"] = bench_e2e()
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
