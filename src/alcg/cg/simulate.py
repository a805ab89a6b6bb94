"""Batched Langevin dynamics (BAOAB) of many CG replicas at once, in torch.

Units: nm, ps, amu, kJ/mol (so force/mass is in nm/ps^2). A replica that explodes
(non-finite coordinates or forces, a bond longer than ``max_bond_nm``, or a force
beyond ``max_force``) is stopped and marked; its frames saved before that are kept
and the others go on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from alcg.formats import checkpoint
from alcg.cg import geometry
from alcg.cg.priors import KB_KJ_MOL_K
from alcg.config.settings import CGSim

log = logging.getLogger(__name__)

#: CG time step (ps) validated for BAOAB against 1 fs on a CLN025 prior fitted to all-atom
#: data (C-alpha bonds ~85,000 kJ/mol/nm^2, glycine 57 amu: the fastest mode has a period of
#: ~130 fs, omega dt = 0.24) plus a CGSchNet network, friction 1/ps, 340 K: kinetic
#: temperature and bond/angle means and widths agree with 1 fs within 1-2 %
#: (tests/unit/test_simulate.py::test_5_fs_time_step_samples_like_1_fs). That test cannot fail for
#: BAOAB's harmonic modes. The check of anharmonic observables (benchmarks/timestep_validation.py,
#: alcg.cg.timestep), paired on a trained Go model against 2 fs, passes 5 fs in a pre-registered
#: 14,000-start replication (docs/results/2026-12-01-timestep-validation.md;
#: benchmarks/measured/timestep_validation_go_replication.json)
VALIDATED_DT_PS = 0.005


@dataclass(frozen=True)
class LangevinRun:
    """One Langevin run: the integrator settings of ``cg_sim`` plus what differs between runs.

    Build it with :meth:`of`. Attributes: ``n_steps`` time steps, a frame saved every
    ``save_interval`` steps, ``temperature_k`` (K), noise ``seed``; from the settings: time
    step ``dt_ps`` (ps), ``friction_per_ps`` (1/ps) and the explosion limits ``max_bond_nm``
    (nm) and ``max_force_kj_mol_nm`` (kJ/mol/nm).
    """

    n_steps: int
    save_interval: int
    temperature_k: float
    seed: int
    dt_ps: float
    friction_per_ps: float
    max_bond_nm: float
    max_force_kj_mol_nm: float

    @classmethod
    def of(cls, sim: CGSim, *, n_steps: int, save_interval: int, temperature_k: float,
           seed: int) -> "LangevinRun":
        """A run of ``n_steps`` steps with the integrator settings of ``sim``."""
        return cls(n_steps=n_steps, save_interval=save_interval, temperature_k=temperature_k, seed=seed,
                   dt_ps=sim.dt_ps, friction_per_ps=sim.friction_per_ps, max_bond_nm=sim.max_bond_nm,
                   max_force_kj_mol_nm=sim.max_force_kj_mol_nm)


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


def _check(x: torch.Tensor, f: torch.Tensor, cfg: LangevinRun) -> tuple[torch.Tensor, list[str]]:
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


def simulate(force_fn, x0: np.ndarray, masses_amu: np.ndarray, cfg: LangevinRun,
             device: str = "cpu", progress: bool = True, checkpoint: str | Path | None = None,
             checkpoint_every_steps: int = 0, identity: str = "") -> SimResult:
    """Integrate replicas x0 (R, N, 3) nm with BAOAB Langevin dynamics.

    Parameters
    ----------
    force_fn : callable mapping x (B, N, 3) nm to (energy (B,) kJ/mol, forces (B, N, 3) kJ/mol/nm)
    masses_amu : (N,) bead masses
    cfg : the run (:meth:`LangevinRun.of`)
    checkpoint : checkpoint folder (:mod:`alcg.formats.checkpoint`): every ``checkpoint_every_steps``
        steps one chunk file is appended with the frames saved since the previous one and the
        integrator state (positions, velocities, replica status, RNG), so checkpoints write
        each frame once; a run resumes from it (or from the one file ``<checkpoint>.pt`` that
        earlier versions wrote), continuing the same noise stream. Remove it with
        :func:`remove_checkpoint` once the output is written.
    identity : what else makes the run what it is, beyond ``cfg``, ``x0`` and the masses (the
        workflow: a hash of the model file); part of the checkpoint's signature, so a
        checkpoint of another model is never resumed
    """
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    dtype = torch.float32
    n_rep, n_beads, _ = np.shape(x0)
    m = torch.as_tensor(masses_amu, dtype=dtype, device=device)[None, :, None]
    kt = KB_KJ_MOL_K * cfg.temperature_k
    sigma_v = torch.sqrt(kt / m)
    c1 = float(np.exp(-cfg.friction_per_ps * cfg.dt_ps))
    c2 = float(np.sqrt(1 - c1 ** 2))
    dt = cfg.dt_ps
    shape = (n_rep, cfg.n_steps // cfg.save_interval, n_beads, 3)
    partial = Path(checkpoint) if checkpoint else None
    signature = _signature(cfg, shape, x0, masses_amu, identity)
    st = _resume(partial, cfg, device, gen, shape, signature) if partial else None
    if st is None:
        x = torch.as_tensor(x0, dtype=dtype, device=device).clone()
        st = {"x": x, "v": torch.randn(x.shape, generator=gen, device=device, dtype=dtype) * sigma_v,
              "coords": np.full(shape, np.nan, np.float32), "saved": 0,
              "n_frames": np.zeros(n_rep, dtype=np.int64), "status": ["ok"] * n_rep, "reason": [""] * n_rep,
              "stopped": np.full(n_rep, -1, dtype=np.int64), "active": torch.arange(n_rep, device=device),
              "step": 0, "ke_sum": 0.0, "ke_count": 0}
        _, f = force_fn(st["x"])
        _stop(st, *_check(st["x"], f.detach(), cfg), 0)
    x, v = st["x"], st["v"]
    _, f = force_fn(x) if len(x) else (None, x)
    f = f.detach()
    t0, first = time.perf_counter(), st["step"] + 1
    bar = tqdm(range(first, cfg.n_steps + 1), desc="CG Langevin", unit="step", disable=not progress,
               mininterval=5)
    for step in bar:
        if len(st["active"]) == 0:
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
            keep = _stop(st, bad, why, step)
            x, v, f = x[keep], v[keep], f[keep]
        st["ke_sum"] += float((m * v ** 2).sum()) / (3 * n_beads * kt) * cfg.temperature_k
        st["ke_count"] += len(st["active"])
        if step % cfg.save_interval == 0 and len(st["active"]):
            s = step // cfg.save_interval - 1
            idx = st["active"].cpu().numpy()
            st["coords"][idx, s] = x.detach().cpu().numpy()
            st["n_frames"][idx] = s + 1
        if partial and checkpoint_every_steps and step % checkpoint_every_steps == 0 and step < cfg.n_steps:
            st.update(x=x, v=v, step=step)
            _save_checkpoint(partial, signature, st, cfg, gen)
    elapsed = time.perf_counter() - t0
    steps_per_s = max(cfg.n_steps - first + 1, 0) / max(elapsed, 1e-9)
    log.info("CG simulation: %d replicas, %d steps in %.1f s (%.1f steps/s, %.0f replica-steps/s)",
             n_rep, cfg.n_steps - first + 1, elapsed, steps_per_s, steps_per_s * n_rep)
    return SimResult(st["coords"], st["n_frames"], st["status"], st["reason"], st["stopped"],
                     st["ke_sum"] / max(st["ke_count"], 1), steps_per_s,
                     {"elapsed_s": elapsed, "n_replicas": n_rep, "n_steps": cfg.n_steps,
                      "resumed_from_step": first - 1})


def _stop(st: dict, bad: torch.Tensor, why: list[str], step: int) -> torch.Tensor:
    """Mark the ``bad`` active replicas as exploded; return the mask of those kept."""
    for k, text in zip(torch.nonzero(bad).flatten().tolist(), why):
        r = int(st["active"][k])
        st["status"][r], st["reason"][r], st["stopped"][r] = "exploded", text, step
        log.warning("replica %d stopped at step %d: %s", r, step, text)
    keep = ~bad
    st["active"] = st["active"][keep]
    st["x"], st["v"] = st["x"][keep], st["v"][keep]
    return keep


def _signature(cfg: LangevinRun, shape: tuple[int, ...], x0: np.ndarray, masses_amu: np.ndarray,
               identity: str) -> str:
    """Hash of the run (settings, frame array shape, starts, masses, ``identity``): a checkpoint
    only resumes the same run."""
    h = hashlib.sha256(json.dumps([dataclasses.asdict(cfg), list(shape), identity], sort_keys=True).encode())
    h.update(np.ascontiguousarray(x0, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(masses_amu, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def legacy_checkpoint(partial: Path) -> Path:
    """The one-file checkpoint earlier versions wrote instead of folder ``partial`` (``<partial>.pt``)."""
    return checkpoint.legacy_file(partial, ".pt")


def remove_checkpoint(partial: str | Path) -> None:
    """Remove the checkpoint folder ``partial`` of a finished run and an earlier version's file."""
    checkpoint.remove(Path(partial), legacy_checkpoint(Path(partial)))


