"""Config validation: schema + cross-key checks, also through the Snakemake command line."""
import copy
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from alcg.stages.validate import validate
from alcg.util.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _deep_merge(a: dict, b: dict) -> dict:
    """``b`` merged into ``a`` (in place; returned) by Snakemake's own merge of a --configfile."""
    update_config(a, b)
    return a


def _merged(name: str) -> dict:
    """``name`` merged over config/config.yaml."""
    return _deep_merge(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()),
                       yaml.safe_load((ROOT / "config" / name).read_text()))


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "chignolin_cpu.yaml", "go_test.yaml", "go_cpu.yaml", "go_trpcage.yaml", "go_hp35.yaml",
                                  "go_experiment.yaml", "go_recipe_check.yaml", "go_curves.yaml"])
def test_shipped_configs_are_valid(name):
    validate(_merged(name))


def test_the_parts_of_the_learning_curve_run_split_its_seeds_without_overlap():
    """config/go_curves_parts/*.yaml together run every seed (and every equilibrium seed) of
    go_curves.yaml once, and change nothing else."""
    whole = validate(_merged("go_curves.yaml"))
    seeds, eq = [], []
    for path in sorted((ROOT / "config" / "go_curves_parts").glob("part_*.yaml")):
        part = validate(_deep_merge(_merged("go_curves.yaml"), yaml.safe_load(path.read_text())))
        seeds += part["experiment"]["seeds"]
        eq += part["cg_equilibrium"]["seeds"]
        assert set(part["cg_equilibrium"]["seeds"]) <= set(part["experiment"]["seeds"])
        assert {k: v for k, v in part.items() if k not in ("experiment", "cg_equilibrium")} == \
            {k: v for k, v in whole.items() if k not in ("experiment", "cg_equilibrium")}
    assert sorted(seeds) == sorted(whole["experiment"]["seeds"])
    assert sorted(eq) == sorted(whole["cg_equilibrium"]["seeds"])


