"""Typed, frozen settings: one dataclass per config section.

The config is validated once (:func:`alcg.config.validate`, which also applies the schema's
defaults), so every key is present here and no dataclass carries a default of its own: the
schema is the one owner of keys and defaults. Rules pass their config sections as params;
stages turn them into these objects with :func:`parse`. Units are in the field names.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Explicit:
    water_model: str
    padding_nm: float
    ionic_strength_molar: float


@dataclass(frozen=True)
class ForceField:
    """All-atom physics: force-field files, solvent, thermostat and integrator, platform."""

    files: tuple[str, ...]
    solvent: str
    explicit: Explicit
    nonbonded_cutoff_nm: float | None
    temperature_k: float
    friction_per_ps: float
    timestep_fs: float
    hydrogen_mass_amu: float | None
    constraints: str
    platform: str

    def with_solvent(self, solvent: str) -> "ForceField":
        """The same force field with another solvent model (e.g. vacuum for backmapping)."""
        return dataclasses.replace(self, solvent=solvent)


@dataclass(frozen=True)
class System:
    sequence: str | None
    pdb: str | None
    ph: float
    allow_chain_breaks: bool
    starts: Mapping[str, Mapping[str, list]]


@dataclass(frozen=True)
class ReferenceMD:
    trajectories: tuple[str, ...] | None
    topology: str | None
    stride: int
    frame_interval_ps: float | None
    starts: tuple[str, ...]
    replicas_per_start: int
    length_ps: float | None
    equilibration_ps: float
    record_interval_steps: int | None
    checkpoint_every: int


@dataclass(frozen=True)
class InitialMD:
    trajectories: tuple[str, ...] | None
    topology: str | None
    stride: int
    frame_interval_ps: float | None
    start: str
    replicas: int
    length_ps: float | None
    equilibration_ps: float
    record_interval_steps: int | None
    checkpoint_every: int


@dataclass(frozen=True)
class Oracle:
    restraint_ps: float
    restraint_k: float
    length_ps: float
    record_interval_steps: int
    checkpoint_every: int
    max_failure_fraction: float


@dataclass(frozen=True)
class Priors:
    n_bins: int
    dihedral_terms: int
    repulsion_percentile: float
    refit: bool


@dataclass(frozen=True)
class Model:
    cutoff_nm: float
    n_rbf: int
    hidden: int
    n_filters: int
    n_interactions: int
    max_neighbors: int

    def hparams(self) -> dict:
        """Network hyperparameters as the dict stored in model checkpoints."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Train:
    epochs: int
    batch_size: int
    lr: float
    lr_decay: float
    val_fraction: float
    patience: int
    warm_start: bool
    max_frames: int | None


@dataclass(frozen=True)
class CGSim:
    n_replicas: int
    n_steps: int
    dt_ps: float
    friction_per_ps: float
    save_interval: int
    bead_mass: str | float
    max_bond_nm: float
    max_force_kj_mol_nm: float
    keep_exploration: bool


@dataclass(frozen=True)
class CGEvaluate:
    replicas_per_start: int
    n_dataset_starts: int
    n_steps: int
    burn_in_steps: int
    save_interval: int


@dataclass(frozen=True)
class Select:
    """Selection settings of one arm (``overrides`` already applied, see :meth:`for_arm`)."""

    n_select: int
    n_spare: int
    rmsd_lo_nm: float
    rmsd_hi_nm: float
    min_pair_rmsd_nm: float
    n_centers: int
    bond_min_nm: float
    bond_max_nm: float
    min_distance_nm: float
    committee_members: int
    force_sd_lo_kj_mol_nm: float
    force_sd_hi_kj_mol_nm: float

    @classmethod
    def for_arm(cls, section: Mapping[str, Any], arm: str) -> "Select":
        """The ``select`` section with the arm's ``overrides`` applied."""
        base = {k: v for k, v in section.items() if k != "overrides"}
        return cls(**{**base, **section.get("overrides", {}).get(arm, {})})


@dataclass(frozen=True)
class Backmap:
    max_ca_rmsd_nm: float
    restraint_k: tuple[float, ...]
    max_clashes: int


@dataclass(frozen=True)
class Evaluate:
    tica_lag_ps: float
    tica_dim: int
    n_subsamples: int
    subsample_size: int
    kl_bins: int
    folded_rmsd_nm: float
    folded_start: str | None
    min_valid_fraction: float
    n_bootstrap: int
    ci_level: float


@dataclass(frozen=True)
class Experiment:
    seeds: tuple[int, ...]
    arms: tuple[str, ...]
    plugins: tuple[str, ...]


_NESTED = {(ForceField, "explicit"): Explicit}
_TUPLES = {"files", "starts", "restraint_k", "seeds", "arms", "plugins", "trajectories"}


def parse(cls: type[T], section: Mapping[str, Any]) -> T:
    """Build settings object ``cls`` from a validated config section (a mapping)."""
    values = {}
    for f in dataclasses.fields(cls):
        v = section.get(f.name)  # only keys without a schema default may be absent
        nested = _NESTED.get((cls, f.name))
        if nested is not None:
            v = parse(nested, v)
        elif f.name in _TUPLES and isinstance(v, list):
            v = tuple(v)
        values[f.name] = v
    return cls(**values)
