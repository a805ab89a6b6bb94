"""One function per workflow rule: read inputs, call the package, write outputs.

The adapters in ``scripts/`` only unpack ``snakemake.input/output/params`` and call these.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from alcg.config import resolve_device, steps
from alcg.errors import DataError, SimulationError
from alcg.io import load_npz, save_npz, write_json

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- all-atom side
def md_run(pdb: str, xml: str, out: str, md_cfg: dict, ff_cfg: dict, seed: int,
           threads: int | None = None) -> None:
    """Reference or initial MD: equilibrate, then record ``length_ps`` of MD."""
    from alcg.oracle import MDSpec, run_md

    spec = MDSpec(n_steps=steps(md_cfg["length_ps"], ff_cfg["timestep_fs"]),
                  record_interval=md_cfg["record_interval_steps"],
                  equilibration_steps=steps(md_cfg.get("equilibration_ps", 0.0), ff_cfg["timestep_fs"]),
                  checkpoint_every=md_cfg.get("checkpoint_every", 50), seed=seed)
    run_md(pdb, xml, out, spec, ff_cfg, threads=threads)


def _mapping(system_pdb: str, system_xml: str):
    from alcg.mapping import CAMapping
    from alcg.prepare import load_prepared

    pdb, system = load_prepared(system_pdb, system_xml)
    return CAMapping(pdb.topology, system), pdb


def project(run_files: list[str], system_pdb: str, system_xml: str, round_index: int, out: str,
            cg_pdb_out: str | None = None) -> int:
    """Project AA runs (status ok) onto CG beads and write a dataset; return its frame count."""
    from alcg.mapping import project_runs, save_dataset

    mapping, pdb = _mapping(system_pdb, system_xml)
    good = [f for f in run_files if run_status(f) == "ok"]
    data = project_runs(good, mapping, round_index)
    save_dataset(out, data)
    if cg_pdb_out:
        import openmm.unit as unit

        from alcg.io import write_text
        xyz = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))[mapping.ca_indices]
        write_text(cg_pdb_out, mapping.cg_topology_pdb(xyz, pdb.topology))
    log.info("projected %d runs -> %d CG frames", len(good), len(data["coords"]))
    return len(data["coords"])


def run_status(path: str) -> str:
    """``ok``, ``failed`` or ``skipped``: the status of an oracle/MD run file."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
    return meta.get("status", "ok")


# --------------------------------------------------------------------------- CG model
def fit_priors(dataset: str, priors_cfg: dict, temperature_k: float, out: str) -> None:
    """Boltzmann-invert the training set into prior parameters (JSON)."""
    from alcg.mapping import load_dataset
    from alcg.priors import fit_priors as fit

    data = load_dataset(dataset)
    if len(data["coords"]) < 2:
        raise DataError(f"{dataset} has {len(data['coords'])} frames: too few to fit priors")
    prior = fit(data["coords"], temperature_k, priors_cfg.get("dihedral_terms", 3),
                priors_cfg.get("n_bins", 60), priors_cfg.get("repulsion_percentile", 0.5))
    write_json(out, prior.params())


def train(dataset: str, priors: str, previous_model: str | None, model_cfg: dict, train_cfg: dict,
          device: str, seed: int, model_out: str, metrics_out: str, plot_out: str) -> None:
    """Force-matching training; warm-starts from ``previous_model`` when given."""
    import torch

    from alcg.mapping import load_dataset
    from alcg.model import CGModel, load_model, save_model
    from alcg.priors import PriorEnergy
    from alcg.train import TrainConfig, plot_history, train as fit, write_metrics

    device = resolve_device(device)
    prior = PriorEnergy(**json.loads(Path(priors).read_text()))
    data = load_dataset(dataset, n_beads=prior.n_beads)
    model = CGModel(torch.as_tensor(data["bead_types"]), prior, model_cfg)
    if previous_model:
        old = load_model(previous_model)
        if old.n_beads != model.n_beads or old.hparams != model.hparams:
            raise DataError(f"{previous_model} does not match this model (beads/hyperparameters)")
        if old.net is not None:
            model.net.load_state_dict(old.net.state_dict())
        log.info("warm start from %s", previous_model)
    keys = {k: train_cfg[k] for k in ("epochs", "batch_size", "lr", "lr_decay", "val_fraction",
                                       "patience", "max_frames") if k in train_cfg}
    state = Path(model_out).with_name("train_state.pt")
    metrics = fit(model, data["coords"], data["forces"], data["traj"], TrainConfig(**keys, seed=seed),
                  state, device=device)
    metrics.update(device=device, n_frames=int(len(data["coords"])), warm_start=bool(previous_model))
    save_model(model_out, model.cpu(), extra={"metrics": {k: v for k, v in metrics.items() if k != "history"}})
    write_metrics(metrics, metrics_out)
    plot_history(metrics, plot_out)
    state.unlink(missing_ok=True)