def _save_checkpoint(partial: Path, signature: str, st: dict, cfg: LangevinRun, gen: torch.Generator) -> None:
    """Append the frames saved since the last checkpoint and the integrator state as one chunk."""
    upto = st["step"] // cfg.save_interval
    meta = {key: st[key] for key in ("step", "ke_sum", "ke_count", "status", "reason")}
    checkpoint.write(partial, signature, st["saved"], {**meta, "rng_device": gen.device.type},
                     coords=st["coords"][:, st["saved"]:upto], x=st["x"].detach().cpu().numpy(),
                     v=st["v"].detach().cpu().numpy(), active=st["active"].cpu().numpy(),
                     n_frames=st["n_frames"], stopped=st["stopped"], rng=gen.get_state().numpy())
    st["saved"] = upto


def _resume(partial: str | Path, cfg: LangevinRun, device: str, gen: torch.Generator,
            shape: tuple[int, ...], signature: str) -> dict | None:
    """The state of checkpoint folder ``partial`` on ``device``, whichever device wrote it (None:
    no checkpoint, or one of another run: ``signature`` is this run's, :func:`_signature`);
    ``shape`` is that of the run's frame array (replicas, frames, beads, 3).

    The frames come from the consecutive chunks, the state from the last one; an earlier
    version's one file (:func:`legacy_checkpoint`) comes first when it exists. The tensors are
    read onto the CPU, then moved to ``device``: the RNG state stays a CPU byte tensor, which
    is what ``Generator.set_state`` takes on every device. A state written by a generator of
    another device type (CUDA vs CPU) cannot be set: the noise then restarts from a seed
    derived from ``cfg.seed`` and the step, so the resumed run is a valid but different
    continuation (logged).
    """
    partial = Path(partial)
    st, rng = _resume_legacy(legacy_checkpoint(partial), cfg)
    found = checkpoint.read(partial, signature, lambda chunk: chunk["coords"].shape[1],
                            first_frame=st["saved"] if st else 0) or []
    if found:
        coords = st["coords"] if st else np.full(shape, np.nan, np.float32)
        for chunk in found:
            start = chunk["metadata"]["start"]
            coords[:, start:start + chunk["coords"].shape[1]] = chunk["coords"]
        st, rng = _chunk_state(found[-1], coords)
    if st is None:
        return None
    _restore_rng(gen, rng, cfg, st["step"], partial)
    for key in ("x", "v", "active"):
        st[key] = st[key].to(device)
    log.info("resuming CG simulation from step %d", st["step"])
    return st


