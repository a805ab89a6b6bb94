"""Selection strategies: one :class:`Selector` interface, a registry by name, five strategies.

An arm of the experiment is a name, a selector (``select.selector``, by default the arm's
name) and options (``select.overrides.<arm>``, e.g. its selection ``seed``). Each selector gets the round's
exploration frames (CG), the training frames of the dataset and, for ``committee``, the
committee's force functions, and returns at most ``n_select`` picks. Everything after
selection (backmap -> oracle -> project -> merge) is shared by all arms.

- ``rmsd``: frames farthest (C-alpha RMSD) from the training set inside the trust window
  ``[rmsd_lo_nm, rmsd_hi_nm]`` (the published method).
- ``random``: uniformly random frames inside the same window, same count and diversity rule;
  isolates the value of the RMSD ranking.
- ``md``: no CG frames; restarts plain all-atom MD from random training frames (the
  equal-oracle-budget control).
- ``committee``: query by committee (as in DP-GEN): frames ranked by the largest per-bead
  standard deviation of the committee members' forces, inside
  ``[force_sd_lo_kj_mol_nm, force_sd_hi_kj_mol_nm]``, or with ``force_sd_lo_train_quantile``
  a lower end taken from the committee's own spread on its training frames.
- ``iid``: a positive control: runs from random frames of an independent equilibrium pool
  (``pool_md``); needs a pool, so it is meant for the Go model's exact equilibrium.

A new strategy is one class with a unique ``name``, decorated with :func:`register`; a Python
file listed in ``experiment.plugins`` is imported before the config is checked.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from alcg.util.errors import ConfigError
from alcg.selection.rmsd_coverage import RMSDSelector, diverse_picks, physical_mask
from alcg.config.settings import Select

ForceFn = Callable[[np.ndarray], np.ndarray]  # (B, N, 3) nm -> forces (B, N, 3) kJ/mol/nm


@dataclass
class SelectionInput:
    """What a selector sees.

    Attributes
    ----------
    cg_frames : (F, N, 3) nm, the exploration frames (empty for selectors that use none)
    train_coords : (T, N, 3) nm, the dataset's training frames
    train_index : (T,) index of each training frame in the dataset
    committee : force functions of the committee members (``committee`` only)
    pool_coords : (P, N, 3) nm, the frames of the equilibrium pool, in the order of its run
        files (``iid`` only)
    """

    cg_frames: np.ndarray
    train_coords: np.ndarray
    train_index: np.ndarray
    committee: list[ForceFn] = field(default_factory=list)
    pool_coords: np.ndarray | None = None


@dataclass
class Selection:
    """What a selector picked.

    Attributes
    ----------
    targets : (S, N, 3) nm, the picked structures (CG)
    template : (S,) dataset index of the AA frame each pick starts from (the nearest training
        frame for CG picks: the backmapping template; the frame itself for ``backmap=False``)
    backmap : True when targets are CG frames to backmap, False when they are training frames
        whose AA structure is used as is
    scores : (F,) the selector's score of every CG frame (NaN where not scored)
    picked : (S,) index of each pick in ``cg_frames`` (empty when ``backmap`` is False)
    source : where ``template`` points: ``dataset`` (a dataset frame) or ``pool`` (a frame of
        the equilibrium pool, counted over its run files in order)
    """

    targets: np.ndarray
    template: np.ndarray
    backmap: bool
    scores: np.ndarray
    picked: np.ndarray
    score_label: str
    window: tuple[float, float]
    table: dict
    source: str = "dataset"


class Selector:
    """Base class: hyperparameters in ``__init__``, then ``fit(inp).fetch_model()``."""

    name: ClassVar[str] = ""
    uses_cg: ClassVar[bool] = True          # needs an exploration simulation
    uses_committee: ClassVar[bool] = False  # needs committee members
    uses_pool: ClassVar[bool] = False       # needs the equilibrium pool (pool_md)

    def __init__(self, settings: Select, seed: int = 0):
        self.settings = settings
        self.seed = seed
        self.result_: Selection | None = None

    def fit(self, inp: SelectionInput) -> "Selector":
        raise NotImplementedError

    def fetch_model(self) -> Selection:
        """The :class:`Selection` of the last :meth:`fit`."""
        if self.result_ is None:
            raise RuntimeError(f"{type(self).__name__}.fit was not called")
        return self.result_


_REGISTRY: dict[str, type[Selector]] = {}


def register(cls: type[Selector]) -> type[Selector]:
    """Class decorator: make ``cls`` available as arm ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Registered selector names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Selector]:
    """The selector class registered as ``name``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown selector {name!r} (known: {', '.join(names())})")
    return _REGISTRY[name]


def of_arm(arm: str, settings: Select) -> type[Selector]:
    """The selector class of ``arm`` (its ``select.selector``, else its name)."""
    return get(settings.selector_name(arm))


def load_plugin(path: str | Path) -> None:
    """Import a Python file that registers selectors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"invalid config: experiment.plugins: file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"alcg_plugin_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def _rmsd_fit(s: Select, seed: int, inp: SelectionInput):
    sel = RMSDSelector(s, seed)
    return sel.fit(inp.cg_frames, inp.train_coords).fetch_model()


