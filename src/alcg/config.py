"""Configuration checking: defaults and JSON schema, then the cross-key rules a schema cannot say.

The schema (``workflow/schemas/config.schema.yaml``) owns every key and default. :func:`validate`
is the single validation: it fills in the schema's defaults, checks types and ranges, then the
rules that span keys (start names, windows, arm names). Errors are :class:`ConfigError` with
one line naming the key and the bad value.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from alcg.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config JSON schema (YAML-encoded)."""
    return yaml.safe_load(Path(path).read_text())


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
    _check_cross_keys(config)
    return config


def _check_starts(cfg: dict) -> None:
    starts = cfg["system"]["starts"]
    for name in list(cfg["reference_md"]["starts"]) + [cfg["initial_md"]["start"]]:
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
    if sel["force_sd_lo_kj_mol_nm"] >= sel["force_sd_hi_kj_mol_nm"]:
        raise ConfigError(f"invalid config: {where}force_sd_lo_kj_mol_nm must be below "
                          f"{where}force_sd_hi_kj_mol_nm")


def _check_arms(cfg: dict) -> None:
    from alcg import selectors

    for plugin in cfg["experiment"]["plugins"]:
        selectors.load_plugin(plugin)
    known = selectors.names()
    for arm in cfg["experiment"]["arms"]:
        if arm not in known:
            raise ConfigError(f"invalid config: experiment.arms: unknown arm {arm!r} "
                              f"(known selectors: {', '.join(known)})")
    sel = cfg["select"]
    base = {k: v for k, v in sel.items() if k != "overrides"}
    for arm, over in sel["overrides"].items():
        if arm not in cfg["experiment"]["arms"]:
            raise ConfigError(f"invalid config: select.overrides.{arm}: {arm!r} is not in experiment.arms")
        for key in over:
            if key not in base:
                raise ConfigError(f"invalid config: unknown key 'select.overrides.{arm}.{key}'")
        _check_windows({**base, **over}, f"select.overrides.{arm}.")


def _as_list(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def _check_structure(system: dict) -> None:
    """Read and check ``system.pdb`` now, before any job; the sequence then comes from it."""
    from alcg.errors import StructureError
    from alcg.structure import check_pdb_file, check_starts

    pdb = system["pdb"]
    if pdb and not Path(pdb).is_file():
        raise ConfigError(f"invalid config: system.pdb file not found: {pdb}")
    try:
        if pdb:
            system["sequence"] = check_pdb_file(pdb, system["allow_chain_breaks"], system["sequence"])
        check_starts(system["starts"], len(system["sequence"]))
    except StructureError as exc:
        key = "system.pdb" if pdb else "system.starts"
        raise ConfigError(f"invalid config: {key}: {exc}") from None
    for name, start in system["starts"].items():
        for key in ("phi", "psi"):
            if pdb and (start or {}).get(key) is not None:
                raise ConfigError(f"invalid config: system.starts.{name}.{key}: dihedrals build a start from "
                                  f"the sequence, but system.pdb is set (every start is then {pdb}); "
                                  f"remove {key}, or set system.pdb: null")


def _check_cross_keys(cfg: dict) -> None:
    _check_starts(cfg)
    _check_windows(cfg["select"], "select.")
    _check_arms(cfg)
    _check_structure(cfg["system"])
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


def load(path: str | Path) -> dict:
    """Read and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return validate(yaml.safe_load(path.read_text()))


def resolve_device(name: str = "auto") -> str:
    """Torch device string for ``device`` from config: ``auto`` picks CUDA when present."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but torch sees no CUDA device")
    return name


def steps(ps: float, timestep_fs: float) -> int:
    """Number of MD steps for ``ps`` picoseconds at ``timestep_fs``."""
    return int(round(ps * 1000.0 / timestep_fs))
