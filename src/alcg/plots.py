"""Matplotlib figures of the evaluation (PNG, labelled axes with units)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from alcg.evaluate import internal_coordinates
from alcg.figures import plt, save_figure

FES_LEVELS_KT = np.arange(0, 7.5, 0.5)


def _fes(ax, tic, extent, title):
    hist, xe, ye = np.histogram2d(tic[:, 0], tic[:, 1], bins=50, range=extent, density=True)
    with np.errstate(divide="ignore"):
        free = -np.log(hist.T)
    free -= np.nanmin(free[np.isfinite(free)]) if np.isfinite(free).any() else 0
    cs = ax.contourf(0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), free, levels=FES_LEVELS_KT,
                     cmap="viridis", extend="max")
    ax.set_xlabel("TIC 1")
    ax.set_ylabel("TIC 2")
    ax.set_title(title)
    return cs


def tica_fes(ref_tic: np.ndarray, model_tic: np.ndarray, path: str | Path) -> None:
    """Free-energy surfaces (kT) of reference and model in the reference TICA space."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharex=True, sharey=True)
    lo, hi = ref_tic[:, :2].min(0), ref_tic[:, :2].max(0)
    pad = 0.25 * (hi - lo)
    extent = [[lo[0] - pad[0], hi[0] + pad[0]], [lo[1] - pad[1], hi[1] + pad[1]]]
    cs = _fes(axes[0], ref_tic, extent, "reference (all-atom)")
    if len(model_tic) > 1:
        _fes(axes[1], model_tic, extent, "CG model")
    fig.colorbar(cs, ax=axes, label="free energy / kT")
    save_figure(fig, path, tight=False)


def distributions(ref_xyz: np.ndarray, model_xyz: np.ndarray, path: str | Path) -> None:
    """Histograms of bond lengths, angles, pseudo-dihedrals and Rg: model vs reference."""
    ir = internal_coordinates(ref_xyz)
    im = internal_coordinates(model_xyz) if len(model_xyz) else None
    units = {"bonds": ("C-alpha bond length", "nm", 1.0), "angles": ("C-alpha angle", "deg", 180 / np.pi),
             "dihedrals": ("C-alpha pseudo-dihedral", "deg", 180 / np.pi), "rg": ("radius of gyration", "nm", 1.0)}
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, (key, (label, unit, scale)) in zip(axes, units.items()):
        r = ir[key].ravel() * scale
        bins = np.linspace(r.min(), r.max(), 60) if key != "dihedrals" else np.linspace(-180, 180, 73)
        ax.hist(r, bins=bins, density=True, histtype="step", color="k", label="reference")
        if im is not None:
            ax.hist(np.clip(im[key].ravel() * scale, bins[0], bins[-1]), bins=bins, density=True,
                    histtype="step", color="C3", label="CG model")
        ax.set_xlabel(f"{label} / {unit}")
        ax.set_ylabel("density")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)


def w1_per_round(rows: list[dict], path: str | Path) -> None:
    """TICA W1 per round, active learning vs the equal-budget control."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm, label, color in (("", "active learning", "C0"), ("control_", "equal-budget MD control", "C1")):
        pts = [(r["round"], r.get(f"{arm}tica_w1"), r.get(f"{arm}tica_w1_sd") or 0) for r in rows
               if r.get(f"{arm}tica_w1") is not None]
        if pts:
            k, w, sd = map(np.array, zip(*pts))
            ax.errorbar(k, w, yerr=sd, marker="o", capsize=3, label=label, color=color)
    ax.set_xticks([r["round"] for r in rows])
    ax.set_xlabel("round")
    ax.set_ylabel("TICA W1 to reference (TIC units)")
    ax.legend()
    save_figure(fig, path)
