"""Priors that do not invent basins (issue 31 item 5): the dihedral prior's pseudocount rule,
compared on validation frames only.

The pseudo-dihedral prior is a Fourier fit to ``-kT ln p(phi)`` of a histogram with +1 added
per bin (``priors.dihedral_counts``). Added to frame counts (``frames``), a bin never visited by
N time-correlated frames sits ~kT ln N above the visited ones: a wall the data cannot support.
Added to counts of independent samples (``independent``: counts / g, g each pseudo-dihedral's
statistical inefficiency), the wall is only as high as the independent evidence. A third
variant drops the dihedral term.

Each variant is fitted in two situations and scored by its force error alone (MSE per
component against the optimal map's labels, (kJ/mol/nm)^2) on the learning curve's validation
frames, per Q stratum, over all frames, and weighted by the strata's populations in the curve's
first training draw (32 ns: the validation runs, 2 x 4 ns, over-represent the folded state);
never on held-out frames:

``workflow_round0``
    the workflow's round-0 data: 2 runs from the folded start, 500 ps each after 10 ps of
    equilibration, frames 0.5 ps apart (``config/go_experiment.yaml``'s ``initial_md``);
``curve``
    the learning curve's prior-fit frames (equilibrium runs, 2 ps apart).

Differences to ``frames`` are paired over the same frames, with a standard error over blocks
of 250 consecutive validation frames (500 ps, 8 blocks: longer than twice the largest
statistical inefficiency, ~100 frames, of the equilibrium runs' pseudo-dihedrals).

    python benchmarks/learning_curve.py     # first: its data (cached under benchmarks/.work)
    python benchmarks/prior_counts.py       # about a minute on 2 cores

Output: ``benchmarks/measured/prior_counts.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import learning_curve as lc  # noqa: E402  (its data, system and force maps)

OUT = ROOT / "benchmarks" / "measured" / "prior_counts.json"
VARIANTS = {"frames": {"dihedral_counts": "frames"}, "independent": {"dihedral_counts": "independent"},
            "no_dihedrals": {"dihedral_terms": 0}}
BLOCK = 250
ROUND0 = {"runs": 2, "frames": 1000, "interval_steps": 100, "equil_steps": 2000, "seed": 9100}


def round0_runs(work: Path) -> list[Path]:
    """The workflow-like round-0 runs (cached in the learning curve's work folder)."""
    r0 = ROUND0
    return [Path(lc._md((work, f"round0_{r}", "folded", r0["frames"], r0["interval_steps"], r0["equil_steps"],
                         r0["seed"] + r))) for r in range(r0["runs"])]


def score(coords: np.ndarray, x_val, labels: np.ndarray, strata: np.ndarray, population: dict[str, float]) -> dict:
    """Fit each variant on ``coords`` (nm; runs one after another, as the workflow's dataset) and score its per-frame force MSE on the validation
    frames; differences to ``frames`` with block standard errors."""
    import torch

    from alcg.cg import geometry, priors
    from alcg.config.settings import Priors, defaults

    errs, out = {}, {}
    for name, overrides in VARIANTS.items():
        prior = priors.fit_priors(coords, 340.0, defaults(Priors, **overrides)).double()
        (g,) = torch.autograd.grad(prior(x_val).sum(), x_val)
        errs[name] = ((-g.detach().numpy() - labels) ** 2).mean((1, 2))
        by = {s: float(errs[name][strata == s].mean()) for s in np.unique(strata)}
        out[name] = {"val_mse": float(errs[name].mean()), "val_mse_by_stratum": by,
                     "val_mse_weighted": float(sum(population[s] * by[s] for s in by))}
    for name in VARIANTS:
        d = errs[name] - errs["frames"]
        blocks = np.array([b.mean() for b in np.array_split(d, max(len(d) // BLOCK, 2))])
        out[name].update(minus_frames=float(d.mean()), minus_frames_se=float(blocks.std(ddof=1) / np.sqrt(len(blocks))))
    phi = geometry.dihedrals(torch.as_tensor(coords)).numpy()
    ineff = [priors.statistical_inefficiency(phi[:, i]) for i in range(phi.shape[1])]
    return {"n_frames": int(len(coords)), "statistical_inefficiency": [round(g, 2) for g in ineff], "variants": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=lc.WORK, help="the learning curve's cache folder")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    import torch

    from alcg.analysis import heldout
    from alcg.finegrained import gomodel
    from alcg.stages.analysis import CORE_MARGIN_Q
    from alcg.util.fileio import write_json

    runs = lambda name: sorted((args.work / "runs").glob(f"{name}_*.npz"))  # noqa: E731
    if not runs("fit") or not runs("val"):
        raise SystemExit(f"no learning-curve data under {args.work}: run benchmarks/learning_curve.py first")
    t0 = time.time()
    _, _, mapping = lc.system_of(args.work)
    fit_pos, fit_f, _, atoms = lc.load_set(runs("fit"))
    val_pos, val_f, _, _ = lc.load_set(runs("val"))
    fmap = lc.force_maps(args.work, fit_f, atoms, 1e-6)["optimal"]
    native = gomodel.load_native(args.work / "native.npz")
    strata = heldout.q_strata(gomodel.fraction_native_contacts(val_pos, native), lc.go_forcefield().go.q_threshold,
                              CORE_MARGIN_Q)
    x_val = torch.as_tensor(mapping.map_coords(val_pos), dtype=torch.float64).requires_grad_(True)
    labels = fmap.apply(val_f)
    r0_pos = lc.load_set(round0_runs(args.work))[0]
    train_q = gomodel.fraction_native_contacts(lc.load_set(runs("train0"))[0], native)
    train_strata = heldout.q_strata(train_q, lc.go_forcefield().go.q_threshold, CORE_MARGIN_Q)
    population = {s: float(np.mean(train_strata == s)) for s in np.unique(strata)}
    result = {"command": " ".join(["python benchmarks/prior_counts.py", *(sys.argv[1:] if argv is None else argv)]),
              "labels": "optimal map, instantaneous", "n_val_frames": int(len(val_pos)),
              "val_strata": {s: int((strata == s).sum()) for s in np.unique(strata)}, "block_frames": BLOCK,
              "population": population,
              "round0": ROUND0,
              "workflow_round0": score(mapping.map_coords(r0_pos), x_val, labels, strata, population),
              "curve": score(mapping.map_coords(fit_pos), x_val, labels, strata, population)}
    result.update(wall_s=round(time.time() - t0, 1), date=time.strftime("%Y-%m-%d"))
    write_json(args.out, result)
    for k in ("workflow_round0", "curve"):
        for name, v in result[k]["variants"].items():
            print(f"{k:16s} {name:13s} val MSE {v['val_mse']:7.0f} weighted {v['val_mse_weighted']:7.0f}  vs frames {v['minus_frames']:+6.0f} "
                  f"± {v['minus_frames_se']:.0f}  " + " ".join(f"{s} {m:.0f}" for s, m in v["val_mse_by_stratum"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
