"""The fast tier's end-to-end checks: a dry run of every shipped config, ``snakemake --lint``,
and one real loop on the smallest Go config (1 seed x 1 arm x 1 round) through ``make run``'s
own steps: the workflow, then ``snakemake --report``."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_helpers import copy_workflow

ROOT = Path(__file__).resolve().parents[2]
PARTS = sorted(str(p.relative_to(ROOT / "config")) for p in (ROOT / "config" / "go_curves_parts").glob("*.yaml"))
CONFIGS = sorted(p.name for p in (ROOT / "config").glob("*.yaml")) + PARTS
#: configs that are laid over another one (their header comment says so); the rest run alone
OVERLAYS = {"go_hp35.yaml": "go_cpu.yaml", "go_trpcage.yaml": "go_cpu.yaml", "go_pilot.yaml": "go_experiment.yaml",
            "go_curves_pilot.yaml": "go_curves.yaml", **{p: "go_curves.yaml" for p in PARTS}}


def _snakemake(cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res



@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """A copy of the workflow with no results (a dry run then plans every job)."""
    return copy_workflow(tmp_path_factory.mktemp("dry"))


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_of_every_shipped_config(name, workflow_copy):
    """Each shipped config (over the one it is laid on) validates and plans its whole DAG: the
    job table ends with ``all`` once and a total."""
    files = [f"config/{OVERLAYS[name]}"] if name in OVERLAYS else []
    res = _snakemake(workflow_copy, "-n", "--cores", "2", "--configfile", *files, f"config/{name}")
    table = res.stdout + res.stderr
    assert re.search(r"^all\s+1\b", table, flags=re.M) and re.search(r"^total\s+\d+", table, flags=re.M), table[-2000:]


def _job_counts(table: str) -> dict[str, int]:
    """Rule -> job count of a dry run's job table."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^([a-z_]+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.parametrize("kind,oracle,added", [
    ("residue", "instantaneous", {"force_map"}),
    ("optimal", "instantaneous", {"force_map", "force_map_md"}),
    ("optimal", "mean_force", {"force_map", "force_map_md"})])
def test_a_force_map_other_than_constrained_adds_its_rules_and_only_them(kind, oracle, added, workflow_copy,
                                                                         tmp_path):
    """constrained plans no force-map job; a residue or optimal map adds one
    run-level job each (not per seed), the same jobs otherwise, and every projection, the
    held-out set (and a mean-force oracle) read the map."""
    go = ("--configfile", "config/go_test.yaml")
    overlay = tmp_path / "oracle.yaml"
    overlay.write_text(yaml.safe_dump({"oracle": {"labels": oracle}, "mapping": {"force_map": "constrained"}}))
    base = _snakemake(workflow_copy, "-n", "--cores", "2", *go, str(overlay))
    overlay.write_text(yaml.safe_dump({"oracle": {"labels": oracle}, "mapping": {"force_map": kind}}))
    res = _snakemake(workflow_copy, "-n", "--cores", "2", *go, str(overlay))
    before, after = _job_counts(base.stdout + base.stderr), _job_counts(res.stdout + res.stderr)
    assert not {r for r in before if "force_map" in r}
    assert {r: n for r, n in after.items() if r not in added and r != "total"} == \
        {r: n for r, n in before.items() if r != "total"}
    assert {r: after[r] for r in added} == {r: 1 for r in added}
    plan = res.stdout + res.stderr
    # the Go model queries a round in one job (rule query: backmap + oracle of every slot)
    mapped = {"project_initial", "project_oracle", "heldout_frames"} | ({"query"} if oracle == "mean_force" else set())
    for rule in sorted(mapped):
        jobs = re.findall(rf"rule {rule}:\n\s+input: ([^\n]*)", plan)
        assert jobs and all("system/force_map.npz" in j for j in jobs), rule
    if oracle != "mean_force":
        jobs = re.findall(r"rule query:\n\s+input: ([^\n]*)", plan)
        assert jobs and not any("force_map.npz" in j for j in jobs)


def test_overlays_name_their_base():
    """The overlay table above matches what each config's header says it is laid over."""
    for name, base in OVERLAYS.items():
        assert base in (ROOT / "config" / name).read_text().split("\n\n")[0], name


def test_lint_is_clean():
    res = _snakemake(ROOT, "--lint", "--cores", "1")
    assert "Congratulations" in res.stdout + res.stderr, res.stdout[-2000:] + res.stderr[-2000:]


@pytest.mark.timeout(900)
def test_smallest_go_loop_end_to_end_with_report(tmp_path):
    """config/go_test.yaml cut to 1 seed x 1 arm x 1 round: every rule runs for real; the summary
    tables, the figures and the HTML report exist and name the arm."""
    work = copy_workflow(tmp_path)
    (work / "smoke.yaml").write_text(yaml.safe_dump(
        {"experiment": {"seeds": [1], "arms": ["rmsd"]}, "analysis": {"comparisons": []}, "loop": {"n_rounds": 1},
         "cg_equilibrium": {"seeds": [1], "replicas_per_start": 2, "n_steps": 600, "burn_in_steps": 100,
                            "save_interval": 20}}))
    configs = ["--configfile", "config/go_test.yaml", "smoke.yaml"]
    _snakemake(work, "--cores", "2", *configs, timeout=840)
    out = work / "results/go_test"
    rows = (out / "summary/rounds.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    rounds = {(r.split("\t")[header.index("arm")], r.split("\t")[header.index("round")]) for r in rows[1:]}
    assert rounds == {("rmsd", "0"), ("rmsd", "1")}
    metrics = json.loads(next(out.glob("seed_1/rmsd/round_001/evaluate/metrics.json")).read_text())
    assert metrics["n_model_frames"] > 0
    eq = json.loads((out / "seed_1/rmsd/round_001/equilibrium/metrics.json").read_text())
    assert eq["folded_by"] == "C-alpha Q > 0.7" and 0 <= eq["reference_p_fold"] <= 1
    assert set(eq["groups"]) == {"folded", "extended"} and 0 <= eq["p_fold_start_min"] <= eq["p_fold_start_max"] <= 1
    assert eq["converged"] is False and eq["p_fold"] is None  # 2 x 2.5 ps per start cannot cross: no P_fold
    table = (out / "summary/equilibrium.tsv").read_text().splitlines()
    assert len(table) == 2 and table[1].startswith("1\trmsd\tC-alpha Q > 0.7\t")
    # the results pages' F(Q) figure over the final models reads the same frames
    from alcg.stages import profiles

    w1 = profiles.write([str(work / "config/go_test.yaml"), str(work / "smoke.yaml")], tmp_path / "fq.png", out)
    assert (tmp_path / "fq.png").stat().st_size > 0 and set(w1) == {"rmsd"}
    assert w1["rmsd"][1] == pytest.approx(eq["order_w1"], rel=1e-6)  # the same frames (float round-off only)
    _snakemake(work, "--cores", "1", *configs, "--report", "report.html")
    assert "rounds.tsv" in (work / "report.html").read_text(errors="replace")
