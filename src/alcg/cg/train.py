"""Force-matching training of a :class:`~alcg.cg.model.CGModel`.

Loss: mean squared error between predicted and mapped forces, (kJ/mol/nm)^2, each training
frame weighted by ``1 / (sigma^2 + sigma^2_model)`` (:func:`frame_weights`): ``sigma^2`` is
its label's error variance (the dataset's ``force_var``), ``sigma^2_model`` is
``train.model_force_var``. A precise mean-force label then weighs up to ``sigma^2_inst /
sigma^2_model`` times a noisy instantaneous frame (the number of instantaneous samples it is
worth, capped by how well the model can fit it), and round-0 instantaneous frames are kept,
not dropped. Weights are normalized to mean 1 over the training frames, so with equal
variances the loss is the plain MSE. The validation loss stays the plain (unweighted) MSE on
the fixed validation frames, comparable across rounds and label modes.

The loop (:func:`train`):

1. Candidates before epoch 0: the starting state (the warm-started or freshly initialised
   weights) and the prior alone (the same state with the network's output layer zeroed, so
   its forces are exactly the prior's) are validated; the better one is the first best state
   (``best_epoch`` -1, ``best_candidate`` ``start`` or ``prior``). A round therefore never
   ends worse on validation than the model it started from, nor than its prior.
2. Epochs: a fresh optimizer every round (:func:`make_optimizer`: Adam, or AdamW with
   decoupled weight decay), the learning rate set before every step (:func:`learning_rate`:
   exponential decay per epoch, or cosine over the step budget down to ``lr_min``). The
   budget (:func:`step_budget`) is ``epochs`` with early stopping after ``patience`` epochs
   without a new best, or exactly ``steps`` optimizer steps (no early stopping).
3. With ``ema_decay`` > 0 an exponential moving average of the weights
   (:class:`WeightAverage`) is updated after every step; it is what is validated, selected
   and kept. After every validated epoch (every epoch; with a step budget about ``val_checks``
   evenly spaced ones, :func:`validates`) a validation loss below the best makes that epoch
   the best state (``best_candidate`` ``epoch``); the model ends in the best state.

The validation frames are given by the caller (the workflow: the dataset's fixed ``val``
frames, see :func:`alcg.formats.dataset.assign_validation`; by default
:func:`split_by_trajectory`: whole trajectories held out). A checkpoint of the training state
(weights, optimizer, weight average, best state and candidates) is written after every
validated epoch, so a killed job resumes from there; a NaN loss stops with
:class:`~alcg.util.errors.TrainingError` and leaves the last good checkpoint in place.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from alcg.util.chunks import frame_slices
from alcg.util.errors import ConfigError, TrainingError
from alcg.util.fileio import atomic_path, write_json
from alcg.cg.model import OUTPUT_LAYER, CGModel, prior_only_state
from alcg.formats.dataset import held_out_trajectories
from alcg.config.settings import Train

log = logging.getLogger(__name__)


def split_by_trajectory(traj: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation frame indices with whole trajectories held out.

    With a single trajectory the last ``val_fraction`` of it (in time) is held out; else
    trajectories are drawn in a random order (``seed``) until ``val_fraction`` of the frames
    are held out.
    """
    if len(np.unique(traj)) < 2 or val_fraction == 0:
        n = len(traj)
        cut = int(round(n * (1 - val_fraction)))
        return np.arange(cut), np.arange(cut, n)
    is_val = held_out_trajectories(traj, val_fraction, seed)
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


def _eval_loss(model: CGModel, x: torch.Tensor, f: torch.Tensor, idx: np.ndarray, batch: int) -> float:
    """Plain force MSE, (kJ/mol/nm)^2, of the frames ``idx`` (no gradient step)."""
    total = 0.0
    for start in range(0, len(idx), batch):
        b = idx[start:start + batch]
        total += _batch_loss(model, x, f, b, None, backward=False) * len(b)
    return total / max(len(idx), 1)


def _train_epoch(model: CGModel, x: torch.Tensor, f: torch.Tensor, order: np.ndarray, batch: int,
                 optimizer: torch.optim.Optimizer, w: torch.Tensor | None, lr_of_step: Callable[[int], float],
                 first_step: int, ema: WeightAverage | None) -> float:
    """One pass over ``order`` in batches, one optimizer step each (the ``k``-th at the
    learning rate ``lr_of_step(first_step + k)``), the weight average updated after every
    step; return the mean (weighted) training loss, (kJ/mol/nm)^2."""
    total = 0.0
    for k, start in enumerate(range(0, len(order), batch)):
        b = order[start:start + batch]
        for group in optimizer.param_groups:
            group["lr"] = lr_of_step(first_step + k)
        optimizer.zero_grad()
        loss = _batch_loss(model, x, f, b, w, backward=True)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        total += loss * len(b)
    return total / max(len(order), 1)


