"""Typed, frozen settings: one dataclass per config section.

The config is validated once (:func:`alcg.stages.validate.validate`, which also applies the schema's
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
class Go:
    """The two-bead Go model (``forcefield.go``; terms in :mod:`alcg.finegrained.gomodel`, defaults in the schema).

    Attributes
    ----------
    epsilon_kj_mol
        Contact energy ``eps`` (kJ/mol); every other term but the bonds scales with it.
    bond_k_kj_mol_nm2
        Bond stiffness ``k_b`` (kJ/mol/nm^2), absolute (not scaled by ``eps``).
    angle_k_per_epsilon
        Angle stiffness ``k_a`` in ``eps`` per rad^2 (``0.5 k_a eps dtheta^2``: Clementi's
        ``20 eps dtheta^2``).
    dihedral_k_per_epsilon
        Scale ``k_d`` of the Clementi C-alpha torsion term.
    chirality_k_per_epsilon
        Stiffness ``k_c`` of the side-chain chirality torsion in ``eps`` per rad^2
        (``0.5 k_c eps dphi^2``).
    contact_cutoff_nm
        Residues ``i, j`` with any heavy atoms closer than this in the native structure are in
        contact (nm).
    min_sequence_separation
        Smallest ``|i - j|`` of a native contact and of a repulsive pair.
    repulsion_radius_nm
        ``r_rep`` of the non-native repulsion (nm); below the native contact distances.
    cooperativity
        ``"desolvation"`` (the barrier term described in the module docstring) or ``"none"``.
    desolvation_barrier_per_epsilon
        Height ``h_db`` of the desolvation Gaussian, in ``eps``.
    solvent_separated_well_per_epsilon
        Depth ``h_ssm`` of the solvent-separated Gaussian well, in ``eps``.
    water_diameter_nm
        ``d_w``: barrier at ``s + d_w / 2``, solvent-separated minimum at ``s + d_w`` (nm).
    desolvation_width_nm
        Width ``w`` (standard deviation) of both Gaussians, and of the switch at the native
        distance (nm).
    q_threshold
        A frame is folded when its fraction of native contacts ``Q``
        (:func:`fraction_native_contacts`) exceeds this.
    bead_mass
        ``"mapped"``: each bead weighs what it represents (C-alpha bead: backbone heavy atoms
        and their hydrogens; side-chain bead: side-chain heavy atoms and their hydrogens), or
        one number (amu) for every bead. Equilibrium does not depend on it.
    reference_friction_per_ps
        Langevin friction of the Go reference runs (1/ps). Equilibrium does not depend on it;
        low friction crosses barriers faster.
    """

    epsilon_kj_mol: float
    bond_k_kj_mol_nm2: float
    angle_k_per_epsilon: float
    dihedral_k_per_epsilon: float
    chirality_k_per_epsilon: float
    contact_cutoff_nm: float
    min_sequence_separation: int
    repulsion_radius_nm: float
    cooperativity: str
    desolvation_barrier_per_epsilon: float
    solvent_separated_well_per_epsilon: float
    water_diameter_nm: float
    desolvation_width_nm: float
    q_threshold: float
    bead_mass: str | float
    reference_friction_per_ps: float


@dataclass(frozen=True)
class ForceField:
    """Fine-grained physics: the model (``kind``), its parameters, thermostat and integrator,
    platform. ``files``, ``solvent``, ``explicit``, ``nonbonded_cutoff_nm``,
    ``hydrogen_mass_amu`` and ``constraints`` are for ``kind: atomistic`` only."""

    kind: str
    go: Go
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
class PoolMD:
    """The iid arm's equilibrium pool (``pool_md``): runs like the reference's, other seeds."""

    starts: tuple[str, ...]
    replicas_per_start: int
    length_ps: float
    equilibration_ps: float
    record_interval_steps: int
    checkpoint_every: int


@dataclass(frozen=True)
class ForceMapping:
    """The CG force map (``mapping``; :mod:`alcg.finegrained.force_maps`). ``force_map``:
    ``constrained``, ``residue`` or ``optimal``; ``ridge`` is relative (dimensionless); the
    ``fit_*`` keys describe the optimal map's fit run (ps, steps, frames)."""

    force_map: str
    ridge: float
    fit_ps: float
    fit_equilibration_ps: float
    fit_record_interval_steps: int
    fit_checkpoint_every: int

    def fit_md(self) -> "MDRun":
        """The fit run as an MD run (rule ``force_map_md``)."""
        return MDRun(length_ps=self.fit_ps, equilibration_ps=self.fit_equilibration_ps,
                     record_interval_steps=self.fit_record_interval_steps, checkpoint_every=self.fit_checkpoint_every)