def _chunk_state(chunk: dict, coords: np.ndarray) -> tuple[dict, tuple[torch.Tensor, str]]:
    """The state (on the CPU) at the end of checkpoint chunk ``chunk``, and its RNG state and device."""
    meta = chunk["metadata"]
    st = {key: meta[key] for key in ("step", "ke_sum", "ke_count", "status", "reason")}
    st.update({key: torch.from_numpy(chunk[key]) for key in ("x", "v", "active")},
              coords=coords, n_frames=chunk["n_frames"], stopped=chunk["stopped"],
              saved=meta["start"] + chunk["coords"].shape[1])
    return st, (torch.from_numpy(chunk["rng"]), meta["rng_device"])


def _resume_legacy(path: Path, cfg: LangevinRun) -> tuple[dict | None, tuple[torch.Tensor, str] | None]:
    """The state (on the CPU) of an earlier version's one-file checkpoint ``path`` (every frame
    so far and the state, a torch pickle), and its RNG state and device; (None, None) when
    there is none or it belongs to different settings."""
    if not path.exists():
        return None, None
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if blob.pop("cfg") != dataclasses.asdict(cfg):
        log.warning("ignoring CG checkpoint %s: it belongs to different settings", path)
        return None, None
    rng = blob.pop("rng")
    rng_device = blob.pop("rng_device", "cpu" if rng.numel() > 16 else "cuda")  # older files: by size
    blob["saved"] = blob["step"] // cfg.save_interval
    return blob, (rng, rng_device)


def _restore_rng(gen: torch.Generator, rng: tuple[torch.Tensor, str], cfg: LangevinRun, step: int,
                 where: Path) -> None:
    """Set ``gen`` to the saved state ``rng`` (state, device type), or, when it was written by
    a generator of another device type, to a seed derived from ``cfg.seed`` and ``step``."""
    state, rng_device = rng
    if rng_device == gen.device.type:
        gen.set_state(state)
        return
    gen.manual_seed((cfg.seed * 1_000_003 + step) % (2**63 - 1))
    log.warning("CG checkpoint %s was written on %s and resumes on %s: the noise continues from a "
                "new seed, not the saved stream", where, rng_device, gen.device.type)


def model_force_fn(model, compile: bool, fast: bool = True):
    """A ``force_fn`` of a trained, frozen :class:`~alcg.cg.model.CGModel`.

    By default the fast path of :class:`alcg.cg.fast_forces.FastForceField`: tabulated filters,
    all pairs of a replica at once, an explicit backward pass, and, with ``compile`` (the
    setting ``cg_sim.compile``), torch.compile where it works, once a run is long enough
    (:data:`alcg.cg.fast_forces.COMPILE_AFTER_CALLS`). Its first call is checked against the
    exact model (relative RMS force error below :data:`alcg.cg.fast_forces.FORCE_RTOL`, else it
    uses the exact model). The weights are copied now: train first, then call this.
    ``fast=False`` gives the exact model's forces (:meth:`~alcg.cg.model.CGModel.energy_and_forces`).
    """
    if fast:
        from alcg.cg.fast_forces import FastForceField

        return FastForceField(model, compile=compile)

    def force_fn(x: torch.Tensor):
        return model.energy_and_forces(x)
    return force_fn