class WeightAverage:
    """Exponential moving average of a model's trained parameters (``train.ema_decay``).

    Started from the model's parameters when built (the starting weights); after every
    optimizer step ``average = decay * average + (1 - decay) * weights``.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current parameters into the average."""
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Inside the block the model holds the averaged parameters; its own come back after."""
        params = dict(model.named_parameters())
        raw = {n: params[n].detach().clone() for n in self.shadow}
        with torch.no_grad():
            for n, v in self.shadow.items():
                params[n].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, v in raw.items():
                    params[n].copy_(v)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: v.clone() for n, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for n, v in self.shadow.items():
            v.copy_(state[n])


def make_optimizer(cfg: Train, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam (``weight_decay`` must be 0: Adam's would be an L2 term in the gradient) or AdamW
    with decoupled decay ``weight_decay``, at the learning rate ``cfg.lr``."""
    if cfg.optimizer == "adam":
        if cfg.weight_decay:
            raise ConfigError("train.weight_decay needs train.optimizer: adamw (decoupled decay); "
                              f"it is {cfg.weight_decay} with adam")
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"train.optimizer must be adam or adamw, not {cfg.optimizer!r}")


def step_budget(cfg: Train, n_train: int) -> tuple[int, int, int]:
    """(batches per epoch, epochs, optimizer steps) of a run on ``n_train`` training frames.

    An epoch is ``min(n_train, max_frames)`` frames in batches of ``batch_size``. With
    ``cfg.steps`` null the budget is ``cfg.epochs`` epochs, else exactly ``cfg.steps`` steps over
    ``ceil(steps / batches per epoch)`` epochs (the last one cut short).
    """
    frames = min(n_train, cfg.max_frames) if cfg.max_frames else n_train
    per_epoch = max(1, math.ceil(frames / cfg.batch_size))
    if cfg.steps is None:
        return per_epoch, cfg.epochs, cfg.epochs * per_epoch
    return per_epoch, math.ceil(cfg.steps / per_epoch), cfg.steps