@dataclass(frozen=True)
class Oracle:
    """One oracle query (``oracle``; meaning and defaults in the schema). ``labels``:
    ``instantaneous`` (:func:`alcg.finegrained.md.run_md`) or ``mean_force``
    (:mod:`alcg.finegrained.meanforce_query`, which alone reads ``equilibration_ps``,
    ``mean_force_restraint_k`` and ``n_blocks``)."""

    restraint_ps: float
    restraint_k: float
    length_ps: float
    record_interval_steps: int
    checkpoint_every: int
    labels: str
    equilibration_ps: float
    mean_force_restraint_k: float
    n_blocks: int


@dataclass(frozen=True)
class Priors:
    n_bins: int
    dihedral_terms: int
    dihedral_counts: str
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
    zero_init_output: bool

    def hparams(self) -> dict:
        """Network hyperparameters as the dict stored in model checkpoints (the architecture:
        ``zero_init_output``, an initialisation choice, is left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in INIT_ONLY}


#: Model fields that only set the initial weights: not stored with, nor compared between, models
INIT_ONLY = {"zero_init_output": False}


@dataclass(frozen=True)
class Train:
    epochs: int
    batch_size: int
    lr: float
    lr_decay: float
    optimizer: str
    weight_decay: float
    schedule: str
    steps: int | None
    lr_min: float
    ema_decay: float
    val_checks: int
    val_fraction: float
    validation: str
    patience: int
    warm_start: bool
    max_frames: int | None
    model_force_var: float


@dataclass(frozen=True)
class CGSim:
    n_replicas: int
    n_steps: int
    starts: str                   # exploration only: random | spread
    temperature_k: float | None   # exploration only; None: the system's temperature
    dt_ps: float
    friction_per_ps: float
    save_interval: int
    bead_mass: str | float
    max_bond_nm: float
    max_force_kj_mol_nm: float
    compile: bool


@dataclass(frozen=True)
class CGEvaluate:
    replicas_per_start: int
    n_dataset_starts: int
    n_steps: int
    burn_in_steps: int
    save_interval: int


@dataclass(frozen=True)
class CGEquilibrium:
    """The equilibrium evaluation of the final round (``cg_equilibrium``)."""

    seeds: tuple[int, ...]
    replicas_per_start: int
    n_steps: int
    burn_in_steps: int
    save_interval: int

    def run(self) -> CGEvaluate:
        """The run as evaluation-run settings: from the reference starts alone."""
        return CGEvaluate(replicas_per_start=self.replicas_per_start, n_dataset_starts=0, n_steps=self.n_steps,
                          burn_in_steps=self.burn_in_steps, save_interval=self.save_interval)


@dataclass(frozen=True)
class Select:
    """Selection settings of one arm (``overrides`` already applied, see :meth:`for_arm`)."""

    selector: str | None
    seed: int
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
    force_sd_lo_train_quantile: float | None

    @classmethod
    def for_arm(cls, section: Mapping[str, Any], arm: str) -> "Select":
        """The ``select`` section with the arm's ``overrides`` applied."""
        base = {k: v for k, v in section.items() if k != "overrides"}
        return cls(**{**base, **section.get("overrides", {}).get(arm, {})})

    def selector_name(self, arm: str) -> str:
        """The registered selector this arm runs: ``selector``, else the arm's name."""
        return self.selector or arm


@dataclass(frozen=True)
class MDRun:
    """What one reference or initial MD run needs: a view of ``reference_md`` or ``initial_md``
    (adding a start or a replica is not a rerun trigger of the runs that exist)."""

    length_ps: float
    equilibration_ps: float
    record_interval_steps: int
    checkpoint_every: int


@dataclass(frozen=True)
class PhysicalChecks:
    """The bead-geometry checks that selection and evaluation share (nm): a view of ``select``
    (the global keys; an arm's overrides do not change how every arm is evaluated)."""

    bond_min_nm: float
    bond_max_nm: float
    min_distance_nm: float


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
    divergence_bins: int
    folded_rmsd_nm: float
    folded_start: str | None
    min_valid_fraction: float
    heldout_per_stratum: int
    heldout_labels: str
    heldout_label_se2: float
    heldout_label_max_ps: float
    n_bootstrap: int
    ci_level: float


