"""The config schema file: where it is and how to read it (a leaf: imports nothing of alcg).

``workflow/schemas/config.schema.yaml`` owns every config key and default; validation
(:mod:`alcg.stages.validate`) and the settings (:mod:`alcg.config.settings`) both read it from here.
"""
from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config JSON schema (YAML-encoded)."""
    return yaml.safe_load(Path(path).read_text())
