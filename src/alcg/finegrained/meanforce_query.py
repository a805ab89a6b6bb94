"""A ``mean_force`` oracle query: hold the C-alpha atoms, sample the rest, label the mean force.

The C-alpha configuration ``R0`` is the start structure's. Where no constraint touches a
C-alpha (the Go model) the C-alphas are held exactly: their mass is set to 0, so OpenMM's
integrator never moves them. Otherwise (atoms with ``HBonds``: OpenMM refuses a constraint on
a massless particle) a harmonic restraint ``0.5 k |r_CA - R0|^2`` holds them; it sits in its
own force group (:data:`RESTRAINT_GROUP`), which is never read into a label, and the label is
corrected for its bias by umbrella integration (:mod:`alcg.finegrained.meanforce`).

After ``equilibration_steps`` held but unsampled, a force sample is taken every
``record_interval`` steps for ``n_steps``: the mapped bead force and the C-alpha positions.
The force map is the caller's :class:`alcg.finegrained.force_maps.ForceMap` (any valid map
has the same mean force at fixed C-alphas; the residue or optimal map has less noise), or,
without one, the sum over each bead's rigid C-alpha group (:class:`alcg.finegrained.mapping.CAMapping`).
A map must be built from the system before its C-alphas are made massless (force maps give
massless particles weight 0). The run file
(:mod:`alcg.formats.run_file`) holds one frame: the held configuration, the mean atom forces, and the
label in ``bead_forces`` / ``bead_force_var``. ``simulated_ps`` counts every step run.

:func:`label_frames` labels many configurations (the held-out set) in one OpenMM context,
each sampled in chunks until its standard error reaches a target (C-alphas fixed only).

Units: nm, ps, kJ/mol, kJ/mol/nm.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
from tqdm import tqdm

from alcg.formats import run_file
from alcg.finegrained import meanforce, system as omm
from alcg.util.errors import SimulationError
from alcg.finegrained.mapping import CAMapping
from alcg.finegrained.force_maps import ForceMap
from alcg.config.settings import ForceField
from alcg.finegrained.structure import pdb_text

log = logging.getLogger(__name__)

#: OpenMM force group of the C-alpha restraint (never part of a label)
RESTRAINT_GROUP = 31
LABEL_GROUPS = ((1 << 32) - 1) & ~(1 << RESTRAINT_GROUP)


@dataclass(frozen=True)
class MeanForceSpec:
    """What a mean-force query runs.

    Attributes
    ----------
    n_steps : sampled steps
    record_interval : steps between force samples
    equilibration_steps : held, unsampled steps before sampling
    restraint_k : C-alpha restraint (kJ/mol/nm^2), used only when the C-alphas cannot be fixed
    n_blocks : blocks of the standard error
    seed : velocities and thermostat
    """

    n_steps: int
    record_interval: int
    equilibration_steps: int
    restraint_k: float
    n_blocks: int
    seed: int


def ca_can_be_fixed(system: mm.System, ca: np.ndarray) -> bool:
    """True when no constraint of ``system`` involves a C-alpha (then mass 0 holds it exactly)."""
    ca_set = set(int(i) for i in ca)
    return not any({i, j} & ca_set for i, j, _ in
                   (system.getConstraintParameters(k) for k in range(system.getNumConstraints())))


def add_restraint(system: mm.System, ca: np.ndarray, r0_nm: np.ndarray, k: float) -> None:
    """Harmonic restraint of the ``ca`` particles to ``r0_nm`` (N, 3), in :data:`RESTRAINT_GROUP`."""
    force = mm.CustomExternalForce("0.5*k_mf*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
    force.addGlobalParameter("k_mf", float(k))
    for name in ("x0", "y0", "z0"):
        force.addPerParticleParameter(name)
    for i, r in zip(ca, r0_nm):
        force.addParticle(int(i), [float(v) for v in r])
    force.setForceGroup(RESTRAINT_GROUP)
    force.setName("mean_force_restraint")
    system.addForce(force)


def _mapper(mapping: CAMapping, fmap: ForceMap | None):
    """Bead forces (N, 3) from all the system's particle forces (n_particles, 3), kJ/mol/nm."""
    if fmap is None:
        return lambda f: mapping.map_forces(f[None])[0]
    if fmap.weights.shape[0] != mapping.n_beads:
        raise SimulationError(f"the force map has {fmap.weights.shape[0]} beads, the topology "
                              f"{mapping.n_beads}")
    return lambda f: fmap.apply(f[fmap.atom_indices][None])[0]


