"""config/README.md: the key reference is the schema's rendering, and the shipped-config table is complete."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from alcg.config import reference
from alcg.config.schema import load_schema

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "config" / "README.md"


@pytest.fixture(scope="module")
def text() -> str:
    return README.read_text()


def test_key_section_is_the_rendering(text):
    assert reference.BEGIN in text and reference.END in text
    assert reference.generated_part(text) == reference.render(load_schema()), (
        "config/README.md is out of date: run python -m alcg.config.reference")
    assert reference.main(["--check", "--readme", str(README)]) == 0


def test_every_schema_key_is_in_the_reference(text):
    schema = load_schema()
    paths = reference.key_paths(schema)
    assert "cg_sim.dt_ps" in paths and "forcefield.go.epsilon_kj_mol" in paths
    assert "system.starts.<name>.phi" in paths            # additionalProperties
    assert reference.missing_keys(schema, text) == []
    # a key the README does not document is caught
    extra = reference.with_extra_key(schema, "cg_sim", "new_key_ps",
                                     {"$ref": "#/definitions/pos", "default": 1.0, "description": "new"})
    assert reference.missing_keys(extra, text) == ["cg_sim.new_key_ps"]
    assert "cg_sim.new_key_ps" not in reference.key_paths(schema)   # the copy, not the schema, changed


def test_check_fails_with_one_line_naming_the_file(tmp_path, capsys, text):
    stale = tmp_path / "README.md"
    schema = reference.with_extra_key(load_schema(), "", "extra_flag", {"type": "boolean", "default": False})
    stale.write_text(text)
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(schema))
    assert reference.main(["--check", "--readme", str(stale), "--schema", str(schema_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(stale) in err[0]
    assert reference.main(["--readme", str(stale), "--schema", str(schema_file)]) == 0
    assert "`extra_flag`" in stale.read_text()
    assert reference.main(["--check", "--readme", str(stale), "--schema", str(schema_file)]) == 0


def test_rendering_of_schema_constructs():
    schema = {
        "type": "object",
        "definitions": {"pos": {"type": "number", "exclusiveMinimum": 0}},
        "required": ["sec"],
        "properties": {
            "sec": {
                "type": "object",
                "description": "a section",
                "required": ["a"],
                "properties": {
                    "a": {"$ref": "#/definitions/pos", "description": "x | y\nz"},
                    "b": {"oneOf": [{"const": "auto"}, {"$ref": "#/definitions/pos"}], "default": "auto"},
                    "c": {"type": ["array", "null"], "items": {"enum": ["p", "q"]}, "minItems": 2,
                          "maxItems": 2, "default": None},
                    "d": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                        "e": {"type": "integer", "minimum": 1, "maximum": 3, "default": 2}}}},
                },
            },
        },
    }
    docs = {d.path: d for d in reference.key_docs(schema)}
    assert list(docs) == ["sec", "sec.a", "sec.b", "sec.c", "sec.d", "sec.d.<name>", "sec.d.<name>.e"]
    assert docs["sec.a"].type == "number" and docs["sec.a"].default == "required"
    assert docs["sec.a"].allowed == "x > 0"
    assert docs["sec.b"].type == "string or number" and docs["sec.b"].allowed == "`auto` or x > 0"
    assert docs["sec.c"].type == "array of string, or null"
    assert "exactly 2 items" in docs["sec.c"].allowed and "`p`, `q`" in docs["sec.c"].allowed
    assert docs["sec.d.<name>.e"].allowed == "1 ≤ x ≤ 3" and docs["sec.d.<name>.e"].default == "`2`"
    md = reference.render(schema)
    row = next(line for line in md.splitlines() if line.startswith("| `sec.a`"))
    assert "x \\| y z" in row                                   # pipe escaped, newline joined
    assert all(re.fullmatch(r"\|.*\|", line) and len(re.findall(r"(?<!\\)\|", line)) == 6
               for line in md.splitlines() if line.startswith("|"))


def shipped_table_configs(text: str) -> list[str]:
    """The config files named in the first column of the shipped-config table."""
    section = text.split("## Shipped configs", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(config/[^`]+\.yaml)` \|", section, flags=re.MULTILINE)


def test_shipped_config_table_is_complete(text):
    listed = shipped_table_configs(text)
    shipped = sorted(f"config/{p.name}" for p in (ROOT / "config").glob("*.yaml"))
    assert sorted(listed) == shipped
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (ROOT / name).is_file(), name


def undocumented_keys(schema: dict) -> list[str]:
    """Dotted paths of the schema's keys and sections without a non-empty ``description``.

    Walks the schema like :func:`alcg.config.reference.iter_keys` (``$ref`` resolved, keywords
    beside a ``$ref`` winning), and also the free-named keys of ``additionalProperties`` and
    ``patternProperties`` (written ``<name>``).
    """
    out: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        children = [(f"{prefix}{name}", child) for name, child in node.get("properties", {}).items()]
        extra = [node.get("additionalProperties"), *node.get("patternProperties", {}).values()]
        children += [(f"{prefix}{reference.FREE_KEY}", child) for child in extra]
        for path, child in children:
            child = reference.resolve(child, schema)
            if not isinstance(child, dict):
                continue                       # additionalProperties: false / true
            description = child.get("description")
            if not isinstance(description, str) or not description.strip():
                out.append(path)
            walk(child, path + ".")

    walk(schema, "")
    return out


def test_every_schema_key_and_section_has_a_description():
    schema = load_schema()
    assert undocumented_keys(schema) == []
    # the walk reaches sections, nested keys and free-named keys
    assert "cg_sim" in reference.key_paths(schema) and "select.overrides.<name>" in reference.key_paths(schema)
    # and every rendered row has a description (no "—" cell)
    assert all(doc.description != "—" for doc in reference.key_docs(schema))


def test_undocumented_key_check_fails_on_an_undocumented_key():
    schema = load_schema()
    extra = reference.with_extra_key(schema, "cg_sim", "new_key_ps", {"$ref": "#/definitions/pos", "default": 1.0})
    assert undocumented_keys(extra) == ["cg_sim.new_key_ps"]
    blank = reference.with_extra_key(schema, "", "new_section", {"type": "object", "description": " ",
                                                                 "properties": {"k": {"type": "integer"}}})
    assert undocumented_keys(blank) == ["new_section", "new_section.k"]
    free = {"type": "object", "properties": {
        "named": {"type": "object", "description": "a section",
                  "patternProperties": {"^[a-z]+$": {"type": "number"}},
                  "additionalProperties": {"type": "object", "description": "documented",
                                           "properties": {"x": {"type": "number"}}}}}}
    assert undocumented_keys(free) == ["named.<name>.x", "named.<name>"]
