"""Validate the production CG time step (``cg_sim.dt_ps``) with power: anharmonic observables
at candidate steps against a small-step reference (``--reference-dt-fs``, 1 fs by default),
judged by their statistical error (:func:`alcg.cg.timestep.compare_steps`).

Models:

- ``--model PATH``: a trained CG model (a checkpoint of :func:`alcg.cg.model.save_model`, e.g. one
  of the Go experiment's ``results/go_experiment/seed_*/*/round_*/model/member_0/model.pt``),
  with the bead masses of the dataset in its round folder (``--dataset`` otherwise) and the
  temperature its prior was fitted at;
- default: the CLN025 C-alpha prior fitted to all-atom data (tests/cln025_cg.py: bond stiffness
  ~85,000 kJ/mol/nm^2, glycine 57 amu, the fastest CG motion the production runs face) plus a
  SchNet network with random weights whose energy is scaled up (``readout_scale``), so that the
  landscape is rugged, as in tests/unit/test_simulate.py; or (``--prior-only``) the prior alone.

Observables: end-to-end distance, radius of gyration, cos and sin of the pseudo-dihedrals,
potential energy; each by mean and 8 equal-count bins. Friction 1/ps (``cg_sim``), 50 fs between
frames.

Designs:

- unpaired (default without ``--model``): common starts relaxed for 5 ps at 5 fs, ``--burn-ps``
  dropped, replicas (independent seeds) as the units of the standard error;
- ``--paired`` (the default with ``--model``): each replica r starts every step's run from the same
  configuration, a frame of a small-step (``--equil-dt-fs``) run of ``--equil-ps`` of the same
  model from ``--start-frames`` (frames of all-atom equilibrium runs, C-alpha beads; default:
  the dataset), and the per-start differences are the units (see :mod:`alcg.cg.timestep`: this
  needs starts close to the model's equilibrium; none of the sampled frames is dropped).

Replicas run in pieces of ``--chunk-replicas`` (2048: past that, the cost per replica-step grows
on a 2-core CPU), piece k seeded ``seed * 100000 + k``. The JSON is rewritten after every
candidate step, so a long run keeps what it has measured.

    python benchmarks/timestep_validation.py --out benchmarks/measured/timestep_validation.json
    python benchmarks/timestep_validation.py --model results/go_experiment/seed_1/iid/round_002/model/member_0/model.pt \\
        --start-frames results/go_experiment/reference/*_0.npz --out benchmarks/measured/timestep_validation_go.json
    # powered (docs/results/2026-12-01-timestep-validation.md): 12,000 starts, a 2 fs reference, the whole 2-core machine
    python benchmarks/timestep_validation.py --model <as above> --start-frames <as above> --replicas 12000 \\
        --equil-ps 2 --equil-dt-fs 2 --reference-dt-fs 2 --ps 5 --steps-fs 5 30 10 --threads 2 --progress \\
        --out benchmarks/measured/timestep_validation_go_powered.json
    # its pre-registered replication (benchmarks/measured/README.md): the same with --replicas 14000 --seed 1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from alcg.config import settings  # noqa: E402
from alcg.cg.priors import KB_KJ_MOL_K  # noqa: E402
from alcg.cg.simulate import LangevinRun, model_force_fn, simulate  # noqa: E402
from alcg.cg.timestep import chain_observables, compare_steps  # noqa: E402

NET = dict(cutoff_nm=3.0, n_rbf=16, hidden=32, n_filters=32, n_interactions=2)
SAVE_PS = 0.05
#: tqdm bars on stderr (``--progress``)
PROGRESS = False
#: replicas per simulate call (``--chunk-replicas``): per replica-step cost grows with the batch
CHUNK_REPLICAS = 2048


@dataclass
class System:
    """What a run needs: the force function, bead masses (amu), temperature (K), candidate
    starting frames (n, N, 3) nm and a JSON description."""

    fn: object
    masses_amu: np.ndarray
    temperature_k: float
    frames: np.ndarray
    info: dict


def _run(system: System, x, dt_ps: float, ps: float, seed: int):
    """BAOAB run of ``ps`` ps at ``dt_ps`` from ``x`` (R, N, 3) nm, in pieces of at most
    ``CHUNK_REPLICAS`` replicas (piece k seeded ``seed * 100_000 + k``; one piece: ``seed``);
    (result, seconds)."""
    sim = settings.defaults(settings.CGSim, dt_ps=dt_ps, friction_per_ps=1.0)
    t0 = time.perf_counter()
    parts = []
    for k, lo in enumerate(range(0, len(x), CHUNK_REPLICAS)):
        cfg = LangevinRun.of(sim, n_steps=int(round(ps / dt_ps)), save_interval=int(round(SAVE_PS / dt_ps)),
                             temperature_k=system.temperature_k, seed=seed if len(x) <= CHUNK_REPLICAS
                             else seed * 100_000 + k)
        parts.append(simulate(system.fn, x[lo:lo + CHUNK_REPLICAS], system.masses_amu, cfg, progress=PROGRESS))
    return _joined(parts), time.perf_counter() - t0


def _joined(parts: list):
    """One result of the pieces' results, in replica order (kinetic temperature weighted by replicas)."""
    if len(parts) == 1:
        return parts[0]
    n = np.array([len(p.status) for p in parts], float)
    return SimpleNamespace(coords=np.concatenate([p.coords for p in parts]),
                           status=[s for p in parts for s in p.status], reason=[r for p in parts for r in p.reason],
                           mean_kinetic_temperature_k=float(np.dot(n, [p.mean_kinetic_temperature_k for p in parts])
                                                            / n.sum()))


