"""GPU check: proves alcg's GPU paths on this machine and prints one JSON object.

    python benchmarks/gpu_check.py                  # device auto; full sizes on CUDA (~4 min)
    python benchmarks/gpu_check.py --device cpu     # reduced sizes on the CPU (the test suite)
    make gpu-check        # the first, JSON also in benchmarks/measured/gpu_check.json

Parts (each ``ok``, ``skipped`` with the reason, or ``failed`` with the error):

- environment: driver, card, compute capability, torch and its CUDA, the build's kernels,
  alcg.hardware.device's verdict, OpenMM platforms and plugin load failures;
- openmm: single-point forces of CLN025 (config force field) on the GPU platform (CUDA,
  mixed precision) against the CPU platform (relative RMS < 1e-3), and ns/day of bare
  OpenMM and of alcg's oracle MD on it (target: oracle >= 0.9 x bare). Without CUDA
  (``--device cpu``) the same code compares the CPU platform with Reference;
- cg_forces: the fast CG force path (tabulated filters, compiled on CUDA) against the exact
  model at 10 and 80 beads, ms per call and peak device memory at 100 and 1000 replicas;
- selection: exact RMSD selection (alcg.selection.rmsd_coverage) on the device where it has a device path;
- cg_simulation: CLN025 CG Langevin with a checkpoint resume on the device and across devices,
  and the aggregate CG speed at the validated 5 fs step (targets: >= 100 us/day with 1000+
  replicas, >= 100 x the all-atom ns/day of the same GPU);
- training: first-batch force-matching loss on the device against the CPU (within 1e-3
  relative), frames/s;
- committee_export: committee members and the exported TorchScript model on the device
  against the CPU.

It needs only torch and torch-geometric (plus PyYAML for the schema defaults): a part whose
package is missing (OpenMM, MDTraj, PDBFixer) is skipped, not failed. Exit status 1 when a
part failed or a correctness check missed its bound; the speed targets are reported, not
enforced. Timings on a shared machine are noisy: compare the ratios measured in one run.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
try:
    import yaml  # noqa: F401
except ImportError:  # a bare machine: a PyYAML carried in a partial .venv, after the machine's own packages
    sys.path.extend(glob.glob(str(ROOT / ".venv/lib/python3*/site-packages")))

import numpy as np  # noqa: E402
import torch  # noqa: E402

#: problem sizes: full on CUDA (fits ~4 min on one GPU; the config's network), reduced on the CPU
#: (a smaller network too: a smoke run of every path in well under a minute)
SIZES = {
    "full": {"replicas": (100, 1000), "beads": (10, 80), "calls": 20, "sim_replicas": 1000, "sim_steps": 400,
             "aa_steps": 20000, "train_frames": 2048, "select_frames": 10_000, "compile": True, "network": {}},
    "reduced": {"replicas": (2, 8), "beads": (10, 80), "calls": 2, "sim_replicas": 4, "sim_steps": 20,
                "aa_steps": 200, "train_frames": 32, "select_frames": 300, "compile": False,
                "network": {"hidden": 32, "n_filters": 32, "n_rbf": 16, "n_interactions": 2}},
}
OPENMM_FORCE_RTOL = 1e-3   # CUDA mixed precision vs the CPU platform
TRAIN_LOSS_RTOL = 1e-3     # first-batch loss, device vs CPU
DEVICE_FORCE_RTOL = 1e-4   # a model's forces on the device vs the CPU (float32 round-off)
NETWORK: dict = {}         # the network changes of the sizes in use (set in main)
TARGETS = {"cg_aggregate_us_per_day": 100.0, "cg_over_aa": 100.0, "oracle_over_bare": 0.9}


# ------------------------------------------------------------------ helpers
def _part(fn, *args) -> dict:
    """Run one part: its dict, ``skipped`` for a missing package, ``failed`` with the error."""
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    except ImportError as exc:
        out = {"status": "skipped", "reason": f"missing package: {exc}"}
    except Exception as exc:  # noqa: BLE001 - the check reports every failure and goes on
        out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
               "traceback": traceback.format_exc().splitlines()[-6:]}
    out.setdefault("status", "ok")
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _ms_per_call(fn, x: torch.Tensor, device: str, n: int) -> float:
    fn(x)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn(x)
    _sync(device)
    return (time.perf_counter() - t0) / n * 1e3


def _rel_rms(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.sqrt(((a - b) ** 2).mean() / max((b ** 2).mean(), 1e-30)))


def _config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _settings(cls, section: str, **changes):
    """Settings of config.yaml's ``section`` over the schema's defaults (needs PyYAML only)."""
    from alcg.config import settings as S

    return dataclasses.replace(S.defaults(cls, **(_config().get(section) or {})), **changes)


def _chain(n_beads: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """(n_frames, n_beads, 3) nm: a random-walk chain (0.38 nm steps) plus thermal-size noise."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 1, (n_beads, 3))
    base = np.cumsum(0.38 * steps / np.linalg.norm(steps, axis=1, keepdims=True), 0)
    return (base[None] + rng.normal(0, 0.02, (n_frames, n_beads, 3))).astype(np.float32)


