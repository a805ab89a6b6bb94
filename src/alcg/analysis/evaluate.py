"""Evaluation of a CG ensemble against the all-atom reference.

- TICA (deeptime) on C-alpha pair distances, fitted once per run on the reference trajectories
  (:mod:`alcg.analysis.tica`, rule ``fit_tica``); model frames are projected into the same space.
- W1 (earth mover's distance, POT) in TICA space: exact EMD on seeded subsamples (mean and
  spread over several), plus 1-D W1 per TICA component.
- Jensen-Shannon divergence between reference and model on a TIC-1/TIC-2 histogram
  (``evaluate.divergence_bins`` per axis plus an overflow bin; no smoothing, so no regulariser
  pins it: 0 for identical histograms, ln 2 for disjoint ones, about (B - 1)/8 (1/n + 1/m)
  for two samples of one distribution), reported with that small-sample bias and, separately,
  the reference mass in bins the model never visits (``tica_unvisited_mass``). It replaces
  KL(reference || model) with a 1e-6 floor, which read ~16 nats for any model that missed a
  bin: it counted missed reference mass times ln(1e6).
- 1-D W1 (scipy) of bond lengths, bond angles, pseudo-dihedrals (averaged over the
  individual bonds/angles/dihedrals), radius of gyration, end-to-end distance and C-alpha
  RMSD to the folded structure; fraction folded and its distance from the reference's
  (``fraction_folded_error``, the metric compared: closer to the reference is better); TICA W1
  against each reference start's runs.
"""
from __future__ import annotations

import mdtraj as md
import numpy as np
import torch
from scipy.stats import wasserstein_distance

from alcg.cg import geometry
from alcg.config.settings import Evaluate
from alcg.analysis.tica import TicaSpace


def w1_emd(a: np.ndarray, b: np.ndarray, n_subsamples: int, subsample_size: int,
           seed: int) -> tuple[float, float]:
    """Exact W1 (Euclidean ground cost) between point clouds a (F, k) and b (G, k), in the
    points' units: mean and sd over ``n_subsamples`` seeded subsamples of at most
    ``subsample_size`` points of each cloud."""
    import ot

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsamples):
        x = a[rng.choice(len(a), min(subsample_size, len(a)), replace=False)]
        y = b[rng.choice(len(b), min(subsample_size, len(b)), replace=False)]
        cost = ot.dist(x, y, metric="euclidean")
        values.append(float(ot.emd2(ot.unif(len(x)), ot.unif(len(y)), cost, numItermax=10_000_000)))
    return float(np.mean(values)), float(np.std(values))


