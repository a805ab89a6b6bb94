"""Matplotlib figures of the evaluation (PNG, labelled axes with units)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from alcg.analysis.evaluate import internal_coordinates, tica_extent
from alcg.util.figure_io import plt, save_figure

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
    extent = tica_extent(ref_tic)
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


def experiment(rows: list[dict], n_bootstrap: int, ci_level: float, path: str | Path,
               primary_metric: str, baseline: str | None = None) -> None:
    """The learning curves per arm, mean over seeds with CI bands: the primary metric against
    the oracle queries spent, then (with a ``baseline`` arm that ran) each arm's paired difference
    to it per round, then TICA W1 and JS(reference, model) against oracle ns."""
    from alcg.analysis.summary import curve, paired_curve

    arms = sorted({r["arm"] for r in rows})
    n_seeds = len({r["seed"] for r in rows})
    paired = baseline in arms
    fig, axes = plt.subplots(1, 4 if paired else 3, figsize=(20 if paired else 15, 3.8))
    axes = list(axes)
    # (function, metric, panel title, y label, x key, x label): the metric's name as the title, so
    # that a long name is not clipped as the y label
    panels = [(curve, primary_metric, f"{primary_metric}\n(primary; lower is closer)", "mean over seeds",
               "n_queries", "oracle queries spent")]
    if paired:
        def to_baseline(rows, arm, metric, n_bootstrap, ci_level, x):
            return paired_curve(rows, arm, metric, n_bootstrap, ci_level, x=x, baseline=baseline)

        panels.append((to_baseline, primary_metric, f"{primary_metric}\narm − {baseline}, paired within seeds",
                       f"arm − {baseline}", "n_queries", "oracle queries spent"))
    panels += [(curve, "tica_w1", "TICA W1 to reference", "TIC units", "oracle_ns", "all-atom oracle time spent / ns"),
               (curve, "tica_js", "Jensen-Shannon divergence to reference", "nats", "oracle_ns",
                "all-atom oracle time spent / ns")]
    for ax, (fn, metric, title, label, x, xlabel) in zip(axes, panels):
        for c, arm in enumerate(arms):
            xs, mean, lo, hi = fn(rows, arm, metric, n_bootstrap, ci_level, x=x)
            ax.plot(xs, mean, marker="o", color=f"C{c}", label=arm)
            if np.isfinite(lo).any():
                ax.fill_between(xs, lo, hi, color=f"C{c}", alpha=0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    if paired:
        axes[1].axhline(0.0, color="grey", lw=0.8)
    axes[0].legend(title=f"arm ({n_seeds} seeds, {int(ci_level * 100)}% CI)", fontsize=8, title_fontsize=8)
    save_figure(fig, path)


def reference_halves(groups: dict[str, list[dict]], report: dict, path: str | Path) -> None:
    """Histograms of each order parameter per reference start group: at equilibrium they agree."""
    keys = [k for k in next(iter(groups.values()))[0] if k not in ("folded", "core")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for name, runs in groups.items():
            values = np.concatenate([r[key] for r in runs])
            g = report["groups"][name]
            ax.hist(values, bins=40, density=True, histtype="step",
                    label=f"{name}: P_fold {g['p_fold']:.2f} ± {g['p_fold_se']:.2f}")
        ax.set_xlabel(key)
        ax.set_title(f"|z| = {report['z'].get(key, float('nan')):.1f}")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle("reference " + ("converged" if report["converged"] else "NOT converged"))
    save_figure(fig, path)


def _free_energy(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """F = -ln p (kT) of ``values`` (clipped to the edges' range) per bin, shifted to its minimum."""
    p, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges, density=True)
    with np.errstate(divide="ignore"):
        f = -np.log(p)
    return f - np.min(f[np.isfinite(f)])


def free_energy_profiles(ref_values: np.ndarray, model_values: np.ndarray, name: str, threshold: float,
                         path: str | Path, bins: int = 30) -> None:
    """F = -ln p (kT) of one order parameter, reference and model, each shifted to its minimum,
    on the reference's range; the folded threshold as a line."""
    lo, hi = float(np.min(ref_values)), float(np.max(ref_values))
    edges = np.linspace(lo, hi, bins + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for values, label in ((ref_values, "reference"), (model_values, "model")):
        if len(values) == 0:
            continue
        ax.plot(centers, _free_energy(values, edges), marker=".", label=label)
    ax.axvline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(name)
    ax.set_ylabel("F / kT")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def free_energy_panels(ref_values: np.ndarray, models: dict[str, dict[int, np.ndarray]], name: str,
                       threshold: float, path: str | Path, bins: int = 30,
                       value_range: tuple[float, float] | None = None) -> None:
    """F = -ln p (kT) of one order parameter, one panel per arm: the reference's and each seed's
    model's, each shifted to its minimum; the folded threshold as a dashed line.

    Parameters
    ----------
    ref_values : (G,) the order parameter on the reference's frames
    models : ``{arm: {seed: (F,) the order parameter on that model's frames}}``
    name, threshold : the order parameter's axis label and its folded threshold
    path : the PNG
    bins : histogram bins over ``value_range``
    value_range : the axis range (e.g. (0, 1) for Q); default the range of every value given, so
        that no model's mass outside the reference's range piles into an edge bin
    """
    everything = [ref_values] + [v for by in models.values() for v in by.values() if len(v)]
    lo, hi = value_range or (float(min(np.min(v) for v in everything)), float(max(np.max(v) for v in everything)))
    edges = np.linspace(lo, hi, bins + 1)
    centers = 0.5 * (edges[1:] + edges[:-1])
    seeds = sorted({s for by in models.values() for s in by})
    colour = {s: f"C{i}" for i, s in enumerate(seeds)}  # a seed keeps its colour in every panel
    ncols = min(len(models), 3)
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), sharey=True, squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    for ax, (arm, by_seed) in zip(axes.flat, models.items()):
        ax.plot(centers, _free_energy(ref_values, edges), color="k", lw=2)
        for seed, values in sorted(by_seed.items()):
            if len(values):
                ax.plot(centers, _free_energy(values, edges), marker=".", color=colour[seed])
        ax.axvline(threshold, color="grey", lw=0.8, ls="--")
        ax.set_title(arm)
        ax.set_xlabel(name)
    for row in axes:
        row[0].set_ylabel("F / kT")
    handles = [plt.Line2D([], [], color="k", lw=2)] + [plt.Line2D([], [], color=colour[s], marker=".") for s in seeds]
    fig.legend(handles, ["reference"] + [f"seed {s}" for s in seeds], loc="upper right", fontsize=8)
    save_figure(fig, path)


def note_figure(text: str, path: str | Path) -> None:
    """A figure that only says ``text``: an output whose plot does not apply to this job."""
    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
    save_figure(fig, path)