@functools.lru_cache(maxsize=None)
def _prior(n_beads: int):
    """Priors fitted to a random chain of ``n_beads`` (:func:`_chain`, seed 0) at the config's temperature."""
    from alcg.config import settings as S
    from alcg.cg.priors import fit_priors

    return fit_priors(_chain(n_beads, 500), _config()["forcefield"]["temperature_k"], _settings(S.Priors, "priors"))


def _model(n_beads: int, seed: int = 0):
    """A CG model with the config's network (changed by the sizes' ``network``): bead types cycle
    through the 20 amino acids, priors of :func:`_prior`; float32 on the CPU."""
    from alcg.config import settings as S
    from alcg.cg.model import CGModel

    torch.manual_seed(seed)
    # a random output layer (not the zero start): the checks compare the network paths themselves
    return CGModel(torch.arange(n_beads) % 20, _prior(n_beads),
                   _settings(S.Model, "model", **{"zero_init_output": False, **NETWORK}))


@functools.lru_cache(maxsize=None)
def _fast_field(n_beads: int, device: str, compile: bool):
    """The fast force path of :func:`_model` on ``device``, made once per run: each torch.compile
    costs tens of seconds, and the same compiled function serves every replica count."""
    from alcg.cg.fast_forces import FastForceField

    return FastForceField(_model(n_beads).to(device), compile=compile, compile_after_calls=1)


# ------------------------------------------------------------------ parts
def environment(device: str) -> dict:
    from alcg.hardware.device import probe_cuda

    out = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "torch": torch.__version__, "torch_cuda": torch.version.cuda, "device_used": device,
           "cuda_probe": probe_cuda() or "ok", "load_average": os.getloadavg()}
    if torch.cuda.is_available():
        out.update(gpu=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   gpu_count=torch.cuda.device_count(), arch_list=torch.cuda.get_arch_list(),
                   gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name,compute_cap", "--format=csv,noheader"],
                           capture_output=True, text=True)
        out["nvidia_smi"] = q.stdout.strip().splitlines() or q.stderr.strip()
    try:
        import openmm as mm

        out["openmm"] = mm.__version__
        out["openmm_platforms"] = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
        out["openmm_plugin_load_failures"] = [f.splitlines()[0] for f in mm.Platform.getPluginLoadFailures()]
    except ImportError as exc:
        out["openmm"] = f"missing: {exc}"
    for name in ("mdtraj", "torch_geometric", "yaml"):
        try:
            out[name] = __import__(name).__version__
        except ImportError as exc:
            out[name] = f"missing: {exc}"
    return out


