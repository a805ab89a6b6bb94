"""One owner per key and default: the schema. Settings mirror it; no library default restates it."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import alcg
from alcg.config import settings as S
from alcg.config.schema import load_schema

#: parameter names that are schema keys but may keep a default in a library signature, and why
ALLOWED = {
    "seed": "a job's seed is derived per job (common.smk seed_of), never the config's top-level seed",
    "device": "library callers (tests, notebooks) default to the CPU; the workflow always passes it",
    "platform": "the backmapper's OpenMM platform; the workflow always passes forcefield.platform",
}


def _schema_keys(node: dict, out: set[str]) -> set[str]:
    for key, sub in node.get("properties", {}).items():
        if "properties" not in sub:  # a value, not a section (``system`` names a section)
            out.add(key)
        _schema_keys(sub, out)
    return out


def _public_functions():
    for mod in pkgutil.walk_packages(alcg.__path__, "alcg."):
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__ or name.startswith("_"):
                continue
            if inspect.isclass(obj):
                yield from ((f"{mod.name}.{name}.{m}", f) for m, f in vars(obj).items()
                            if inspect.isfunction(f) and (not m.startswith("_") or m == "__init__"))
                if dataclasses.is_dataclass(obj):
                    yield f"{mod.name}.{name}", obj
            elif inspect.isfunction(obj):
                yield f"{mod.name}.{name}", obj


def test_no_public_signature_restates_a_schema_default():
    keys = _schema_keys(load_schema(), set())
    offenders = []
    for where, fn in _public_functions():
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            continue
        offenders += [f"{where}({p.name}={p.default!r})" for p in params
                      if p.name in keys and p.name not in ALLOWED and p.default is not inspect.Parameter.empty]
    assert not offenders, "defaults that belong to the schema: " + ", ".join(offenders)


def _section(path: str) -> dict:
    node = load_schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("cls", list(S.SECTIONS), ids=lambda c: c.__name__)
def test_settings_fields_are_the_schema_keys_both_ways(cls):
    path = S.SECTIONS[cls]
    keys = {k for k in _section(path)["properties"] if f"{path}.{k}" not in S.WORKFLOW_ONLY}
    assert set(S.fields_of(cls)) == keys


def test_every_schema_section_has_settings():
    sections = {k for k, v in load_schema()["properties"].items() if "properties" in v}
    assert sections - {"loop"} <= set(S.SECTIONS.values())


def test_defaults_and_a_missing_key():
    ev = S.defaults(S.Evaluate)
    assert ev.divergence_bins == _section("evaluate")["properties"]["divergence_bins"]["default"]
    assert S.defaults(S.Train, epochs=3).epochs == 3
    with pytest.raises(KeyError, match="oracle.length_ps"):
        S.defaults(S.Oracle)  # no default in the schema: the caller must say
    with pytest.raises(TypeError, match="epoch"):
        S.defaults(S.Train, epoch=3)


def test_every_optional_key_has_a_default():
    """Validation applies defaults, and settings.parse refuses a missing key: so a key that is
    neither required nor defaulted would crash a job instead of failing validation."""
    bad = []

    def walk(node: dict, path: str) -> None:
        required = set(node.get("required", []))
        for key, sub in node.get("properties", {}).items():
            if "properties" in sub:
                walk(sub, f"{path}{key}.")
            elif key not in required and "default" not in sub:
                bad.append(path + key)
    walk(load_schema(), "")
    assert bad == []
