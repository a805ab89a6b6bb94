"""The docs: README's size, the site's nav, and results tables rendered from the measured files.

The strict MkDocs build itself is run by ``make test-full`` / ``make docs``.
"""
from __future__ import annotations

import importlib.util
import json
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


def test_learning_curve_renderers_on_the_pilots(tmp_path, monkeypatch):
    """The measured run's tables, rendered from the pilots' files (same formats): one row per arm,
    the values the files hold, and what a missing value or a lone seed shows."""
    rt = _render_tables()
    rounds = rt.curves_rounds("go_curves_pilot")
    assert "| `iid` | 2281 ± 1745 (2); filled 1.00 |" in rounds and "seeds 101, 102" in rounds
    assert "| `iid` | 2316 (1); filled 1.00 |" in rt.curves_rounds("go_curves_pilot2")  # no interval from one seed
    eq = rt.curves_equilibrium("go_curves_pilot2")
    assert "| `md` | 0.06 (0.06) | 0.70 (0.70) | 0 of 1 | 0.037 (0.037) |" in eq and "| 0 of 32 |" in eq
    strata = rt.curves_strata("go_curves/all")  # per Q stratum; the pilot predates the columns: missing, not 0
    assert "| `md`, round 4 | +0.29 ± 0.08 | +0.11 ± 0.03 | −0.07 ± 0.06 |" in strata
    assert "| `iid`, round 4 | – | – | – |" in rt.curves_strata("go_curves_pilot2")
    sel = rt.curves_selection("go_curves_pilot2")  # exploring arms only, one row per selection round
    assert "| `rmsd` | 3 | 0.69 (0.69–0.69) | 0 of 1 | 11651 (11651–11651) | 26.0 | 0.89 |" in sel
    assert "`md`" not in sel.split("\n\n")[0] and sel.count("| `committee` |") == 4
    tica = rt.curves_tica_change("go_curves_pilot")
    assert "| `random_aa` | +1 | −40 to +43 | 1 of 2 |" in tica and "| `md` | 0 | 0 to +1 | 0 of 2 |" in tica
    # a model with no valid frames: its distances are missing, not zero, and say how many seeds have one
    folder = tmp_path / "run"
    folder.mkdir()
    lines = (ROOT / rt.MEASURED / "go_curves_pilot2/equilibrium.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    second = dict(zip(head, lines[1].split("\t")), seed="102", order_w1="")
    (folder / "equilibrium.tsv").write_text("\n".join(lines[:2] + ["\t".join(second[h] for h in head)]) + "\n")
    monkeypatch.setattr(rt, "ROOT", tmp_path)
    monkeypatch.setattr(rt, "MEASURED", ".")
    row = next(r for r in rt.curves_equilibrium("run").splitlines() if r.startswith("| `rmsd`"))
    assert "0.177 (0.177, –), 1 of 2" in row


def test_cost_table_sums_the_parts_and_shows_what_a_part_lacks(tmp_path, monkeypatch):
    rt = _render_tables()
    for n, extra in ((1, {"n_jobs": 10, "scheduler_cpu_s": 6.0, "scheduler_elapsed_s": 60.0, "scheduler_cores": 0.1,
                          "scheduler_max_threads": 8}), (2, {})):
        (tmp_path / f"run/part_{n}").mkdir(parents=True)
        (tmp_path / f"run/part_{n}/part.json").write_text(json.dumps(
            {"part": n, "seeds": [n], "cg_equilibrium_seeds": [], "wall_s": 600.0, "cpu": "X", "cores": 2,
             "commit": "abcdef123", **extra}))
    monkeypatch.setattr(rt, "ROOT", tmp_path)
    monkeypatch.setattr(rt, "MEASURED", ".")
    text = rt.curves_cost("run")
    assert "| 1 | 1 | – | 10 | 10.0 | 0.100 | 8 | X, 2 cores | abcdef1 |" in text
    assert "| 2 | 2 | – | – | 10.0 | – | – |" in text and "| all |  |  | – | 20.0 | 0.100 |" in text


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


# Files that may not quote a README section (README.md was cut to <= 200 lines and its sections
# moved to docs/; a pointer must name the page). config/go_experiment.yaml is a pre-registration,
# kept as committed.
_NO_README_SECTIONS = ("src", "scripts", "workflow", "config", "docs", "profiles")
_README_SECTION_EXEMPT = {"config/go_experiment.yaml"}
# references to these READMEs are to whole files that exist, not to the top-level README's sections
_OTHER_READMES = ("config/README.md", "benchmarks/measured/README.md")
_README_SECTION_REF = re.compile(
    r"README(?:,\s*[\"“A-Z]|['’]s\b| \")"  # README, "Status"  README, Calibration  README's  README "x"
    r"|\(README\b"                           # (README)  (README, "x")
    r"|\bin README\b"                        # the experiment in README
)


def readme_section_refs(text: str) -> list[tuple[int, str]]:
    """The (line number, line) of each reference to a top-level README section in ``text``."""
    for allowed in _OTHER_READMES:
        text = text.replace(allowed, " " * len(allowed))
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if _README_SECTION_REF.search(line)]


def _tracked_text_files():
    import subprocess
    try:
        out = subprocess.run(["git", "ls-files", *_NO_README_SECTIONS, "benchmarks"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file there
        out = [str(p.relative_to(ROOT)) for d in (*_NO_README_SECTIONS, "benchmarks")
               for p in (ROOT / d).rglob("*") if p.is_file()]
    for rel in out:
        if rel in _README_SECTION_EXEMPT:
            continue
        if rel.startswith("benchmarks/") and not (rel.count("/") == 1 and rel.endswith(".py")):
            continue
        try:
            yield rel, (ROOT / rel).read_text()
        except (UnicodeDecodeError, OSError):  # binary or a deleted file still in the index
            continue


@pytest.mark.parametrize("text, hits", [
    ('see README, "The 5 fs step"', 1),
    ("contact energy (P_fold 0.5; README, Calibration)", 1),
    ("README's numbers come from an AMD EPYC", 1),
    ('passes the check: README "The 5 fs step"', 1),
    ("one label per query (README)", 1),
    ("the experiment in README was measured at 2 fs", 1),
    ("a line\n(README, Oracle labels)\nanother", 1),
    ("see docs/results/2026-12-01-timestep-validation.md", 0),
    ("(`config/README.md`, `benchmarks/measured/README.md`)", 0),
    ("recorded in benchmarks/measured/README.md, as config/README.md's table says", 0),
    ("README_PATH = ROOT / 'config' / 'README.md'; the project README used to show it", 0),
])
def test_readme_section_reference_detection(text, hits):
    assert len(readme_section_refs(text)) == hits


def test_no_text_points_to_a_readme_section():
    found = [f"{rel}:{n}: {line}" for rel, text in _tracked_text_files()
             for n, line in readme_section_refs(text)]
    assert not found, "README sections moved to docs/; point to the page instead:\n" + "\n".join(found)


def test_the_check_reads_the_files_it_should():
    files = {rel for rel, _ in _tracked_text_files()}
    for rel in ("config/config.yaml", "config/README.md", "src/alcg/cg/simulate.py",
                "workflow/schemas/config.schema.yaml", "benchmarks/timestep_validation.py",
                "docs/index.md", "docs/usage/reruns.md"):
        assert rel in files, rel
    assert "config/go_experiment.yaml" not in files
    assert not any(rel.startswith("benchmarks/measured/") for rel in files)