def test_mean_force_labels_with_too_few_samples_are_one_line_before_any_job():
    """The tiny config's 1 ps queries give 25 samples (4 fs steps); 10 C-alphas need 37 (jackknife):
    refused with the length that would do; that length passes; the Go model (C-alphas fixed,
    no covariance) and an atomistic system without constraints are not limited."""
    from alcg.finegrained.meanforce import covariance_samples_needed

    cfg = _merged("test.yaml")
    cfg["oracle"].update(labels="mean_force")
    with pytest.raises(ConfigError) as err:
        validate(copy.deepcopy(cfg))
    msg = str(err.value)
    assert "\n" not in msg and "oracle.length_ps: 1.0 ps gives 25 force samples" in msg and "30x30" in msg
    need = covariance_samples_needed(30, 10)
    assert need - -(-need // 10) > 32 >= (need - 1) - -(-(need - 1) // 10)  # the fewest that work
    longer = float(msg.rsplit(">= ", 1)[1])
    cfg["oracle"].update(length_ps=longer)
    validate(copy.deepcopy(cfg))
    cfg["oracle"].update(length_ps=1.0)
    cfg["forcefield"].update(constraints="none")
    validate(copy.deepcopy(cfg))
    go = _merged("go_test.yaml")
    go["oracle"].update(labels="mean_force", length_ps=0.1)
    validate(go)


@pytest.mark.parametrize("kind", ["residue", "optimal"])
def test_force_maps_other_than_constrained_need_constraints_within_a_residue(kind):
    """AllBonds and HAngles constrain the peptide bond (and join the C-alphas): no valid residue
    or optimal map, refused in one line; HBonds and the Go model pass, and constrained always does."""
    cfg = _merged("test.yaml")
    cfg["mapping"] = {"force_map": kind}
    validate(copy.deepcopy(cfg))
    for constraints in ("AllBonds", "HAngles"):
        cfg["forcefield"]["constraints"] = constraints
        with pytest.raises(ConfigError) as err:
            validate(copy.deepcopy(cfg))
        assert "\n" not in str(err.value) and f"mapping.force_map: {kind}" in str(err.value)
    cfg["mapping"] = {"force_map": "constrained"}
    validate(copy.deepcopy(cfg))
    go = _merged("go_test.yaml")
    go["mapping"] = {"force_map": kind}
    validate(go)


def test_pool_validation_needs_a_pool_with_frames_to_reserve():
    go = _merged("go_test.yaml")
    go["train"] = {"validation": "pool"}
    with pytest.raises(ConfigError) as err:
        validate(copy.deepcopy(go))
    assert "\n" not in str(err.value) and "train.validation: pool" in str(err.value) and "pool_md" in str(err.value)
    go["pool_md"] = {"starts": ["folded"], "length_ps": 0.5, "record_interval_steps": 100}  # 1 frame
    with pytest.raises(ConfigError, match="leaves no validation frame"):
        validate(copy.deepcopy(go))
    go["pool_md"]["length_ps"] = 40.0
    validate(go)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["train"].update(epoch=3), "unknown key 'train.epoch'"),
    (lambda c: c["cg_sim"].update(n_replicas="many"), "cg_sim.n_replicas: bad value 'many'"),
    (lambda c: c["forcefield"].update(temperature_k=-5), "forcefield.temperature_k: bad value -5"),
    (lambda c: c.update(device="tpu"), "device: bad value 'tpu'"),
    (lambda c: c["system"].update(sequence="YYDPXTGTWY"), "system.sequence: bad value 'YYDPXTGTWY'"),
    (lambda c: c.pop("loop"), "missing required key 'loop'"),
    (lambda c: c["initial_md"].update(start="unfolded"), "start 'unfolded' is not defined"),
    (lambda c: c["select"].update(rmsd_lo_nm=0.9), "select.rmsd_lo_nm (0.9) must be below"),
    (lambda c: c["system"]["starts"]["folded"].update(phi=[1.0]), "start .folded.: phi has 1 values"),
    (lambda c: c["system"].update(pdb="nowhere.pdb"), "system.pdb file not found: nowhere.pdb"),
    (lambda c: c["experiment"].update(arms=["rmsd", "rmsdd"]), "experiment.arms: unknown selector 'rmsdd' for arm 'rmsdd'"),
    (lambda c: c["select"].update(overrides={"random": {"rmsd_hi": 0.5}}),
     "unknown key 'select.overrides.random.rmsd_hi'"),
    (lambda c: c["select"].update(overrides={"md": {"rmsd_hi": 0.5}}), "unknown key 'select.overrides.md.rmsd_hi'"),
    (lambda c: (c["experiment"].update(arms=["rmsd", "random_b"]),
                c["select"].update(overrides={"random_b": {"selector": "randm"}})),
     "select.overrides.random_b.selector: unknown selector 'randm' for arm 'random_b'"),
    (lambda c: c["experiment"].update(arms=["rmsd", "random_b"]), "unknown selector 'random_b' for arm 'random_b'"),
    (lambda c: c["experiment"].update(arms=["rmsd", "iid"]), "arm 'iid' (iid) needs an equilibrium pool"),
    (lambda c: c["pool_md"].update(starts=["nowhere"]), "start 'nowhere' is not defined in system.starts"),
    (lambda c: c.update(control={"enabled": True}), "unknown key 'control'"),
    (lambda c: c["forcefield"].update(kind="go", solvent="explicit"),
     "forcefield.solvent: only for forcefield.kind: atomistic"),
    (lambda c: c["forcefield"].update(kind="go", hydrogen_mass_amu=2.0),
     "forcefield.hydrogen_mass_amu: only for forcefield.kind: atomistic"),
    (lambda c: c["forcefield"]["go"].update(cooperativity="frustration"), "forcefield.go.cooperativity: bad value"),
    (lambda c: (c["forcefield"].update(kind="go"), c["evaluate"].update(folded_start="extended")),
     "forcefield.kind: go builds its native structure from start 'extended'"),
    (lambda c: c["cg_evaluate"].update(n_steps=300), "cg_evaluate.n_steps (300) must not be shorter than the "
     "exploration run, cg_sim.n_steps (400)"),
])
def test_bad_config_names_the_key(test_config, edit, message):
    cfg = copy.deepcopy(test_config)
    edit(cfg)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg)


