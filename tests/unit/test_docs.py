"""The docs: README's size, the site's nav, and results tables rendered from the measured files.

The strict MkDocs build itself is run by ``make test-full`` / ``make docs``.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _render_tables():
    spec = importlib.util.spec_from_file_location("render_tables", DOCS / "render_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _TolerantLoader(yaml.SafeLoader):
    """Reads mkdocs.yml even if it gains ``!!python/name:`` or ``!ENV`` tags."""


_TolerantLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def _nav_pages(nav):
    for item in nav:
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for value in item.values():
                if isinstance(value, str):
                    yield value
                else:
                    yield from _nav_pages(value)


def _nav():
    cfg = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_TolerantLoader)
    return [p for p in _nav_pages(cfg["nav"]) if not re.match(r"[a-z]+://", p)]


def test_committed_pages_equal_their_rendering():
    rt = _render_tables()
    assert rt.check() == [], "run python docs/render_tables.py"


def test_every_table_marker_has_a_renderer_and_closes():
    rt = _render_tables()
    n = 0
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        names = rt.markers(text, str(page))  # raises on an unknown renderer or an open marker
        lines = [line.strip() for line in text.splitlines()]
        assert sum(line.startswith("<!-- table") for line in lines) == len(names), page
        assert lines.count(rt.CLOSE) == len(names), page
        n += len(names)
    assert n >= 10  # the results pages render their tables


@pytest.mark.parametrize("broken, why", [
    ("<!-- table: go_pilot_rounds -->\n| a |\n", "never closed"),
    ("<!-- table: no_such_table -->\n<!-- /table -->\n", "no renderer"),
    ("<!-- /table -->\n", "without an opening"),
    ("<!-- table go_pilot_rounds -->\n<!-- /table -->\n", "malformed"),
])
def test_broken_markers_are_refused(broken, why):
    rt = _render_tables()
    with pytest.raises(rt.MarkerError, match=why):
        rt.markers(broken)


def test_a_stale_table_is_rendered_anew():
    rt = _render_tables()
    stale = "# t\n\n<!-- table: go_pilot_rounds -->\n| old |\n<!-- /table -->\n"
    new = rt.render_page(stale)
    assert "| old |" not in new and "go_pilot/rounds.tsv" in new
    assert rt.render_page(new) == new


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= 200, f"README.md has {n} lines; move text into docs/"


def test_readme_links_to_docs_exist():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)\)", text)
    assert links
    missing = [p for p in links if not (ROOT / p).exists()]
    assert not missing


def test_nav_pages_exist_and_every_page_is_in_the_nav():
    nav = _nav()
    missing = [p for p in nav if not (DOCS / p).is_file()]
    assert not missing, f"in mkdocs.yml's nav but not in docs/: {missing}"
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    orphans = sorted(pages - set(nav))
    assert not orphans, f"in docs/ but not in mkdocs.yml's nav: {orphans}"