def _cg_selection(inp: SelectionInput, picks: np.ndarray, nearest_index: np.ndarray, scores: np.ndarray,
                  label: str, window: tuple[float, float], table: dict) -> Selection:
    template = inp.train_index[nearest_index[picks]] if len(picks) else np.zeros(0, np.int64)
    table = {**table, "n_selected": int(len(picks))}
    return Selection(inp.cg_frames[picks], template, True, scores, picks, label, window, table)


@register
class RMSDCoverage(Selector):
    """Farthest-from-training frames inside the RMSD trust window (the published method)."""

    name = "rmsd"

    def fit(self, inp: SelectionInput) -> "RMSDCoverage":
        res = _rmsd_fit(self.settings, self.seed, inp)
        s = self.settings
        self.result_ = _cg_selection(inp, res.selected, res.nearest_index, res.nearest_rmsd,
                                     "C-alpha RMSD to nearest training frame / nm",
                                     (s.rmsd_lo_nm, s.rmsd_hi_nm), res.table())
        return self


@register
class RandomInWindow(Selector):
    """Uniformly random frames inside the RMSD trust window; same count and diversity rule."""

    name = "random"

    def fit(self, inp: SelectionInput) -> "RandomInWindow":
        s = self.settings
        res = _rmsd_fit(s, self.seed, inp)
        cand = np.flatnonzero(res.category == "candidate")
        order = np.random.default_rng(self.seed).permutation(cand)
        picks = diverse_picks(inp.cg_frames, order, s.n_select, s.min_pair_rmsd_nm)
        self.result_ = _cg_selection(inp, picks, res.nearest_index, res.nearest_rmsd,
                                     "C-alpha RMSD to nearest training frame / nm",
                                     (s.rmsd_lo_nm, s.rmsd_hi_nm), res.table())
        return self


@register
class PlainMD(Selector):
    """No CG frames: start ``n_select`` all-atom runs from random training frames."""

    name = "md"
    uses_cg = False

    def fit(self, inp: SelectionInput) -> "PlainMD":
        n = min(self.settings.n_select, len(inp.train_index))
        pick = np.random.default_rng(self.seed).choice(len(inp.train_index), n, replace=False)
        self.result_ = Selection(inp.train_coords[pick], inp.train_index[pick], False,
                                 np.zeros(0), np.zeros(0, np.int64), "", (0.0, 0.0),
                                 {"n_frames": 0, "n_selected": int(n)})
        return self


@register
class EquilibriumPool(Selector):
    """Positive control: ``n_select`` runs started from uniformly random frames of an
    independent equilibrium pool (``pool_md``, never the evaluation reference), as is.

    The same oracle budget as every arm; it samples where the equilibrium ensemble is, which
    active learning should approach but may beat in transition regions: a control, not a
    ceiling."""

    name = "iid"
    uses_cg = False
    uses_pool = True

    def fit(self, inp: SelectionInput) -> "EquilibriumPool":
        if inp.pool_coords is None or len(inp.pool_coords) == 0:
            raise ValueError("the iid selector needs the frames of the equilibrium pool (pool_md)")
        n = min(self.settings.n_select, len(inp.pool_coords))
        pick = np.random.default_rng(self.seed).choice(len(inp.pool_coords), n, replace=False)
        self.result_ = Selection(inp.pool_coords[pick], pick.astype(np.int64), False, np.zeros(0),
                                 np.zeros(0, np.int64), "", (0.0, 0.0),
                                 {"n_frames": 0, "n_pool_frames": int(len(inp.pool_coords)),
                                  "n_selected": int(n)}, source="pool")
        return self


