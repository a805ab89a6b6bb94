"""Calibrate the two-bead Go model (:mod:`alcg.finegrained.gomodel`) of CLN025 or Trp-cage at 340 K.

    python benchmarks/go_calibration.py                # the committed table (~5 min, one core)
    python benchmarks/go_calibration.py --ns 2 --eps 1.0 1.5 --verify-ns 0   # a quick look
    python benchmarks/go_calibration.py --system trpcage   # Trp-cage (go_calibration_trpcage.*)

``--system trpcage`` calibrates Trp-cage TC5b (NLYIQWLKDGGPSSGRPPPS, PDB 1L2Y) instead: its
native structure is built from the backbone dihedrals of 1L2Y model 1 (:data:`TRPCAGE`) by
:meth:`alcg.finegrained.models.GoModel.native` (PeptideBuilder, PDBFixer, minimization in
amber14-all + GBn2), its extended start from the sequence alone; the report adds the C-alpha
RMSD of the built native to the published model and how its contacts compare with the
published model's. Its scan runs start half from the native, half from the extended
structure (``--scan-starts both``).

The native structure is built as the project builds its folded start: the backbone dihedrals
of ``system.starts.folded`` in the config, PeptideBuilder, PDBFixer, then the prepare stage's
minimization in the config's force field (:func:`alcg.finegrained.prepare.prepare_system`). The extended
start is built the same way from ``system.starts.extended``.

For every epsilon of the scan (in kT at the temperature), with the cooperativity term off
and on, one Langevin run (LangevinMiddleIntegrator, 5 fs, ``--friction``) from the native
structure records Q and the epsilon-scaled energy every ``--record-ps``. Every term but the
bonds is proportional to epsilon, so the runs of one family are reweighted to any epsilon
between them (MBAR, :class:`Mbar`): epsilon* is where the reweighted P_fold is 0.5. Two runs
at the scan's epsilon*, one from the native and one from the extended start, check it (their
P_fold should agree) and join the reweighting for the final epsilon*, F(Q) and barrier. Runs
with larger desolvation barriers (``--extra-barriers``) at the same epsilon show what a
higher barrier costs in folding time.

Definitions (all from the recorded Q, the fraction of native contacts of
:func:`alcg.finegrained.gomodel.fraction_native_contacts`):

- ``p_fold``: fraction of frames with Q > Q*; ``p_fold_se`` = sqrt(2 tau_fold P (1 - P) / T)
  with tau_fold the integrated autocorrelation time of the folded indicator;
- ``F(Q)`` = -ln P(Q) (kT) on n_contacts + 1 bins centred on k / n_contacts, so each bin
  holds the conformations with about k contacts formed;
- ``barrier_kT`` = F(Q_top) - F(Q_U): Q_U the lowest bin below Q*, Q_N the lowest at or
  above it, Q_top the highest bin between them (0 when that is Q_U or Q_N itself: no
  maximum between the minima); ``barrier_over_higher_min_kT`` = F(Q_top) -
  max(F(Q_U), F(Q_N)), the part both directions must climb (0 = downhill into one basin).
  Both are meaningful near P_fold = 0.5 only; from a run with few transitions they are noise;
- ``tau_fold_ns`` / ``tau_unfold_ns``: mean first passage times from transition counts with
  core sets (unfolded core Q <= Q* - delta, folded core Q >= Q* + delta; a frame between the
  cores belongs to the core last visited): time assigned to the unfolded (folded) state over
  the number of completed folding (unfolding) transitions; ``n_folding`` counts them;
- ``tau_int_q_ps``: integrated autocorrelation time of Q, tau = dt (1/2 + sum_k rho_k) with
  Sokal's automatic window (the smallest M with M >= 5 tau(M) / dt).
- ``epsilon_star_se_kT``: standard error of epsilon*, SE(P_fold) of the two runs at epsilon*
  over the slope dP_fold/d epsilon of the reweighted P_fold there;
- ``barrier_halves_kT``: the barrier of the folded-start and of the extended-start run at
  epsilon* alone; their difference is the honest size of the barrier's uncertainty.

A tau from a run not much longer than itself is biased low: ``length_over_tau`` says how many
folding times each run covers.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import yaml

from alcg.finegrained import gomodel
from alcg.finegrained import structure
from alcg.stages.validate import validate
from alcg.finegrained.prepare import prepare_system
from alcg.config.settings import ForceField, System, parse

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "measured"
TIMESTEP_PS = 0.005
#: a bond longer than native + this (nm) means the run has blown up (thermal stretch ~0.01 nm)
BOND_BROKEN_NM = 0.1

#: the Go settings of the calibration (the proposed schema defaults but epsilon)
DEFAULTS = dict(bond_k_kj_mol_nm2=20000.0, angle_k_per_epsilon=40.0, dihedral_k_per_epsilon=1.0,
                chirality_k_per_epsilon=10.0, contact_cutoff_nm=0.45, min_sequence_separation=3,
                repulsion_radius_nm=0.4, cooperativity="desolvation",
                desolvation_barrier_per_epsilon=2.0, solvent_separated_well_per_epsilon=0.0,
                water_diameter_nm=0.3, desolvation_width_nm=0.1, q_threshold=0.7,
                bead_mass="mapped", reference_friction_per_ps=0.1)


#: Trp-cage TC5b (Neidigh, Fesinmeyer & Andersen, Nat. Struct. Biol. 9, 425, 2002; PDB 1L2Y).
#: phi of residues 2..20 and psi of residues 1..19 (degrees, 0.1 rounded) computed with
#: mdtraj (compute_phi / compute_psi) from MODEL 1 of 1L2Y, read from the copy of the entry's
#: first model in github.com/ZuckermanLab/mrmc, file 1l2y.pdb (commit 8d887333e051); the
#: copy in github.com/brianjimenez/uoc_clase_16_04_2020 (1l2y.pdb) has the same coordinates.
TRPCAGE = dict(
    sequence="NLYIQWLKDGGPSSGRPPPS",
    phi=[-44.0, -66.5, -65.2, -64.7, -73.1, -64.9, -59.5, -78.0, 110.8, 55.2, -58.0, -81.8,
         -124.1, 67.9, -144.0, -70.1, -69.5, -77.3, -78.1],
    psi=[-56.1, -51.3, -30.9, -45.9, -30.3, -43.4, -43.3, -25.7, -8.8, 8.1, -124.4, -28.8,
         19.1, 13.4, 25.2, 131.3, 160.1, 145.7, 124.2],
    source="PDB 1L2Y model 1 (Neidigh et al. 2002), phi/psi computed with mdtraj from "
           "github.com/ZuckermanLab/mrmc 1l2y.pdb (commit 8d887333e051)",
    # C-alpha coordinates of 1L2Y model 1 (Angstrom, the same file): the RMSD check
    ca_angstrom=[[-8.608, 3.135, -1.618], [-4.923, 4.002, -2.452], [-3.690, 2.738, 0.981],
                 [-5.857, -0.449, 0.613], [-4.122, -1.167, -2.743], [-0.716, -0.631, -0.993],
                 [-1.641, -2.932, 1.963], [-3.024, -5.791, -0.269], [0.466, -6.016, -1.905],
                 [2.060, -6.618, 1.593], [2.626, -2.967, 2.723], [6.333, -2.533, 3.806],
                 [7.049, -6.179, 2.704], [6.389, -5.315, -1.015], [9.451, -3.116, -1.870],
                 [7.289, 0.084, -2.054], [6.782, 3.088, 0.345], [3.287, 4.031, 1.686],
                 [1.185, 6.543, -0.353], [0.852, 10.027, 1.285]],
    # native contacts of 1L2Y model 1 itself by the same rule (heavy atoms within 0.45 nm,
    # |i - j| >= 3; residues from 1), computed once from the same file with
    # alcg.finegrained.gomodel.native_beads: what the built native's contacts are compared with
    published_contacts=[[1, 4], [1, 5], [2, 5], [2, 6], [2, 19], [3, 6], [3, 7], [3, 18],
                        [3, 19], [4, 7], [4, 8], [5, 8], [5, 9], [6, 9], [6, 10], [6, 11],
                        [6, 12], [6, 16], [6, 17], [6, 18], [6, 19], [7, 10], [7, 11], [9, 14],
                        [9, 16], [10, 13], [10, 14], [11, 14], [11, 16], [12, 15]],
)

#: per-system defaults of the scan (a command-line value wins)
SYSTEM_DEFAULTS = {
    "cln025": dict(eps=[0.8, 1.0, 1.2, 1.5, 1.8], eps_coop=[1.3, 1.4, 1.5, 1.6],
                   extra_barriers=[2.5], out=OUT / "go_calibration.json", scan_starts="folded",
                   title="CLN025"),
    "trpcage": dict(eps=[], eps_coop=[1.2, 1.3, 1.4], extra_barriers=[],
                    out=OUT / "go_calibration_trpcage.json", scan_starts="both",
                    title="Trp-cage TC5b"),
}


# --------------------------------------------------------------------------- structures


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD of point sets ``a`` and ``b`` (n, 3) after optimal superposition (their unit)."""
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.sqrt(np.mean(np.sum((a @ rot - b) ** 2, axis=1))))


