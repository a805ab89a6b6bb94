"""The held-out force set (``evaluate/heldout.npz``, one owner) and the paired force error.

A fixed set of fine-grained frames with force labels on the beads, drawn once per run (seeded) and stratified: Go model, frames of the equilibrium pool (its
later part, :data:`POOL_QUERY_FRACTION`; else the reference) by the fraction of native contacts Q (``folded`` Q >= Q* + margin, ``unfolded``
Q <= Q* - margin, ``transition`` between); atomistic, the reference frames by start.

Every model is scored on the same frames. An instantaneous force is the mean force plus noise
that does not depend on the model, so the difference of two models' force MSE on the same
frames is an unbiased estimate of the difference of their mean-force errors: paired
differences between arms carry no label noise of their own, whatever its size.

Labels (metadata ``labels``): ``instantaneous`` (the frame's projected force: mean force plus
noise of ~95 % of its MSE) or ``mean_force`` (the mean force at the frame's C-alphas, sampled
with them fixed, :func:`alcg.finegrained.meanforce_query.label_frames`, with its squared
standard error ``force_se2``). With mean-force labels the MSE is nearly the mean-force error
itself, so besides the paired differences two absolute numbers mean something
(:func:`error_metrics`): ``heldout_excess`` = MSE(model) - MSE(prior alone), and
``heldout_fraction_removed`` = (MSE(prior) - MSE(model)) / (MSE(prior) - mean SE^2), the
fraction of the prior's mean-force error the network removed (1: the mean force exactly, 0:
no better than the prior). Each comes per stratum, over every frame alike, and ``_weighted``
by the strata's populations (the fraction of the source frames in each, stored with the set),
which weighs the strata as the equilibrium ensemble does.

Arrays: ``coords`` (H, N, 3) nm, ``forces`` (H, N, 3) kJ/mol/nm, ``stratum`` (H,) str,
``source`` (H,) run key, ``frame`` (H,) frame in that run; optional ``force_se2`` (H,)
(kJ/mol/nm)^2 per component. Metadata: ``strata``, ``labels``, ``populations`` {stratum:
fraction}. Files without the optional parts (older) load as instantaneous labels without
standard errors or populations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alcg.util.fileio import load_npz, save_npz


#: kinds of held-out force label
LABEL_KINDS = ("instantaneous", "mean_force")

#: the equilibrium pool is split in time: the iid arm starts its queries from the first part of
#: every pool run, the held-out force set is drawn from the rest (frames tau_fold ~ 1 ns and
#: more apart), so no held-out frame is, or sits next to, a frame an iid query started from.
#: With ``train.validation: pool`` the next part of every run is the validation set, between
#: the two: no validation frame is an iid start or a held-out frame (the parts meet without a
#: gap: one validation frame per run is 10 ps from an iid start, one from a held-out frame)
POOL_QUERY_FRACTION = 0.5
POOL_VALIDATION_FRACTION = 0.25


def pool_query_count(n_frames: int) -> int:
    """How many leading frames of a pool run the iid arm may start from."""
    return int(n_frames * POOL_QUERY_FRACTION)


def pool_validation_range(n_frames: int) -> tuple[int, int]:
    """Frames [start, stop) of a pool run reserved for validation (``train.validation: pool``):
    right after the iid arm's part; the held-out set is drawn from ``stop`` on."""
    start = pool_query_count(n_frames)
    return start, start + int(n_frames * POOL_VALIDATION_FRACTION)


def pool_heldout_start(n_frames: int, validation_reserved: bool) -> int:
    """The first frame of a pool run the held-out set may use."""
    return pool_validation_range(n_frames)[1] if validation_reserved else pool_query_count(n_frames)


@dataclass(frozen=True)
class HeldOut:
    """Held-out frames with their force labels (see the module doc).

    ``force_se2``: (H,) squared standard error of each label, mean over components,
    (kJ/mol/nm)^2, or None (unknown: instantaneous labels); ``label_kind``: one of
    :data:`LABEL_KINDS` (None: instantaneous, as in older files); ``populations``: {stratum:
    fraction of the source frames}, or None.
    """

    coords: np.ndarray
    forces: np.ndarray
    stratum: np.ndarray
    source: np.ndarray
    frame: np.ndarray
    force_se2: np.ndarray | None = None
    label_kind: str | None = None
    populations: dict[str, float] | None = field(default=None)

    def __post_init__(self):
        if self.label_kind is None:
            object.__setattr__(self, "label_kind", LABEL_KINDS[0])

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


#: the strata of :func:`q_strata`, folded first
Q_STRATA = ("folded", "transition", "unfolded")


def q_strata(q: np.ndarray, q_threshold: float, margin: float) -> np.ndarray:
    """``folded`` / ``transition`` / ``unfolded`` (:data:`Q_STRATA`) per frame from its Q."""
    folded, transition, unfolded = Q_STRATA
    out = np.full(len(q), transition, dtype="<U10")
    out[q >= q_threshold + margin] = folded
    out[q <= q_threshold - margin] = unfolded
    return out


