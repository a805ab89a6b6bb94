"""Stages of ``finegrained.smk``: system preparation, all-atom MD and AA -> CG projection."""
from __future__ import annotations

import logging

import numpy as np

from alcg.formats import run_file, dataset
from alcg.stages.validate import steps
from alcg.config.settings import ForceField, InitialMD, MDRun, ReferenceMD, System
from alcg.util.errors import DataError

log = logging.getLogger(__name__)


def prepare_system(system: System, ff: ForceField, start: dict, native: str | None, seed: int, pdb_out: str,
                   xml_out: str) -> None:
    """Build or read the start structure, prepare it for the fine-grained model, minimize; write
    its PDB and the System XML (``native``: the Go model's native file, else None)."""
    from alcg.finegrained.models import for_forcefield

    for_forcefield(ff).prepare(system, start, native, pdb_out, xml_out, seed)


def go_native(system: System, ff: ForceField, native_start: dict, seed: int, out: str, plot: str) -> None:
    """The Go model's native beads and contacts, from the native start; a contact-map plot."""
    from alcg.finegrained import gomodel
    from alcg.finegrained.models import GoModel

    native = GoModel(ff).native(system, native_start, seed)
    gomodel.save_native(out, native)
    gomodel.plot_contact_map(native, plot)


def mapping_of(system_pdb: str, system_xml: str):
    """(C-alpha mapping, PDBFile) of a prepared system."""
    from alcg.finegrained.mapping import CAMapping
    from alcg.finegrained.prepare import load_prepared

    pdb, omm_system = load_prepared(system_pdb, system_xml)
    return CAMapping(pdb.topology, omm_system), pdb


def cg_topology(system_pdb: str, system_xml: str, out: str) -> None:
    """The C-alpha PDB of the CG model (topology of every CG trajectory)."""
    import openmm.unit as unit

    from alcg.util.fileio import write_text

    mapping, pdb = mapping_of(system_pdb, system_xml)
    xyz = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))[mapping.ca_indices]
    write_text(out, mapping.cg_topology_pdb(xyz, pdb.topology))


def md_run(pdb: str, xml: str, out: str, md: MDRun, reference: bool, ff: ForceField, seed: int,
           threads: int | None = None) -> None:
    """Reference or initial MD: equilibrate, then record ``length_ps`` of MD (the reference of
    the Go model at its own friction: equilibrium does not depend on it)."""
    from alcg.finegrained.md import MDSpec, run_md
    from alcg.finegrained.models import for_forcefield

    if reference:
        ff = for_forcefield(ff).reference_forcefield()
    spec = MDSpec(n_steps=steps(md.length_ps, ff.timestep_fs), record_interval=md.record_interval_steps,
                  equilibration_steps=steps(md.equilibration_ps, ff.timestep_fs), restraint_k=0.0,
                  checkpoint_every=md.checkpoint_every, seed=seed)
    run_md(pdb, xml, out, spec, ff, threads=threads)


def import_run(trajectory: str, topology: str | None, system_pdb: str, system_xml: str, md: ReferenceMD | InitialMD,
               ff: ForceField, with_forces: bool, out: str, threads: int | None = None) -> None:
    """Import one existing all-atom trajectory as a run file (forces recomputed when asked)."""
    from alcg.finegrained.trajectory_import import import_trajectory

    import_trajectory(trajectory, topology, system_pdb, system_xml, ff, out, stride=md.stride,
                      forces=with_forces, threads=threads, checkpoint_every=md.checkpoint_every,
                      source_frame_interval_ps=md.frame_interval_ps)


def force_map(kind: str, system_pdb: str, system_xml: str, fit_run: str | None, ridge: float | None, out: str,
              plot: str) -> dict:
    """Build the run's force map (``mapping.force_map``), check it valid, write it and a figure
    of its weights; return its metadata.

    ``fit_run``: the fine-grained run the optimal map is fitted on (every frame), and on whose
    second half each map's noise is scored against a first-half fit (None for ``residue``,
    which needs no frames). Its cost is logged. An invalid map fails the job in one line.
    """
    from alcg.finegrained import force_maps as FM
    from alcg.finegrained.md import protein_atom_indices
    from alcg.finegrained.prepare import load_prepared
    from alcg.formats import force_map_file

    pdb, system = load_prepared(system_pdb, system_xml)
    if fit_run is None:
        atoms, forces, moments, cost_ns = protein_atom_indices(pdb.topology), None, {}, 0.0
    else:
        atoms, forces, moments, cost_ns = _fit_run_scores(fit_run, pdb.topology, system, ridge)
    fmap = FM.build(kind, system, pdb.topology, atoms, ridge, forces)
    meta = {"ridge": ridge, "fitted_on": fit_run, "n_frames": 0 if forces is None else int(len(forces)),
            "heldout_second_moment": moments, "fit_cost_ns": cost_ns,
            "units": {"heldout_second_moment": "(kJ/mol/nm)^2 per component", "fit_cost_ns": "ns"}}
    force_map_file.save(out, force_map_file.ForceMapFile(fmap.kind, fmap.atom_indices, fmap.weights, meta))
    FM.plot_weights(fmap, pdb.topology, plot, _force_map_title(kind, meta))
    _log_force_map(kind, len(atoms), meta)
    return meta


