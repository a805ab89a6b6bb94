"""How much label noise each force map leaves (issue 31 item 1): ``constrained`` (today's
C-alpha label), ``residue`` and ``optimal`` (:mod:`alcg.finegrained.force_maps`).

Go CLN025 (340 K, the tiny config's structure and today's Go defaults): the optimal map is fitted
on ``--go-fit`` equilibrium frames 2 ps apart; on ``--go-configs`` other equilibrium frames
(another run) the C-alphas are held fixed (mass 0) and ``--go-samples`` force samples 0.5 ps
apart are drawn, so each map's noise is measured directly: the variance of its mapped force at
fixed beads, per component, averaged over configurations (SE over configurations).

Atomistic CLN025 (amber14 + GBn2, 340 K, 4 fs, HBonds): one run of ``--aa-frames`` frames 0.1 ps
apart; the optimal map is fitted on the first half, and each map's mean squared mapped force is
scored on the second half (later frames of the same run). All valid maps share the mean force,
so in expectation the ratio of second moments bounds the ratio of noises from above.

    python benchmarks/force_maps.py                       # the committed result (~2 min, 2 cores)
    python benchmarks/force_maps.py --quick               # a smoke run (seconds)

Output: ``benchmarks/measured/force_maps.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alcg.config.settings import ForceField, System, defaults, parse  # noqa: E402
from alcg.finegrained import force_maps as FM  # noqa: E402
from alcg.finegrained import gomodel, system as omm  # noqa: E402
from alcg.finegrained.mapping import CAMapping  # noqa: E402
from alcg.finegrained.md import MDSpec, run_md  # noqa: E402
from alcg.finegrained.models import GoModel  # noqa: E402
from alcg.finegrained.prepare import prepare_system  # noqa: E402
from alcg.formats import run_file  # noqa: E402
from alcg.stages.validate import validate  # noqa: E402

OUT = ROOT / "benchmarks" / "measured" / "force_maps.json"


def _test_config() -> dict:
    return validate(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))


def _maps(fit_forces, system, topology, mapping, atoms, ridge):
    return {"constrained": FM.constrained(mapping, atoms), "residue": FM.residue(topology, mapping, atoms, system),
            "optimal": FM.optimal(fit_forces, system, mapping, atoms, ridge)}


def _run(pdb, xml, out, ff, n_frames, interval, seed):
    run_md(pdb, xml, out, MDSpec(n_steps=n_frames * interval, record_interval=interval, checkpoint_every=10**7,
                                 restraint_k=0.0, equilibration_steps=20 * interval, seed=seed), ff, progress=False)
    return run_file.load(out)


def _fixed_ca_noise(xml, topology, positions, maps, mapping, ff, n_samples, interval, seed):
    """Per map: the variance of its mapped force over samples with the C-alphas fixed, per component."""
    system = mm.XmlSerializer.deserialize(xml)
    for i in mapping.ca_indices:
        system.setParticleMass(int(i), 0.0)
    sim = omm.make_simulation(topology, system, ff, seed, threads=1)
    sim.context.setPositions(positions * unit.nanometer)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, seed)
    sim.step(20 * interval)
    forces = []
    for _ in range(n_samples):
        sim.step(interval)
        forces.append(sim.context.getState(getForces=True).getForces(asNumpy=True)
                      .value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    f = np.asarray(forces)
    return {k: float(np.mean(np.var(m.apply(f), axis=0, ddof=1))) for k, m in maps.items()}


def go(args, work: Path) -> dict:
    cfg = _test_config()
    ff = defaults(ForceField, files=["amber14-all.xml"], temperature_k=340.0, timestep_fs=5.0,
                  platform="Reference", kind="go")
    model, system_cfg = GoModel(ff), parse(System, cfg["system"])
    native = model.native(system_cfg, cfg["system"]["starts"]["folded"], seed=0)
    gomodel.save_native(work / "native.npz", native)
    model.prepare(system_cfg, cfg["system"]["starts"]["folded"], str(work / "native.npz"), work / "go.pdb",
                  work / "go.xml", seed=0)
    xml = (work / "go.xml").read_text()
    system, topology = mm.XmlSerializer.deserialize(xml), app.PDBFile(str(work / "go.pdb")).topology
    mapping = CAMapping(topology, system)
    fit = _run(work / "go.pdb", work / "go.xml", work / "go_fit.npz", ff, args.go_fit, 400, seed=11)
    held = _run(work / "go.pdb", work / "go.xml", work / "go_held.npz", ff, args.go_configs, 400, seed=12)
    maps = _maps(fit.forces, system, topology, mapping, fit.atom_indices, args.ridge)
    per = [_fixed_ca_noise(xml, topology, held.positions[k], maps, mapping, ff, args.go_samples, 100, 100 + k)
           for k in range(held.n_frames)]
    noise = {k: float(np.mean([p[k] for p in per])) for k in maps}
    se = {k: float(np.std([p[k] for p in per], ddof=1) / np.sqrt(len(per))) for k in maps}
    return {"system": "Go CLN025, 340 K", "fit_frames": int(fit.n_frames), "held_out_configs": len(per),
            "samples_per_config": args.go_samples, "frame_spacing_ps": 2.0, "sample_spacing_ps": 0.5,
            "noise": noise, "noise_se": se, "second_moment_held_out": {k: FM.second_moment(m, held.forces)
                                                                      for k, m in maps.items()},
            "noise_ratio_to_constrained": {k: noise[k] / noise["constrained"] for k in maps}}


def atomistic(args, work: Path) -> dict:
    cfg = _test_config()
    ff = parse(ForceField, {**cfg["forcefield"], "temperature_k": 340.0})
    prepare_system(parse(System, cfg["system"]), ff, cfg["system"]["starts"]["folded"], work / "aa.pdb",
                   work / "aa.xml")
    interval = int(round(100.0 / ff.timestep_fs))  # 0.1 ps
    run = _run(work / "aa.pdb", work / "aa.xml", work / "aa.npz", ff, args.aa_frames, interval, seed=21)
    system = mm.XmlSerializer.deserialize((work / "aa.xml").read_text())
    topology = app.PDBFile(str(work / "aa.pdb")).topology
    mapping = CAMapping(topology, system)
    half = run.n_frames // 2
    maps = _maps(run.forces[:half], system, topology, mapping, run.atom_indices, args.ridge)
    assert all(FM.violations(m, system, mapping) == [] for m in maps.values())
    sm = {k: FM.second_moment(m, run.forces[half:]) for k, m in maps.items()}
    return {"system": f"atomistic CLN025, {', '.join(ff.files)}, {ff.temperature_k:g} K, {ff.timestep_fs:g} fs, "
                      f"{ff.constraints} constraints", "fit_frames": half, "held_out_frames": run.n_frames - half,
            "frame_spacing_ps": interval * ff.timestep_fs * 1e-3, "second_moment_held_out": sm,
            "second_moment_ratio_to_constrained": {k: sm[k] / sm["constrained"] for k in maps}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a result")
    ap.add_argument("--go-fit", type=int, default=2000, help="Go frames the optimal map is fitted on")
    ap.add_argument("--go-configs", type=int, default=60, help="held-out Go configurations")
    ap.add_argument("--go-samples", type=int, default=400, help="fixed-C-alpha force samples per configuration")
    ap.add_argument("--aa-frames", type=int, default=1500, help="atomistic frames, 0.1 ps apart")
    ap.add_argument("--ridge", type=float, default=1e-6, help="the optimal map's ridge (relative)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.go_fit, args.go_configs, args.go_samples, args.aa_frames = 100, 3, 20, 40
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        result = {"command": "python benchmarks/force_maps.py" + (" --quick" if args.quick else ""),
                  "ridge": args.ridge, "go": go(args, Path(tmp)), "atomistic": atomistic(args, Path(tmp))}
    result.update(wall_s=round(time.time() - t0, 1), date=time.strftime("%Y-%m-%d"), cores=os.cpu_count())
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("go", "atomistic")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
