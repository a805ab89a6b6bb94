"""Bytes written by growing datasets and by checkpointed MD: appending (issue 21, item 3)
against the rewriting of the code before it (commit e1d5d71, read with ``git show``).

Parts (each writes real files in a temporary folder and counts their bytes):

- dataset: a loop of ``rounds`` rounds on ``beads`` beads, round 0 with ``frames0`` frames and
  each round adding ``per_round`` projected frames. Before, the merge wrote the whole dataset
  again each round; now it writes a manifest. The projected shards are written either way
  (and counted in neither). Also the time of backmap's read of one template frame (its
  provenance and that one frame of its run): whole dataset + whole run before, rows now.
- md: :func:`alcg.finegrained.md.run_md` on ``atoms`` independent particles in a harmonic well
  (Reference platform: the physics is trivial, the file sizes are those of a protein of that
  many recorded atoms), ``checkpoint_every`` records between checkpoints, at several run
  lengths: bytes written to checkpoints by the old and the new module;
- cg_simulate: :func:`alcg.cg.simulate.simulate` of ``replicas`` replicas of ``beads`` beads
  (harmonic 0.38 nm bonds: the physics is trivial, the frames are those of a run of that
  size), a frame every ``save_interval`` steps and a checkpoint every ``checkpoint_every``
  frames, at several run lengths: bytes written to checkpoints before (the whole state with
  every frame so far, rewritten at each checkpoint, as of commit ``CG_BEFORE``) and after
  (one chunk of the new frames per checkpoint, :mod:`alcg.formats.checkpoint`).

    python benchmarks/append_io.py --out benchmarks/measured/append_io.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from alcg.formats import run_file, dataset  # noqa: E402
from alcg.stages import query  # noqa: E402

BEFORE = "e1d5d71"
CG_BEFORE = "3a5d753"


def _frames(n: int, beads: int, tag: str, rnd: int, rng: np.random.Generator) -> dataset.CGDataset:
    data = dataset.empty(np.arange(beads, dtype=np.int64) % 20, np.full(beads, 110.0), "A" * beads)
    return dataset.with_frames(
        data, coords=rng.normal(size=(n, beads, 3)).astype(np.float32),
        forces=rng.normal(size=(n, beads, 3)).astype(np.float32), source=np.array([tag] * n),
        frame=np.arange(n, dtype=np.int64), round=np.full(n, rnd, np.int64), traj=np.array([tag] * n),
        split=np.array(["train"] * n))


def dataset_part(beads: int, frames0: int, per_round: int, rounds: int, atoms: int) -> dict:
    """Bytes the merge writes per round, merged file vs manifest, and one backmap frame read."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        seed = Path(tmp) / "seed_1"
        r0 = seed / "round_000/dataset/dataset.npz"
        dataset.save(r0, _frames(frames0, beads, "seed_1/initial/rep_0.npz", 0, rng))
        merged_prev, manifest_prev = r0, r0
        merged_bytes, manifest_bytes = [], []
        for j in range(rounds):
            shard = seed / f"arm/round_{j:03d}/oracle/projected.npz"
            dataset.save(shard, _frames(per_round, beads, f"seed_1/arm/round_{j:03d}/oracle/slot_000.npz", j, rng))
            merged = seed / f"merged/round_{j + 1:03d}.npz"
            dataset.save(merged, dataset.merge([dataset.load(merged_prev), dataset.load(shard)]))
            manifest = seed / f"arm/round_{j + 1:03d}/dataset/dataset.npz"
            dataset.append(manifest_prev, shard, manifest)
            merged_bytes.append(merged.stat().st_size)
            manifest_bytes.append(manifest.stat().st_size)
            merged_prev, manifest_prev = merged, manifest
        run = seed / "initial/rep_0.npz"
        pos = rng.normal(size=(frames0, atoms, 3)).astype(np.float32)
        run_file.save_run(run, pos, pos, np.zeros(frames0), np.arange(frames0, dtype=float), np.arange(atoms), "", {})
        k = frames0 // 2
        t0 = time.perf_counter()
        data = dataset.load(merged_prev)
        key, frame = data.frame_source(k)
        old = run_file.load(run).positions[frame]
        t_before = time.perf_counter() - t0
        t0 = time.perf_counter()
        new = query._frame(str(manifest_prev), [str(run)], k)[0]
        t_after = time.perf_counter() - t0
        assert np.array_equal(old.astype(np.float64), new)
        assert all(np.array_equal(getattr(dataset.load(manifest_prev), f), getattr(data, f), equal_nan=f == "force_var")
                   for f in dataset.PER_FRAME)
    return {"beads": beads, "frames_round0": frames0, "frames_per_round": per_round, "rounds": rounds,
            "merge_bytes_written_before": merged_bytes, "merge_bytes_written_after": manifest_bytes,
            "total_merge_bytes_before": int(sum(merged_bytes)), "total_merge_bytes_after": int(sum(manifest_bytes)),
            "backmap_template_read_s_before": t_before, "backmap_template_read_s_after": t_after,
            "run_atoms": atoms}


