"""Batched Langevin dynamics (BAOAB) of many CG replicas at once, in torch.

Units: nm, ps, amu, kJ/mol (so force/mass is in nm/ps^2). A replica that explodes
(non-finite coordinates or forces, a bond longer than ``max_bond_nm``, or a force
beyond ``max_force``) is stopped and marked; its frames saved before that are kept
and the others go on.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from alcg import geometry
from alcg.io import atomic_path
from alcg.priors import KB_KJ_MOL_K
from alcg.settings import CGSim

log = logging.getLogger(__name__)

#: CG time step (ps) validated for BAOAB against 1 fs on a CLN025 prior fitted to all-atom
#: data (C-alpha bonds ~85,000 kJ/mol/nm^2, glycine 57 amu: the fastest mode has a period of
#: ~130 fs, omega dt = 0.24) plus a CGSchNet network, friction 1/ps, 340 K: kinetic
#: temperature and bond/angle means and widths agree with 1 fs within 1-2 %
#: (tests/test_simulate.py::test_5_fs_time_step_samples_like_1_fs). That test cannot fail for
#: BAOAB's harmonic modes; the check of anharmonic observables (benchmarks/timestep_validation.py,
#: alcg.timestep), paired on a trained Go model, rejected no step up to 30 fs but was
#: underpowered on a CPU (smallest detectable bias ~6.6 tolerances; README)
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
             checkpoint_every_steps: int = 0) -> SimResult:
    """Integrate replicas x0 (R, N, 3) nm with BAOAB Langevin dynamics.

    Parameters
    ----------
    force_fn : callable mapping x (B, N, 3) nm to (energy (B,) kJ/mol, forces (B, N, 3) kJ/mol/nm)
    masses_amu : (N,) bead masses
    cfg : the run (:meth:`LangevinRun.of`)
    checkpoint : file for the integrator state (positions, velocities, saved frames, RNG);
        written every ``checkpoint_every_steps`` steps, resumed from when it exists
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
    st = _resume(checkpoint, cfg, device, gen) if checkpoint else None
    if st is None:
        x = torch.as_tensor(x0, dtype=dtype, device=device).clone()
        st = {"x": x, "v": torch.randn(x.shape, generator=gen, device=device, dtype=dtype) * sigma_v,
              "coords": np.full((n_rep, cfg.n_steps // cfg.save_interval, n_beads, 3), np.nan, np.float32),
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
        if checkpoint and checkpoint_every_steps and step % checkpoint_every_steps == 0 and step < cfg.n_steps:
            st.update(x=x, v=v, step=step)
            _save_checkpoint(checkpoint, st, cfg, gen)
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


def _save_checkpoint(path: str | Path, st: dict, cfg: LangevinRun, gen: torch.Generator) -> None:
    blob = {**st, "cfg": dataclasses.asdict(cfg), "rng": gen.get_state(), "rng_device": gen.device.type}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def _resume(path: str | Path, cfg: LangevinRun, device: str, gen: torch.Generator) -> dict | None:
    """The state of checkpoint ``path`` on ``device``, whichever device wrote it (None: no
    checkpoint, or one of other settings).

    Everything is read onto the CPU, then the tensors move to ``device``: the RNG state stays
    a CPU byte tensor, which is what ``Generator.set_state`` takes on every device. A state
    written by a generator of another device type (CUDA vs CPU) cannot be set: the noise
    then restarts from a seed derived from ``cfg.seed`` and the step, so the resumed run is a
    valid but different continuation (logged).
    """
    path = Path(path)
    if not path.exists():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if blob.pop("cfg") != dataclasses.asdict(cfg):
        log.warning("ignoring CG checkpoint %s: it belongs to different settings", path)
        return None
    rng = blob.pop("rng")
    rng_device = blob.pop("rng_device", "cpu" if rng.numel() > 16 else "cuda")  # older files: by size
    if rng_device == gen.device.type:
        gen.set_state(rng)
    else:
        gen.manual_seed((cfg.seed * 1_000_003 + blob["step"]) % (2**63 - 1))
        log.warning("CG checkpoint %s was written on %s and resumes on %s: the noise continues from a "
                    "new seed, not the saved stream", path, rng_device, gen.device.type)
    for key in ("x", "v", "active"):
        blob[key] = blob[key].to(device)
    log.info("resuming CG simulation from step %d", blob["step"])
    return blob


def model_force_fn(model, compile: bool, fast: bool = True):
    """A ``force_fn`` of a trained, frozen :class:`~alcg.model.CGModel`.

    By default the fast path of :class:`alcg.fastforces.FastForceField`: tabulated filters,
    all pairs of a replica at once, an explicit backward pass, and, with ``compile`` (the
    setting ``cg_sim.compile``), torch.compile where it works, once a run is long enough
    (:data:`alcg.fastforces.COMPILE_AFTER_CALLS`). Its first call is checked against the
    exact model (relative RMS force error below :data:`alcg.fastforces.FORCE_RTOL`, else it
    uses the exact model). The weights are copied now: train first, then call this.
    ``fast=False`` gives the exact model's forces (:meth:`~alcg.model.CGModel.energy_and_forces`).
    """
    if fast:
        from alcg.fastforces import FastForceField

        return FastForceField(model, compile=compile)

    def force_fn(x: torch.Tensor):
        return model.energy_and_forces(x)
    return force_fn