def trpcage_starts(config: Path, go: gomodel.Go, seed: int,
                   cache: Path | None) -> tuple[gomodel.GoNative, np.ndarray, dict]:
    """Trp-cage's native beads, extended-start beads and the check of the built native.

    The native is built as the project builds a folded start (:data:`TRPCAGE` dihedrals,
    PeptideBuilder, PDBFixer at the config's pH) and relaxed by the Go model's own native
    step, :meth:`alcg.finegrained.models.GoModel.native` (minimization in amber14-all + GBn2); the
    config's ``forcefield`` section gives that step its thermostat and platform only. With
    ``cache``, the native is read from (or written to) that ``.npz`` file.
    """
    from alcg.finegrained.models import GoModel

    cfg = validate(yaml.safe_load(config.read_text()))
    ff = dataclasses.replace(parse(ForceField, cfg["forcefield"]), kind="go", go=go)
    starts = {"folded": {"phi": TRPCAGE["phi"], "psi": TRPCAGE["psi"]}, "extended": {}}
    system_cfg = parse(System, {**cfg["system"], "sequence": TRPCAGE["sequence"], "pdb": None,
                                "starts": starts})
    t0 = time.perf_counter()
    if cache is not None and cache.is_file():
        native = gomodel.load_native(cache)
    else:
        native = GoModel(ff).native(system_cfg, starts["folded"], seed)
        if cache is not None:
            gomodel.save_native(cache, native)
    extended_atoms = structure.prepare_from_config(system_cfg, starts["extended"])
    extended = gomodel.bead_positions(extended_atoms.topology, extended_atoms.positions)
    raw = app.PDBFile(io.StringIO(structure.build_from_sequence(
        TRPCAGE["sequence"], TRPCAGE["phi"], TRPCAGE["psi"])))
    raw_ca = np.array([raw.positions[a.index].value_in_unit(unit.nanometer)
                       for a in raw.topology.atoms() if a.name == "CA"])
    published = np.asarray(TRPCAGE["ca_angstrom"]) / 10.0
    built = {tuple(int(k) + 1 for k in p) for p in native.contact_residues}
    paper = {tuple(p) for p in TRPCAGE["published_contacts"]}
    check = {"sequence": TRPCAGE["sequence"], "dihedral_source": TRPCAGE["source"],
             "phi_deg": TRPCAGE["phi"], "psi_deg": TRPCAGE["psi"],
             "ca_rmsd_built_nm": round(kabsch_rmsd(raw_ca, published), 4),
             "ca_rmsd_native_nm": round(kabsch_rmsd(native.xyz_nm[native.ca], published), 4),
             "contacts_built": len(built), "contacts_published_model": len(paper),
             "contacts_shared": len(built & paper),
             "contacts_only_built": sorted(list(p) for p in built - paper),
             "contacts_only_published_model": sorted(list(p) for p in paper - built),
             "build_s": round(time.perf_counter() - t0, 1)}
    return native, extended, check