def populations(labels: np.ndarray) -> dict[str, float]:
    """Fraction of the frames in each stratum (empty labels: frames left out, not counted)."""
    kept = labels[labels != ""]
    return {str(s): float(np.mean(kept == s)) for s in sorted(set(kept.tolist()))}


def save(path: str | Path, h: HeldOut) -> None:
    if h.label_kind not in LABEL_KINDS:
        raise ValueError(f"held-out labels {h.label_kind!r}: not one of {LABEL_KINDS}")
    extra = {} if h.force_se2 is None else {"force_se2": np.asarray(h.force_se2, np.float64)}
    save_npz(path, metadata={"strata": h.strata, "labels": h.label_kind, "populations": h.populations},
             coords=np.asarray(h.coords, np.float32), forces=np.asarray(h.forces, np.float32),
             stratum=np.asarray(h.stratum, str), source=np.asarray(h.source, str),
             frame=np.asarray(h.frame, np.int64), **extra)


def load(path: str | Path) -> HeldOut:
    d = load_npz(path)
    meta = d.get("metadata", {})
    return HeldOut(coords=d["coords"], forces=d["forces"], stratum=d["stratum"], source=d["source"],
                   frame=d["frame"], force_se2=d.get("force_se2"), label_kind=meta.get("labels"),
                   populations=meta.get("populations"))


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


def _removed(prior: float, model: float, se2: float | None) -> float | None:
    """(prior - model) / (prior - se2): the fraction of the prior's mean-force error removed;
    None without standard errors or where the prior's MSE is within the label noise."""
    if se2 is None or not prior - se2 > 0:
        return None
    return float((prior - model) / (prior - se2))


def error_metrics(full: np.ndarray, prior: np.ndarray, stratum: np.ndarray, se2: np.ndarray | None = None,
                  pops: dict[str, float] | None = None) -> dict:
    """The held-out metrics (module doc) from per-frame MSEs.

    Parameters
    ----------
    full, prior : (H,) per-frame force MSE of the model and of its prior alone, (kJ/mol/nm)^2
    stratum : (H,) each frame's stratum
    se2 : (H,) squared standard error of each label (mean over components), (kJ/mol/nm)^2;
        None: unknown (no fraction removed)
    pops : {stratum: population}; None: no ``_weighted`` numbers (they are None)

    Returns
    -------
    dict: ``heldout_force_mse``, ``heldout_prior_force_mse``, ``heldout_excess``,
    ``heldout_fraction_removed``, ``heldout_label_se2`` over every frame alike; each of them
    ``_by_stratum`` ({stratum: value}) and ``_weighted`` (strata weighted by ``pops``,
    renormalised over the strata in the set); ``n_heldout_frames``.
    """
    strata = sorted(set(stratum.tolist()))
    sets = {"all": np.ones(len(full), bool), **{s: stratum == s for s in strata}}
    mean = {k: (float(full[m].mean()), float(prior[m].mean()),
                None if se2 is None else float(np.mean(se2[m]))) for k, m in sets.items()}
    if pops and all(s in pops for s in strata) and sum(pops[s] for s in strata) > 0:
        w = np.array([pops[s] for s in strata]) / sum(pops[s] for s in strata)
        mean["weighted"] = tuple(None if any(mean[s][i] is None for s in strata)
                                 else float(sum(wi * mean[s][i] for wi, s in zip(w, strata))) for i in range(3))
    else:
        mean["weighted"] = (None, None, None)

    def row(m: tuple) -> dict:
        f, p, e = m
        return {"heldout_force_mse": f, "heldout_prior_force_mse": p, "heldout_label_se2": e,
                "heldout_excess": None if f is None else f - p,
                "heldout_fraction_removed": None if f is None else _removed(p, f, e)}

    out = dict(row(mean["all"]))
    for name in list(out):
        out[f"{name}_by_stratum"] = {s: row(mean[s])[name] for s in strata}
        out[f"{name}_weighted"] = row(mean["weighted"])[name]
    out["n_heldout_frames"] = int(len(full))
    return out


def force_errors(model, h: HeldOut, batch: int = 256) -> dict:
    """The held-out metrics (:func:`error_metrics`) of ``model`` (a
    :class:`alcg.cg.model.CGModel`) and of its prior alone, and the label kind
    (``heldout_labels``). Units (kJ/mol/nm)^2 per component."""
    if len(h.coords) == 0:
        return {"heldout_force_mse": None, "heldout_prior_force_mse": None, "n_heldout_frames": 0,
                "heldout_labels": h.label_kind}
    full, prior = frame_errors(model, h, batch)
    return {**error_metrics(full, prior, h.stratum, h.force_se2, h.populations), "heldout_labels": h.label_kind}


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