def _snakemake(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_defaults_come_from_the_schema_once(test_config):
    cfg = copy.deepcopy(test_config)
    del cfg["priors"], cfg["select"]["n_centers"]
    validate(cfg)
    assert cfg["priors"] == {"n_bins": 60, "dihedral_terms": 3, "dihedral_counts": "independent",
                             "repulsion_percentile": 0.5, "refit": False}
    assert cfg["select"]["n_centers"] == 500


def test_default_cg_time_step_is_the_validated_one(test_config):
    """The schema's dt default is the step tests/unit/test_simulate.py validates against 1 fs."""
    from alcg.cg.simulate import VALIDATED_DT_PS

    cfg = copy.deepcopy(test_config)
    del cfg["cg_sim"]["dt_ps"]
    validate(cfg)
    assert cfg["cg_sim"]["dt_ps"] == VALIDATED_DT_PS


def test_dry_run_lists_every_arm_seed_and_round(tmp_path):
    import re

    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["experiment"] = {"seeds": [1, 2], "arms": ["rmsd", "random", "md", "committee"]}
    cfg["select"]["committee_members"] = 3
    cfg["run"] = "pytest_dry"
    path = tmp_path / "four_arms.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _snakemake("-n", "--cores", "2", "--configfile", str(path))
    assert res.returncode == 0, res.stderr + res.stdout
    out = res.stdout + res.stderr
    models = set(re.findall(r"results/pytest_dry/(seed_\d/[\w/]*?round_\d{3})/model/member_(\d)/model.pt", out))
    for seed in (1, 2):
        assert (f"seed_{seed}/round_000", "0") in models  # round 0 once per seed, shared by the arms
        for arm in ("rmsd", "random", "md", "committee"):
            for k in (1, 2):
                assert (f"seed_{seed}/{arm}/round_{k:03d}", "0") in models
            assert f"seed_{seed}/{arm}/round_000/select/selected.npz" in out
            assert f"seed_{seed}/{arm}/round_001/evaluate/metrics.json" in out
        for m in ("1", "2"):  # committee members, also in round 0
            assert (f"seed_{seed}/committee/round_001", m) in models
            assert (f"seed_{seed}/round_000", m) in models
    assert not any("/round_000" in rd and rd.count("/") > 1 for rd, _ in models)  # no per-arm round 0
    assert out.count("rule project_initial:") == 2 and out.count("rule reference_md:") == 2


def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    bad = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    bad["cg_sim"]["dt_ps"] = "fast"
    bad["run"] = "never_created"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    res = _snakemake("--cores", "1", "--configfile", str(path))
    assert res.returncode != 0
    assert "cg_sim.dt_ps: bad value 'fast'" in res.stderr + res.stdout
    assert not (ROOT / "results" / "never_created").exists()


GOOD_ATOM = "ATOM      1  CA  TYR A   1       0.000   0.000   0.000  1.00  0.00           C\n"


@pytest.mark.parametrize("case, text, message", [
    ("truncated", None, "truncated.pdb"),
    ("not_a_pdb", "just some words\nnot a structure\n", "not_a_pdb.pdb"),
    ("two_chains", None, "chain"),
    ("nonstandard", None, "non-standard residue"),
])
def test_bad_pdb_is_one_line_before_any_job(tmp_path, case, text, message):
    lines = _cln025_pdb_lines()
    if case == "truncated":
        text = "".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:40]
    elif case == "two_chains":
        half = len(lines) // 2
        text = "".join(lines[:half]) + "TER\n" + "".join(l[:21] + "B" + l[22:] for l in lines[half:])
    elif case == "nonstandard":
        text = "".join(l.replace("THR", "TPO") for l in lines)
    pdb = tmp_path / f"{case}.pdb"
    pdb.write_text(text)
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["system"].update(pdb=str(pdb), sequence=None, starts={"folded": {}, "extended": {}})
    cfg["run"] = "never_created_pdb"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = _snakemake("--cores", "1", "--configfile", str(path))
    out = res.stdout + res.stderr
    assert res.returncode != 0
    line = next(l for l in out.splitlines() if l.startswith("alcg:"))
    assert message in line and str(pdb.name) in line, line
    assert "Traceback" not in out and "rule " not in out
    assert not (ROOT / "results" / "never_created_pdb").exists()


def test_pdb_overlay_over_the_default_config(tmp_path):
    """An overlay holding only ``system: {pdb: ...}`` over config/config.yaml (as Snakemake
    merges ``--configfile`` files): the default's sequence and start dihedrals cannot leak."""
    from alcg.finegrained.structure import build_from_sequence

    pdb = tmp_path / "trpcage.pdb"
    pdb.write_text(build_from_sequence("NLYIQWLKDGGPSSGRPPPS"))
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["system"].update(pdb=str(pdb))  # what the merge of the overlay gives
    out = validate(cfg)["system"]
    assert out["sequence"] == "NLYIQWLKDGGPSSGRPPPS"  # from the PDB, not YYDPETGTWY
    assert out["starts"] == {"folded": {}, "extended": {}}  # no dihedrals reach a job


def test_overlay_dry_run_with_a_pdb_and_with_imported_trajectories(tmp_path):
    from alcg.finegrained.structure import build_from_sequence

    pdb = tmp_path / "trpcage.pdb"
    pdb.write_text(build_from_sequence("NLYIQWLKDGGPSSGRPPPS"))
    overlay = tmp_path / "mine.yaml"
    overlay.write_text(yaml.safe_dump({"run": "never_created_overlay", "system": {"pdb": str(pdb)}}))
    res = _snakemake("-n", "--cores", "1", "--configfile", str(overlay))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "prepare_system" in res.stdout and "Traceback" not in res.stderr
    traj = tmp_path / "run.dcd"
    traj.write_bytes(b"")  # the dry run only checks that the file exists
    overlay.write_text(yaml.safe_dump({"run": "never_created_overlay", "initial_md": {
        "trajectories": [str(traj)], "topology": str(pdb)}}))
    res = _snakemake("-n", "--cores", "1", "--configfile", str(overlay))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "rule import_md:" in res.stdout and "rule initial_md:" not in res.stdout
    assert not (ROOT / "results" / "never_created_overlay").exists()