def atomistic_starts(config: Path, workdir: Path) -> dict[str, app.PDBFile]:
    """The folded and extended starts, prepared and minimized as the prepare stage does."""
    cfg = validate(yaml.safe_load(config.read_text()))
    system_cfg, ff = parse(System, cfg["system"]), parse(ForceField, cfg["forcefield"])
    starts = {}
    for name in ("folded", "extended"):
        pdb = workdir / f"{name}.pdb"
        start = cfg["system"]["starts"].get(name)
        prepare_system(system_cfg, ff, start, pdb, workdir / f"{name}.xml")
        starts[name] = app.PDBFile(str(pdb))
    return starts


# --------------------------------------------------------------------------- simulation


def simulate(native: gomodel.GoNative, go: gomodel.Go, start_xyz: np.ndarray, ns: float,
             temperature_k: float, friction_per_ps: float, record_ps: float, seed: int,
             platform_name: str = "Reference") -> tuple[np.ndarray, np.ndarray, float]:
    """Langevin run of the Go model: Q and ``s`` every ``record_ps``, and the wall time (s).

    ``s`` = (E - E_bonds) / eps: every term but the bonds is proportional to eps, so the
    reduced potential of frame x at any epsilon is E_bonds(x)/kT + eps/kT s(x) (for
    reweighting, :func:`mbar`). A run that blows up (a non-finite energy, or a bond stretched
    more than :data:`BOND_BROKEN_NM` beyond native, far beyond its ~0.01 nm thermal stretch)
    stops there and returns the frames before it (fewer than asked: :func:`_run` reports it)."""
    system = gomodel.create_system(native, go)
    integrator = mm.LangevinMiddleIntegrator(temperature_k * unit.kelvin,
                                             friction_per_ps / unit.picosecond,
                                             TIMESTEP_PS * unit.picosecond)
    integrator.setRandomNumberSeed(seed)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName(platform_name))
    context.setPositions(start_xyz)
    mm.LocalEnergyMinimizer.minimize(context, 1.0, 200)
    context.setVelocitiesToTemperature(temperature_k * unit.kelvin, seed)
    stride = max(1, round(record_ps / TIMESTEP_PS))
    n_frames = int(round(ns * 1000.0 / (stride * TIMESTEP_PS)))
    xyz = np.empty((n_frames, native.n_beads, 3))
    energy = np.empty(n_frames)
    scaled = gomodel.force_groups(t for t in gomodel.FORCE_GROUPS if t != "bonds")
    bonded = np.concatenate([np.stack([native.ca[:-1], native.ca[1:]], axis=1),
                             np.stack([native.ca, native.sc], axis=1)[native.sc >= 0]])
    max_bond = np.linalg.norm(native.xyz_nm[bonded[:, 0]] - native.xyz_nm[bonded[:, 1]],
                              axis=1) + BOND_BROKEN_NM
    t0 = time.perf_counter()
    for k in range(n_frames):
        integrator.step(stride)
        state = context.getState(getPositions=True, getEnergy=True, groups=scaled)
        xyz[k] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        energy[k] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        bonds = np.linalg.norm(xyz[k, bonded[:, 0]] - xyz[k, bonded[:, 1]], axis=1)
        if not (np.isfinite(energy[k]) and np.all(bonds < max_bond)):
            # the run blew up (a bond torn far beyond thermal stretch): keep what came before
            xyz, energy = xyz[:k], energy[:k]
            break
    wall = time.perf_counter() - t0
    return gomodel.fraction_native_contacts(xyz, native), energy / go.epsilon_kj_mol, wall


def platform_speed(native: gomodel.GoNative, go: gomodel.Go, temperature_k: float) -> dict:
    """ns/day of each available OpenMM CPU-side platform on 0.1 ns (Q every 1 ps)."""
    speeds = {}
    available = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
    for name in ("Reference", "CPU"):
        if name in available:
            *_, wall = simulate(native, go, native.xyz_nm, 0.1, temperature_k, 1.0, 1.0, 1, name)
            speeds[name] = round(0.1 / wall * 86400.0, 0)
    return speeds


# --------------------------------------------------------------------------- analysis


def integrated_autocorrelation_time(x: np.ndarray, dt: float, c: float = 5.0) -> float:
    """tau = dt (1/2 + sum_{k=1}^{M} rho_k), Sokal's window: smallest M >= c tau(M) / dt."""
    x = np.asarray(x, dtype=float) - np.mean(x)
    n = len(x)
    if n < 4 or np.var(x) == 0:
        return float("nan")
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    rho = acf / acf[0]
    tau = 0.5 + np.cumsum(rho[1:])
    window = np.arange(1, n)
    ok = window >= c * tau
    m = int(np.argmax(ok)) if ok.any() else n - 2
    return float(dt * tau[m])