def _observables(fn, coords: np.ndarray) -> tuple[np.ndarray, list[str]]:
    r, t = coords.shape[:2]
    flat = torch.as_tensor(coords.reshape(r * t, *coords.shape[2:]), dtype=torch.float32)
    energy = np.concatenate([fn(flat[s:s + 4096])[0].detach().numpy().reshape(-1) for s in range(0, len(flat), 4096)])
    return chain_observables(coords, energy.reshape(r, t))


def _ca_frames(path: Path) -> np.ndarray:
    """C-alpha frames (n, N, 3) nm of an all-atom run file (``positions``, ``topology_pdb``)
    or an alcg dataset (``coords``, already one bead per residue)."""
    with np.load(path, allow_pickle=False) as f:
        if "coords" in f.files:
            return np.asarray(f["coords"], np.float64)
        pdb = str(f["topology_pdb"]).splitlines()
        names = [line[12:16].strip() for line in pdb if line.startswith(("ATOM", "HETATM"))]
        ca = [i for i, n in enumerate(names) if n == "CA"]
        return np.asarray(f["positions"][:, ca], np.float64)


def _trained(model_path: Path, dataset_path: Path | None, start_frames: list[Path]) -> System:
    """The trained model at ``model_path`` with its round's dataset masses and its prior's temperature."""
    from alcg.formats import dataset
    from alcg.cg.model import load_model

    model = load_model(model_path)
    dataset_path = dataset_path or model_path.parents[2] / "dataset" / "dataset.npz"
    data = dataset.load(dataset_path, n_beads=model.n_beads)
    temperature_k = float(model.prior.params()["kt"]) / KB_KJ_MOL_K
    files = start_frames or [dataset_path]
    frames = np.concatenate([_ca_frames(p) for p in files])
    info = {"model_path": str(model_path), "dataset": str(dataset_path), "start_frames": [str(p) for p in files],
            "hparams": model.hparams, "bead_masses_amu": np.asarray(data.bead_masses).tolist(),
            "temperature_k": temperature_k, "friction_per_ps": 1.0}
    return System(model_force_fn(model, compile=False), np.asarray(data.bead_masses), temperature_k, frames, info)


