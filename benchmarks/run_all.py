"""Benchmarks of the pipeline's cost; prints one JSON object (and writes it with --out).

    python benchmarks/run_all.py                 # all, CPU-sized
    python benchmarks/run_all.py --only select   # one part

Parts: oracle (alcg.oracle vs bare OpenMM, same system, same run), cg_sim (aggregate CG
ns/day of CLN025 with 100 replicas vs AA ns/day), train (force-matching frames/s),
select (RMSD selection, 10^4 and 10^5 frames against as many training frames), e2e (wall
time per stage of the tiny run, from Snakemake's benchmark files, if present).
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
CFG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _system(tmp: Path):
    from alcg.prepare import prepare_system

    pdb, xml = tmp / "f.pdb", tmp / "f.xml"
    prepare_system(CFG["system"], CFG["forcefield"], CFG["system"]["starts"]["folded"], pdb, xml)
    return pdb, xml


def _bare_openmm_ns_per_day(pdb, xml, n_steps: int, record_interval: int) -> float:
    import openmm.app as app
    import openmm.unit as unit

    from alcg import system as omm

    p = app.PDBFile(str(pdb))
    sim = omm.make_simulation(p.topology, omm.deserialize(Path(xml).read_text()), CFG["forcefield"], 1)
    sim.context.setPositions(p.positions)
    sim.context.setVelocitiesToTemperature(340 * unit.kelvin, 1)
    sim.step(100)
    t0 = time.perf_counter()
    for _ in range(n_steps // record_interval):
        sim.step(record_interval)
        sim.context.getState(getPositions=True, getForces=True, getEnergy=True)
    el = time.perf_counter() - t0
    return n_steps * CFG["forcefield"]["timestep_fs"] * 1e-6 / el * 86400


def bench_oracle(tmp: Path, n_steps: int = 5000) -> dict:
    from alcg.oracle import MDSpec, run_md

    pdb, xml = _system(tmp)
    rec = CFG["initial_md"]["record_interval_steps"]
    bare = _bare_openmm_ns_per_day(pdb, xml, n_steps, rec)
    t0 = time.perf_counter()
    run_md(pdb, xml, tmp / "r.npz", MDSpec(n_steps=n_steps, record_interval=rec, checkpoint_every=100,
                                           seed=1), CFG["forcefield"], progress=False)
    alcg_rate = n_steps * CFG["forcefield"]["timestep_fs"] * 1e-6 / (time.perf_counter() - t0) * 86400
    return {"aa_bare_openmm_ns_per_day": bare, "aa_alcg_oracle_ns_per_day": alcg_rate,
            "oracle_over_bare": alcg_rate / bare, "record_interval_steps": rec, "n_steps": n_steps}


def _cln025_model(device: str):
    from alcg.mapping import bead_types
    from alcg.model import CGModel
    from alcg.priors import fit_priors

    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.22, (10, 3)), 0)[None] + rng.normal(0, 0.02, (500, 10, 3))
    prior = fit_priors(x, 340.0)
    return CGModel(torch.as_tensor(bead_types(CFG["system"]["sequence"])), prior, CFG["model"]).to(device), x


def bench_cg_sim(device: str, n_steps: int = 200, aa_ns_per_day: float | None = None, tmp: Path | None = None) -> dict:
    from alcg.simulate import LangevinConfig, model_force_fn, simulate

    model, x = _cln025_model(device)
    n_rep = 100
    cfg = LangevinConfig(n_steps=n_steps, dt_ps=CFG["cg_sim"]["dt_ps"], save_interval=50, seed=0,
                         max_bond_nm=10.0, max_force_kj_mol_nm=1e12)
    res = simulate(model_force_fn(model), x[:n_rep], np.full(10, 110.0), cfg, device=device, progress=False)
    agg = res.steps_per_s * n_rep * cfg.dt_ps * 1e-3 * 86400
    if aa_ns_per_day is None and tmp is not None:
        pdb, xml = _system(tmp)
        aa_ns_per_day = _bare_openmm_ns_per_day(pdb, xml, 2000, 25)
    out = {"device": device, "n_replicas": n_rep, "steps_per_s": res.steps_per_s,
           "bead_steps_per_s": res.steps_per_s * n_rep * 10, "cg_aggregate_ns_per_day": agg,
           "model": CFG["model"]}
    if aa_ns_per_day:
        out.update(aa_ns_per_day=aa_ns_per_day, cg_over_aa=agg / aa_ns_per_day)
    return out


def bench_train(device: str, n_frames: int = 1024) -> dict:
    from alcg.train import TrainConfig, train

    model, x = _cln025_model(device)
    xs = np.concatenate([x, x])[:n_frames]
    f = np.random.default_rng(1).normal(0, 100, xs.shape)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        train(model, xs, f, np.repeat(np.arange(8), len(xs) // 8).astype(str),
              TrainConfig(epochs=2, batch_size=CFG["train"]["batch_size"], val_fraction=0.0),
              Path(d) / "s.pt", device=device, progress=False)
    el = time.perf_counter() - t0
    return {"device": device, "frames_per_s": 2 * len(xs) / el, "batch_size": CFG["train"]["batch_size"]}


def bench_select(sizes=(10_000, 100_000)) -> dict:
    from alcg.select import RMSDSelector

    rng = np.random.default_rng(0)
    base = np.cumsum(rng.normal(0, 0.22, (10, 3)), 0)
    out = {}
    for n in sizes:
        train = base[None] + rng.normal(0, 0.06, (n, 10, 3))
        cg = base[None] + rng.normal(0, 0.07, (n, 10, 3))
        far = rng.random(n) < 0.1  # 10 % of the CG frames drift away: candidates need exact RMSD
        cg[far] = np.cumsum(rng.normal(0, 0.22, (10, 3)), 0)[None] + rng.normal(0, 0.07, (far.sum(), 10, 3))
        sel = RMSDSelector(rmsd_lo_nm=0.15, rmsd_hi_nm=0.8, n_select=8, n_centers=CFG["select"]["n_centers"],
                           bond_min_nm=0.0, bond_max_nm=9.0, min_distance_nm=0.0)
        t0 = time.perf_counter()
        res = sel.fit(cg, train).fetch_model()
        out[f"{n}x{n}"] = {"seconds": time.perf_counter() - t0, **res.table()}
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
    ap.add_argument("--only", nargs="*", default=["oracle", "cg_sim", "train", "select", "e2e"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--select-sizes", nargs="*", type=int, default=[10_000, 100_000])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from alcg.config import resolve_device

    device = resolve_device(args.device)
    result = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "torch_threads": torch.get_num_threads(), "device": device,
                          "cuda": torch.cuda.get_device_name(0) if device == "cuda" else None}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "oracle" in args.only:
            result["oracle"] = bench_oracle(tmp)
        if "cg_sim" in args.only:
            aa = result.get("oracle", {}).get("aa_bare_openmm_ns_per_day")
            result["cg_sim"] = bench_cg_sim(device, aa_ns_per_day=aa, tmp=tmp)
        if "train" in args.only:
            result["train"] = bench_train(device)
        if "select" in args.only:
            result["select"] = bench_select(tuple(args.select_sizes))
        if "e2e" in args.only:
            result["e2e_seconds_per_job"] = bench_e2e()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
