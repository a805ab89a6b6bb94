"""Stages of ``cg.smk``: priors, training, exploration and evaluation simulations."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alcg.formats import dataset, eval_starts as starts_file
from alcg.hardware.device import choose as choose_device
from alcg.util.errors import DataError
from alcg.config.settings import CGEvaluate, CGSim, Model, Priors, Train

if TYPE_CHECKING:
    from alcg.cg.simulate import LangevinRun

log = logging.getLogger(__name__)


def fit_priors(dataset_path: str, settings: Priors, temperature_k: float, out: str) -> None:
    """Boltzmann-invert the dataset's training frames (at ``temperature_k``, K) into
    ``priors.json`` (see :mod:`alcg.cg.priors`)."""
    from alcg.cg import priors

    data = dataset.load(dataset_path)
    idx = data.train_indices()
    if len(idx) < 2:
        raise DataError(f"{dataset_path} has {len(idx)} training frames: too few to fit priors")
    prior = priors.fit_priors(data.coords[idx], temperature_k, settings)
    priors.save(out, prior, fitted_on=dataset.run_key(dataset_path), n_frames=len(idx))


def train(dataset_path: str, priors_path: str, previous_model: str | None, model_cfg: Model, train_cfg: Train,
          device: str, seed: int, model_out: str, metrics_out: str, plot_out: str) -> None:
    """Force matching on the dataset's ``train`` frames, validated on its fixed ``val`` frames.

    The network starts from ``previous_model``'s weights (warm start), else fresh (with
    ``model.zero_init_output``: equal to the prior); :func:`alcg.cg.train.train` keeps the best
    of that start, the prior alone and every epoch.
    """
    import torch

    from alcg.cg import priors
    from alcg.cg.model import CGModel, load_model, save_model
    from alcg.cg.train import plot_history, train as fit, write_metrics

    device = choose_device(device)
    prior = priors.load(priors_path).energy()
    data = dataset.load(dataset_path, n_beads=prior.n_beads)
    torch.manual_seed(seed)  # the initial weights: committee members and seeds start apart
    model = CGModel(torch.as_tensor(data.bead_types), prior, model_cfg)
    if previous_model:
        old = load_model(previous_model)
        if old.n_beads != model.n_beads or old.hparams != model.hparams:
            raise DataError(f"{previous_model} does not match this model (beads/hyperparameters)")
        if old.net is not None:
            model.net.load_state_dict(old.net.state_dict())
        log.info("warm start from %s", previous_model)
    state = Path(model_out).with_name("train_state.pt")
    split = (data.train_indices(), data.val_indices())
    metrics = fit(model, data.coords, data.forces, data.traj, train_cfg, seed, state, device=device,
                  split=split, force_var=data.force_var)
    metrics.update(device=device, n_frames=data.n_frames, warm_start=bool(previous_model))
    save_model(model_out, model.cpu(), extra={"metrics": {k: v for k, v in metrics.items() if k != "history"}})
    write_metrics(metrics, metrics_out)
    plot_history(metrics, plot_out)
    state.unlink(missing_ok=True)


def _run(model_path: str, starts: np.ndarray, masses: np.ndarray, sim: CGSim, cfg: LangevinRun, device: str,
         cg_pdb: str, traj_out: str, status_out: str, info: dict) -> None:
    """Simulate ``starts`` (R, N, 3) nm with the model (masses in amu) as the run ``cfg`` says;
    write the trajectory files with ``info`` added to the run totals. A checkpoint next to
    ``traj_out`` lets a killed job resume."""
    import torch

    from alcg.formats.cg_trajectory import write_trajectory
    from alcg.cg.model import load_model
    from alcg.formats import checkpoint
    from alcg.cg.simulate import legacy_checkpoint, model_force_fn, remove_checkpoint, simulate

    device = choose_device(device)
    model = load_model(model_path, device)
    if starts.shape[1] != model.n_beads:
        raise DataError(f"start structures have {starts.shape[1]} beads per frame; the model expects "
                        f"{model.n_beads}")
    torch.manual_seed(cfg.seed)
    partial = checkpoint.folder(Path(traj_out).with_suffix(""))  # <stem>.partial/ (earlier: <stem>.partial.pt)
    every = max(cfg.save_interval, (cfg.n_steps // 20) // cfg.save_interval * cfg.save_interval)
    identity = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    legacy = legacy_checkpoint(partial)
    if legacy.exists() and legacy.stat().st_mtime < Path(model_path).stat().st_mtime:
        legacy.unlink()  # an earlier version's checkpoint, older than the model: another model's run
    result = simulate(model_force_fn(model, compile=sim.compile), starts, masses, cfg, device=device,
                      checkpoint=partial, checkpoint_every_steps=every, identity=identity)
    result.info.update(device=device, **info)
    write_trajectory(result, cg_pdb, traj_out, status_out, cfg.dt_ps, cfg.save_interval)
    remove_checkpoint(partial)


def _masses(sim: CGSim, bead_masses: np.ndarray) -> np.ndarray:
    """Bead masses (amu) of the simulation: the residues' or one mass for all."""
    return bead_masses if sim.bead_mass == "residue" else np.full(len(bead_masses), float(sim.bead_mass))


