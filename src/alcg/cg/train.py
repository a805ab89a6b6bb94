"""Force-matching training of a :class:`~alcg.cg.model.CGModel`.

Loss: mean squared error between predicted and mapped forces, (kJ/mol/nm)^2, each training
frame weighted by ``1 / (sigma^2 + sigma^2_model)`` (:func:`frame_weights`): ``sigma^2`` is
its label's error variance (the dataset's ``force_var``), ``sigma^2_model`` is
``train.model_force_var``. A precise mean-force label then weighs up to ``sigma^2_inst /
sigma^2_model`` times a noisy instantaneous frame (the number of instantaneous samples it is
worth, capped by how well the model can fit it), and round-0 instantaneous frames are kept,
not dropped. Weights are normalized to mean 1 over the training frames, so with equal
variances the loss is the plain MSE. The validation loss stays the plain (unweighted) MSE on
the fixed validation frames, comparable across rounds and label modes. Adam with an
exponential learning-rate decay per epoch; the validation frames are given by the caller
(the workflow: the dataset's fixed ``val`` frames, the last part of each round-0
trajectory; by default whole trajectories are held out); early stopping keeps the best
validation model. A checkpoint of the training state is written after every epoch, so a killed job
resumes; a NaN loss stops with :class:`~alcg.util.errors.TrainingError` and leaves the last
good checkpoint in place.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from alcg.util.chunks import frame_slices
from alcg.util.errors import TrainingError
from alcg.util.fileio import atomic_path, write_json
from alcg.cg.model import CGModel
from alcg.config.settings import Train

log = logging.getLogger(__name__)


def split_by_trajectory(traj: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation frame indices with whole trajectories held out.

    With a single trajectory the last ``val_fraction`` of it (in time) is held out; else
    trajectories are drawn in a random order (``seed``) until ``val_fraction`` of the frames
    are held out.
    """
    ids = np.unique(traj)
    if len(ids) < 2 or val_fraction == 0:
        n = len(traj)
        cut = int(round(n * (1 - val_fraction)))
        return np.arange(cut), np.arange(cut, n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(ids)
    sizes = np.array([(traj == t).sum() for t in order])
    n_val = max(1, int(np.searchsorted(np.cumsum(sizes), val_fraction * len(traj))) + 1)
    n_val = min(n_val, len(ids) - 1)
    val_ids = set(order[:n_val])
    is_val = np.array([t in val_ids for t in traj])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def frame_weights(force_var: np.ndarray, model_force_var: float, idx: np.ndarray) -> np.ndarray:
    """Per-frame loss weights ``1 / (sigma^2 + model_force_var)``, mean 1 over frames ``idx``.

    Parameters
    ----------
    force_var : (n,) label error variances sigma^2, (kJ/mol/nm)^2; NaN (unknown) frames get
        the mean of the known ones among ``idx`` (all unknown: equal weights)
    model_force_var : sigma^2_model, (kJ/mol/nm)^2
    idx : the training frames the weights are normalized over
    """
    var = np.asarray(force_var, np.float64).copy()
    known = np.isfinite(var[idx])
    fill = float(var[idx][known].mean()) if known.any() else 0.0
    var[~np.isfinite(var)] = fill
    w = 1.0 / (np.maximum(var, 0.0) + model_force_var)
    return w / w[idx].mean() if len(idx) else w


#: frame x bead-pair entries in one forward/backward pass. The default network holds 30-50 KB
#: per entry while training: at 80 beads a batch of 128 frames peaked at 10.7 GB in one pass, and
#: at 2-3 GB in passes of this size (benchmarks/scaling.py --parts train). A batch with more is
#: split into micro-batches whose gradients add up to the batch's; up to 32 beads a batch of
#: 128 is one pass, as before.
PAIR_FRAMES_PER_PASS = 1 << 16


def _micro_batches(b: np.ndarray, n_beads: int) -> list[np.ndarray]:
    """``b`` in pieces of at most :data:`PAIR_FRAMES_PER_PASS` frame x pair entries."""
    return [b[s] for s in frame_slices(len(b), n_beads * (n_beads - 1) // 2, PAIR_FRAMES_PER_PASS)]


def _batch_loss(model: CGModel, x: torch.Tensor, f: torch.Tensor, b: np.ndarray, w: torch.Tensor | None,
                backward: bool) -> float:
    """Loss (mean over the batch ``b``) and, with ``backward``, its gradient accumulated in the
    parameters, one micro-batch at a time; a non-finite part raises before any step."""
    loss = 0.0
    for m in _micro_batches(b, x.shape[1]):
        _, pred = model.energy_and_forces(x[m], create_graph=backward)
        per_frame = ((pred - f[m]) ** 2).mean(dim=(1, 2))
        if w is not None:
            per_frame = per_frame * w[m]
        part = per_frame.mean() if len(m) == len(b) else per_frame.sum() / len(b)
        if backward:
            if not torch.isfinite(part):
                raise TrainingError(f"training loss became {part.item()} (non-finite); "
                                    "the last good checkpoint is kept")
            part.backward()
        loss += part.item()
    return loss


def _epoch_loss(model: CGModel, x: torch.Tensor, f: torch.Tensor, idx: np.ndarray, batch: int,
                optimizer: torch.optim.Optimizer | None = None, w: torch.Tensor | None = None) -> float:
    total, count = 0.0, 0
    for start in range(0, len(idx), batch):
        b = idx[start:start + batch]
        if optimizer is not None:
            optimizer.zero_grad()
        loss = _batch_loss(model, x, f, b, w, backward=optimizer is not None)
        if optimizer is not None:
            optimizer.step()
        total += loss * len(b)
        count += len(b)
    return total / max(count, 1)


def train(model: CGModel, coords: np.ndarray, forces: np.ndarray, traj: np.ndarray, cfg: Train, seed: int,
          state_path: str | Path, device: str = "cpu", progress: bool = True,
          split: tuple[np.ndarray, np.ndarray] | None = None, force_var: np.ndarray | None = None) -> dict:
    """Train ``model`` in place by force matching; return the metrics dict.

    Parameters
    ----------
    coords, forces : (n, N, 3) nm and kJ/mol/nm
    traj : (n,) trajectory id of each frame (for the validation split)
    cfg : the ``train`` settings (epochs, batch size, learning rate and its decay per epoch,
        validation fraction, early-stopping patience, frames per epoch)
    seed : seeds torch, the epochs' frame order and the default split
    state_path : per-epoch checkpoint; if it exists the run resumes from it
    split : (train indices, validation indices); default :func:`split_by_trajectory`
    force_var : (n,) label error variances, (kJ/mol/nm)^2, for :func:`frame_weights`
        (with ``cfg.model_force_var``); None: equal weights
    """
    torch.manual_seed(seed)
    model.to(device)
    x = torch.as_tensor(coords, dtype=torch.float32, device=device)
    f = torch.as_tensor(forces, dtype=torch.float32, device=device)
    train_idx, val_idx = split if split is not None else \
        split_by_trajectory(np.asarray(traj), cfg.val_fraction, seed)
    w = None if force_var is None else torch.as_tensor(
        frame_weights(force_var, cfg.model_force_var, train_idx), dtype=torch.float32, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr) if params else None
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, cfg.lr_decay) if optimizer else None
    history = {"epoch": [], "train_loss": [], "val_loss": [], "lr": []}
    best = {"val_loss": float("inf"), "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    start_epoch = 0
    state_path = Path(state_path)
    if state_path.exists() and optimizer is not None:
        ckpt = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, best, start_epoch = ckpt["history"], ckpt["best"], ckpt["epoch"] + 1
        log.info("resuming training from epoch %d", start_epoch)
    rng = np.random.default_rng(seed + start_epoch)
    force_scale = float((f[val_idx] ** 2).mean()) if len(val_idx) else float((f ** 2).mean())
    bar = tqdm(range(start_epoch, cfg.epochs), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        if optimizer is None:
            break
        order = rng.permutation(train_idx)
        if cfg.max_frames:
            order = order[:cfg.max_frames]
        model.train()
        train_loss = _epoch_loss(model, x, f, order, cfg.batch_size, optimizer, w)
        model.eval()
        val_loss = _epoch_loss(model, x, f, val_idx, cfg.batch_size) if len(val_idx) else train_loss
        if not np.isfinite(val_loss):
            raise TrainingError(f"validation loss became {val_loss} at epoch {epoch}; "
                                "the last good checkpoint is kept")
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        scheduler.step()
        if val_loss < best["val_loss"]:
            best = {"val_loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        log.info("epoch %d train %.5g val %.5g", epoch, train_loss, val_loss)
        with atomic_path(state_path) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "history": history, "best": best,
                        "epoch": epoch}, tmp)
        if epoch - best["epoch"] >= cfg.patience:
            log.info("early stopping at epoch %d (best %d)", epoch, best["epoch"])
            break
    model.load_state_dict(best["state"])
    model.eval()
    prior_only = _prior_force_mse(model, x, f, val_idx if len(val_idx) else train_idx, cfg.batch_size)
    return {"history": history, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
            "force_scale": force_scale, "prior_only_val_loss": prior_only,
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx))}


def _prior_force_mse(model: CGModel, x, f, idx, batch: int) -> float:
    total = 0.0
    for start in range(0, len(idx), batch):
        b = idx[start:start + batch]
        xb = x[b].detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model.prior(xb).sum(), xb)
        total += float(((-g - f[b]) ** 2).mean()) * len(b)
    return total / max(len(idx), 1)


def plot_history(metrics: dict, path: str | Path) -> None:
    """Loss curves (train and validation force MSE per epoch) as PNG."""
    from alcg.util.figure_io import plt, save_figure

    h = metrics["history"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(h["epoch"], h["train_loss"], label="train")
    ax.plot(h["epoch"], h["val_loss"], label="validation")
    ax.axhline(metrics["prior_only_val_loss"], ls=":", c="gray", label="prior only (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("force MSE / (kJ/mol/nm)$^2$")
    ax.set_yscale("log")
    ax.legend()
    save_figure(fig, path)


def write_metrics(metrics: dict, path: str | Path) -> None:
    """Metrics JSON (train/val loss per epoch, best epoch, force scale)."""
    write_json(path, metrics)