def cg_simulate(model_path: str, dataset: str, cg_pdb: str, sim_cfg: dict, temperature_k: float,
                device: str, seed: int, traj_out: str, status_out: str) -> None:
    """Batched Langevin simulation of the model from random training frames."""
    import torch

    from alcg.mapping import load_dataset
    from alcg.model import load_model
    from alcg.simulate import LangevinConfig, model_force_fn, simulate, write_trajectory

    device = resolve_device(device)
    model = load_model(model_path, device)
    data = load_dataset(dataset, n_beads=model.n_beads)
    if len(data["coords"]) == 0:
        raise DataError(f"{dataset} has no frames to start the CG simulation from")
    rng = np.random.default_rng(seed)
    starts = data["coords"][rng.integers(len(data["coords"]), size=sim_cfg["n_replicas"])]
    mass = sim_cfg.get("bead_mass", "residue")
    masses = data["bead_masses"] if mass == "residue" else np.full(model.n_beads, float(mass))
    cfg = LangevinConfig(n_steps=sim_cfg["n_steps"], dt_ps=sim_cfg["dt_ps"],
                         friction_per_ps=sim_cfg["friction_per_ps"], temperature_k=temperature_k,
                         save_interval=sim_cfg["save_interval"], max_bond_nm=sim_cfg["max_bond_nm"],
                         max_force_kj_mol_nm=sim_cfg["max_force_kj_mol_nm"], seed=seed)
    torch.manual_seed(seed)
    checkpoint = Path(traj_out).with_name("cg_sim.partial.pt")
    every = max(cfg.save_interval, (cfg.n_steps // 20) // cfg.save_interval * cfg.save_interval)
    result = simulate(model_force_fn(model), starts, masses, cfg, device=device, checkpoint=checkpoint,
                      checkpoint_every_steps=every)
    result.info["device"] = device
    write_trajectory(result, cg_pdb, traj_out, status_out, cfg.dt_ps, cfg.save_interval)
    checkpoint.unlink(missing_ok=True)


# --------------------------------------------------------------------------- active learning
def select(traj: str, status: str, dataset: str, sel_cfg: dict, seed: int, out: str,
           table_out: str, plot_out: str) -> None:
    """RMSD selection of uncovered CG frames."""
    from alcg.mapping import load_dataset
    from alcg.select import RMSDSelector, plot_histogram
    from alcg.simulate import load_trajectory

    xyz, replicas, _ = load_trajectory(traj, status)
    data = load_dataset(dataset, n_beads=xyz.shape[1] if len(xyz) else None)
    if len(xyz) == 0:
        raise SimulationError(f"{traj} holds no frames: every CG replica exploded before its first "
                              "save; lower cg_sim.dt_ps or check the model")
    selector = RMSDSelector(seed=seed, **sel_cfg).fit(xyz, data["coords"])
    res = selector.fetch_model()
    table = res.table()
    table["n_exploded_replicas"] = sum(r["status"] != "ok" for r in replicas)
    save_npz(out, metadata=table, selected=res.selected, target_coords=xyz[res.selected],
             nearest_index=res.nearest_index[res.selected], nearest_rmsd=res.nearest_rmsd[res.selected])
    write_json(table_out, table)
    plot_histogram(res, sel_cfg["rmsd_lo_nm"], sel_cfg["rmsd_hi_nm"], plot_out)
    log.info("selection: %s", table)


def backmap(selected: str, dataset: str, system_pdb: str, system_xml: str, ff_cfg: dict,
            bm_cfg: dict, slot: int, out: str) -> None:
    """Backmap the selected frame in ``slot`` (or record that the slot is empty)."""
    import openmm.app as app

    from alcg.backmap import RestrainedMinimizationBackmapper
    from alcg.mapping import load_dataset
    from alcg.system import create_system, make_forcefield

    sel = load_npz(selected)
    if slot >= len(sel["selected"]):
        save_npz(out, metadata={"status": "skipped", "reason": "no frame selected for this slot"})
        return
    data = load_dataset(dataset)
    k = int(sel["nearest_index"][slot])
    source, frame = str(data["source"][k]), int(data["frame"][k])
    run = load_npz(source)
    template = run["positions"][frame].astype(np.float64)
    pdb = app.PDBFile(system_pdb)
    vac_cfg = {**ff_cfg, "solvent": "vacuum" if ff_cfg["solvent"] == "explicit" else ff_cfg["solvent"]}
    system = create_system(pdb.topology, make_forcefield(vac_cfg), vac_cfg)
    bm = RestrainedMinimizationBackmapper(pdb.topology, system, bm_cfg.get("restraint_k", (1e5, 1e4, 1e3)),
                                          bm_cfg.get("max_ca_rmsd_nm", 0.05), bm_cfg.get("max_clashes", 0),
                                          platform=ff_cfg.get("platform", "auto"))
    res = bm.backmap(sel["target_coords"][slot].astype(np.float64), template)
    meta = {"status": "ok" if res.accepted else "rejected", "reason": res.reason,
            "ca_rmsd_nm": res.ca_rmsd_nm, "n_clashes": res.n_clashes, "chirality_ok": res.chirality_ok,
            "energy_kj_mol": res.energy_kj_mol, "template_source": source, "template_frame": frame,
            "selected_frame": int(sel["selected"][slot]), "slot": slot}
    log.info("backmap slot %d: %s", slot, meta)
    save_npz(out, metadata=meta, pdb=np.array(bm.pdb_text(res.positions_nm)))


def oracle(backmapped: str, ff_cfg: dict, oracle_cfg: dict, seed: int, out: str,
           threads: int | None = None) -> None:
    """Restrained equilibration + unrestrained recorded MD from a backmapped structure.

    A failure (exception, NaN, energy blow-up) is recorded in ``out`` as status ``failed``.
    """
    import openmm.app as app

    from alcg.oracle import MDSpec, run_md
    from alcg.prepare import write_system

    bm = load_npz(backmapped)
    if bm["metadata"]["status"] != "ok":
        save_npz(out, metadata={"status": "skipped", "reason": bm["metadata"].get("reason", "")})
        return
    try:
        work = Path(out).parent / f".{Path(out).stem}.work"
        work.mkdir(parents=True, exist_ok=True)
        pdb_in = work / "backmapped.pdb"
        pdb_in.write_text(str(bm["pdb"]))
        pdb_out, xml_out = work / "start.pdb", work / "start.xml"
        if not xml_out.exists():
            start = app.PDBFile(str(pdb_in))
            write_system(start.topology, start.positions, ff_cfg, pdb_out, xml_out, seed, minimize=False)
        spec = MDSpec(n_steps=steps(oracle_cfg["length_ps"], ff_cfg["timestep_fs"]),
                      record_interval=oracle_cfg["record_interval_steps"],
                      restraint_steps=steps(oracle_cfg.get("restraint_ps", 0.0), ff_cfg["timestep_fs"]),
                      restraint_k=oracle_cfg.get("restraint_k", 1000.0),
                      checkpoint_every=oracle_cfg.get("checkpoint_every", 50), seed=seed)
        run_md(pdb_out, xml_out, out, spec, ff_cfg, threads=threads)
        shutil.rmtree(work, ignore_errors=True)
    except Exception as exc:  # a failed query is data, not a crash of the round
        log.exception("oracle run failed")
        save_npz(out, metadata={"status": "failed", "reason": f"{type(exc).__name__}: {exc}"})


def merge(previous: str, new_frames: str, oracle_runs: list[str], max_failure_fraction: float,
          out: str) -> None:
    """dataset(k+1) = dataset(k) + projected oracle frames; fail if too many queries failed."""
    from alcg.mapping import load_dataset, merge as cat, save_dataset

    status = [run_status(f) for f in oracle_runs]
    attempted = [s for s in status if s != "skipped"]
    failed = sum(s == "failed" for s in attempted)
    if attempted and failed / len(attempted) > max_failure_fraction:
        raise SimulationError(f"{failed} of {len(attempted)} oracle runs failed, more than "
                              f"oracle.max_failure_fraction={max_failure_fraction}")
    old, new = load_dataset(previous), load_dataset(new_frames)
    save_dataset(out, cat([old, new]))
    log.info("merged %d + %d frames (%d oracle runs failed, %d skipped)", len(old["coords"]),
             len(new["coords"]), failed, len(status) - len(attempted))


# --------------------------------------------------------------------------- equal-budget control
def control_pick(dataset: str, al_backmaps: list[str], system_pdb: str, slot: int, seed: int,
                 out: str) -> None:
    """Control arm: start an oracle run from a random training frame instead of a selected one.

    The number of runs per round equals the number of oracle runs the active-learning arm
    attempted in the same round (its accepted backmaps), so both spend the same AA budget.
    """
    import openmm.app as app

    from alcg.mapping import load_dataset
    from alcg.structure import pdb_text

    budget = sum(load_npz(f)["metadata"]["status"] == "ok" for f in al_backmaps)
    if slot >= budget:
        save_npz(out, metadata={"status": "skipped", "reason": f"AL arm ran {budget} oracle queries"})
        return
    data = load_dataset(dataset)
    k = int(np.random.default_rng(seed).integers(len(data["coords"])))
    source, frame = str(data["source"][k]), int(data["frame"][k])
    xyz = load_npz(source)["positions"][frame].astype(np.float64)
    text = pdb_text(app.PDBFile(system_pdb).topology, xyz)
    save_npz(out, metadata={"status": "ok", "template_source": source, "template_frame": frame,
                            "slot": slot}, pdb=np.array(text))


# --------------------------------------------------------------------------- evaluation
def _ca_trajs(run_files: list[str], system_pdb: str, system_xml: str) -> list[np.ndarray]:
    mapping, pdb = _mapping(system_pdb, system_xml)
    expected = [(a.residue.name, a.name) for a in pdb.topology.atoms()]
    out = []
    for f in run_files:
        run = load_npz(f)
        check_run_topology(run, expected, f, system_pdb)
        out.append(mapping.map_coords(run["positions"], run["atom_indices"]))
    return out


def check_run_topology(run: dict, expected: list[tuple[str, str]], name: str, system_pdb: str) -> None:
    """Raise :class:`DataError` unless the run's recorded atoms match the system's atoms."""
    import io

    import openmm.app as app

    top = app.PDBFile(io.StringIO(str(run["topology_pdb"]))).topology
    got = [(a.residue.name, a.name) for a in top.atoms()]
    idx = run["atom_indices"]
    ok = len(got) == len(idx) and all(i < len(expected) and expected[i] == g for i, g in zip(idx, got))
    if not ok:
        raise DataError(f"reference/AA run {name} does not match the topology of {system_pdb} "
                        f"({len(got)} recorded atoms vs {len(expected)} in the system, or different names)")


def evaluate(reference_runs: list[str], system_pdb: str, system_xml: str, folded_pdb: str,
             traj: str, status: str, eval_cfg: dict, sel_cfg: dict, seed: int, out: str,
             fes_plot: str, dist_plot: str) -> None:
    """Compare one round's CG simulation with the reference ensemble (metrics JSON + plots)."""
    import mdtraj as md

    from alcg import plots
    from alcg.evaluate import TicaSpace, compare
    from alcg.select import physical_mask
    from alcg.simulate import load_trajectory

    refs = _ca_trajs(reference_runs, system_pdb, system_xml)
    ref_xyz = np.concatenate(refs)
    tica = TicaSpace.fit(refs, eval_cfg["tica_lag_frames"], eval_cfg["tica_dim"])
    folded = md.load(folded_pdb)
    folded_ca = folded.xyz[0][folded.topology.select("name CA")]
    xyz, replicas, _ = load_trajectory(traj, status)
    valid = physical_mask(xyz, sel_cfg["bond_min_nm"], sel_cfg["bond_max_nm"], sel_cfg["min_distance_nm"]) \
        if len(xyz) else np.zeros(0, bool)
    metrics = compare(xyz[valid], ref_xyz, tica, folded_ca, eval_cfg.get("folded_rmsd_nm", 0.2),
                      eval_cfg["n_subsamples"], eval_cfg["subsample_size"], seed)
    n_exploded = sum(r["status"] != "ok" for r in replicas)
    metrics.update(exploded_fraction=n_exploded / max(len(replicas), 1),
                   invalid_frame_fraction=float(1 - valid.mean()) if len(valid) else 1.0)
    write_json(out, metrics)
    plots.tica_fes(tica.transform(ref_xyz), tica.transform(xyz[valid]), fes_plot)
    plots.distributions(ref_xyz, xyz[valid], dist_plot)
    log.info("evaluation: %s", metrics)


def summarize(rounds: list[dict], out_tsv: str, w1_plot: str) -> None:
    """Per-round table (AL and control side by side) and the W1-per-round plot."""
    from alcg import plots
    from alcg.summary import round_rows, write_tsv

    rows = round_rows(rounds)
    write_tsv(rows, out_tsv)
    plots.w1_per_round(rows, w1_plot)