def _cln025(prior_only: bool, readout_scale: float, n: int) -> System:
    """CLN025's fitted prior, with a random network unless ``prior_only``."""
    from cln025_cg import MASSES_AMU, TEMPERATURE_K, cln025_frames, cln025_model

    if prior_only:
        fn = model_force_fn(cln025_model({**NET, "n_interactions": 0}), compile=False, fast=False)
    else:
        fn = model_force_fn(cln025_model(NET, readout_scale=readout_scale), compile=False)
    info = {"prior": "CLN025 all-atom fit (tests/cln025_cg.py)", "network": None if prior_only else NET,
            "readout_scale": None if prior_only else readout_scale, "friction_per_ps": 1.0,
            "temperature_k": TEMPERATURE_K}
    return System(fn, MASSES_AMU, TEMPERATURE_K, cln025_frames(n, seed=0, noise_nm=0.003, unfolded_fraction=0.0),
                  info)


def _starts(system: System, args) -> tuple[np.ndarray, dict]:
    """(R, N, 3) nm common starts: well-separated candidate frames relaxed under the model."""
    frames = system.frames
    idx = np.sort(np.random.default_rng(args.seed).choice(len(frames), size=args.replicas,
                                                          replace=len(frames) < args.replicas))
    if not args.paired:
        res, sec = _run(system, frames[idx], 0.005, 5.0, _seed(args, 1))
        return res.coords[:, -1], {"dt_fs": 5.0, "ps": 5.0, "seconds": sec}
    res, sec = _run(system, frames[idx], args.equil_dt_fs / 1000, args.equil_ps, _seed(args, 1))
    if any(s != "ok" for s in res.status):
        raise RuntimeError(f"equilibration exploded: {[r for r in res.reason if r]}")
    return res.coords[:, -1], {"dt_fs": args.equil_dt_fs, "ps": args.equil_ps, "seconds": sec,
                               "from_frames": int(len(frames)), "frames_used": int(len(np.unique(idx)))}


def _seed(args, stream: int) -> int:
    """The seed of one run: ``stream`` (1 relaxation, 2 reference, 10 + k the k-th candidate step)
    offset by ``1000 * --seed``, so that ``--seed 0`` repeats the earlier runs and any other seed
    shares no noise with them. Its starts are an independent draw from the same frames, so
    about replicas² / frames of them begin from a frame an earlier run also used."""
    return 1000 * args.seed + stream


def _check_step(system: System, start, ref_obs, names, dt_fs: float, seed: int, args) -> dict:
    """One candidate step against the reference observables: a JSON row."""
    burn = 0 if args.paired else int(round(args.burn_ps / SAVE_PS))
    res, sec = _run(system, start, dt_fs / 1000, args.ps + (0 if args.paired else args.burn_ps), seed)
    row = {"seconds": sec, "exploded": int(sum(s != "ok" for s in res.status)),
           "kinetic_temperature_k": res.mean_kinetic_temperature_k}
    ok = np.array([s == "ok" for s in res.status])
    if row["exploded"] == 0 or (not args.paired and ok.sum() >= 3):
        obs, _ = _observables(system.fn, res.coords[ok][:, burn:])
        chk = compare_steps(ref_obs, obs, names, paired=args.paired)
        row.update(chk.summary())
        row.update(_power_detail(chk, len(names), len(obs)))
    if row["exploded"]:
        row["verdict"] = "fail"
    return row