def validates(cfg: Train, epoch: int, n_epochs: int) -> bool:
    """Whether ``epoch`` is validated and checkpointed: every epoch without a step budget; with
    one, about ``cfg.val_checks`` evenly spaced epochs, the last included."""
    if cfg.steps is None:
        return True
    every = max(1, n_epochs // cfg.val_checks)
    return (n_epochs - 1 - epoch) % every == 0


def learning_rate(cfg: Train, epoch: int, step: int, total_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based over the run), in ``epoch``.

    ``exponential``: ``lr * lr_decay**epoch``. ``cosine``: ``lr_min + (lr - lr_min) * (1 +
    cos(pi * step / total_steps)) / 2``, ``lr`` at step 0 and ``lr_min`` at ``total_steps``
    (and after).
    """
    if cfg.schedule == "exponential":
        return cfg.lr * cfg.lr_decay ** epoch
    if cfg.schedule == "cosine":
        t = min(step / max(total_steps, 1), 1.0)
        return cfg.lr_min + (cfg.lr - cfg.lr_min) * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ConfigError(f"train.schedule must be exponential or cosine, not {cfg.schedule!r}")


def _finite(loss: float) -> float:
    return loss if np.isfinite(loss) else float("inf")


def _start_candidates(model: CGModel, x: torch.Tensor, f: torch.Tensor, val_idx: np.ndarray,
                      batch: int) -> tuple[dict, dict]:
    """Validation losses of the starting state and of the prior alone, and the better of them
    as the first best state (``epoch`` -1).

    The prior alone is the starting state with the output layer zeroed
    (:func:`~alcg.cg.model.prior_only_state`): the state that is saved if it wins. A model
    without that layer (no network) has no prior candidate apart from its start. Without
    validation frames neither is evaluated: the best state starts as the start, at loss inf.
    """
    start = copy.deepcopy(model.state_dict())
    best = {"val_loss": float("inf"), "epoch": -1, "candidate": "start", "state": start}
    losses = {"start": None, "prior": None}
    if not len(val_idx):
        return losses, best
    model.eval()
    losses["start"] = _eval_loss(model, x, f, val_idx, batch)
    best["val_loss"] = _finite(losses["start"])
    if all(k in start for k in OUTPUT_LAYER):
        prior_state = prior_only_state(start)
        model.load_state_dict(prior_state)
        losses["prior"] = _eval_loss(model, x, f, val_idx, batch)
        model.load_state_dict(start)
        if _finite(losses["prior"]) < best["val_loss"]:
            best = {"val_loss": losses["prior"], "epoch": -1, "candidate": "prior", "state": prior_state}
    return losses, best


def train(model: CGModel, coords: np.ndarray, forces: np.ndarray, traj: np.ndarray, cfg: Train, seed: int,
          state_path: str | Path, device: str = "cpu", progress: bool = True,
          split: tuple[np.ndarray, np.ndarray] | None = None, force_var: np.ndarray | None = None) -> dict:
    """Train ``model`` in place by force matching; leave it in the best state; return the metrics dict.

    Parameters
    ----------
    coords, forces : (n, N, 3) nm and kJ/mol/nm
    traj : (n,) trajectory id of each frame (for the validation split)
    cfg : the ``train`` settings (optimizer, schedule and budget, weight average, validation
        fraction, early-stopping patience, frames per epoch)
    seed : seeds torch, the epochs' frame order and the default split
    state_path : per-epoch checkpoint; if it exists the run resumes from it
    split : (train indices, validation indices); default :func:`split_by_trajectory`
    force_var : (n,) label error variances, (kJ/mol/nm)^2, for :func:`frame_weights`
        (with ``cfg.model_force_var``); None: equal weights

    Returns
    -------
    dict : ``history`` (per epoch: train and validation loss, learning rate of its first
        step), ``best_epoch`` (-1: a starting candidate), ``best_candidate`` (``start``,
        ``prior`` or ``epoch``), ``best_val_loss``, ``start_val_loss``, ``prior_only_val_loss``
        (losses in (kJ/mol/nm)^2), ``force_scale``, ``n_train``, ``n_val``, ``n_steps``
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
    optimizer = make_optimizer(cfg, params) if params else None
    ema = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay and params else None
    per_epoch, n_epochs, total_steps = step_budget(cfg, len(train_idx))
    history = {"epoch": [], "train_loss": [], "val_loss": [], "lr": []}
    start_epoch = 0
    state_path = Path(state_path)
    ckpt = _load_state(state_path, device) if optimizer is not None else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        history, best, candidates, start_epoch = ckpt["history"], ckpt["best"], ckpt["candidates"], ckpt["epoch"] + 1
        log.info("resuming training from epoch %d", start_epoch)
    else:
        candidates, best = _start_candidates(model, x, f, val_idx, cfg.batch_size)
        log.info("starting candidates: start %s, prior alone %s (validation force MSE)",
                 candidates["start"], candidates["prior"])
    force_scale = float((f[val_idx] ** 2).mean()) if len(val_idx) else float((f ** 2).mean())
    bar = tqdm(range(start_epoch, n_epochs), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        if optimizer is None:
            break
        first_step = epoch * per_epoch
        order = np.random.default_rng((seed, epoch)).permutation(train_idx)  # a resumed run draws the same
        if cfg.max_frames:
            order = order[:cfg.max_frames]
        order = order[:(total_steps - first_step) * cfg.batch_size]  # the step budget's last epoch
        model.train()
        lr_of_step = functools.partial(learning_rate, cfg, epoch, total_steps=total_steps)
        train_loss = _train_epoch(model, x, f, order, cfg.batch_size, optimizer, w, lr_of_step, first_step, ema)
        model.eval()
        if not validates(cfg, epoch, n_epochs):
            continue
        with ema.applied(model) if ema is not None else contextlib.nullcontext():
            val_loss = _eval_loss(model, x, f, val_idx, cfg.batch_size) if len(val_idx) else train_loss
            if not np.isfinite(val_loss):
                raise TrainingError(f"validation loss became {val_loss} at epoch {epoch}; "
                                    "the last good checkpoint is kept")
            if val_loss < best["val_loss"]:
                best = {"val_loss": val_loss, "epoch": epoch, "candidate": "epoch",
                        "state": copy.deepcopy(model.state_dict())}
        history["epoch"].append(epoch)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val_loss)
        history["lr"].append(lr_of_step(first_step))
        bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        log.info("epoch %d train %.5g val %.5g", epoch, train_loss, val_loss)
        with atomic_path(state_path) as tmp:
            torch.save({"format": TRAIN_STATE_FORMAT, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "ema": None if ema is None else ema.state_dict(),
                        "history": history, "best": best, "candidates": candidates, "epoch": epoch}, tmp)
        if cfg.steps is None and epoch - best["epoch"] >= cfg.patience:
            log.info("early stopping at epoch %d (best %d)", epoch, best["epoch"])
            break
    model.load_state_dict(best["state"])
    model.eval()
    log.info("best state: %s (epoch %d, validation force MSE %.5g)", best["candidate"], best["epoch"],
             best["val_loss"])
    prior_only = _prior_force_mse(model, x, f, val_idx if len(val_idx) else train_idx, cfg.batch_size)
    n_steps = min(total_steps, (history["epoch"][-1] + 1) * per_epoch) if history["epoch"] else 0
    return {"history": history, "best_epoch": best["epoch"], "best_candidate": best["candidate"],
            "best_val_loss": best["val_loss"], "start_val_loss": candidates["start"],
            "force_scale": force_scale, "prior_only_val_loss": prior_only,
            "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_steps": int(n_steps)}


#: layout of the per-epoch training state; a state of another layout is not resumed
TRAIN_STATE_FORMAT = 2


def _load_state(path: Path, device: str) -> dict | None:
    """The training state at ``path`` to resume from, or None (none, or an earlier layout)."""
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location=device, weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAIN_STATE_FORMAT:
        log.warning("%s was written by an earlier alcg (another layout): training starts over", path)
        return None
    return ckpt


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
    if metrics.get("start_val_loss") is not None:
        ax.axhline(metrics["start_val_loss"], ls="--", c="gray", label="start (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("force MSE / (kJ/mol/nm)$^2$")
    ax.set_yscale("log")
    ax.legend()
    save_figure(fig, path)


def write_metrics(metrics: dict, path: str | Path) -> None:
    """Metrics JSON (train/val loss per epoch, best epoch and candidate, force scale)."""
    write_json(path, metrics)
