"""Configuration checking: defaults and JSON schema, then the cross-key rules a schema cannot say.

The schema (``workflow/schemas/config.schema.yaml``) owns every key and default. :func:`validate`
is the single validation: it fills in the schema's defaults, checks types and ranges, then the
rules that span keys (start names, windows, arm names). Errors are :class:`ConfigError` with
one line naming the key and the bad value.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from alcg.util.errors import ConfigError
from alcg.config.schema import SCHEMA_PATH, load_schema  # noqa: F401  (the Snakefile imports it from here)

log = logging.getLogger(__name__)

#: the shipped default config, under which Snakemake merges every --configfile
DEFAULT_CONFIG_PATH = SCHEMA_PATH.parents[2] / "config" / "config.yaml"
#: keys that only mean something for an atomistic model, refused with ``forcefield.kind: go``
ATOMISTIC_ONLY = (("forcefield", "files"), ("forcefield", "solvent"), ("forcefield", "explicit"),
                  ("forcefield", "nonbonded_cutoff_nm"), ("forcefield", "hydrogen_mass_amu"),
                  ("forcefield", "constraints"))


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
        return f"unknown key {'.'.join(parts)!r}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"missing required key {'.'.join(parts + [missing])!r}"
    key = ".".join(parts) or "<top level>"
    return f"{key}: bad value {error.instance!r} ({error.message})"


def apply_defaults(config: dict, schema: dict) -> dict:
    """Fill in the schema's ``default:`` values, recursively, in place; return ``config``."""
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict) and "properties" in sub:
            apply_defaults(config[key], sub)
    return config


def load_configs(paths: list[str | Path], base: str | Path | None = None) -> dict[str, Any]:
    """The validated config of ``snakemake --configfile paths...``: ``config/config.yaml``
    (``base``; the Snakefile's own ``configfile``) first, then each file laid over it."""
    from snakemake.utils import update_config

    cfg: dict[str, Any] = {}
    for path in [base or Path(__file__).resolve().parents[3] / "config" / "config.yaml", *paths]:
        if not Path(path).is_file():
            raise ConfigError(f"invalid config: no config file {str(path)!r}")
        update_config(cfg, yaml.safe_load(Path(path).read_text()) or {})
    return validate(cfg)


def validate(config: dict[str, Any], schema: dict | None = None) -> dict[str, Any]:
    """Apply defaults to ``config`` and check it; raise :class:`ConfigError` naming the key."""
    import jsonschema

    schema = schema or load_schema()
    if not isinstance(config, dict):
        raise ConfigError("invalid config: the config file must be a YAML mapping")
    apply_defaults(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: len(list(e.absolute_path)), reverse=True)
    if errors:
        raise ConfigError("invalid config: " + _key_path(errors[0]))
    _check_cross_keys(config, schema)
    return config


def _check_starts(cfg: dict) -> None:
    starts = cfg["system"]["starts"]
    for name in list(cfg["reference_md"]["starts"]) + list(cfg["pool_md"]["starts"]) + [cfg["initial_md"]["start"]]:
        if name not in starts:
            raise ConfigError(f"invalid config: start {name!r} is not defined in system.starts "
                              f"(have {sorted(starts)})")
    folded = cfg["evaluate"]["folded_start"]
    if folded is not None and folded not in starts:
        raise ConfigError(f"invalid config: evaluate.folded_start {folded!r} is not defined in "
                          f"system.starts (have {sorted(starts)})")
    if not cfg["system"]["pdb"] and not cfg["system"]["sequence"]:
        raise ConfigError("invalid config: give system.sequence or system.pdb")


def _check_windows(sel: dict, where: str) -> None:
    if sel["rmsd_lo_nm"] >= sel["rmsd_hi_nm"]:
        raise ConfigError(f"invalid config: {where}rmsd_lo_nm ({sel['rmsd_lo_nm']}) must be "
                          f"below {where}rmsd_hi_nm ({sel['rmsd_hi_nm']})")
    if sel["bond_min_nm"] >= sel["bond_max_nm"]:
        raise ConfigError(f"invalid config: {where}bond_min_nm must be below {where}bond_max_nm")
    if (sel.get("force_sd_lo_train_quantile") is None
            and sel["force_sd_lo_kj_mol_nm"] >= sel["force_sd_hi_kj_mol_nm"]):
        raise ConfigError(f"invalid config: {where}force_sd_lo_kj_mol_nm must be below "
                          f"{where}force_sd_hi_kj_mol_nm")