def mean_w1_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over columns of the 1-D W1 between columns of a (F, k) and b (G, k)."""
    return float(np.mean([wasserstein_distance(a[:, c], b[:, c]) for c in range(a.shape[1])]))


def internal_coordinates(xyz: np.ndarray) -> dict[str, np.ndarray]:
    """Bonds (nm), angles (rad), pseudo-dihedrals (rad) and radius of gyration (nm)."""
    x = torch.as_tensor(xyz, dtype=torch.float64)
    rg = np.sqrt(((xyz - xyz.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))
    return {"bonds": geometry.bonds(x).numpy(), "angles": geometry.angles(x).numpy(),
            "dihedrals": geometry.dihedrals(x).numpy(), "rg": rg[:, None]}


def rmsd_to_structure(xyz: np.ndarray, ref_ca: np.ndarray) -> np.ndarray:
    """C-alpha RMSD (nm) of every frame to ``ref_ca`` (N, 3) after superposition."""
    from alcg.selection.rmsd_coverage import ca_trajectory

    return md.rmsd(ca_trajectory(xyz), ca_trajectory(ref_ca[None]), 0).astype(np.float64)


def _dihedral_w1(a: np.ndarray, b: np.ndarray) -> float:
    # angular quantity: compare on the circle by unwrapping around the reference's circular mean
    out = []
    for c in range(a.shape[1]):
        mu = np.angle(np.exp(1j * a[:, c]).mean())
        wrap = lambda v: np.angle(np.exp(1j * (v - mu)))  # noqa: E731
        out.append(wasserstein_distance(wrap(a[:, c]), wrap(b[:, c])))
    return float(np.mean(out))


def end_to_end(xyz: np.ndarray) -> np.ndarray:
    """Distance (nm) between the first and last bead, (F,)."""
    return np.linalg.norm(xyz[:, -1] - xyz[:, 0], axis=-1)


def _histogram_with_overflow(points: np.ndarray, bins: int, extent) -> np.ndarray:
    """Counts on the ``bins`` x ``bins`` grid over ``extent``, plus one overflow bin (last)."""
    h, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=bins, range=extent)
    return np.append(h.ravel(), len(points) - h.sum())


def js_divergence_2d(p_points: np.ndarray, q_points: np.ndarray, bins: int, extent) -> dict[str, float]:
    """Jensen-Shannon divergence of two 2-D point sets on a shared histogram (nats), no smoothing.

    JS(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q)/2, on the ``bins`` x ``bins`` grid
    over ``extent`` plus one overflow bin for points outside it. It is symmetric, finite for
    disjoint samples and bounded by ln 2 (reached exactly when no bin holds both), so nothing
    pins it but the data.

    Plug-in bias: two independent samples of one distribution, of sizes n and m, give on
    average about (B - 1)/8 (1/n + 1/m) nats, B the number of bins holding mass (a second-order
    expansion: JS ~ sum (p_i - q_i)^2 / (8 m_i)). :func:`js_same_distribution_bias` computes it
    for independent points; frames of a trajectory are correlated, so the bias of a run is
    larger by about its statistical inefficiency (n and m are then effective sizes). Coarser
    bins lower it.

    Returns
    -------
    dict
        ``js`` (nats), ``js_same_bias`` (the plug-in bias above for these sample sizes and
        occupied bins, nats), ``unvisited_mass`` (the share of P's mass in bins Q never
        visits: with P the reference, how much of the reference the model misses).
    """
    hp, hq = _histogram_with_overflow(p_points, bins, extent), _histogram_with_overflow(q_points, bins, extent)
    p, q = hp / hp.sum(), hq / hq.sum()
    m = 0.5 * (p + q)

    def kl_to_m(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log(a[nz] / m[nz])).sum())

    return {"js": 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q),
            "js_same_bias": js_same_distribution_bias(int(((hp + hq) > 0).sum()), len(p_points), len(q_points)),
            "unvisited_mass": float(p[hq == 0].sum())}


def plane_coverage(ref_points: np.ndarray, points: np.ndarray, bins: int) -> dict[str, float]:
    """How much of the reference's 2-D plane ``points`` reach, on the grid of :func:`js_divergence_2d`
    (``bins`` x ``bins`` over the reference's padded range, :func:`tica_extent`).

    Returns
    -------
    dict
        ``bins_reached``: the share of the bins holding reference frames that hold at least one
        of ``points``; ``mass_reached``: the reference's mass in those bins (1 - the unvisited
        mass of :func:`js_divergence_2d`); ``share_outside``: the share of ``points`` in no
        reference bin (an empty grid bin, or beyond the grid).
    """
    extent = tica_extent(ref_points)
    ref = _histogram_with_overflow(ref_points, bins, extent)[:-1]  # the grid spans the reference
    hits = _histogram_with_overflow(points, bins, extent)
    ref_bins, reached = ref > 0, hits[:-1] > 0
    return {"bins_reached": float((ref_bins & reached).sum() / ref_bins.sum()),
            "mass_reached": float(ref[reached].sum() / ref.sum()),
            "share_outside": float((hits[:-1][~ref_bins].sum() + hits[-1]) / max(hits.sum(), 1))}


def js_same_distribution_bias(n_bins: int, n: int, m: int) -> float:
    """Expected plug-in JS (nats) of two independent samples (sizes n, m) of one distribution
    spread over ``n_bins`` bins: (n_bins - 1)/8 (1/n + 1/m), to second order."""
    return (n_bins - 1) / 8.0 * (1.0 / n + 1.0 / m)


def _tica_divergence(ref_tic: np.ndarray, model_tic: np.ndarray, bins: int, dim: int) -> dict:
    """JS(reference, model) on TIC 1/TIC 2 and the reference mass the model never visits."""
    if dim < 2:
        return {"tica_js": None, "tica_js_same_bias": None, "tica_unvisited_mass": None}
    d = js_divergence_2d(ref_tic, model_tic, bins, tica_extent(ref_tic))
    return {"tica_js": d["js"], "tica_js_same_bias": d["js_same_bias"], "tica_unvisited_mass": d["unvisited_mass"]}


def order_parameter_metrics(q_model: np.ndarray, q_ref: np.ndarray, rg_model: np.ndarray, rg_ref: np.ndarray,
                            bins: int) -> dict:
    """Go model: W1 of the C-alpha Q (:func:`alcg.finegrained.gomodel.ca_fraction_native_contacts`) and the
    Jensen-Shannon divergence on the (Q, Rg) plane (grid over the reference's range, padded)."""
    ref, model = np.column_stack([q_ref, rg_ref]), np.column_stack([q_model, rg_model])
    d = js_divergence_2d(ref, model, bins, tica_extent(ref))
    return {"q_w1": float(wasserstein_distance(q_model, q_ref)), "q_rg_js": d["js"],
            "q_rg_unvisited_mass": d["unvisited_mass"], "q_model_mean": float(np.mean(q_model)),
            "q_reference_mean": float(np.mean(q_ref))}


def tica_extent(ref_tic: np.ndarray, pad: float = 0.25) -> list[list[float]]:
    """Histogram range of TIC 1/TIC 2: the reference range padded by ``pad`` of its width."""
    lo, hi = ref_tic[:, :2].min(0), ref_tic[:, :2].max(0)
    w = hi - lo
    return [[lo[0] - pad * w[0], hi[0] + pad * w[0]], [lo[1] - pad * w[1], hi[1] + pad * w[1]]]


def compare(model_xyz: np.ndarray, ref_xyz: np.ndarray, tica: TicaSpace, folded_ca: np.ndarray,
            settings: Evaluate, seed: int, ref_groups: dict[str, np.ndarray] | None = None) -> dict:
    """All metrics of ``model_xyz`` (F, N, 3) nm against ``ref_xyz`` (G, N, 3) nm; see module doc.

    Parameters
    ----------
    folded_ca : (N, 3) C-alpha coordinates of the folded structure, nm
    settings : the ``evaluate`` settings: folded RMSD threshold (nm), W1 subsamples and their
        size, KL histogram bins
    seed : seeds the W1 subsamples
    ref_groups : maps a reference start name to a mask over reference frames: TICA W1 is
        also reported against each start's runs (``tica_w1_by_start``)
    """
    if len(model_xyz) == 0:
        return {"n_model_frames": 0}
    size, folded_rmsd_nm = settings.subsample_size, settings.folded_rmsd_nm
    tm, tr = tica.transform(model_xyz), tica.transform(ref_xyz)
    w1, w1_sd = w1_emd(tm, tr, settings.n_subsamples, size, seed)
    im, ir = internal_coordinates(model_xyz), internal_coordinates(ref_xyz)
    rm, rr = rmsd_to_structure(model_xyz, folded_ca), rmsd_to_structure(ref_xyz, folded_ca)
    out = {
        "n_model_frames": int(len(model_xyz)), "n_reference_frames": int(len(ref_xyz)),
        "tica_w1": w1, "tica_w1_sd": w1_sd,
        "tica_w1_per_component": [float(wasserstein_distance(tm[:, c], tr[:, c])) for c in range(tica.dim)],
        **_tica_divergence(tr, tm, settings.divergence_bins, tica.dim),
        "bond_w1_nm": mean_w1_1d(im["bonds"], ir["bonds"]),
        "angle_w1_rad": mean_w1_1d(im["angles"], ir["angles"]),
        "dihedral_w1_rad": _dihedral_w1(ir["dihedrals"], im["dihedrals"]),
        "rg_w1_nm": mean_w1_1d(im["rg"], ir["rg"]),
        "end_to_end_w1_nm": float(wasserstein_distance(end_to_end(model_xyz), end_to_end(ref_xyz))),
        "rmsd_folded_w1_nm": float(wasserstein_distance(rm, rr)),
        "fraction_folded": float((rm < folded_rmsd_nm).mean()),
        "reference_fraction_folded": float((rr < folded_rmsd_nm).mean()),
    }
    out["fraction_folded_error"] = abs(out["fraction_folded"] - out["reference_fraction_folded"])
    if ref_groups:
        out["tica_w1_by_start"] = {name: w1_emd(tm, tr[mask], 1, size, seed)[0]
                                   for name, mask in ref_groups.items() if mask.any()}
    return out
