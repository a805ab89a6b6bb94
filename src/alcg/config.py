"""Configuration checking: JSON schema plus the cross-key rules a schema cannot say."""
from __future__ import annotations

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
        return ".".join(parts), f"unknown key {'.'.join(parts)!r}"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return ".".join(parts + [missing]), f"missing required key {'.'.join(parts + [missing])!r}"
    key = ".".join(parts) or "<top level>"
    return key, f"{key}: bad value {error.instance!r} ({error.message})"


def validate(config: dict[str, Any], schema: dict | None = None) -> dict[str, Any]:
    """Check ``config``; raise :class:`ConfigError` with a one-line message naming the key."""
    import jsonschema

    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: len(list(e.absolute_path)), reverse=True)
    if errors:
        raise ConfigError("invalid config: " + _key_path(errors[0])[1])
    _check_cross_keys(config)
    return config


def _check_cross_keys(cfg: dict) -> None:
    starts = cfg["system"]["starts"]
    n_res = len(cfg["system"]["sequence"])
    for name in list(cfg["reference_md"]["starts"]) + [cfg["initial_md"]["start"]]:
        if name not in starts:
            raise ConfigError(f"invalid config: start {name!r} is not defined in system.starts "
                              f"(have {sorted(starts)})")
    for name, start in starts.items():
        for angle in ("phi", "psi"):
            values = start.get(angle)
            if values is not None and len(values) != n_res - 1:
                raise ConfigError(f"invalid config: system.starts.{name}.{angle} has {len(values)} "
                                  f"values; the sequence needs {n_res - 1}")
    sel = cfg["select"]
    if sel.get("rmsd_lo_nm", 0) >= sel.get("rmsd_hi_nm", 1):
        raise ConfigError(f"invalid config: select.rmsd_lo_nm ({sel['rmsd_lo_nm']}) must be "
                          f"below select.rmsd_hi_nm ({sel['rmsd_hi_nm']})")
    if sel.get("bond_min_nm", 0) >= sel.get("bond_max_nm", 1):
        raise ConfigError("invalid config: select.bond_min_nm must be below select.bond_max_nm")
    pdb = cfg["system"].get("pdb")
    if pdb and not Path(pdb).is_file():
        raise ConfigError(f"invalid config: system.pdb file not found: {pdb}")


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
