"""F(Q) of the final models' equilibrium runs against the reference's, one panel per arm.

The ``equilibrium`` rule plots one model at a time; a results page compares arms over the
equilibrium seeds, so this reads every final model's runs of a finished Go run (the reference is
evaluation's own input, read here for the evaluation only)::

    python -m alcg.stages.profiles --configfile config/go_curves.yaml --out free_energy_q.png

Each model contributes its frames after burn-in from both start groups that pass the physical
checks (the frames the ``equilibrium`` rule scores); F = -ln p in kT, each curve shifted to its
minimum, Q from 0 to 1.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from alcg.config import settings as S
from alcg.config.settings import PhysicalChecks
from alcg.util.errors import AlcgError, ConfigError, DataError

log = logging.getLogger(__name__)


def final_models(results: str | Path, seeds: list[int], arms: list[str], n_rounds: int) -> dict[str, dict[int, Path]]:
    """The final round's equilibrium folders that exist.

    Parameters
    ----------
    results : the run's results folder (``results/<run>``)
    seeds, arms : ``cg_equilibrium.seeds`` and ``experiment.arms``
    n_rounds : ``loop.n_rounds`` (the final round; at least 1: round 0 has no equilibrium runs)

    Returns
    -------
    ``{arm: {seed: folder}}``; a model the run has not simulated yet is left out and logged.
    """
    out: dict[str, dict[int, Path]] = {}
    for arm in arms:
        for seed in seeds:
            folder = Path(results) / f"seed_{seed}" / arm / f"round_{n_rounds:03d}" / "equilibrium"
            if (folder / "replicas.json").exists():
                out.setdefault(arm, {})[seed] = folder
            else:
                log.warning("no equilibrium runs in %s; left out", folder)
    if not out:
        raise DataError(f"{results}: no final model has equilibrium runs (cg_equilibrium.seeds {seeds})")
    return out


def model_q(folder: Path, native, sel: PhysicalChecks) -> np.ndarray:
    """C-alpha Q (dimensionless) of one model's equilibrium frames after burn-in, both start
    groups, the frames that pass the physical checks ``sel`` only: the frames the ``equilibrium``
    rule scores (:func:`alcg.stages.analysis.frame_metrics`)."""
    from alcg.finegrained import gomodel
    from alcg.formats import cg_trajectory
    from alcg.selection.rmsd_coverage import physical_mask

    sim = cg_trajectory.load(folder / "trajectory.h5", folder / "replicas.json")
    kept, _ = sim.kept_frames()
    if not len(kept):
        return np.zeros(0)
    valid = kept[physical_mask(kept, sel.bond_min_nm, sel.bond_max_nm, sel.min_distance_nm)]
    return gomodel.ca_fraction_native_contacts(valid, native) if len(valid) else np.zeros(0)


def reference_q(results: Path, cfg: dict, native) -> np.ndarray:
    """C-alpha Q (dimensionless) of every reference frame, all start groups."""
    from alcg.finegrained import gomodel
    from alcg.stages.analysis import reference_trajs

    ref = cfg["reference_md"]
    runs = [str(results / "reference" / f"{s}_{r}.npz") for s in ref["starts"] for r in range(ref["replicas_per_start"])]
    start = cfg["initial_md"]["start"]
    trajs = reference_trajs(runs, str(results / "system" / f"{start}.pdb"), str(results / "system" / f"{start}.xml"))
    return gomodel.ca_fraction_native_contacts(np.concatenate(trajs), native)


def _check(cfg: dict) -> None:
    if cfg["forcefield"]["kind"] != "go":
        raise ConfigError(f"forcefield.kind {cfg['forcefield']['kind']!r}: F(Q) panels are for the Go model only")
    if cfg["reference_md"].get("trajectories"):
        raise ConfigError("reference_md.trajectories: an imported reference is not drawn here (its runs are "
                          "not results/<run>/reference/)")
    if cfg["loop"]["n_rounds"] < 1:
        raise ConfigError("loop.n_rounds 0: round 0's models have no equilibrium runs")


def write(config_files: list[str], out: str | Path, results: str | Path | None = None) -> dict[str, dict[int, float]]:
    """Draw F(Q) of a finished Go run's final models and the reference.

    Parameters
    ----------
    config_files : the run's config files (``config/config.yaml`` is read first)
    out : the PNG to write
    results : the run's results folder (default ``results/<run>`` of the config)

    Returns
    -------
    ``{arm: {seed: W1 of Q to the reference}}`` (units of Q), computed from the drawn frames:
    the ``order_w1`` of ``summary/equilibrium.tsv``, so the figure shows what the table says.
    """
    from scipy.stats import wasserstein_distance

    from alcg.analysis.plots import free_energy_panels
    from alcg.finegrained import gomodel
    from alcg.stages.validate import load_configs

    cfg = load_configs(config_files)
    _check(cfg)
    sel = S.parse(S.PhysicalChecks, S.job_params(S.PhysicalChecks, cfg["select"]))
    results = Path(results or Path("results") / cfg["run"])
    native = gomodel.load_native(results / "system" / "go_native.npz")
    models = final_models(results, list(cfg["cg_equilibrium"]["seeds"]), list(cfg["experiment"]["arms"]),
                          cfg["loop"]["n_rounds"])
    ref = reference_q(results, cfg, native)
    values = {arm: {seed: model_q(folder, native, sel) for seed, folder in by_seed.items()}
              for arm, by_seed in models.items()}
    free_energy_panels(ref, values, "C-alpha Q", cfg["forcefield"]["go"]["q_threshold"], out, value_range=(0.0, 1.0))
    return {arm: {s: float(wasserstein_distance(q, ref)) for s, q in by.items() if len(q)} for arm, by in values.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", required=True,
                    help="the config files of the run (config/config.yaml is read first)")
    ap.add_argument("--results", help="the run's results folder (default: results/<run> of the config)")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        w1 = write(args.configfile, args.out, args.results)
    except AlcgError as e:
        raise SystemExit(f"profiles: {e}") from None
    for arm, by in w1.items():
        log.info("%s: W1 of Q to the reference %s", arm, ", ".join(f"seed {s} {v:.3f}" for s, v in by.items()))


if __name__ == "__main__":
    main()