@pytest.mark.parametrize("over, message", [
    ({"n_select": "many"}, "select.overrides.md.n_select: bad value 'many'"),
    ({"rmsd_hi_nm": -1.0}, "select.overrides.md.rmsd_hi_nm: bad value -1.0"),
    ({"n_spare": 1.5}, "select.overrides.md.n_spare: bad value 1.5"),
    ({"n_select": 3}, "select.overrides.md.n_select: 3 differs from select.n_select=2; every arm gets the same "
                      "oracle budget"),
])
def test_bad_override_value_is_one_line(test_config, over, message):
    cfg = copy.deepcopy(test_config)
    cfg["select"]["overrides"] = {"md": over}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg)


def _cln025_pdb_lines() -> list[str]:
    """A heavy-atom CLN025 PDB built from sequence (no network, no fixtures)."""
    from alcg.finegrained.structure import build_from_sequence

    return [l + "\n" for l in build_from_sequence("YYDPETGTWY").splitlines()
            if l.startswith(("ATOM", "HETATM"))]


def test_an_override_for_an_arm_the_run_lacks_is_a_warning(test_config, caplog):
    """An overlay may run fewer arms than its base config overrides (the pilot runs iid alone)."""
    cfg = copy.deepcopy(test_config)
    cfg["select"]["overrides"] = {"random_b": {"selector": "random", "seed": 1}}
    with caplog.at_level(logging.WARNING, logger="alcg.stages.validate"):
        validate(cfg)
    assert "select.overrides.random_b: 'random_b' is not in experiment.arms" in caplog.text


def test_an_override_for_a_misspelt_arm_is_an_error(test_config):
    cfg = copy.deepcopy(test_config)
    cfg["select"]["overrides"] = {"rmdsd": {"rmsd_lo_nm": 0.1}}
    with pytest.raises(ConfigError, match=r"select.overrides.rmdsd: 'rmdsd' is neither an arm"):
        validate(cfg)


def test_the_pilot_overlay_on_the_experiment_is_valid():
    base = yaml.safe_load((ROOT / "config" / "go_experiment.yaml").read_text())
    pilot = yaml.safe_load((ROOT / "config" / "go_pilot.yaml").read_text())
    cfg = validate(_deep_merge(_merged("go_experiment.yaml"), pilot))
    assert cfg["experiment"]["arms"] == ["iid"] and cfg["loop"]["n_rounds"] == 4
    assert not set(cfg["experiment"]["seeds"]) & set(base["experiment"]["seeds"])  # pilot seeds are not measured


@pytest.mark.parametrize("overlays, seeds, arms, rounds", [
    (["go_experiment.yaml"], 10, 6, 2),
    (["go_experiment.yaml", "go_pilot.yaml"], 2, 1, 4),
])
def test_the_go_experiment_and_its_pilot_dry_run(overlays, seeds, arms, rounds):
    """The pre-registered experiment (and the pilot over it) plans every seed x arm x round."""
    import re

    files = [str(ROOT / "config" / name) for name in overlays]
    res = _snakemake("-n", "--cores", "2", "--configfile", *files, "--config", "run=pytest_go_experiment_dry")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout, re.M))
    assert int(counts["select"]) == seeds * arms * rounds  # a query per arm and round (0 .. rounds-1)
    assert int(counts["evaluate"]) == seeds * (1 + arms * rounds)  # round 0 once per seed
    assert int(counts["reference_md"]) == 2 and int(counts["pool_md"]) == 2
    assert not (ROOT / "results" / "pytest_go_experiment_dry").exists()


def test_validation_auto_is_pool_with_an_equilibrium_pool_else_trajectories():
    from alcg.stages.validate import validation_mode

    assert validation_mode(validate(_merged("go_test.yaml"))) == "trajectories"  # no pool
    assert validation_mode(validate(_merged("go_experiment.yaml"))) == "tail"  # pinned as run
    pooled = validate(_merged("go_recipe_check.yaml"))
    assert pooled["train"]["validation"] == "auto" and validation_mode(pooled) == "pool"


def test_equilibrium_seeds_outside_the_run_and_runs_without_frames_are_one_line(test_config):
    cfg = copy.deepcopy(test_config)
    cfg["cg_equilibrium"] = {"seeds": [1, 7]}
    with pytest.raises(ConfigError, match=r"cg_equilibrium.seeds: 7 is not in experiment.seeds \[1, 2\]"):
        validate(cfg)
    cfg = copy.deepcopy(test_config)
    cfg["cg_equilibrium"] = {"seeds": [1], "n_steps": 100, "burn_in_steps": 100, "save_interval": 10}
    with pytest.raises(ConfigError, match=r"cg_equilibrium.n_steps \(100\) must exceed cg_equilibrium.burn_in_steps"):
        validate(cfg)