def force_deviation(committee: list[ForceFn], xyz: np.ndarray, batch: int = 256) -> np.ndarray:
    """Largest per-bead standard deviation of the members' forces, (F,) kJ/mol/nm.

    For bead i: sqrt(mean over members of |f_m,i - mean_m f_m,i|^2); the frame's score is the
    maximum over beads (DP-GEN's max force deviation).
    """
    out = np.zeros(len(xyz))
    for start in range(0, len(xyz), batch):
        f = np.stack([np.asarray(fn(xyz[start:start + batch])) for fn in committee])  # (M, B, N, 3)
        dev = np.sqrt(((f - f.mean(0)) ** 2).sum(-1).mean(0))  # (B, N)
        out[start:start + batch] = dev.max(-1)
    return out


@register
class Committee(Selector):
    """Query by committee: largest member force disagreement inside the deviation window."""

    name = "committee"
    uses_committee = True

    def fit(self, inp: SelectionInput) -> "Committee":
        s = self.settings
        if len(inp.committee) < 2:
            raise ValueError(f"the committee selector needs >= 2 members, got {len(inp.committee)}")
        ok = physical_mask(inp.cg_frames, s.bond_min_nm, s.bond_max_nm, s.min_distance_nm)
        scores = np.full(len(inp.cg_frames), np.nan)
        if ok.any():
            scores[ok] = force_deviation(inp.committee, inp.cg_frames[ok])
        lo, hi = committee_window(s, inp)
        cand = np.flatnonzero(ok & (scores >= lo) & (scores <= hi))
        order = cand[np.argsort(-scores[cand], kind="stable")]
        picks = diverse_picks(inp.cg_frames, order, s.n_select, s.min_pair_rmsd_nm)
        nearest = np.full(len(inp.cg_frames), -1, dtype=np.int64)
        if len(picks):  # backmapping templates: the nearest training frame of each pick
            rmsd = RMSDSelector(replace(s, rmsd_lo_nm=0.0, rmsd_hi_nm=np.inf, bond_min_nm=0.0,
                                        bond_max_nm=np.inf, min_distance_nm=0.0), self.seed)
            _, nearest[picks] = rmsd._nearest(inp.cg_frames[picks], inp.train_coords)
        table = {"n_frames": int(len(scores)), "n_failed": int((~ok).sum() + (scores[ok] > hi).sum()),
                 "n_covered": int((scores[ok] < lo).sum()), "n_candidates": int(len(cand)),
                 "force_sd_quantiles_kj_mol_nm": _quantiles(scores),
                 "force_sd_window_kj_mol_nm": [float(lo), float(hi)]}
        self.result_ = _cg_selection(inp, picks, nearest, scores,
                                     "max per-bead committee force s.d. / kJ/mol/nm", (lo, hi), table)
        return self


#: at most this many training frames (evenly strided) give the committee's own spread
WINDOW_TRAIN_FRAMES = 2000


def committee_window(s: Select, inp: SelectionInput) -> tuple[float, float]:
    """The committee's trust window ``(lo, hi)`` on the max per-bead force s.d., kJ/mol/nm.

    With ``force_sd_lo_train_quantile`` set, ``lo`` is that quantile of the committee's own
    deviation over its training frames (at most :data:`WINDOW_TRAIN_FRAMES`, evenly strided): a frame
    is uncovered when the members disagree on it more than on that share of the data they were
    trained on. Otherwise ``lo`` is ``force_sd_lo_kj_mol_nm``. ``hi`` is always
    ``force_sd_hi_kj_mol_nm``.
    """
    hi = float(s.force_sd_hi_kj_mol_nm)
    q = s.force_sd_lo_train_quantile
    if q is None:
        return float(s.force_sd_lo_kj_mol_nm), hi
    train = inp.train_coords[::max(1, -(-len(inp.train_coords) // WINDOW_TRAIN_FRAMES))]
    return float(np.quantile(force_deviation(inp.committee, train), q)), hi


def _quantiles(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    q = np.quantile(v, [0.05, 0.5, 0.95]).tolist() if len(v) else [None] * 3
    return dict(zip(["q05", "q50", "q95"], q))
