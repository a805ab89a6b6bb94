"""Batched Langevin dynamics (BAOAB) of many CG replicas at once, in torch.

Units: nm, ps, amu, kJ/mol (so force/mass is in nm/ps^2). A replica that explodes
(non-finite coordinates or forces, a bond longer than ``max_bond_nm``, or a force
beyond ``max_force``) is stopped and marked; its frames saved before that are kept
and the others go on.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from alcg import geometry
from alcg.io import atomic_path, write_json
from alcg.priors import KB_KJ_MOL_K

log = logging.getLogger(__name__)


@dataclass
class LangevinConfig:
    """CG simulation settings (see the ``cg_sim`` config section)."""

    n_steps: int = 1000
    dt_ps: float = 0.002
    friction_per_ps: float = 1.0
    temperature_k: float = 340.0
    save_interval: int = 100
    max_bond_nm: float = 0.6
    max_force_kj_mol_nm: float = 1e5
    seed: int = 0


@dataclass
class SimResult:
    """Output of :func:`simulate`.

    ``coords`` is (R, S, N, 3) nm with NaN where a replica had stopped; ``n_frames[r]``
    frames of replica r are valid; ``status[r]`` is "ok" or "exploded".
    """

    coords: np.ndarray
    n_frames: np.ndarray
    status: list[str]
    reason: list[str]
    stopped_at_step: np.ndarray
    mean_kinetic_temperature_k: float
    steps_per_s: float
    info: dict = field(default_factory=dict)


def _check(x: torch.Tensor, f: torch.Tensor, cfg: LangevinConfig) -> tuple[torch.Tensor, list[str]]:
    finite = torch.isfinite(x).all((-1, -2)) & torch.isfinite(f).all((-1, -2))
    max_bond = geometry.bonds(torch.nan_to_num(x, nan=1e6)).amax(-1)
    max_force = torch.nan_to_num(f, nan=1e30).norm(dim=-1).amax(-1)
    bad = ~finite | (max_bond > cfg.max_bond_nm) | (max_force > cfg.max_force_kj_mol_nm)
    reasons = []
    for k in torch.nonzero(bad).flatten().tolist():
        if not bool(finite[k]):
            reasons.append("non-finite coordinates or forces")
        elif float(max_bond[k]) > cfg.max_bond_nm:
            reasons.append(f"bond {float(max_bond[k]):.3f} nm > {cfg.max_bond_nm} nm")
        else:
            reasons.append(f"force {float(max_force[k]):.3g} kJ/mol/nm > {cfg.max_force_kj_mol_nm:g}")
    return bad, reasons


def simulate(force_fn, x0: np.ndarray, masses_amu: np.ndarray, cfg: LangevinConfig,
             device: str = "cpu", progress: bool = True) -> SimResult:
    """Integrate replicas x0 (R, N, 3) nm with BAOAB Langevin dynamics.

    Parameters
    ----------
    force_fn : callable mapping x (B, N, 3) to (energy (B,), forces (B, N, 3))
    masses_amu : (N,) bead masses
    """
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    dtype = torch.float32
    x = torch.as_tensor(x0, dtype=dtype, device=device).clone()
    n_rep, n_beads, _ = x.shape
    m = torch.as_tensor(masses_amu, dtype=dtype, device=device)[None, :, None]
    kt = KB_KJ_MOL_K * cfg.temperature_k
    sigma_v = torch.sqrt(kt / m)
    v = torch.randn(x.shape, generator=gen, device=device, dtype=dtype) * sigma_v
    c1 = float(np.exp(-cfg.friction_per_ps * cfg.dt_ps))
    c2 = float(np.sqrt(1 - c1 ** 2))
    dt = cfg.dt_ps
    n_saves = cfg.n_steps // cfg.save_interval
    coords = np.full((n_rep, n_saves, n_beads, 3), np.nan, dtype=np.float32)
    n_frames = np.zeros(n_rep, dtype=np.int64)
    status, reason = ["ok"] * n_rep, [""] * n_rep
    stopped = np.full(n_rep, -1, dtype=np.int64)
    active = torch.arange(n_rep, device=device)
    _, f = force_fn(x)
    f = f.detach()

    def stop(bad: torch.Tensor, why: list[str], step: int) -> None:
        nonlocal active
        for k, text in zip(torch.nonzero(bad).flatten().tolist(), why):
            r = int(active[k])
            status[r], reason[r], stopped[r] = "exploded", text, step
            log.warning("replica %d stopped at step %d: %s", r, step, text)
        keep = ~bad
        active = active[keep]
        return keep

    keep = stop(*_check(x, f, cfg), 0)
    x, v, f = x[keep], v[keep], f[keep]
    ke_sum, ke_count = 0.0, 0
    t0 = time.perf_counter()
    bar = tqdm(range(1, cfg.n_steps + 1), desc="CG Langevin", unit="step", disable=not progress,
               mininterval=5)
    for step in bar:
        if len(active) == 0:
            break
        v = v + 0.5 * dt * f / m
        x = x + 0.5 * dt * v
        v = c1 * v + c2 * sigma_v * torch.randn(v.shape, generator=gen, device=device, dtype=dtype)
        x = x + 0.5 * dt * v
        _, f = force_fn(x)
        f = f.detach()
        v = v + 0.5 * dt * f / m
        bad, why = _check(x, f, cfg)
        if bool(bad.any()):
            keep = stop(bad, why, step)
            x, v, f = x[keep], v[keep], f[keep]
        ke_sum += float((m * v ** 2).sum()) / (3 * n_beads * kt) * cfg.temperature_k
        ke_count += len(active)
        if step % cfg.save_interval == 0 and len(active):
            s = step // cfg.save_interval - 1
            idx = active.cpu().numpy()
            coords[idx, s] = x.detach().cpu().numpy()
            n_frames[idx] = s + 1
    elapsed = time.perf_counter() - t0
    steps_per_s = cfg.n_steps / max(elapsed, 1e-9)
    log.info("CG simulation: %d replicas, %d steps in %.1f s (%.1f steps/s, %.0f replica-steps/s)",
             n_rep, cfg.n_steps, elapsed, steps_per_s, steps_per_s * n_rep)
    return SimResult(coords, n_frames, status, reason, stopped,
                     ke_sum / max(ke_count, 1), steps_per_s,
                     {"elapsed_s": elapsed, "n_replicas": n_rep, "n_steps": cfg.n_steps})


def model_force_fn(model):
    """Adapter turning a :class:`~alcg.model.CGModel` into a ``force_fn``."""
    def force_fn(x: torch.Tensor):
        return model.energy_and_forces(x)
    return force_fn


def write_trajectory(result: SimResult, cg_pdb: str | Path, traj_path: str | Path,
                     status_path: str | Path, dt_ps: float, save_interval: int) -> None:
    """Write valid frames (replica-major) as an mdtraj HDF5 file plus a replica status JSON."""
    import mdtraj as md

    top = md.load_topology(str(cg_pdb))
    frames, offsets = [], []
    for r in range(len(result.n_frames)):
        offsets.append(int(sum(len(fr) for fr in frames)))
        frames.append(result.coords[r, :result.n_frames[r]])
    xyz = np.concatenate(frames) if frames else np.zeros((0, top.n_atoms, 3), np.float32)
    time_ps = np.concatenate([np.arange(1, n + 1) * dt_ps * save_interval for n in result.n_frames])
    with atomic_path(traj_path) as tmp:
        md.Trajectory(xyz, top, time=time_ps).save_hdf5(str(tmp), force_overwrite=True)
    replicas = [{"replica": r, "status": result.status[r], "reason": result.reason[r],
                 "n_frames": int(result.n_frames[r]), "frame_offset": offsets[r],
                 "stopped_at_step": int(result.stopped_at_step[r])}
                for r in range(len(result.n_frames))]
    n_exploded = sum(s != "ok" for s in result.status)
    write_json(status_path, {"replicas": replicas, "n_replicas": len(replicas),
                             "n_exploded": n_exploded,
                             "exploded_fraction": n_exploded / max(len(replicas), 1),
                             "mean_kinetic_temperature_k": result.mean_kinetic_temperature_k,
                             "steps_per_s": result.steps_per_s, **result.info})


def load_trajectory(traj_path: str | Path, status_path: str | Path) -> tuple[np.ndarray, list[dict], object]:
    """Return (coords (F, N, 3) nm, replica status list, mdtraj topology) of a CG run."""
    import json

    import mdtraj as md

    traj = md.load(str(traj_path))
    status = json.loads(Path(status_path).read_text())["replicas"]
    return traj.xyz, status, traj.topology