def sample(system: mm.System, topology: app.Topology, positions_nm: np.ndarray, spec: MeanForceSpec,
           ff: ForceField, threads: int | None = None, hold: str | None = None,
           fmap: ForceMap | None = None) -> dict:
    """Hold the C-alphas of ``positions_nm`` and sample; return the raw samples.

    ``hold``: ``fixed`` or ``restrained``; None: fixed where :func:`ca_can_be_fixed`.
    ``fmap``: the bead force label (module doc), built from ``system`` before this call
    (it changes masses); None: each bead's rigid C-alpha group.

    Returns
    -------
    dict with ``bead_forces`` (n, N, 3) kJ/mol/nm (restraint excluded), ``ca`` (n, N, 3) nm,
    ``atom_forces`` (mean, n_atoms, 3), ``energy`` (n,) kJ/mol without the restraint,
    ``r0`` (N, 3), ``held`` (``fixed`` or ``restrained``), ``kt`` (kJ/mol), ``simulated_ps``.
    """
    mapping = CAMapping(topology, system)
    to_beads = _mapper(mapping, fmap)
    ca = mapping.ca_indices
    r0 = np.asarray(positions_nm, np.float64)[ca]
    fixed = ca_can_be_fixed(system, ca) if hold is None else hold == "fixed"
    if fixed and not ca_can_be_fixed(system, ca):
        raise SimulationError("C-alphas cannot be fixed (mass 0): a constraint involves one; restrain them")
    if fixed:
        for i in ca:
            system.setParticleMass(int(i), 0.0)
    else:
        add_restraint(system, ca, r0, spec.restraint_k)
    sim = omm.make_simulation(topology, system, ff, spec.seed, threads)
    if topology.getPeriodicBoxVectors() is not None:
        sim.context.setPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    sim.context.setPositions(np.asarray(positions_nm) * unit.nanometer)
    sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, spec.seed)
    if spec.equilibration_steps:
        sim.step(spec.equilibration_steps)
    forces, cas, energies, atom_sum = [], [], [], 0.0
    for _ in range(spec.n_steps // spec.record_interval):
        sim.step(spec.record_interval)
        state = sim.context.getState(getPositions=True, getForces=True, getEnergy=True, groups=LABEL_GROUPS)
        f = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        e = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if not np.isfinite(e) or not np.all(np.isfinite(f)):
            raise SimulationError(f"mean-force sampling blew up (energy {e:.3g} kJ/mol) at sample {len(energies)}")
        forces.append(to_beads(f))
        cas.append(x[ca])
        energies.append(e)
        atom_sum = atom_sum + f
    n = max(len(energies), 1)
    steps = spec.equilibration_steps + len(energies) * spec.record_interval
    return {"bead_forces": np.asarray(forces, np.float64), "ca": np.asarray(cas, np.float64),
            "atom_forces": atom_sum / n, "energy": np.asarray(energies), "r0": r0,
            "held": "fixed" if fixed else "restrained", "simulated_ps": steps * ff.timestep_fs * 1e-3,
            "kt": meanforce.KB_KJ_MOL_K * ff.temperature_k}


def estimate(samples: dict, spec: MeanForceSpec) -> tuple[meanforce.MeanForce, meanforce.MeanForce | None]:
    """(label, uncorrected restrained average or None) from :func:`sample`'s output."""
    shape = samples["r0"].shape
    if samples["held"] == "fixed":
        mf = meanforce.block_mean(samples["bead_forces"], spec.n_blocks)
        return meanforce.MeanForce(mf.force.reshape(shape), mf.sem2.reshape(shape), mf.n_samples), None
    mf = meanforce.umbrella_mean_force(samples["ca"], samples["r0"], samples["kt"], spec.n_blocks)
    raw = meanforce.block_mean(samples["bead_forces"], spec.n_blocks)
    return (meanforce.MeanForce(mf.force.reshape(shape), mf.sem2.reshape(shape), mf.n_samples),
            meanforce.MeanForce(raw.force.reshape(shape), raw.sem2.reshape(shape), raw.n_samples))


def run_mean_force(pdb_path: str | Path, xml_path: str | Path, out_path: str | Path, spec: MeanForceSpec,
                   ff: ForceField, threads: int | None = None, fmap: ForceMap | None = None) -> dict:
    """One mean-force query from ``pdb_path`` (its C-alphas are ``R0``); write the run file.

    ``fmap``: the label's force map over the system's particles (:func:`sample`); None:
    each bead's rigid C-alpha group. Its kind is recorded in the metadata (``fmap``).

    Returns its metadata.
    """
    from alcg.finegrained.md import protein_atom_indices

    pdb = app.PDBFile(str(pdb_path))
    system = omm.deserialize(Path(xml_path).read_text())
    start = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    s = sample(system, pdb.topology, start, spec, ff, threads, fmap=fmap)
    label, raw = estimate(s, spec)
    indices = protein_atom_indices(pdb.topology)
    held = start.copy()
    held[CAMapping(pdb.topology).ca_indices] = s["r0"]
    meta = {"labels": "mean_force", "held": s["held"], "spec": spec.__dict__, "n_samples": label.n_samples,
            "force_map": "ca_group" if fmap is None else fmap.kind,
            "simulated_ps": s["simulated_ps"], "record_interval_steps": spec.record_interval,
            "timestep_fs": ff.timestep_fs, "temperature_k": ff.temperature_k, "source_pdb": str(pdb_path),
            "label_sem_rms_kj_mol_nm": float(np.sqrt(label.var)),
            "uncorrected_rms_difference_kj_mol_nm":
                None if raw is None else float(np.sqrt(np.mean((raw.force - label.force) ** 2)))}
    run_file.save_run(out_path, held[indices][None], s["atom_forces"][indices][None], [float(np.mean(s["energy"]))],
                   [s["simulated_ps"]], indices, pdb_text(pdb.topology, held, indices), meta,
                   bead_forces=label.force[None], bead_force_var=np.array([label.var]))
    log.info("%s: mean force from %d samples (%s C-alphas), rms standard error %.3g kJ/mol/nm",
             Path(out_path).name, label.n_samples, s["held"], np.sqrt(label.var))
    return meta


@dataclass(frozen=True)
class FrameLabels:
    """Mean-force labels of many configurations (:func:`label_frames`).

    Attributes
    ----------
    forces : (F, N, 3) mean force, kJ/mol/nm
    se2 : (F,) squared standard error, mean over the 3N components, (kJ/mol/nm)^2
    n_samples : (F,) force samples behind each label
    simulated_ps : MD time run in all, equilibration included (ps)
    """

    forces: np.ndarray
    se2: np.ndarray
    n_samples: np.ndarray
    simulated_ps: float


def _read_forces(sim: app.Simulation) -> np.ndarray:
    """Force-field forces (n_particles, 3) kJ/mol/nm of the restraint-free groups; SimulationError if not finite."""
    f = sim.context.getState(getForces=True, groups=LABEL_GROUPS).getForces(asNumpy=True)
    f = f.value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    if not np.all(np.isfinite(f)):
        raise SimulationError("mean-force sampling blew up: a force is not finite")
    return f


def _next_total(n: int, se2: float, target: float | None, chunk: int, cap: int) -> int:
    """Samples to have after the next chunk: the standard error falls as 1/n, so aim at
    ``1.2 n se2 / target`` (at least one more chunk, at most the cap)."""
    if target is None or se2 <= target:
        return n
    return int(min(cap, max(n + chunk, np.ceil(1.2 * n * se2 / target))))


def label_frames(system: mm.System, topology: app.Topology, positions_nm: np.ndarray, spec: MeanForceSpec,
                 ff: ForceField, fmap: ForceMap | None = None, se2_target: float | None = None,
                 max_steps: int | None = None, threads: int | None = None, progress: bool = True) -> FrameLabels:
    """Mean-force labels of the configurations ``positions_nm`` (F, n_particles, 3), nm.

    One OpenMM context serves every frame: its C-alphas are fixed (mass 0; a system with a
    constraint on a C-alpha is refused), and for each frame the positions are set, velocities
    drawn (seed ``spec.seed + frame``), ``spec.equilibration_steps`` run unsampled, then a
    force sample taken every ``spec.record_interval`` steps, ``spec.n_steps`` at a time, until
    the frame's mean squared standard error per component (block mean over ``spec.n_blocks``
    blocks) is at most ``se2_target`` or ``max_steps`` sampled steps are reached.

    Parameters
    ----------
    system : the fine-grained System (not changed: a copy is held)
    topology : its topology
    positions_nm : (F, n_particles, 3) configurations, nm
    spec : sampling (``n_steps``: the chunk, and the whole run without ``se2_target``)
    ff : force field (temperature, timestep, platform)
    fmap : the label's map over the system's particles, built from ``system`` (checked
        valid); None: each bead's rigid C-alpha group
    se2_target : (kJ/mol/nm)^2 per component; None: one chunk per frame
    max_steps : cap on sampled steps per frame (default ``spec.n_steps``)
    threads : CPU platform threads
    progress : a progress bar

    Returns
    -------
    :class:`FrameLabels`
    """
    from alcg.finegrained import force_maps

    mapping = CAMapping(topology, system)
    if not ca_can_be_fixed(system, mapping.ca_indices):
        raise SimulationError("label_frames holds the C-alphas fixed (mass 0), but a constraint involves one")
    if fmap is not None and (bad := force_maps.violations(fmap, system, mapping)):
        raise SimulationError(f"the {fmap.kind} force map is not valid: {bad[0]}")
    held = omm.deserialize(omm.serialize(system))
    for i in mapping.ca_indices:
        held.setParticleMass(int(i), 0.0)
    to_beads = _mapper(mapping, fmap)
    sim = omm.make_simulation(topology, held, ff, spec.seed, threads)
    if topology.getPeriodicBoxVectors() is not None:
        sim.context.setPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    chunk = max(spec.n_steps // spec.record_interval, spec.n_blocks)
    cap = max((max_steps or spec.n_steps) // spec.record_interval, chunk)
    x = np.asarray(positions_nm, np.float64)
    out = np.zeros((len(x), mapping.n_beads, 3))
    se2, n_samples, steps = np.zeros(len(x)), np.zeros(len(x), np.int64), 0
    began = time.perf_counter()
    for k in tqdm(range(len(x)), desc="mean-force labels", unit="frame", disable=not progress, mininterval=5):
        sim.context.setPositions(x[k] * unit.nanometer)
        sim.context.setVelocitiesToTemperature(ff.temperature_k * unit.kelvin, spec.seed + k)
        sim.step(spec.equilibration_steps)
        samples, want = [], chunk
        while len(samples) < want:
            for _ in range(want - len(samples)):
                sim.step(spec.record_interval)
                samples.append(to_beads(_read_forces(sim)))
            mf = meanforce.block_mean(np.asarray(samples), spec.n_blocks)
            want = _next_total(len(samples), mf.var, se2_target, chunk, cap)
        out[k], se2[k], n_samples[k] = mf.force.reshape(out[k].shape), mf.var, len(samples)
        steps += spec.equilibration_steps + len(samples) * spec.record_interval
    simulated = steps * ff.timestep_fs * 1e-3
    log.info("mean-force labels of %d frames: %.0f ps simulated in %.0f s; mean SE^2 %.3g (max %.3g) "
             "(kJ/mol/nm)^2 per component, %d-%d samples per frame", len(x), simulated,
             time.perf_counter() - began, float(se2.mean()) if len(x) else 0.0, float(se2.max(initial=0.0)),
             int(n_samples.min()) if len(x) else 0, int(n_samples.max(initial=0)))
    return FrameLabels(out, se2, n_samples, simulated)
