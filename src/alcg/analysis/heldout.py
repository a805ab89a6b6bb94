"""The held-out force set (``evaluate/heldout.npz``, one owner) and the paired force error.

A fixed set of fine-grained frames with their instantaneous forces projected onto the beads,
drawn once per run (seeded) and stratified: Go model, frames of the equilibrium pool (its
later part, :data:`POOL_QUERY_FRACTION`; else the reference) by the fraction of native contacts Q (``folded`` Q >= Q* + margin, ``unfolded``
Q <= Q* - margin, ``transition`` between); atomistic, the reference frames by start.

Every model is scored on the same frames. An instantaneous force is the mean force plus noise
that does not depend on the model, so the difference of two models' force MSE on the same
frames is an unbiased estimate of the difference of their mean-force errors: paired
differences between arms carry no label noise of their own, whatever its size.

Arrays: ``coords`` (H, N, 3) nm, ``forces`` (H, N, 3) kJ/mol/nm, ``stratum`` (H,) str,
``source`` (H,) run key, ``frame`` (H,) frame in that run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alcg.util.fileio import load_npz, save_npz


#: the equilibrium pool is split in time: the iid arm starts its queries from the first part of
#: every pool run, the held-out force set is drawn from the rest (frames tau_fold ~ 1 ns and
#: more apart), so no held-out frame is, or sits next to, a frame an iid query started from
POOL_QUERY_FRACTION = 0.5


def pool_query_count(n_frames: int) -> int:
    """How many leading frames of a pool run the iid arm may start from."""
    return int(n_frames * POOL_QUERY_FRACTION)


@dataclass(frozen=True)
class HeldOut:
    """Held-out frames with their projected instantaneous forces (see the module doc)."""

    coords: np.ndarray
    forces: np.ndarray
    stratum: np.ndarray
    source: np.ndarray
    frame: np.ndarray

    @property
    def strata(self) -> list[str]:
        return sorted(set(self.stratum.tolist()))


def stratified_pick(labels: np.ndarray, n_per_stratum: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``n_per_stratum`` frames of each label, drawn without
    replacement (seeded)."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == label)
        picks.append(rng.choice(idx, min(n_per_stratum, len(idx)), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


def q_strata(q: np.ndarray, q_threshold: float, margin: float) -> np.ndarray:
    """``folded`` / ``transition`` / ``unfolded`` per frame from its Q."""
    out = np.full(len(q), "transition", dtype="<U10")
    out[q >= q_threshold + margin] = "folded"
    out[q <= q_threshold - margin] = "unfolded"
    return out


def save(path: str | Path, h: HeldOut) -> None:
    save_npz(path, metadata={"strata": h.strata}, coords=np.asarray(h.coords, np.float32),
             forces=np.asarray(h.forces, np.float32), stratum=np.asarray(h.stratum, str),
             source=np.asarray(h.source, str), frame=np.asarray(h.frame, np.int64))


def load(path: str | Path) -> HeldOut:
    d = load_npz(path)
    return HeldOut(coords=d["coords"], forces=d["forces"], stratum=d["stratum"], source=d["source"],
                   frame=d["frame"])


def frame_errors(model, h: HeldOut, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame force MSE, (kJ/mol/nm)^2 (mean over components), of ``model`` (a
    :class:`alcg.cg.model.CGModel`) and of its prior alone: two (H,) arrays."""
    import torch

    x = torch.as_tensor(h.coords, dtype=torch.float32)
    f = torch.as_tensor(h.forces, dtype=torch.float32)
    full, prior = np.zeros(len(x)), np.zeros(len(x))
    for start in range(0, len(x), batch):
        xb = x[start:start + batch].detach().requires_grad_(True)
        _, pred = model.energy_and_forces(xb)
        (g,) = torch.autograd.grad(model.prior(xb).sum(), xb)
        fb = f[start:start + batch]
        full[start:start + batch] = ((pred.detach() - fb) ** 2).mean((1, 2)).numpy()
        prior[start:start + batch] = ((-g.detach() - fb) ** 2).mean((1, 2)).numpy()
    return full, prior


def force_errors(model, h: HeldOut, batch: int = 256) -> dict:
    """Force MSE, (kJ/mol/nm)^2 per component, of ``model`` (a :class:`alcg.cg.model.CGModel`)
    and of its prior alone on the held-out frames: overall (every frame weighs the same) and
    per stratum."""
    if len(h.coords) == 0:
        return {"heldout_force_mse": None, "heldout_prior_force_mse": None, "n_heldout_frames": 0}
    full, prior = frame_errors(model, h, batch)
    by = {s: h.stratum == s for s in h.strata}
    return {"heldout_force_mse": float(full.mean()), "heldout_prior_force_mse": float(prior.mean()),
            "heldout_force_mse_by_stratum": {s: float(full[m].mean()) for s, m in by.items()},
            "heldout_prior_force_mse_by_stratum": {s: float(prior[m].mean()) for s, m in by.items()},
            "n_heldout_frames": int(len(full))}


def paired_difference(err_a: np.ndarray, err_b: np.ndarray, n_blocks: int) -> dict:
    """Mean of ``err_a - err_b`` over the same held-out frames, with its block standard error.

    Parameters
    ----------
    err_a, err_b : (H,) or (S, H) per-frame force MSE, (kJ/mol/nm)^2, of two models on the
        same frames in the set's order (runs, then time); (S, H): S training seeds, each
        ``a`` paired with the ``b`` of its own seed
    n_blocks : contiguous blocks of frames: consecutive frames of a run are correlated, so the
        standard error over frames is the spread of block means (ddof 1) over ``sqrt(n_blocks)``

    Returns
    -------
    dict with ``mean`` (over seeds and frames), ``se_frames`` (block standard error of the
    seed-averaged difference: the held-out sample), ``per_seed`` (S,), ``se_seeds`` (standard
    deviation of ``per_seed`` over ``sqrt(S)``; 0 for one seed: training variation), ``se``
    (both in quadrature, conservative: the per-seed spread also holds some frame noise) and
    ``ci95`` (mean -/+ 1.96 se). Units (kJ/mol/nm)^2.
    """
    d = np.atleast_2d(np.asarray(err_a, np.float64) - np.asarray(err_b, np.float64))
    per_seed = d.mean(1)
    blocks = np.array([b.mean() for b in np.array_split(d.mean(0), min(n_blocks, d.shape[1]))])
    se_frames = float(blocks.std(ddof=1) / np.sqrt(len(blocks))) if len(blocks) > 1 else float("nan")
    se_seeds = float(per_seed.std(ddof=1) / np.sqrt(len(per_seed))) if len(per_seed) > 1 else 0.0
    se = float(np.hypot(se_frames, se_seeds))
    mean = float(d.mean())
    return {"mean": mean, "se_frames": se_frames, "per_seed": per_seed.tolist(), "se_seeds": se_seeds,
            "se": se, "ci95": [mean - 1.96 * se, mean + 1.96 * se]}