def _check_arms(cfg: dict, schema: dict) -> None:
    from alcg.selection import selectors

    for plugin in cfg["experiment"]["plugins"]:
        selectors.load_plugin(plugin)
    known = selectors.names()
    sel = cfg["select"]
    base = {k: v for k, v in sel.items() if k != "overrides"}
    for arm, over in sel["overrides"].items():
        if arm not in cfg["experiment"]["arms"]:
            _check_unused_override(arm, over, known)
        _check_override(arm, over, schema)
        _check_windows({**base, **over}, f"select.overrides.{arm}.")
        if over.get("n_select", base["n_select"]) != base["n_select"]:
            raise ConfigError(f"invalid config: select.overrides.{arm}.n_select: {over['n_select']} differs from "
                              f"select.n_select={base['n_select']}; every arm gets the same oracle budget")
    for arm in cfg["experiment"]["arms"]:
        name = {**base, **sel["overrides"].get(arm, {})}["selector"] or arm
        if name not in known:
            where = f"select.overrides.{arm}.selector" if name != arm else "experiment.arms"
            raise ConfigError(f"invalid config: {where}: unknown selector {name!r} for arm {arm!r} "
                              f"(known selectors: {', '.join(known)}; an arm with another name sets "
                              f"select.overrides.<arm>.selector)")
        if selectors.get(name).uses_pool and not cfg["pool_md"]["starts"]:
            raise ConfigError(f"invalid config: experiment.arms: arm {arm!r} ({name}) needs an equilibrium "
                              "pool, and pool_md.starts is empty")


def _check_unused_override(arm: str, over: dict, known: list[str]) -> None:
    """An override for an arm the run lacks: legitimate in an overlay that runs fewer arms (a
    warning) when it names an arm that can exist (a selector's name, or one with ``selector``);
    otherwise most likely a typo (an error)."""
    if arm in known or "selector" in over:
        log.warning("select.overrides.%s: %r is not in experiment.arms (the override is unused)", arm, arm)
        return
    raise ConfigError(f"invalid config: select.overrides.{arm}: {arm!r} is neither an arm of experiment.arms "
                      f"nor a selector (known: {', '.join(known)}); an arm with another name sets "
                      f"select.overrides.{arm}.selector")


def _check_analysis(cfg: dict) -> None:
    """Say, in one line each, which arms the pre-registered analysis names but the run lacks
    (a run of fewer arms is legitimate: those rows of primary.tsv read "arm not run")."""
    an, arms = cfg["analysis"], cfg["experiment"]["arms"]
    named = [("analysis.comparisons", a) for pair in an["comparisons"] for a in pair]
    named += [(f"analysis.{key}", a) for key in ("positive_control", "null_pair") for a in (an[key] or [])]
    for where in sorted({w for w, arm in named if arm not in arms}):
        missing = sorted({arm for w, arm in named if w == where and arm not in arms})
        log.warning("%s names arms that are not in experiment.arms: %s (their rows read 'arm not run')",
                    where, ", ".join(missing))


def _check_override(arm: str, over: dict, schema: dict) -> None:
    """An arm's override gets the types and ranges of the ``select`` keys it replaces."""
    import jsonschema

    props = {k: v for k, v in schema["properties"]["select"]["properties"].items() if k != "overrides"}
    sub = {"definitions": schema.get("definitions", {}), "type": "object",
           "additionalProperties": False, "properties": props}
    errors = list(jsonschema.Draft202012Validator(sub).iter_errors(over))
    if errors:
        msg = _key_path(errors[0])
        msg = msg.replace("unknown key '", f"unknown key 'select.overrides.{arm}.", 1) if msg.startswith("unknown") \
            else f"select.overrides.{arm}.{msg}"
        raise ConfigError("invalid config: " + msg)


def _as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def _check_structure(system: dict) -> None:
    """Read and check ``system.pdb`` now, before any job; the sequence then comes from it.

    With ``system.pdb`` every start is that structure: the sequence and the backbone dihedrals
    that build starts from a sequence (as in the default config, under which an overlay naming
    only a PDB is merged) are dropped here, with one note, so that they can neither clash with
    the PDB nor reach a job.
    """
    from alcg.util.errors import StructureError
    from alcg.finegrained.structure import check_pdb_file, check_starts

    pdb = system["pdb"]
    if pdb and not Path(pdb).is_file():
        raise ConfigError(f"invalid config: system.pdb file not found: {pdb}")
    if pdb:
        _drop_sequence_starts(system)
    try:
        if pdb:
            system["sequence"] = check_pdb_file(pdb, system["allow_chain_breaks"], None)
        check_starts(system["starts"], len(system["sequence"]))
    except StructureError as exc:
        key = "system.pdb" if pdb else "system.starts"
        raise ConfigError(f"invalid config: {key}: {exc}") from None


