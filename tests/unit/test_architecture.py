"""The package's architecture: no import cycles, and the layers import only downwards.

Layers (docs/dev/architecture.md), lowest first; a module imports only from its own layer or
lower ones, at module level or inside a function alike:

0. ``alcg.util``, ``alcg.config`` -- utilities (figure files included) and the settings;
1. ``alcg.formats``, ``alcg.hardware`` -- the files between rules; devices and torch builds;
2. ``alcg.finegrained``, ``alcg.cg``, ``alcg.selection`` -- the two sides of the model and selection;
3. ``alcg.analysis`` -- evaluation, statistics, summaries, plots;
4. ``alcg.stages`` -- what the rule adapters in ``scripts/`` call.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = {"util": 0, "config": 0, "formats": 1, "hardware": 1, "finegrained": 2, "cg": 2, "selection": 2,
          "analysis": 3, "stages": 4}


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
            for p in SRC.rglob("*.py")}


def _alcg_imports(top_level_only: bool) -> dict[str, set[str]]:
    """Module -> the alcg modules it imports (at module level only, or anywhere in it)."""
    files = _modules()
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        targets = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in files and t not in (name, "alcg")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first search meets (each as its path, first module repeated)."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def _layer(module: str) -> int | None:
    """The layer of an ``alcg.<package>...`` module; None for the package root ``alcg``."""
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else None


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
                  for a, targets in graph.items() for b in targets
                  if _layer(a) is not None and _layer(b) is not None and _layer(b) > _layer(a))


def test_no_import_cycles():
    """No cycle among alcg's module-level imports; none at all (function-level imports too)
    through a CG-side module: the dense SchNet kernel is a leaf the model and the fast force
    field both import."""
    assert _cycles(_alcg_imports(top_level_only=True)) == []
    assert _cycles(_alcg_imports(top_level_only=False)) == []
    assert _alcg_imports(top_level_only=False)["alcg.cg.dense_schnet"] == set()


def test_every_module_lives_in_a_layer():
    """No module at the top of the package but its ``__init__``; every subpackage has a layer."""
    loose = [m for m in _modules() if m != "alcg" and m.split(".")[1] not in LAYERS]
    assert loose == [], f"modules outside the layered subpackages {sorted(LAYERS)}: {loose}"


def test_layers_import_only_downwards():
    assert _upward_imports(_alcg_imports(top_level_only=False)) == []


def test_layering_check_rejects_an_upward_import():
    """The check can fail: a utility importing a stage is reported."""
    graph = {"alcg.util.errors": {"alcg.stages.cg"}, "alcg.stages.cg": set()}
    assert _upward_imports(graph) == ["alcg.util.errors (layer 0) imports alcg.stages.cg (layer 4)"]
    assert _cycles({"a": {"b"}, "b": {"a"}}) != []


@pytest.mark.parametrize("module", ["alcg.cg.model", "alcg.cg.fast_forces", "alcg.cg.dense_schnet"])
def test_modules_import_alone(module):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