def _power_detail(chk, n_observables: int, replicas: int) -> dict:
    """The largest detectable difference over tolerance among the means and among the bin
    fractions, the replicas that would bring it to 1 at this run length (the standard error
    goes as 1 / sqrt(replicas)), and the five largest |z|."""
    ratio = chk.detectable / chk.tolerance
    worst = float(ratio.max())
    return {"max_detectable_over_tolerance_means": float(ratio[:n_observables].max()),
            "max_detectable_over_tolerance_bins": float(ratio[n_observables:].max()),
            "replicas_for_power_at_this_length": int(np.ceil(replicas * worst ** 2)),
            "top5_z": {chk.names[i]: float(chk.z[i]) for i in np.argsort(-np.abs(chk.z))[:5]}}


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a trained model checkpoint (model.pt); default: CLN025 prior + network")
    ap.add_argument("--dataset", type=Path, help="dataset giving the bead masses (default: the model's round)")
    ap.add_argument("--start-frames", nargs="*", type=Path, default=[],
                    help="npz files of equilibrium frames to draw the starts from (all-atom runs or datasets)")
    ap.add_argument("--paired", action=argparse.BooleanOptionalAction, default=None,
                    help="paired design (default: on with --model, off otherwise)")
    ap.add_argument("--equil-ps", type=float, default=20.0, help="paired: relaxation of the starts (ps)")
    ap.add_argument("--equil-dt-fs", type=float, default=1.0, help="paired: step of that relaxation (fs)")
    ap.add_argument("--reference-dt-fs", type=float, default=1.0,
                    help="the small step every candidate is compared with (fs); a 2 fs reference carries "
                         "(2 / h)^2 of a candidate h's bias if the bias grows as h^2")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--progress", action="store_true", help="progress bars on stderr")
    ap.add_argument("--chunk-replicas", type=int, default=CHUNK_REPLICAS, help="replicas per simulate call")
    ap.add_argument("--replicas", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0,
                    help="draw of the starts (numpy) and offset of every run's seed (1000 * seed); 0: the earlier runs")
    ap.add_argument("--ps", type=float, default=20.0, help="sampled length per replica and step (ps)")
    ap.add_argument("--burn-ps", type=float, default=2.0, help="unpaired: dropped from the start of each run (ps)")
    ap.add_argument("--steps-fs", nargs="*", type=float, default=[2.0, 5.0, 10.0, 20.0])
    ap.add_argument("--readout-scale", type=float, default=20.0)
    ap.add_argument("--prior-only", action="store_true", help="no network: the fitted prior alone")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.paired is None:
        args.paired = args.model is not None
    return args


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    torch.set_num_threads(args.threads)
    global PROGRESS, CHUNK_REPLICAS
    PROGRESS, CHUNK_REPLICAS = args.progress, args.chunk_replicas
    load0 = os.getloadavg()
    system = (_trained(args.model, args.dataset, args.start_frames) if args.model
              else _cln025(args.prior_only, args.readout_scale, args.replicas))
    start, start_info = _starts(system, args)
    burn = 0 if args.paired else int(round(args.burn_ps / SAVE_PS))
    ref, ref_s = _run(system, start, args.reference_dt_fs / 1000, args.ps + (0 if args.paired else args.burn_ps),
                      _seed(args, 2))
    if any(s != "ok" for s in ref.status):
        raise RuntimeError(f"the {args.reference_dt_fs:g} fs reference exploded: {[r for r in ref.reason if r]}")
    ref_obs, names = _observables(system.fn, ref.coords[:, burn:])
    out = {"model": system.info, "design": "paired" if args.paired else "unpaired", "starts": start_info,
           "replicas": args.replicas, "seed": args.seed, "sampled_ps_per_replica": args.ps, "burn_ps": 0.0 if args.paired else args.burn_ps,
           "frame_interval_ps": SAVE_PS, "observables": names, "reference_dt_fs": args.reference_dt_fs, "reference_seconds": ref_s,
           "reference_kinetic_temperature_k": ref.mean_kinetic_temperature_k,
           "machine": {"cpu_count": os.cpu_count(), "torch_threads": args.threads, "load_average_at_start": load0},
           "steps": {}}
    for k, dt_fs in enumerate(args.steps_fs):
        row = _check_step(system, start, ref_obs, names, dt_fs, _seed(args, 10 + k), args)
        out["steps"][f"{dt_fs:g}_fs"] = row
        print(dt_fs, row.get("verdict"), row.get("max_abs_z"), row.get("max_detectable_over_tolerance"), flush=True)
        _write(out, args.out)
    print(_write(out, args.out))


def _write(out: dict, path: Path | None) -> str:
    """Complete ``out`` (end load, the largest passing step) and write it to ``path``
    atomically (after every step, so a long run keeps what it measured); the JSON text."""
    out["machine"]["load_average_at_end"] = os.getloadavg()
    passing = [float(k[:-3]) for k, r in out["steps"].items() if r["verdict"] == "pass"]
    out["largest_passing_dt_fs"] = max(passing) if passing else None
    text = json.dumps(out, indent=2)
    if path:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
    return text

if __name__ == "__main__":
    main()