def _drop_sequence_starts(system: dict) -> None:
    built = sorted(n for n, s in system["starts"].items()
                   if any((s or {}).get(k) is not None for k in ("phi", "psi")))
    if built or system["sequence"]:
        import logging

        logging.getLogger(__name__).warning(
            "system.pdb is set (%s): every start is that structure; system.sequence%s not used",
            system["pdb"], f" and the phi/psi of starts {', '.join(built)} are" if built else " is")
    system["starts"] = {name: {} for name in system["starts"]}
    system["sequence"] = None


def _check_go(cfg: dict, schema: dict) -> None:
    """With ``forcefield.kind: go``, an atomistic-only key may only hold the value the default
    config gives it (a file merged over the default config inherits those); any other value
    was set for the Go run and means nothing there: refused in one line."""
    if cfg["forcefield"]["kind"] != "go":
        return
    native = cfg["evaluate"]["folded_start"] or cfg["reference_md"]["starts"][0]
    start = cfg["system"]["starts"].get(native) or {}
    if not cfg["system"]["pdb"] and start.get("phi") is None:
        raise ConfigError(f"invalid config: forcefield.kind: go builds its native structure from start {native!r} "
                          "(evaluate.folded_start, else the first reference start), which gives no phi/psi: an "
                          "extended chain; set evaluate.folded_start to a folded start or give system.pdb")
    base = apply_defaults(yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()), schema)
    for section, key in ATOMISTIC_ONLY:
        if cfg[section].get(key) != base[section].get(key):
            raise ConfigError(f"invalid config: {section}.{key}: only for forcefield.kind: atomistic; the Go "
                              f"model is built from the native structure's beads (remove {section}.{key})")


def _check_mean_force(cfg: dict) -> None:
    """``oracle.labels: mean_force`` on the atomistic model holds the C-alphas by a restraint
    (bonds to their hydrogens are constraints), so each label needs enough force samples for
    the covariance of 3 x residues coordinates (:func:`alcg.finegrained.meanforce.covariance_samples_needed`):
    too few is refused here, in one line, not inside the first oracle job."""
    from alcg.finegrained.meanforce import covariance_samples_needed

    ff, oracle = cfg["forcefield"], cfg["oracle"]
    if oracle["labels"] != "mean_force" or ff["kind"] != "atomistic" or ff["constraints"] == "none":
        return
    dim = 3 * len(cfg["system"]["sequence"])  # with system.pdb, _check_structure read it from the file
    per_sample_ps = oracle["record_interval_steps"] * ff["timestep_fs"] * 1e-3
    have = steps(oracle["length_ps"], ff["timestep_fs"]) // oracle["record_interval_steps"]
    need = covariance_samples_needed(dim, oracle["n_blocks"])
    if have < need:
        raise ConfigError(f"invalid config: oracle.length_ps: {oracle['length_ps']} ps gives {have} force samples "
                          f"(one per oracle.record_interval_steps = {oracle['record_interval_steps']} steps of "
                          f"{ff['timestep_fs']} fs); oracle.labels: mean_force needs at least {need} for the "
                          f"{dim}x{dim} C-alpha covariance with {oracle['n_blocks']} jackknife blocks: set "
                          f"oracle.length_ps >= {need * per_sample_ps:g}")


def _check_heldout_labels(cfg: dict) -> None:
    """Mean-force held-out labels hold the C-alphas fixed (mass 0), which only the Go model allows."""
    if cfg["evaluate"]["heldout_labels"] == "mean_force" and cfg["forcefield"]["kind"] != "go":
        raise ConfigError("invalid config: evaluate.heldout_labels: mean_force needs forcefield.kind: go (atomistic "
                          "C-alphas are constrained to their hydrogens and cannot be held fixed); use "
                          "instantaneous or auto")


def heldout_label_kind(cfg: dict) -> str:
    """``evaluate.heldout_labels`` resolved: ``auto`` is ``mean_force`` for the Go model, else
    ``instantaneous``."""
    kind = cfg["evaluate"]["heldout_labels"]
    if kind == "auto":
        return "mean_force" if cfg["forcefield"]["kind"] == "go" else "instantaneous"
    return kind


def _check_force_map(cfg: dict) -> None:
    """``residue`` and ``optimal`` force maps need constraints that stay within a residue and
    never join two C-alphas: atomistic ``AllBonds`` or ``HAngles`` constrain the peptide bond,
    refused here in one line (the library would refuse it inside the force_map job)."""
    ff, kind = cfg["forcefield"], cfg["mapping"]["force_map"]
    if kind != "constrained" and ff["kind"] == "atomistic" and ff["constraints"] in ("AllBonds", "HAngles"):
        raise ConfigError(f"invalid config: mapping.force_map: {kind} is not a valid force map with "
                          f"forcefield.constraints: {ff['constraints']} (constraints cross residues and join the "
                          "C-alphas); use HBonds or none, or mapping.force_map: constrained")