def explore(model_path: str, dataset_path: str, cg_pdb: str, sim: CGSim, temperature_k: float, device: str,
            seed: int, traj_out: str, status_out: str) -> None:
    """Exploration run that feeds selection: replicas start from training frames (``sim.starts``:
    random, or spread over the data by k-centers) and run at ``sim.temperature_k`` (None: the
    system's ``temperature_k``, K)."""
    from alcg.cg.model import load_model
    from alcg.cg.simulate import LangevinRun

    n_beads = load_model(model_path).n_beads
    data = dataset.load(dataset_path, n_beads=n_beads)
    idx = data.train_indices()
    if len(idx) == 0:
        raise DataError(f"{dataset_path} has no training frames to start the CG simulation from")
    chosen = explore_starts(data.coords, idx, sim.n_replicas, sim.starts, seed)
    run_t = temperature_k if sim.temperature_k is None else sim.temperature_k
    cfg = LangevinRun.of(sim, n_steps=sim.n_steps, save_interval=sim.save_interval, temperature_k=run_t, seed=seed)
    _run(model_path, data.coords[chosen], _masses(sim, data.bead_masses), sim, cfg, device, cg_pdb, traj_out,
         status_out, {"purpose": "exploration", "starts": sim.starts, "temperature_k": run_t,
                      "n_distinct_starts": int(len(np.unique(chosen)))})


def explore_starts(coords: np.ndarray, train_idx: np.ndarray, n_replicas: int, how: str, seed: int) -> np.ndarray:
    """Dataset frame indices the exploration replicas start from.

    Parameters
    ----------
    coords : (F, N, 3) every dataset frame, nm
    train_idx : the training frames' indices (validation frames never start a replica)
    how : ``random`` (uniform draws with replacement) or ``spread`` (farthest-point k-centers
        of the training frames by C-alpha RMSD, in the order found; more replicas than
        distinct centers cycle through them)
    seed : seeds the draws, or the first center
    """
    if how == "random":
        return np.random.default_rng(seed).choice(train_idx, size=n_replicas)
    if how != "spread":
        raise ValueError(f"cg_sim.starts: unknown value {how!r} (random or spread)")
    from alcg.selection import rmsd as R
    from alcg.selection.rmsd_coverage import k_centers

    centers, _, _ = k_centers(R.Frames(coords[train_idx]), n_replicas, seed)
    return train_idx[np.resize(centers, n_replicas)]


def eval_starts(start_pdbs: dict[str, str], system_pdb: str, system_xml: str, round0_dataset: str,
                ev: CGEvaluate, seed: int, out: str) -> None:
    """The fixed evaluation starts of a seed: each configured start (CG-mapped) plus
    ``n_dataset_starts`` round-0 training frames drawn once, each ``replicas_per_start`` times."""
    import mdtraj as md

    from alcg.stages.finegrained import mapping_of

    mapping, _ = mapping_of(system_pdb, system_xml)
    coords, labels = [], []
    for name, pdb in start_pdbs.items():
        t = md.load(pdb)
        coords.append(t.xyz[0][t.topology.select("name CA")])
        labels.append(name)
    data = dataset.load(round0_dataset, n_beads=mapping.n_beads)
    idx = data.train_indices()
    draw = np.random.default_rng(seed).choice(idx, size=min(ev.n_dataset_starts, len(idx)), replace=False)
    coords += list(data.coords[np.sort(draw)])
    labels += [f"round0_{int(i)}" for i in np.sort(draw)]
    starts_file.save(out, starts_file.EvaluationStarts.repeated(coords, labels, ev.replicas_per_start,
                                                              data.bead_masses))


def cg_evaluate(model_path: str, starts_path: str, cg_pdb: str, sim: CGSim, ev: CGEvaluate,
                temperature_k: float, device: str, seed: int, traj_out: str, status_out: str) -> None:
    """Evaluation run: the model from the seed's fixed starts; reads no dataset.

    The Langevin noise seed is the seed's, the same for every arm and round (common random
    numbers), so two arms differ only by their potential.
    """
    from alcg.cg.simulate import LangevinRun

    st = starts_file.load(starts_path)
    cfg = LangevinRun.of(sim, n_steps=ev.n_steps, save_interval=ev.save_interval, temperature_k=temperature_k,
                         seed=seed)
    _run(model_path, st.coords, _masses(sim, st.bead_masses), sim, cfg, device, cg_pdb, traj_out, status_out,
         {"purpose": "evaluation", "start_label": st.label.tolist(),
          "burn_in_frames": ev.burn_in_steps // ev.save_interval,
          "frames_per_replica": ev.n_steps // ev.save_interval})


def export_model(model_path: str, out: str) -> None:
    """Write the model as a TorchScript module: (B, N, 3) nm -> (energy kJ/mol, forces kJ/mol/nm)."""
    from alcg.cg.export import export_torchscript
    from alcg.cg.model import load_model

    export_torchscript(load_model(model_path), out)