def openmm_part(device: str, size: dict, tmp: Path) -> dict:
    """GPU platform vs CPU single points; bare OpenMM and the oracle's ns/day on the GPU platform."""
    import openmm as mm
    import openmm.app as app
    import openmm.unit as unit

    from alcg.config import settings as S
    from alcg.finegrained import system as omm
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.prepare import prepare_system

    names = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
    fast, ref = ("CUDA", "CPU") if device.startswith("cuda") else ("CPU", "Reference")
    if fast not in names:
        return {"status": "skipped", "reason": f"OpenMM has no {fast} platform here ({omm._no_cuda_reason()})"}
    cfg = _config()
    ff = S.defaults(S.ForceField, **{**cfg["forcefield"], "platform": fast})
    system_cfg = S.defaults(S.System, **cfg["system"])
    pdb, xml = tmp / "folded.pdb", tmp / "folded.xml"
    prepare_system(system_cfg, dataclasses.replace(ff, platform=ref), cfg["system"]["starts"]["folded"], pdb, xml)
    p = app.PDBFile(str(pdb))
    system = omm.deserialize(xml.read_text())

    def forces(name: str) -> np.ndarray:
        platform_, props = omm.choose_platform(name)
        ctx = mm.Context(system, mm.VerletIntegrator(0.001), platform_, props)
        ctx.setPositions(p.positions)
        return ctx.getState(getForces=True).getForces(asNumpy=True).value_in_unit(
            unit.kilojoule_per_mole / unit.nanometer)

    err = _rel_rms(forces(fast), forces(ref))
    out = {"platforms": [fast, ref], "precision": "mixed" if fast == "CUDA" else "double/single",
           "force_rel_rms": err, "force_rel_rms_bound": OPENMM_FORCE_RTOL, "forces_ok": err < OPENMM_FORCE_RTOL}
    n_steps, rec = size["aa_steps"], cfg["initial_md"]["record_interval_steps"]
    sim = omm.make_simulation(p.topology, system, ff, 1)
    sim.context.setPositions(p.positions)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, 1)
    sim.step(100)
    t0 = time.perf_counter()
    for _ in range(n_steps // rec):
        sim.step(rec)
        sim.context.getState(getPositions=True, getForces=True, getEnergy=True)
    bare = n_steps * ff.timestep_fs * 1e-6 / (time.perf_counter() - t0) * 86400
    t0 = time.perf_counter()
    run_md(pdb, xml, tmp / "oracle.npz", MDSpec(n_steps=n_steps, record_interval=rec, checkpoint_every=max(rec, n_steps // 4),
                                                restraint_k=0.0, seed=1), ff, progress=False)
    oracle = n_steps * ff.timestep_fs * 1e-6 / (time.perf_counter() - t0) * 86400
    out.update(platform=fast, timestep_fs=ff.timestep_fs, n_steps=n_steps, record_interval_steps=rec,
               aa_bare_openmm_ns_per_day=bare, aa_oracle_ns_per_day=oracle, oracle_over_bare=oracle / bare)
    return out


def cg_forces(device: str, size: dict) -> dict:
    """Fast path vs exact model on the device: error, ms per call, peak memory."""
    from alcg.cg.fast_forces import FORCE_RTOL, force_error

    rows, ok = [], True
    for n_beads in size["beads"]:
        fast = _fast_field(n_beads, device, size["compile"])
        model = fast.model
        for n_rep in size["replicas"]:
            x = torch.as_tensor(_chain(n_beads, n_rep, 1), device=device)
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            _, f = fast(x)  # first call: validation against the exact model, tables, compilation
            _sync(device)
            setup_s = time.perf_counter() - t0
            err = force_error(f, model.energy_and_forces(x)[1].detach())
            ms = _ms_per_call(fast, x, device, size["calls"])
            exact_ms = _ms_per_call(lambda y: model.energy_and_forces(y), x, device, max(1, size["calls"] // 4))
            peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.startswith("cuda") else None
            ok &= err < FORCE_RTOL and fast.mode != "exact"
            rows.append({"n_beads": n_beads, "n_replicas": n_rep, "path": fast.mode, "force_rel_rms": err,
                         "ms_per_call": ms, "exact_ms_per_call": exact_ms, "speedup": exact_ms / ms,
                         "first_call_s": setup_s, "peak_memory_mib": peak})
    return {"device": device, "bound": FORCE_RTOL, "forces_ok": ok, "runs": rows}


def selection(device: str, size: dict) -> dict:
    """Exact RMSD selection; on the device when alcg.selection.rmsd_coverage has a device path."""
    import inspect

    from alcg.config import settings as S
    from alcg.selection.rmsd_coverage import RMSDSelector

    n = size["select_frames"]
    rng = np.random.default_rng(0)
    train = _chain(10, n, 2)
    cg = train + rng.normal(0, 0.03, train.shape).astype(np.float32)
    far = rng.random(n) < 0.1
    cg[far] = _chain(10, int(far.sum()), 3)
    settings = S.defaults(S.Select, rmsd_lo_nm=0.15, rmsd_hi_nm=0.8, n_select=8, n_centers=min(100, n // 3),
                          bond_min_nm=0.0, bond_max_nm=9.0, min_distance_nm=0.0)
    kwargs = {"device": device} if "device" in inspect.signature(RMSDSelector).parameters else {}
    t0 = time.perf_counter()
    res = RMSDSelector(settings, 0, **kwargs).fit(cg, train).fetch_model()
    seconds = time.perf_counter() - t0
    return {"device": kwargs.get("device", "cpu (this build's selection has no device parameter)"),
            "frames": f"{n}x{n}", "seconds": seconds, "n_selected": int(len(res.selected))}


def cg_simulation(device: str, size: dict, tmp: Path, aa_ns_per_day: float | None) -> dict:
    """Checkpoint resume on the device and across devices; aggregate CG speed at 5 fs."""
    from alcg.cg.fast_forces import FastForceField
    from alcg.config import settings as S
    from alcg.cg.simulate import VALIDATED_DT_PS, LangevinRun, simulate

    cfg_all = _config()
    masses = np.full(10, 110.0)
    sim = _settings(S.CGSim, "cg_sim", dt_ps=VALIDATED_DT_PS)
    temp = cfg_all["forcefield"]["temperature_k"]
    n_steps = size["sim_steps"]

    fields = {device: _fast_field(10, device, size["compile"])}
    if device != "cpu":  # an eager CPU copy for the resume across devices
        fields["cpu"] = FastForceField(_model(10), compile=False)

    def run(n_rep: int, dev: str, ckpt: Path | None, every: int = 0):
        run_cfg = LangevinRun.of(sim, n_steps=n_steps, save_interval=10, temperature_k=temp, seed=3)
        return simulate(fields[dev], _chain(10, n_rep), masses, run_cfg, device=dev, progress=False, checkpoint=ckpt,
                        checkpoint_every_steps=every)

    n_small = min(size["sim_replicas"], 64)
    ckpt = tmp / "cg.partial"  # a checkpoint folder (alcg.formats.checkpoint)
    whole = run(n_small, device, ckpt, n_steps // 2)  # leaves the checkpoint of the half-way step
    half = n_steps // 2 // 10
    saved = tmp / "cg.half.partial"
    shutil.copytree(ckpt, saved)
    same = run(n_small, device, ckpt)
    shutil.rmtree(ckpt)
    shutil.copytree(saved, ckpt)
    other_dev = "cpu" if device.startswith("cuda") else device
    other = run(n_small, other_dev, ckpt)
    resume_ok = (same.info["resumed_from_step"] == other.info["resumed_from_step"] == n_steps // 2
                 and np.array_equal(same.coords[:, :half], whole.coords[:, :half])
                 and np.array_equal(other.coords[:, :half], whole.coords[:, :half])
                 and bool(np.isfinite(same.coords).all() and np.isfinite(other.coords).all()))
    out = {"device": device, "resume": {"same_device": device, "other_device": other_dev, "ok": resume_ok,
                                        "resumed_from_step": same.info["resumed_from_step"],
                                        "max_dev_after_resume_nm": float(np.abs(same.coords - whole.coords).max())}}
    n_rep = size["sim_replicas"]
    res = run(n_rep, device, None)
    ran = np.where(np.asarray(res.stopped_at_step) < 0, n_steps, res.stopped_at_step)  # steps each replica ran
    agg = float(ran.sum()) * VALIDATED_DT_PS * 1e-3 / res.info["elapsed_s"] * 86400  # ns/day, all replicas
    out.update(n_replicas=n_rep, n_steps=n_steps, dt_ps=VALIDATED_DT_PS, dt_note="the validated CG step "
               "(alcg.cg.simulate.VALIDATED_DT_PS)", steps_per_s=res.steps_per_s,
               exploded=int(sum(s != "ok" for s in res.status)), cg_aggregate_ns_per_day=agg,
               cg_aggregate_us_per_day=agg / 1e3)
    if aa_ns_per_day:
        out.update(aa_ns_per_day=aa_ns_per_day, cg_over_aa=agg / aa_ns_per_day)
    return out


def training(device: str, size: dict, tmp: Path) -> dict:
    """First-batch loss on the device vs the CPU, then frames/s of alcg.cg.train.train."""
    from alcg.config import settings as S
    from alcg.cg.train import _eval_loss, train

    cfg = _settings(S.Train, "train", epochs=2, val_fraction=0.0, patience=10)
    n = size["train_frames"]
    x = _chain(10, n, 5)
    f = np.random.default_rng(6).normal(0, 100, x.shape).astype(np.float32)
    batch = np.arange(min(cfg.batch_size, n))
    losses = {}
    for dev in dict.fromkeys(["cpu", device]):
        model = _model(10).to(dev)
        losses[dev] = _eval_loss(model, torch.as_tensor(x, device=dev), torch.as_tensor(f, device=dev), batch,
                                  len(batch))
    rel = abs(losses[device] - losses["cpu"]) / abs(losses["cpu"])
    model = _model(10)
    t0 = time.perf_counter()
    train(model, x, f, np.repeat(np.arange(8), n // 8).astype(str), cfg, 0, tmp / "train_state.pt", device=device,
          progress=False)
    fps = cfg.epochs * n / (time.perf_counter() - t0)
    return {"device": device, "first_batch_loss": losses, "loss_rel_diff": rel, "bound": TRAIN_LOSS_RTOL,
            "loss_ok": rel < TRAIN_LOSS_RTOL, "batch_size": cfg.batch_size, "frames_per_s": fps}


def committee_export(device: str, tmp: Path) -> dict:
    """Committee members loaded on the device and the TorchScript export run there, vs the CPU."""
    from alcg.cg.export import export_torchscript
    from alcg.cg.model import load_model, save_model

    x_cpu = torch.as_tensor(_chain(10, 32, 7))
    x = x_cpu.to(device)
    members, errors = [], []
    for seed in range(3):
        path = tmp / f"member_{seed}.pt"
        save_model(path, _model(10, seed))
        members.append(path)
        ref = load_model(path, "cpu").energy_and_forces(x_cpu)[1].detach()
        got = load_model(path, device).energy_and_forces(x)[1].detach().cpu()
        errors.append(_rel_rms(got, ref))
    spread = torch.stack([load_model(p, device).energy_and_forces(x)[1].detach() for p in members]).std(0)
    model = load_model(members[0], "cpu")
    script = export_torchscript(model, tmp / "model_torchscript.pt", x_cpu[:4])
    loaded = torch.jit.load(str(script), map_location=device)
    _, f_script = loaded(x)
    export_err = _rel_rms(f_script.detach().cpu(), model.energy_and_forces(x_cpu)[1].detach())
    ok = max(errors) < DEVICE_FORCE_RTOL and export_err < DEVICE_FORCE_RTOL
    return {"device": device, "member_force_rel_rms": errors, "committee_max_force_deviation": float(spread.max()),
            "torchscript_force_rel_rms": export_err, "bound": DEVICE_FORCE_RTOL, "forces_ok": ok}


def targets(result: dict) -> dict:
    """The GPU targets as measured in this run (None where a part did not run or not on CUDA)."""
    on_gpu = result["environment"].get("device_used", "cpu").startswith("cuda")
    sim, aa = result["cg_simulation"], result["openmm"]
    values = {"cg_aggregate_us_per_day": sim.get("cg_aggregate_us_per_day"), "cg_over_aa": sim.get("cg_over_aa"),
              "oracle_over_bare": aa.get("oracle_over_bare")}
    out = {}
    for name, bound in TARGETS.items():
        v = values[name] if on_gpu else None
        out[name] = {"value": v, "target": bound, "met": None if v is None else v >= bound}
    out["note"] = ("measured on CUDA in this run" if on_gpu else
                   "not measured: the targets are for a GPU (this run's CPU figures are in the parts)")
    return out


def correctness_ok(result: dict) -> bool:
    """False when a part failed or a correctness bound was missed (speed targets excluded)."""
    checks = [("openmm", "forces_ok"), ("cg_forces", "forces_ok"), ("training", "loss_ok"),
              ("committee_export", "forces_ok")]
    if any(p.get("status") == "failed" for p in result.values() if isinstance(p, dict) and "status" in p):
        return False
    if result["cg_simulation"].get("status") == "ok" and not result["cg_simulation"]["resume"]["ok"]:
        return False
    return all(result[part].get(key, True) for part, key in checks if result[part].get("status") == "ok")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (see alcg.hardware.device)")
    ap.add_argument("--sizes", choices=sorted(SIZES), help="default: full on CUDA, reduced on the CPU")
    ap.add_argument("--no-compile", action="store_true", help="eager fast path only (saves the compile time)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    from alcg.hardware.device import choose

    device = choose(args.device)
    size = dict(SIZES[args.sizes or ("full" if device.startswith("cuda") else "reduced")])
    size["compile"] = size["compile"] and not args.no_compile
    NETWORK.update(size["network"])
    t0 = time.perf_counter()
    result: dict = {"command": " ".join(["gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
                    "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
                    "environment": _part(environment, device)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result["openmm"] = _part(openmm_part, device, size, tmp)
        result["cg_forces"] = _part(cg_forces, device, size)
        result["selection"] = _part(selection, device, size)
        result["cg_simulation"] = _part(cg_simulation, device, size, tmp,
                                        result["openmm"].get("aa_bare_openmm_ns_per_day"))
        result["training"] = _part(training, device, size, tmp)
        result["committee_export"] = _part(committee_export, device, tmp)
    result["targets"] = targets(result)
    result["correctness_ok"] = correctness_ok(result)
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["correctness_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