def _check_weight_decay(cfg: dict) -> None:
    """Adam takes no weight decay here (it would be an L2 term in the gradient, not decoupled)."""
    t = cfg["train"]
    if t["optimizer"] == "adam" and t["weight_decay"]:
        raise ConfigError(f"invalid config: train.weight_decay: {t['weight_decay']} needs train.optimizer: adamw "
                          "(decoupled decay); with adam set train.weight_decay: 0")


def validation_mode(cfg: dict) -> str:
    """``train.validation`` resolved: ``auto`` is ``pool`` when the run has an equilibrium pool
    (``pool_md.starts``; the Go configs), else ``trajectories``."""
    mode = cfg["train"]["validation"]
    if mode == "auto":
        return "pool" if cfg["pool_md"]["starts"] else "trajectories"
    return mode


def _check_pool_validation(cfg: dict) -> None:
    """``train.validation: pool`` needs pool runs long enough that each one's validation part
    (:func:`alcg.analysis.heldout.pool_validation_range`) holds a frame."""
    from alcg.analysis.heldout import pool_validation_range

    if validation_mode(cfg) != "pool":
        return
    pool = cfg["pool_md"]
    if not pool["starts"]:
        raise ConfigError("invalid config: train.validation: pool needs an equilibrium pool, and pool_md.starts is "
                          "empty; set pool_md.starts or train.validation: trajectories")
    n = steps(pool["length_ps"], cfg["forcefield"]["timestep_fs"]) // pool["record_interval_steps"]
    start, stop = pool_validation_range(n)
    if stop <= start:
        raise ConfigError(f"invalid config: train.validation: pool: a pool run of {n} frames (pool_md.length_ps "
                          f"{pool['length_ps']}) leaves no validation frame; record more pool frames")


def _check_cross_keys(cfg: dict, schema: dict) -> None:
    _check_go(cfg, schema)
    _check_weight_decay(cfg)
    _check_pool_validation(cfg)
    _check_heldout_labels(cfg)
    _check_force_map(cfg)
    _check_starts(cfg)
    _check_windows(cfg["select"], "select.")
    _check_arms(cfg, schema)
    _check_analysis(cfg)
    _check_structure(cfg["system"])
    _check_mean_force(cfg)
    for section in ("initial_md", "reference_md"):
        for key in ("trajectories", "topology"):
            for path in _as_list(cfg[section].get(key)):
                if not Path(path).is_file():
                    raise ConfigError(f"invalid config: {section}.{key}: file not found: {path}")
    ev, sim = cfg["cg_evaluate"], cfg["cg_sim"]
    if ev["burn_in_steps"] + 2 * ev["save_interval"] > ev["n_steps"]:
        raise ConfigError(f"invalid config: cg_evaluate.n_steps ({ev['n_steps']}) must exceed "
                          f"cg_evaluate.burn_in_steps ({ev['burn_in_steps']}) by two save intervals")
    if ev["n_steps"] < sim["n_steps"]:
        raise ConfigError(f"invalid config: cg_evaluate.n_steps ({ev['n_steps']}) must not be shorter than the "
                          f"exploration run, cg_sim.n_steps ({sim['n_steps']})")
    if sim["save_interval"] > sim["n_steps"]:
        raise ConfigError("invalid config: cg_sim.save_interval must not exceed cg_sim.n_steps")
    _check_equilibrium(cfg)


def _check_equilibrium(cfg: dict) -> None:
    """``cg_equilibrium``: its seeds among the run's, and frames left after the burn-in."""
    eq = cfg["cg_equilibrium"]
    unknown = sorted(set(eq["seeds"]) - set(cfg["experiment"]["seeds"]))
    if unknown:
        raise ConfigError(f"invalid config: cg_equilibrium.seeds: {unknown[0]} is not in experiment.seeds "
                          f"{list(cfg['experiment']['seeds'])}")
    if eq["burn_in_steps"] + 2 * eq["save_interval"] > eq["n_steps"]:
        raise ConfigError(f"invalid config: cg_equilibrium.n_steps ({eq['n_steps']}) must exceed "
                          f"cg_equilibrium.burn_in_steps ({eq['burn_in_steps']}) by two save intervals")


def load(path: str | Path) -> dict:
    """Read and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return validate(yaml.safe_load(path.read_text()))


def steps(ps: float, timestep_fs: float) -> int:
    """Number of MD steps for ``ps`` picoseconds at ``timestep_fs``."""
    return int(round(ps * 1000.0 / timestep_fs))
