"""OpenMM systems, integrators and platforms from the ``forcefield`` config section.

Units follow OpenMM: nm, ps, kJ/mol, K, amu.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import openmm as mm
import openmm.app as app
import openmm.unit as unit

from alcg.util.errors import ConfigError
from alcg.config.settings import ForceField
from alcg.finegrained.structure import PreparedStructure

log = logging.getLogger(__name__)

_CONSTRAINTS = {"none": None, "HBonds": app.HBonds, "AllBonds": app.AllBonds,
                "HAngles": app.HAngles}
#: water model name -> (force-field file, Modeller model name)
_WATER = {"tip3p": ("amber14/tip3p.xml", "tip3p"), "tip3pfb": ("amber14/tip3pfb.xml", "tip3p"),
          "opc": ("amber14/opc.xml", "4site"), "spce": ("amber14/spce.xml", "spce")}


@dataclass
class SolvatedModel:
    """Topology and positions after optional solvation."""

    topology: app.Topology
    positions: unit.Quantity


def forcefield_files(ff: ForceField) -> list[str]:
    """Force-field XML files for the configured solvent model."""
    files = list(ff.files)
    if ff.solvent == "explicit":
        files = [f for f in files if not f.startswith("implicit/")]
        files.append(_WATER[ff.explicit.water_model][0])
    elif ff.solvent == "vacuum":
        files = [f for f in files if not f.startswith("implicit/")]
    return files


def make_forcefield(ff: ForceField) -> app.ForceField:
    """Load the configured force field, with a clear error for an unknown file."""
    files = forcefield_files(ff)
    try:
        return app.ForceField(*files)
    except Exception as exc:
        raise ConfigError(f"forcefield.files: cannot load {files}: {exc}") from exc


def solvate(structure: PreparedStructure, ff: ForceField, forcefield: app.ForceField) -> SolvatedModel:
    """Add a water box and ions when ``solvent: explicit``; otherwise return as is."""
    if ff.solvent != "explicit":
        return SolvatedModel(structure.topology, structure.positions)
    ex = ff.explicit
    modeller = app.Modeller(structure.topology, structure.positions)
    modeller.addSolvent(forcefield, model=_WATER[ex.water_model][1],
                        padding=ex.padding_nm * unit.nanometer,
                        ionicStrength=ex.ionic_strength_molar * unit.molar,
                        neutralize=True)
    return SolvatedModel(modeller.topology, modeller.positions)


def create_system(topology: app.Topology, forcefield: app.ForceField, ff: ForceField) -> mm.System:
    """Create the OpenMM System: constraints, hydrogen mass repartitioning, cutoffs."""
    kwargs = dict(constraints=_CONSTRAINTS[ff.constraints],
                  rigidWater=True)
    hmass = ff.hydrogen_mass_amu
    if hmass:
        kwargs["hydrogenMass"] = hmass * unit.amu
    cutoff = ff.nonbonded_cutoff_nm
    if ff.solvent == "explicit":
        kwargs.update(nonbondedMethod=app.PME, nonbondedCutoff=(cutoff or 1.0) * unit.nanometer)
    elif cutoff:
        kwargs.update(nonbondedMethod=app.CutoffNonPeriodic, nonbondedCutoff=cutoff * unit.nanometer)
    else:
        kwargs.update(nonbondedMethod=app.NoCutoff)
    system = forcefield.createSystem(topology, **kwargs)
    if ff.solvent == "explicit":
        system.addForce(mm.MonteCarloBarostat(1.0 * unit.bar, ff.temperature_k * unit.kelvin))
    return system


def make_integrator(ff: ForceField, seed: int = 0) -> mm.Integrator:
    """Langevin-middle integrator at the configured temperature, friction and time step."""
    integrator = mm.LangevinMiddleIntegrator(
        ff.temperature_k * unit.kelvin, ff.friction_per_ps / unit.picosecond,
        ff.timestep_fs * unit.femtosecond)
    integrator.setRandomNumberSeed(int(seed) % (2**31 - 1))
    integrator.setConstraintTolerance(1e-6)
    return integrator


def choose_platform(name: str = "auto", threads: int | None = None) -> tuple[mm.Platform, dict]:
    """Return an OpenMM platform and its properties.

    ``auto`` takes the fastest available of CUDA, OpenCL and CPU (then Reference).
    ``threads`` (CPU platform): by default the job's thread count that Snakemake exports as
    ``OMP_NUM_THREADS``, else OpenMM's default (all cores).
    """
    if name == "auto":
        available = _platforms()
        order = ["CUDA", "OpenCL", "CPU", "Reference"]
        name = next(p for p in order if p in available)
        if name != "CUDA":
            log.warning("forcefield.platform auto: %s, because OpenMM has no CUDA platform here (%s)",
                        name, _no_cuda_reason())
    elif reason := platform_reason(name):
        raise ConfigError(reason)
    props: dict[str, str] = {}
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if name == "CPU" and threads:
        props["Threads"] = str(threads)
    if name in ("CUDA", "OpenCL"):
        from alcg.hardware.device import gpu_slot

        props["Precision"] = "mixed"
        slot = gpu_slot()  # several GPUs: the one this job holds; else OpenMM's own choice
        if slot is not None:
            props["DeviceIndex"] = str(slot)
    return mm.Platform.getPlatformByName(name), props


def _platforms() -> list[str]:
    """Names of the OpenMM platforms that loaded here (e.g. ``["Reference", "CPU", "CUDA"]``)."""
    return [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]


def platform_reason(name: str) -> str | None:
    """None when OpenMM has platform ``name`` here, else one line saying why not."""
    available = _platforms()
    if name in available:
        return None
    return f"forcefield.platform: {name!r} is not available here (have {available}; {_no_cuda_reason()})"


def _no_cuda_reason() -> str:
    """Why OpenMM's CUDA platform did not load, in one line (the plugin's own load failure)."""
    failures = [f.splitlines()[0] for f in mm.Platform.getPluginLoadFailures() if "CUDA" in f or "cuda" in f]
    return "; ".join(failures) or "no CUDA plugin installed (make setup GPU=cuda12|cuda13 adds it)"


def make_simulation(topology: app.Topology, system: mm.System, ff: ForceField, seed: int = 0,
                    threads: int | None = None) -> app.Simulation:
    """A Simulation on the configured (or automatically chosen) platform."""
    platform, props = choose_platform(ff.platform, threads)
    sim = app.Simulation(topology, system, make_integrator(ff, seed), platform, props)
    log.info("OpenMM platform: %s %s", platform.getName(), props)
    return sim


def minimize(sim: app.Simulation, tolerance_kj_mol_nm: float = 10.0, max_iterations: int = 0) -> float:
    """Minimize in place and return the final potential energy (kJ/mol)."""
    sim.minimizeEnergy(tolerance=tolerance_kj_mol_nm * unit.kilojoule_per_mole / unit.nanometer,
                       maxIterations=max_iterations)
    state = sim.context.getState(getEnergy=True)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def serialize(system: mm.System) -> str:
    """XML text of ``system``."""
    return mm.XmlSerializer.serialize(system)


def deserialize(xml: str) -> mm.System:
    """System from XML text."""
    return mm.XmlSerializer.deserialize(xml)