@dataclass(frozen=True)
class Analysis:
    """The pre-registered analysis (``analysis``; see :mod:`alcg.analysis.primary`)."""

    primary_metric: str
    secondary_metrics: tuple[str, ...]
    primary_round: int | None
    primary_value: str  # final, change (from round 0) or auc (:func:`alcg.analysis.primary.auc`)
    secondary_value: str | None  # None: primary_value
    comparisons: tuple[tuple[str, str], ...]
    positive_control: tuple[str, str] | None
    null_pair: tuple[str, str] | None
    alpha: float
    power: float


@dataclass(frozen=True)
class Experiment:
    seeds: tuple[int, ...]
    arms: tuple[str, ...]
    plugins: tuple[str, ...]


_NESTED = {(ForceField, "explicit"): Explicit, (ForceField, "go"): Go}
_TUPLES = {"files", "starts", "restraint_k", "seeds", "arms", "plugins", "trajectories", "comparisons",
           "positive_control", "null_pair", "secondary_metrics"}


#: settings class -> its config section (dotted path in the schema)
SECTIONS: dict[type, str] = {
    Explicit: "forcefield.explicit", Go: "forcefield.go", ForceField: "forcefield", System: "system",
    ReferenceMD: "reference_md", InitialMD: "initial_md", PoolMD: "pool_md", ForceMapping: "mapping",
    Oracle: "oracle", Priors: "priors",
    Model: "model", Train: "train", CGSim: "cg_sim", CGEvaluate: "cg_evaluate", CGEquilibrium: "cg_equilibrium",
    Select: "select",
    Backmap: "backmap", Evaluate: "evaluate", Experiment: "experiment", Analysis: "analysis",
}

#: schema keys with no settings field, and why: the workflow reads them, no library function does
WORKFLOW_ONLY = {
    "cg_sim.keep_exploration": "a storage switch: the rule file marks exploration outputs temp()",
    "cg_evaluate.rounds": "which evaluate jobs get an evaluation run: the rule file's input function",
    "select.overrides": "per-arm values, folded into Select by Select.for_arm",
    "oracle.max_failure_fraction": "read by the merge rule alone (a float param), so oracle jobs ignore it",
}


def fields_of(cls: type) -> list[str]:
    """Names of the settings fields of ``cls`` (the config keys one job needs)."""
    return [f.name for f in dataclasses.fields(cls)]


def job_params(cls: type, section: Mapping[str, Any]) -> dict:
    """The keys of ``section`` that ``cls`` holds: what a rule passes as params, so that a key
    no job of the rule reads (a storage switch) is not a rerun trigger."""
    return {name: section[name] for name in fields_of(cls) if name in section}


def _schema_section(cls: type) -> dict:
    from alcg.config.schema import load_schema

    node = load_schema()
    for part in SECTIONS[cls].split("."):
        node = node["properties"][part]
    return node


def defaults(cls: type[T], **overrides: Any) -> T:
    """Settings ``cls`` from the schema's defaults, with ``overrides`` (for keys without a default,
    or to change one). For tests, benchmarks and library users: no second copy of a default."""
    props = _schema_section(cls)["properties"]
    unknown = set(overrides) - set(props)
    if unknown:
        raise TypeError(f"{cls.__name__}: no config key {sorted(unknown)[0]!r}")
    values = {**{k: v["default"] for k, v in props.items() if "default" in v}, **overrides}
    for (owner, name), nested in _NESTED.items():
        if owner is cls and isinstance(values.get(name), Mapping):
            values[name] = dataclasses.asdict(defaults(nested, **values[name]))
    return parse(cls, values)


def parse(cls: type[T], section: Mapping[str, Any]) -> T:
    """Build settings object ``cls`` from a validated config section (a mapping).

    Every field must be present (validation applied the schema's defaults); a missing key is a
    ``KeyError`` naming it, never a silent ``None``. Keys that are not fields are ignored.
    """
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in section:
            raise KeyError(f"{SECTIONS.get(cls, cls.__name__)}.{f.name}: missing from the settings given")
        v = section[f.name]
        nested = _NESTED.get((cls, f.name))
        if nested is not None:
            v = parse(nested, v)
        elif f.name in _TUPLES and isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        values[f.name] = v
    return cls(**values)