def free_energy(q: np.ndarray, n_contacts: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres k / n_contacts and F = -ln P(Q) (kT, minimum 0; inf for an empty bin)."""
    centres = np.arange(n_contacts + 1) / n_contacts
    edges = (np.arange(n_contacts + 2) - 0.5) / n_contacts
    counts, _ = np.histogram(q, bins=edges)
    with np.errstate(divide="ignore"):
        f = -np.log(counts / counts.sum())
    return centres, f - f[np.isfinite(f)].min()


def barrier(centres: np.ndarray, f: np.ndarray, q_star: float) -> dict:
    """Barrier of F(Q) between the unfolded (Q < Q*) and folded (Q >= Q*) minima, kT."""
    below = np.where(centres < q_star, f, np.inf)
    above = np.where(centres >= q_star, f, np.inf)
    if not (np.isfinite(below).any() and np.isfinite(above).any()):
        return {"barrier_kT": None, "barrier_over_higher_min_kT": None, "q_top": None,
                "q_unfolded_min": None, "q_folded_min": None}
    lo, hi = int(np.argmin(below)), int(np.argmin(above))
    top = lo + int(np.argmax(f[lo:hi + 1]))
    inside = lo < top < hi  # else F only climbs (or falls) from one minimum to the other
    return {"barrier_kT": round(float(f[top] - f[lo]), 2) if inside else 0.0,
            "barrier_over_higher_min_kT": round(float(f[top] - max(f[lo], f[hi])), 2),
            "q_top": round(float(centres[top]), 3), "q_unfolded_min": round(float(centres[lo]), 3),
            "q_folded_min": round(float(centres[hi]), 3)}


def core_transitions(q: np.ndarray, q_star: float, delta: float, dt_ps: float) -> dict:
    """Folding/unfolding counts and mean first passage times with core sets Q* -+ delta."""
    state = np.full(len(q), -1)
    current = -1
    for k, value in enumerate(q):
        if value <= q_star - delta:
            current = 0
        elif value >= q_star + delta:
            current = 1
        state[k] = current
    known = state[state >= 0]
    changes = known[1:] != known[:-1]
    n_fold = int(np.sum(changes & (known[1:] == 1)))
    n_unfold = int(np.sum(changes & (known[1:] == 0)))
    t_u, t_f = np.sum(known == 0) * dt_ps, np.sum(known == 1) * dt_ps
    return {"n_folding": n_fold, "n_unfolding": n_unfold,
            "tau_fold_ns": round(t_u / n_fold / 1000.0, 3) if n_fold else None,
            "tau_unfold_ns": round(t_f / n_unfold / 1000.0, 3) if n_unfold else None}


def summarize(q: np.ndarray, n_contacts: int, q_star: float, delta: float, dt_ps: float) -> dict:
    """P_fold, its standard error, F(Q), barrier, folding times and tau_int of one run."""
    folded = (q > q_star).astype(float)
    p = float(folded.mean())
    tau_f = integrated_autocorrelation_time(folded, dt_ps) if 0 < p < 1 else float("nan")
    length_ps = len(q) * dt_ps
    centres, f = free_energy(q, n_contacts)
    out = {"p_fold": round(p, 3),
           "p_fold_se": round(float(np.sqrt(2 * tau_f * p * (1 - p) / length_ps)), 3)
           if np.isfinite(tau_f) else None,
           "tau_int_q_ps": round(integrated_autocorrelation_time(q, dt_ps), 1),
           "tau_int_folded_ps": round(tau_f, 1) if np.isfinite(tau_f) else None,
           **barrier(centres, f, q_star), **core_transitions(q, q_star, delta, dt_ps),
           "F_kT": [None if not np.isfinite(v) else round(float(v), 2) for v in f]}
    tau = [t for t in (out["tau_fold_ns"], out["tau_unfold_ns"]) if t]
    out["length_over_tau"] = round(length_ps / 1000.0 / max(tau), 1) if tau else None
    return out


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


class Mbar:
    """MBAR over runs at several epsilon of one Hamiltonian family (Shirts & Chodera 2008).

    The reduced potential of frame n at epsilon_k (in kT) is u_k(n) = eps_k s_n plus the
    bond energy, which is the same in every state and cancels. Runs at the same epsilon are
    one state. Correlated frames leave the estimates consistent; no error bars are given.
    """

    def __init__(self, runs: list[dict]):
        eps = sorted({r["eps_kT"] for r in runs})
        self.eps = np.asarray(eps)
        self.s = np.concatenate([r["_s"] for r in runs])
        self.q = np.concatenate([r["_q"] for r in runs])
        n_k = np.array([sum(len(r["_s"]) for r in runs if r["eps_kT"] == e) for e in eps])
        u = np.outer(self.eps, self.s)
        f = np.zeros(len(eps))
        for _ in range(100000):
            self.log_den = _logsumexp(np.log(n_k)[:, None] + f[:, None] - u, axis=0)
            new = -_logsumexp(-u - self.log_den[None, :], axis=1)
            new -= new[0]
            if np.max(np.abs(new - f)) < 1e-9:
                break
            f = new
        self.f = new

    def weights(self, eps_kT: float) -> np.ndarray:
        """Normalized weights of all frames at ``eps_kT``."""
        log_w = -eps_kT * self.s - self.log_den
        w = np.exp(log_w - log_w.max())
        return w / w.sum()

    def p_fold(self, eps_kT: float, q_star: float) -> float:
        return float(np.sum(self.weights(eps_kT) * (self.q > q_star)))

    def epsilon_at_half(self, q_star: float) -> float | None:
        """epsilon (kT) where P_fold = 0.5, by bisection inside the sampled range."""
        lo, hi = float(self.eps.min()), float(self.eps.max())
        if not self.p_fold(lo, q_star) < 0.5 < self.p_fold(hi, q_star):
            return None
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.p_fold(mid, q_star) < 0.5 else (lo, mid)
        return 0.5 * (lo + hi)

    def summary(self, eps_kT: float, n_contacts: int, q_star: float) -> dict:
        """P_fold, F(Q) and barrier at ``eps_kT``, with the effective sample size."""
        w = self.weights(eps_kT)
        centres = np.arange(n_contacts + 1) / n_contacts
        edges = (np.arange(n_contacts + 2) - 0.5) / n_contacts
        hist, _ = np.histogram(self.q, bins=edges, weights=w)
        with np.errstate(divide="ignore"):
            f = -np.log(hist / hist.sum())
        f -= f[np.isfinite(f)].min()
        return {"eps_kT": round(eps_kT, 4), "p_fold": round(self.p_fold(eps_kT, q_star), 3),
                "n_eff": int(1.0 / np.sum(w ** 2)), "n_frames": int(len(w)),
                "states_kT": [round(float(e), 4) for e in self.eps],
                **barrier(centres, f, q_star),
                "F_kT": [None if not np.isfinite(v) else round(float(v), 2) for v in f]}


# --------------------------------------------------------------------------- report


def markdown(result: dict) -> str:
    """A small markdown report of ``result``."""
    s = result["settings"]
    lines = [
        f"# Go-model calibration ({result.get('title', 'CLN025')}, two beads per residue)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{result['temperature_k']} K, LangevinMiddle {TIMESTEP_PS * 1000:g} fs, friction "
        f"{result['friction_per_ps']}/ps, Q every {result['record_ps']} ps, "
        f"Q* = {s['q_threshold']}, "
        f"core sets Q* -+ {result['core_delta']}; {result['n_contacts']} native contacts, "
        f"{result['n_beads']} beads. kT = {result['kT_kj_mol']:.4f} kJ/mol. Platform speed "
        f"(ns/day, this model): {result['platform_ns_per_day']}.",
        "",
        f"Desolvation term: h_db = {s['desolvation_barrier_per_epsilon']} eps, h_ssm = "
        f"{s['solvent_separated_well_per_epsilon']} eps, d_w = {s['water_diameter_nm']} nm, "
        f"w = {s['desolvation_width_nm']} nm.",
        "",
        *_native_lines(result),
        "| cooperativity | h_db (eps) | eps (kT) | eps (kJ/mol) | ns | P_fold | SE | "
        "barrier (kT) | "
        "over higher min (kT) | Q_top | tau_fold (ns) | tau_unfold (ns) | folding events | "
        "tau_int Q (ps) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["scan"] + result["verification"] + result["extra"]:
        label = run["cooperativity"] + (f" ({run['start']} start)" if "start" in run else "")
        lines.append(
            f"| {label} | {run['h_db']} | {run['eps_kT']:.3f} | {run['eps_kj_mol']:.3f} | "
            f"{run['ns']:g} | "
            f"{run['p_fold']} | {run['p_fold_se']} | {run['barrier_kT']} | "
            f"{run['barrier_over_higher_min_kT']} | {run['q_top']} | {run['tau_fold_ns']} | "
            f"{run['tau_unfold_ns']} | {run['n_folding']} | {run['tau_int_q_ps']} |")
    blown = [f"{r['cooperativity']} h_db={r['h_db']} eps={r['eps_kT']} "
             f"{r.get('start', 'folded')} start at {r['blew_up_at_ns']} ns"
             for r in result["scan"] + result["verification"] + result["extra"]
             if r.get("blew_up_at_ns") is not None]
    if blown:
        lines += ["", "Runs that blew up (a bond torn; their rows and the reweighting use the "
                  "frames before it only): " + "; ".join(blown) + "."]
    lines += ["", "Reweighted in epsilon (MBAR over the runs of one family; `states` are the "
              "sampled epsilons, n_eff the effective number of frames at epsilon*):", "",
              "| runs | epsilon* (kT) | P_fold | barrier (kT) | over higher min (kT) | Q_top | "
              "n_eff / frames | states (kT) |", "|---|---|---|---|---|---|---|---|"]
    h_db = s["desolvation_barrier_per_epsilon"]
    rows = [(result.get("mbar_none"), "no cooperativity, scan"),
            (result.get("mbar_scan"), f"desolvation h_db = {h_db}, scan"),
            (result.get("mbar_all"), f"desolvation h_db = {h_db}, scan + both starts")]
    rows += [(m if "eps_kT" in m else None, f"desolvation h_db = {m['h_db']}, scan")
             for m in result.get("mbar_families", [])]
    for m, label in rows:
        if m:
            lines.append(f"| {label} | {m['eps_kT']} | {m['p_fold']} | {m['barrier_kT']} | "
                         f"{m['barrier_over_higher_min_kT']} | {m['q_top']} | "
                         f"{m['n_eff']} / {m['n_frames']} | {m['states_kT']} |")
    se = result.get("epsilon_star_se_kT")
    lines += ["", f"Calibrated epsilon: {result['epsilon_star_kT']} kT = "
              f"{result['epsilon_star_kj_mol']} kJ/mol"
              + (f" (SE {se} kT from SE(P_fold) of the two runs at epsilon* over dP_fold/d eps = "
                 f"{result['dp_fold_d_eps_per_kT']} per kT)" if se else "") + ".", ""]
    if result.get("simulation_wall_s"):
        lines += [f"Simulation wall time of this report: {result['simulation_wall_s']} s "
                  f"({result['platform_ns_per_day']} ns/day on this machine).", ""]
    lines += ["F(Q) (kT) on bins centred at k/n_contacts (k contacts formed), per run and "
              "reweighted:", ""]
    for key in ("mbar_none", "mbar_scan", "mbar_all"):
        if result.get(key):
            lines.append(f"- {key} at {result[key]['eps_kT']} kT: {result[key]['F_kT']}")
    for m in result.get("mbar_families", []):
        if "eps_kT" in m:
            lines.append(f"- mbar h_db={m['h_db']} at {m['eps_kT']} kT: {m['F_kT']}")
    for run in result["scan"] + result["verification"] + result["extra"]:
        label = f"{run['cooperativity']} h_db={run['h_db']} eps={run['eps_kT']:.3f}" + (
            f" {run['start']}" if "start" in run else "")
        lines.append(f"- {label}: {run['F_kT']}")
    lines += ["", result["verdict"], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--system", choices=sorted(SYSTEM_DEFAULTS), default="cln025",
                   help="cln025: the config's system and starts; trpcage: Trp-cage TC5b "
                        "built from the 1L2Y dihedrals (see TRPCAGE)")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml")
    p.add_argument("--eps", type=float, nargs="*", default=None,
                   help="epsilon in kT, cooperativity off (cln025: 0.8 1.0 1.2 1.5 1.8; "
                        "trpcage: none)")
    p.add_argument("--eps-coop", type=float, nargs="+", default=None,
                   help="epsilon in kT, cooperativity on (cln025: 1.3 1.4 1.5 1.6; "
                        "trpcage: 1.2 1.3 1.4)")
    p.add_argument("--barrier-scan", type=float, nargs="+", action="append", default=[],
                   metavar="H_DB EPS",
                   help="one more cooperative family: desolvation barrier H_DB (eps) at the "
                        "epsilons EPS... (kT), reweighted on its own; repeatable")
    p.add_argument("--extra-barriers", type=float, nargs="*", default=None,
                   help="desolvation barrier heights (eps) run once more at epsilon*: the "
                        "trade-off of barrier against folding time (cln025: 2.5; trpcage: none)")
    p.add_argument("--extra-ns", type=float, default=60.0)
    p.add_argument("--ns", type=float, default=8.0,
                   help="length of each scan point (ns); with --scan-starts both, two runs of "
                        "half this length")
    p.add_argument("--scan-starts", choices=("folded", "both"), default=None,
                   help="start each scan point from the native (folded) or half from the "
                        "native, half from the extended start (cln025: folded; trpcage: both)")
    p.add_argument("--verify-ns", type=float, default=30.0,
                   help="length of each of the two runs at epsilon* (ns); 0 skips them")
    p.add_argument("--temperature", type=float, default=340.0)
    p.add_argument("--friction", type=float, default=DEFAULTS["reference_friction_per_ps"])
    p.add_argument("--record-ps", type=float, default=1.0)
    p.add_argument("--core-delta", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--platform", default="Reference")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override a Go setting, e.g. desolvation_width_nm=0.08")
    p.add_argument("--native-cache", type=Path, default=None,
                   help="trpcage: read the built native beads from this .npz (write it first "
                        "if absent); for repeated runs, skips the atomistic minimization")
    p.add_argument("--save-q", type=Path, default=None,
                   help="also write every run's Q series (and s = E'/eps) to this .npz, for "
                        "re-analysis with another Q* without rerunning")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON report (cln025: benchmarks/measured/go_calibration.json; "
                        "trpcage: go_calibration_trpcage.json); the .md goes beside it")
    return p


def _system_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options the user left unset from :data:`SYSTEM_DEFAULTS` of ``--system``."""
    defaults = SYSTEM_DEFAULTS[args.system]
    for key in ("eps", "eps_coop", "extra_barriers", "out", "scan_starts"):
        if getattr(args, key) is None:
            setattr(args, key, defaults[key])
    for family in args.barrier_scan:
        if len(family) < 3:
            raise SystemExit("--barrier-scan: give H_DB and at least two epsilons")
    return args


def _settings(overrides: list[str]) -> dict:
    values = dict(DEFAULTS)
    for item in overrides:
        key, value = item.split("=", 1)
        if key not in values:
            raise SystemExit(f"--set: unknown Go setting {key!r}")
        values[key] = type(values[key])(value) if not isinstance(values[key], str) else value
    return values


def _run(native, settings, eps_kT, coop, start_xyz, ns, args, kT, seed) -> dict:
    go = gomodel.Go(epsilon_kj_mol=eps_kT * kT, **{**settings, "cooperativity": coop})
    q, s, wall = simulate(native, go, start_xyz, ns, args.temperature, args.friction,
                          args.record_ps, seed, args.platform)
    out = {"cooperativity": coop, "h_db": settings["desolvation_barrier_per_epsilon"]
           if coop != "none" else None,
           "eps_kT": round(eps_kT, 4), "eps_kj_mol": round(eps_kT * kT, 4),
           "ns": ns, "wall_s": round(wall, 1),
           "blew_up_at_ns": round(len(q) * args.record_ps / 1000.0, 3)
           if len(q) < int(round(ns * 1000.0 / args.record_ps)) else None,
           **summarize(q, len(native.contact_sigma_nm), settings["q_threshold"], args.core_delta,
                       args.record_ps)}
    print(json.dumps({k: v for k, v in out.items() if k != "F_kT"}), flush=True)
    out["_q"], out["_s"] = q, s
    return out


def _pooled(runs: list[dict], n_contacts: int, q_star: float) -> dict:
    """P_fold, F(Q) and barrier of several runs together (the reference-style estimate)."""
    q = np.concatenate([r["_q"] for r in runs])
    centres, f = free_energy(q, n_contacts)
    p = [r["p_fold"] for r in runs]
    se = [r["p_fold_se"] for r in runs]
    out = {"p_fold": round(float(np.mean(q > q_star)), 3), **barrier(centres, f, q_star),
           "F_kT": [None if not np.isfinite(v) else round(float(v), 2) for v in f]}
    if len(runs) == 2 and all(se):
        diff = abs(p[0] - p[1])
        out["halves_p_fold_diff"] = round(diff, 3)
        out["halves_diff_in_se"] = round(diff / float(np.hypot(*se)), 2)
        out["p_fold_se"] = round(float(np.hypot(*se)) / 2, 3)
    return out


def _native_lines(result: dict) -> list[str]:
    """The native-structure section of the report (Trp-cage: built from published dihedrals)."""
    c = result.get("native_check")
    contacts = ", ".join(f"{i}-{j} ({s:.2f})" for (i, j), s in
                         zip(result["contacts"], result["contact_sigma_nm"]))
    lines = [f"Native contacts (residues from 1, native bead distance in nm): {contacts}.", ""]
    if not c:
        return lines
    return [
        f"Native structure: {c['sequence']} built from the backbone dihedrals of "
        f"{c['dihedral_source']} (phi residues 2..n: {c['phi_deg']}; psi residues 1..n-1: "
        f"{c['psi_deg']}), PeptideBuilder, PDBFixer (pH of the config), minimized in "
        "amber14-all + GBn2 (alcg.finegrained.models.GoModel.native).",
        "",
        f"C-alpha RMSD to 1L2Y model 1 after optimal superposition: {c['ca_rmsd_built_nm']} nm "
        f"as built, {c['ca_rmsd_native_nm']} nm after the minimization (the Go native). "
        f"Native contacts: {c['contacts_built']} in the built native, "
        f"{c['contacts_published_model']} in 1L2Y model 1 by the same rule, "
        f"{c['contacts_shared']} shared; only built: {c['contacts_only_built']}; only in the "
        f"published model: {c['contacts_only_published_model']} (PeptideBuilder's side-chain "
        "rotamers are not the NMR ones). The native was not bit-reproducible before "
        "2026-12-07 (unseeded hydrogens, multithreaded minimization), and contacts near the "
        "0.45 nm cutoff can change between builds (another "
        "build of the same start gave 30 contacts and a native C-alpha RMSD of 0.102 nm): "
        "--native-cache pins one native for all runs of a calibration.",
        "",
    ] + lines


def _verdict(result: dict) -> str:
    final = result.get("mbar_all") or result.get("mbar_scan")
    if not final:
        return "P_fold does not cross 0.5 inside the cooperative scan: no epsilon*."
    lines = [f"All cooperative runs reweighted (MBAR): P_fold = 0.5 at epsilon* = "
             f"{final['eps_kT']} kT = {result['epsilon_star_kj_mol']} kJ/mol (h_db = "
             f"{result['settings']['desolvation_barrier_per_epsilon']} eps), where the barrier "
             f"F(Q_top) - F(Q_U) is {final['barrier_kT']} kT at Q = {final['q_top']} "
             f"(aim >= 2 kT)."]
    if result.get("mbar_none"):
        none = result["mbar_none"]
        lines.append(f"Without the cooperativity term: epsilon* = {none['eps_kT']} kT, barrier "
                     f"{none['barrier_kT']} kT.")
    pooled = result.get("verification_pooled")
    if pooled and "halves_diff_in_se" in pooled:
        lines.append(f"The two {result['verification'][0]['ns']:g} ns runs at the scan's "
                     f"epsilon* {result['verification'][0]['eps_kT']} kT (folded and extended "
                     f"start) give P_fold {[r['p_fold'] for r in result['verification']]}: "
                     f"they differ by {pooled['halves_diff_in_se']} combined SE.")
    n_blown = sum(r.get("blew_up_at_ns") is not None
                  for r in result["scan"] + result["verification"] + result["extra"])
    if n_blown:
        lines.append(f"{n_blown} run(s) blew up and were cut there (see the report).")
    if result.get("epsilon_star_se_kT"):
        lines.append(f"SE of epsilon*: {result['epsilon_star_se_kT']} kT.")
    if result.get("barrier_halves_kT"):
        lines.append(f"Barrier of each of the two runs alone: {result['barrier_halves_kT']} kT.")
    taus = [r["tau_fold_ns"] for r in result["verification"] if r["tau_fold_ns"]]
    if taus:
        lines.append(f"Folding time there {min(taus)}-{max(taus)} ns; tau_int(Q) "
                     f"{[r['tau_int_q_ps'] for r in result['verification']]} ps.")
    for m in result.get("mbar_families", []):
        if "eps_kT" in m:
            lines.append(f"With h_db = {m['h_db']} eps (scan alone, MBAR): epsilon* = "
                         f"{m['eps_kT']} kT, barrier {m['barrier_kT']} kT.")
    for run in result["extra"]:
        lines.append(f"With h_db = {run['h_db']} eps at the same epsilon: P_fold {run['p_fold']}, "
                     f"barrier {run['barrier_kT']} kT, folding time {run['tau_fold_ns']} ns "
                     f"({run['n_folding']} folding events in {run['ns']:g} ns).")
    barriers = ([final["barrier_kT"] or 0.0] + [r["barrier_kT"] or 0.0 for r in result["extra"]]
                + [m.get("barrier_kT") or 0.0 for m in result.get("mbar_families", [])])
    # an empty bin (inf) is no measured barrier
    best = max((b for b in barriers if np.isfinite(b)), default=0.0)
    title = result.get("title", "CLN025")
    if best < 2.0:
        lines.append(f"{title} does not reach a 2 kT barrier along Q in these runs.")
    else:
        lines.append(f"{title} reaches a barrier of {best} kT (>= 2 kT) in these runs.")
    return " ".join(lines)


def _scan_point(native, settings, eps_kT, coop, starts, args, kT) -> list[dict]:
    """The run(s) of one scan point: from the native, or half from each start."""
    if args.scan_starts == "folded":
        return [_run(native, settings, eps_kT, coop, starts["folded"], args.ns, args, kT,
                     args.seed)]
    return [{"start": name, **_run(native, settings, eps_kT, coop, starts[name], args.ns / 2,
                                   args, kT, args.seed + 50 * k)}
            for k, name in enumerate(("folded", "extended"))]


def _mbar_summary(runs: list[dict], n_c: int, q_star: float) -> dict | None:
    if len({r["eps_kT"] for r in runs}) < 2:
        return None
    mbar = Mbar(runs)
    star = mbar.epsilon_at_half(q_star)
    return mbar.summary(star, n_c, q_star) if star else None


def main(argv: list[str] | None = None) -> dict:
    args = _system_defaults(_parser().parse_args(argv))
    settings = _settings(args.set)
    kT = gomodel.KB_KJ_MOL_K * args.temperature
    probe = gomodel.Go(epsilon_kj_mol=kT, **settings)
    check = None
    if args.system == "cln025":
        with tempfile.TemporaryDirectory() as tmp:
            starts = atomistic_starts(args.config, Path(tmp))
        native = gomodel.native_beads(starts["folded"].topology, starts["folded"].positions,
                                      probe)
        extended = gomodel.bead_positions(starts["extended"].topology,
                                          starts["extended"].positions)
    else:
        native, extended, check = trpcage_starts(args.config, probe, args.seed, args.native_cache)
        print(json.dumps(check), flush=True)
    bead_starts = {"folded": native.xyz_nm, "extended": extended}
    given = argv if argv is not None else sys.argv[1:]
    result = {"command": " ".join(["python benchmarks/go_calibration.py", *given]),
              "system": args.system, "title": SYSTEM_DEFAULTS[args.system]["title"],
              "temperature_k": args.temperature, "kT_kj_mol": kT, "friction_per_ps": args.friction,
              "record_ps": args.record_ps, "core_delta": args.core_delta,
              "scan_starts": args.scan_starts,
              "n_beads": native.n_beads, "n_contacts": int(len(native.contact_sigma_nm)),
              "contacts": [[int(i) + 1, int(j) + 1] for i, j in native.contact_residues],
              "contact_sigma_nm": [round(float(s), 3) for s in native.contact_sigma_nm],
              "settings": settings, "machine": {"platform": platform.platform(),
                                                "openmm": mm.__version__}}
    if check is not None:
        result["native_check"] = check
    t_start = time.perf_counter()
    result["platform_ns_per_day"] = platform_speed(native, probe, args.temperature)
    scan = [r for e in args.eps
            for r in _scan_point(native, settings, e, "none", bead_starts, args, kT)]
    coop = [r for e in args.eps_coop
            for r in _scan_point(native, settings, e, settings["cooperativity"], bead_starts,
                                 args, kT)]
    families = []
    for h, *eps_list in args.barrier_scan:
        varied = {**settings, "cooperativity": "desolvation",
                  "desolvation_barrier_per_epsilon": h}
        families.append((h, [r for e in eps_list
                             for r in _scan_point(native, varied, e, "desolvation", bead_starts,
                                                  args, kT)]))
    result["scan"] = scan + coop + [r for _, runs in families for r in runs]
    n_c, q_star = result["n_contacts"], settings["q_threshold"]
    result["mbar_none"] = _mbar_summary(scan, n_c, q_star) if scan else None
    result["mbar_scan"] = _mbar_summary(coop, n_c, q_star)
    result["mbar_families"] = [{"h_db": h, **(_mbar_summary(runs, n_c, q_star) or {})}
                               for h, runs in families]
    eps_star = (result.get("mbar_scan") or {}).get("eps_kT")
    result["verification"] = []
    if eps_star and args.verify_ns > 0:
        for seed, name in enumerate(("folded", "extended")):
            run = _run(native, settings, eps_star, settings["cooperativity"], bead_starts[name],
                       args.verify_ns, args, kT, args.seed + 100 + seed)
            result["verification"].append({"start": name, **run})
    if result["verification"]:
        result["verification_pooled"] = _pooled(result["verification"], n_c, q_star)
        result["barrier_halves_kT"] = [r["barrier_kT"] for r in result["verification"]]
        mbar = Mbar(coop + result["verification"])
        star = mbar.epsilon_at_half(q_star)
        result["mbar_all"] = mbar.summary(star, n_c, q_star) if star else None
        se = result["verification_pooled"].get("p_fold_se")
        if star and se:
            d = 0.02
            slope = (mbar.p_fold(star + d, q_star) - mbar.p_fold(star - d, q_star)) / (2 * d)
            result["dp_fold_d_eps_per_kT"] = round(slope, 3)
            result["epsilon_star_se_kT"] = round(se / slope, 4) if slope > 0 else None
    final = result.get("mbar_all") or result.get("mbar_scan")
    result["epsilon_star_kT"] = final["eps_kT"] if final else None
    result["epsilon_star_kj_mol"] = round(final["eps_kT"] * kT, 3) if final else None
    result["extra"] = []
    for h_extra in args.extra_barriers if eps_star else []:
        varied = {**settings, "desolvation_barrier_per_epsilon": h_extra}
        result["extra"].append(_run(native, varied, eps_star, "desolvation", native.xyz_nm,
                                    args.extra_ns, args, kT, args.seed + 200))
    result["simulation_wall_s"] = round(time.perf_counter() - t_start, 1)
    result["verdict"] = _verdict(result)
    runs = result["scan"] + result["verification"] + result["extra"]
    if args.save_q is not None:
        np.savez_compressed(args.save_q, **{
            f"run{k}_{r['cooperativity']}_h{r['h_db']}_eps{r['eps_kT']}_{r.get('start', 'folded')}"
            f"_{part}": r[f"_{part}"] for k, r in enumerate(runs) for part in ("q", "s")})
    for run in runs:
        run.pop("_q"), run.pop("_s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(result["verdict"])
    return result


if __name__ == "__main__":
    main()