#: where the modules that the old code imports live since the package's subpackages (2026-12-06,
#: CHANGELOG.md): the old module is run against today's, under its old names
OLD_NAMES = {"system": "finegrained.system", "errors": "util.errors", "aarun": "formats.run_file",
             "io": "util.fileio", "settings": "config.settings", "structure": "finegrained.structure",
             "geometry": "cg.geometry", "priors": "cg.priors"}


def _alias_old_names() -> None:
    """Make ``alcg.<old>`` importable as today's module (for code read from an old commit)."""
    import alcg

    for old, new in OLD_NAMES.items():
        module = importlib.import_module(f"alcg.{new}")
        sys.modules.setdefault(f"alcg.{old}", module)
        if not hasattr(alcg, old):
            setattr(alcg, old, module)


def _old_module(name: str, commit: str):
    """Module ``alcg.<name>`` as it was at ``commit`` (one checkpoint file rewritten with every
    frame so far)."""
    _alias_old_names()
    text = subprocess.run(["git", "show", f"{commit}:src/alcg/{name}.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"{name}_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _particles(folder: Path, atoms: int) -> tuple[Path, Path]:
    import openmm as mm
    import openmm.app as app

    from alcg.finegrained import system as omm
    from alcg.finegrained.structure import pdb_text

    top = app.Topology()
    chain = top.addChain()
    for _ in range(atoms):
        top.addAtom("CA", app.Element.getBySymbol("C"), top.addResidue("ALA", chain))
    system = mm.System()
    well = mm.CustomExternalForce("500*(x^2+y^2+z^2)")
    for i in range(atoms):
        system.addParticle(12.0)
        well.addParticle(i, [])
    system.addForce(well)
    pdb, xml = folder / "p.pdb", folder / "p.xml"
    pdb.write_text(pdb_text(top, np.random.default_rng(0).normal(scale=0.05, size=(atoms, 3))))
    xml.write_text(omm.serialize(system))
    return pdb, xml


def md_part(atoms: int, lengths: list[int], checkpoint_every: int) -> dict:
    """Bytes written to checkpoints by run_md, before and after, for runs of ``lengths`` frames."""
    from alcg.finegrained import md
    from alcg.formats import checkpoint
    from alcg.config.settings import ForceField, defaults

    ff = defaults(ForceField, files=["amber14-all.xml"], temperature_k=300.0, timestep_fs=1.0, platform="Reference")
    out: dict = {"atoms": atoms, "checkpoint_every": checkpoint_every, "runs": []}
    old = _old_module("allatom_md", BEFORE)
    for module, writer in ((old, old), (md, checkpoint)):  # who calls save_npz for a checkpoint
        real = writer.save_npz
        for n in lengths:
            written = []

            def counting(path, metadata=None, **arrays):
                real(path, metadata, **arrays)
                written.append(Path(path).stat().st_size)
            writer.save_npz = counting
            with tempfile.TemporaryDirectory() as tmp:
                pdb, xml = _particles(Path(tmp), atoms)
                spec = md.MDSpec(n_steps=n, record_interval=1, checkpoint_every=checkpoint_every,
                                         restraint_k=0.0, seed=1)
                t0 = time.perf_counter()
                module.run_md(pdb, xml, Path(tmp) / "run.npz", spec, ff, progress=False)
                wall = time.perf_counter() - t0
                final = (Path(tmp) / "run.npz").stat().st_size
            writer.save_npz = real
            out["runs"].append({"code": "before" if module is not md else "after", "frames": n,
                                "checkpoint_bytes": int(sum(written)), "n_checkpoints": len(written),
                                "final_file_bytes": final, "wall_s": wall})
    return out


def _bond_forces(x):
    """Energies (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm of harmonic 0.38 nm bonds (1000 kJ/mol/nm^2)."""
    import torch

    d = x[:, 1:] - x[:, :-1]
    r = d.norm(dim=-1, keepdim=True)
    fb = -1000.0 * (r - 0.38) * d / r
    f = torch.zeros_like(x)
    f[:, 1:] += fb
    f[:, :-1] -= fb
    return (500.0 * (r - 0.38) ** 2).sum((1, 2)), f


def cg_part(beads: int, replicas: int, lengths: list[int], save_interval: int, checkpoint_every: int) -> dict:
    """Bytes written to checkpoints by simulate, before and after, for runs of ``lengths`` frames."""
    import dataclasses

    import torch

    from alcg.formats import checkpoint
    from alcg.cg import simulate

    torch.set_num_threads(1)
    steps = np.random.default_rng(0).normal(size=(replicas, beads - 1, 3))
    steps *= 0.38 / np.linalg.norm(steps, axis=-1, keepdims=True)
    x0 = np.concatenate([np.zeros((replicas, 1, 3)), np.cumsum(steps, 1)], 1)
    masses = np.full(beads, 110.0)
    out: dict = {"beads": beads, "replicas": replicas, "save_interval_steps": save_interval,
                 "checkpoint_every_frames": checkpoint_every, "before": CG_BEFORE, "runs": []}
    old = _old_module("simulate", CG_BEFORE)
    for module in (old, simulate):
        for n in lengths:
            written: list[int] = []
            cfg = module.LangevinRun(n_steps=n * save_interval, save_interval=save_interval, temperature_k=300.0,
                                     seed=1, dt_ps=0.005, friction_per_ps=1.0, max_bond_nm=1.0,
                                     max_force_kj_mol_nm=1e6)
            with tempfile.TemporaryDirectory() as tmp:
                partial = Path(tmp) / ("run.partial.pt" if module is old else "run.partial")
                t0 = time.perf_counter()
                res = _counted_simulate(module, checkpoint, written, _bond_forces, x0, masses, cfg, partial,
                                        checkpoint_every * save_interval)
                wall = time.perf_counter() - t0
            out["runs"].append({"code": "before" if module is old else "after", "frames": n,
                                "checkpoint_bytes": int(sum(written)), "n_checkpoints": len(written),
                                "frame_array_bytes": int(res.coords.nbytes), "wall_s": wall,
                                "all_ok": all(s == "ok" for s in res.status), "cfg": dataclasses.asdict(cfg)})
    return out


def _counted_simulate(module, checkpoint, written: list[int], *args):
    """Run ``module.simulate`` and append the size of every checkpoint file it writes to ``written``."""
    force_fn, x0, masses, cfg, partial, every = args
    one_file = hasattr(module, "_save_checkpoint") and not hasattr(module, "remove_checkpoint")  # the old code
    owner, name = (module, "_save_checkpoint") if one_file else (checkpoint, "save_npz")
    real = getattr(owner, name)

    def counting(path, *rest, **kwargs):
        real(path, *rest, **kwargs)
        written.append(Path(path).stat().st_size)
    setattr(owner, name, counting)
    try:
        return module.simulate(force_fn, x0, masses, cfg, progress=False, checkpoint=partial,
                               checkpoint_every_steps=every)
    finally:
        setattr(owner, name, real)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out")
    parts = ["dataset", "md", "cg_simulate"]
    ap.add_argument("--parts", nargs="*", default=parts, choices=parts,
                    help="parts to run; with --out, the others' entries of that file are kept")
    args = ap.parse_args()
    result = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).exists() else {}
    result["before"] = BEFORE
    if "dataset" in args.parts:
        result["dataset_tiny"] = dataset_part(beads=10, frames0=200, per_round=50, rounds=2, atoms=166)
        result["dataset_80_beads"] = dataset_part(beads=80, frames0=20000, per_round=2000, rounds=10, atoms=1300)
    if "md" in args.parts:
        result["md"] = md_part(atoms=1000, lengths=[200, 400, 800], checkpoint_every=50)
    if "cg_simulate" in args.parts:
        result["cg_simulate"] = cg_part(beads=80, replicas=100, lengths=[200, 400, 800], save_interval=10,
                                        checkpoint_every=50)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
