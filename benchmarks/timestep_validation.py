"""Validate the production CG time step (``cg_sim.dt_ps``) with power: anharmonic observables
at candidate steps against a 1 fs reference, judged by their statistical error
(:func:`alcg.timestep.compare_steps`).

Model: the CLN025 C-alpha prior fitted to all-atom data (tests/cln025_cg.py: bond stiffness
~85,000 kJ/mol/nm^2, glycine 57 amu, the fastest CG motion the production runs face) plus a
SchNet network with random weights whose energy is scaled up (``readout_scale``), so that the
landscape is rugged, as in tests/test_simulate.py; or (``--prior-only``) the prior alone,
whose smoother landscape mixes fast enough for the check to have power on a CPU. Observables: end-to-end distance, radius of
gyration, cos and sin of the 7 pseudo-dihedrals, potential energy; each by mean and 8
equal-count bins. Replicas (independent seeds, common equilibrated starts) are the units of
the standard error.

    python benchmarks/timestep_validation.py --out benchmarks/measured/timestep_validation.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from alcg import settings  # noqa: E402
from alcg.simulate import LangevinRun, model_force_fn, simulate  # noqa: E402
from alcg.timestep import chain_observables, compare_steps  # noqa: E402
from cln025_cg import MASSES_AMU, TEMPERATURE_K, cln025_frames, cln025_model  # noqa: E402

NET = dict(cutoff_nm=3.0, n_rbf=16, hidden=32, n_filters=32, n_interactions=2)


def _run(fn, x, dt_ps: float, ps: float, seed: int, save_ps: float = 0.05):
    sim = settings.defaults(settings.CGSim, dt_ps=dt_ps, friction_per_ps=1.0)
    cfg = LangevinRun.of(sim, n_steps=int(round(ps / dt_ps)), save_interval=int(round(save_ps / dt_ps)),
                         temperature_k=TEMPERATURE_K, seed=seed)
    t0 = time.perf_counter()
    res = simulate(fn, x, MASSES_AMU, cfg, progress=False)
    return res, time.perf_counter() - t0


def _observables(fn, coords: np.ndarray) -> tuple[np.ndarray, list[str]]:
    r, t = coords.shape[:2]
    flat = torch.as_tensor(coords.reshape(r * t, *coords.shape[2:]), dtype=torch.float32)
    energy = np.concatenate([fn(flat[s:s + 4096])[0].detach().numpy().reshape(-1) for s in range(0, len(flat), 4096)])
    return chain_observables(coords, energy.reshape(r, t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=96)
    ap.add_argument("--ps", type=float, default=20.0, help="sampled length per replica and step (ps)")
    ap.add_argument("--burn-ps", type=float, default=2.0, help="dropped from the start of each run (ps)")
    ap.add_argument("--steps-fs", nargs="*", type=float, default=[2.0, 5.0, 10.0, 20.0])
    ap.add_argument("--readout-scale", type=float, default=20.0)
    ap.add_argument("--prior-only", action="store_true", help="no network: the fitted prior alone")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.prior_only:
        fn = model_force_fn(cln025_model({**NET, "n_interactions": 0}), compile=False, fast=False)
    else:
        fn = model_force_fn(cln025_model(NET, readout_scale=args.readout_scale), compile=False)
    x0 = cln025_frames(args.replicas, seed=0, noise_nm=0.003, unfolded_fraction=0.0)
    start = _run(fn, x0, 0.005, 5.0, 1)[0].coords[:, -1]  # common equilibrated starts
    burn = int(round(args.burn_ps / 0.05))
    ref, ref_s = _run(fn, start, 0.001, args.ps + args.burn_ps, 2)
    ref_obs, names = _observables(fn, ref.coords[:, burn:])
    out = {"model": {"prior": "CLN025 all-atom fit (tests/cln025_cg.py)",
                     "network": None if args.prior_only else NET,
                     "readout_scale": None if args.prior_only else args.readout_scale, "friction_per_ps": 1.0, "temperature_k": TEMPERATURE_K},
           "replicas": args.replicas, "sampled_ps_per_replica": args.ps, "burn_ps": args.burn_ps,
           "observables": names, "reference_dt_fs": 1.0, "reference_seconds": ref_s,
           "reference_kinetic_temperature_k": ref.mean_kinetic_temperature_k,
           "machine": {"cpu_count": os.cpu_count(), "torch_threads": 1, "load_average": os.getloadavg(),
                       "note": "shared, loaded 2-core machine"},
           "steps": {}}
    for k, dt_fs in enumerate(args.steps_fs):
        res, sec = _run(fn, start, dt_fs / 1000, args.ps + args.burn_ps, 10 + k)
        row = {"seconds": sec, "exploded": int(sum(s != "ok" for s in res.status)),
               "kinetic_temperature_k": res.mean_kinetic_temperature_k}
        ok = np.array([s == "ok" for s in res.status])
        if ok.sum() >= 3:
            obs, _ = _observables(fn, res.coords[ok][:, burn:])
            chk = compare_steps(ref_obs, obs, names)
            row.update(chk.summary())
            if row["exploded"]:
                row["verdict"] = "fail"
        else:
            row["verdict"] = "fail"
        out["steps"][f"{dt_fs:g}_fs"] = row
        print(dt_fs, row.get("verdict"), row.get("max_abs_z"), row.get("max_detectable_over_tolerance"),
              flush=True)
    passing = [float(k[:-3]) for k, r in out["steps"].items() if r["verdict"] == "pass"]
    out["largest_passing_dt_fs"] = max(passing) if passing else None
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