def _fit_run_scores(fit_run: str, topology, system, ridge: float) -> tuple:
    """(recorded atoms, forces kJ/mol/nm, held-out second moment per map, cost ns) of a fit run."""
    from alcg.finegrained import force_maps as FM
    from alcg.finegrained.mapping import CAMapping

    run = run_file.load(fit_run)
    moments = FM.heldout_second_moments(run.forces, system, topology, CAMapping(topology, system),
                                        run.atom_indices, ridge)
    return run.atom_indices, run.forces, moments, run_file.recorded_ns(fit_run)


def _force_map_title(kind: str, meta: dict) -> str:
    title = f"{kind} force map"
    if meta["fitted_on"] is not None:
        title += f", fitted on {meta['n_frames']} frames ({meta['fit_cost_ns']:.3g} ns of MD)"
    moments = {k: v for k, v in meta["heldout_second_moment"].items() if v is not None}
    if moments:
        title += "\nheld-out mean squared force, (kJ/mol/nm)$^2$:\n" + \
            ", ".join(f"{k} {v:.3g}" for k, v in moments.items())
    return title


def _log_force_map(kind: str, n_atoms: int, meta: dict) -> None:
    """The map, the fit run's cost, and each map's held-out noise, in the job's log."""
    if meta["fitted_on"] is None:
        log.info("%s force map over %d atoms, built from the system (no fit run)", kind, n_atoms)
        return
    log.info("%s force map over %d atoms; fit run %s: %d frames, %.4g ns of fine-grained MD",
             kind, n_atoms, meta["fitted_on"], meta["n_frames"], meta["fit_cost_ns"])
    moments = meta["heldout_second_moment"]
    log.info("held-out mean squared force per component, (kJ/mol/nm)^2 (optimal fitted on the first half, "
             "all scored on the second): %s", ", ".join(f"{k} {v:.4g}" for k, v in moments.items() if v is not None))
    if moments["optimal"] > moments["constrained"]:
        log.warning("the optimal map fitted on half the fit run leaves more noise on the other half than the "
                    "constrained map: too few frames for its free weights; raise mapping.fit_ps")


def load_force_map(path: str | None):
    """The :class:`alcg.finegrained.force_maps.ForceMap` of a force-map file; None for None
    (the ``constrained`` map of :meth:`CAMapping.map_forces`)."""
    if not path:
        return None
    from alcg.finegrained.force_maps import ForceMap
    from alcg.formats import force_map_file

    f = force_map_file.load(path)
    return ForceMap(f.kind, f.atom_indices, f.weights)


def pool_validation(pool_runs: list[str], mapping, fmap) -> "dataset.CGDataset":
    """The validation frames reserved in every equilibrium pool run
    (:func:`alcg.analysis.heldout.pool_validation_range`: after the iid arm's part, before the
    held-out set's), with the instantaneous labels of the force map ``fmap``: independent
    equilibrium frames, the same for every arm and round."""
    from alcg.analysis.heldout import pool_validation_range
    from alcg.finegrained.mapping import project_runs

    if not pool_runs:
        raise DataError("train.validation: pool needs the equilibrium pool (pool_md), and there is none")
    data = project_runs(pool_runs, mapping, 0, fmap)
    n_run = {dataset.run_key(p): run_file.frame_count(p) for p in pool_runs}
    keep = np.zeros(data.n_frames, bool)
    for key, n in n_run.items():
        start, stop = pool_validation_range(n)
        keep |= (data.source == key) & (data.frame >= start) & (data.frame < stop)
    return dataset.with_frames(data, **{k: getattr(data, k)[keep] for k in dataset.PER_FRAME})


def project(run_files: list[str], system_pdb: str, system_xml: str, round_index: int, out: str,
            val_fraction: float | None, validation: str, force_map_path: str | None = None,
            pool_runs: list[str] | None = None) -> int:
    """Project the ``ok`` AA runs onto CG beads and write a dataset; return its frame count.

    With ``val_fraction`` (round 0 only) the fixed validation frames are marked, chosen as
    ``validation`` says (``train.validation``): ``tail`` or ``trajectories`` of the round-0
    frames (:func:`alcg.formats.dataset.assign_validation`), or ``pool``: every round-0 frame
    trains and the validation frames are the equilibrium pool's reserved part
    (:func:`pool_validation`). With ``force_map_path`` (a force-map file) the bead forces are
    that map's, else the ``constrained`` map's.
    """
    from alcg.finegrained.mapping import project_runs

    mapping, _ = mapping_of(system_pdb, system_xml)
    good = [f for f in run_files if run_file.status(f) is run_file.Status.OK]
    fmap = load_force_map(force_map_path)
    data = project_runs(good, mapping, round_index, fmap)
    if val_fraction is not None and validation == "pool":
        data = dataset.add_validation(data, pool_validation(pool_runs or [], mapping, fmap))
    elif val_fraction is not None:
        data = dataset.assign_validation(data, val_fraction, validation)
    dataset.save(out, data)
    log.info("projected %d runs -> %d CG frames (force map: %s)", len(good), data.n_frames,
             "constrained" if fmap is None else fmap.kind)
    return data.n_frames
