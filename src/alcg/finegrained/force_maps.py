"""Force maps: which linear combination of fine-grained forces labels each CG bead.

A bead sits on its residue's C-alpha (the coordinate map, :mod:`alcg.finegrained.mapping`).
Any weights ``w[b, a]`` over the recorded atoms give a valid force label (its mean over the
fine-grained ensemble at fixed bead positions is the same mean force) when

- ``w[b, CA_b] = 1`` and ``w[b, CA_c] = 0`` for every other bead ``c`` (the weights reproduce
  the coordinate map), and
- atoms joined by a rigid constraint share one weight in every row (OpenMM's forces hold no
  constraint forces; a rigid group must be summed whole for them to cancel).

The maps differ only in the noise they leave (Krämer et al., J. Phys. Chem. Lett. 2023):

``constrained``
    The C-alpha and the atoms rigidly constrained to it (today's label; with ``HBonds``: HA).
``residue``
    Every atom of the bead's residue (valid while no constraint crosses residues).
``optimal``
    The valid weights that minimise the mean squared mapped force over the frames it is fitted
    on. Free weights are one per constraint group (the group of a bead's own C-alpha is fixed at
    1, groups holding another C-alpha at 0), so each bead's row is a ridge-regularised least
    squares problem in closed form: ``u = -(M_FF + r I)^-1 M_F0`` with ``M`` the second-moment
    matrix of the groups' summed forces and ``r = ridge * mean(diag M_FF)``. ``M`` itself is
    singular (a molecule's forces sum to zero), but its free block is not; the ridge guards
    the free groups whose forces are (nearly) zero or collinear.

Massless particles and virtual sites get weight 0 in every map (a fixed particle's force has
a non-zero conditional mean; a virtual site's force is already passed to its parents).

Units: forces kJ/mol/nm; second moments (kJ/mol/nm)^2 per component.
"""
from __future__ import annotations

import numpy as np
import openmm as mm
import openmm.app as app

from alcg.finegrained.mapping import CAMapping, ForceMap, constraint_components
from alcg.util.errors import DataError

KINDS = ("constrained", "residue", "optimal")


def _groups(system: mm.System, atom_indices: np.ndarray) -> list[np.ndarray]:
    """The constraint groups among the recorded atoms, as local indices, in order of first atom."""
    comps = constraint_components(system)
    local = {int(a): k for k, a in enumerate(atom_indices)}
    seen, groups = set(), []
    for a in atom_indices:
        key = min(comps[int(a)])
        if key in seen:
            continue
        seen.add(key)
        members = sorted(comps[int(a)])
        missing = [m for m in members if m not in local]
        if missing:
            raise DataError(f"atom {missing[0]} is constrained to recorded atom {int(a)} but was not recorded")
        groups.append(np.array([local[m] for m in members], dtype=np.int64))
    return groups


def constrained(mapping: CAMapping, atom_indices: np.ndarray) -> ForceMap:
    """Today's map: each bead's C-alpha and the atoms rigidly constrained to it."""
    w = np.zeros((mapping.n_beads, len(atom_indices)))
    for b, group in enumerate(mapping.force_groups):
        w[b, CAMapping._local(group, atom_indices)] = 1.0
    return ForceMap("constrained", np.asarray(atom_indices, np.int64), w)


def _excluded(system: mm.System, atom_indices: np.ndarray) -> np.ndarray:
    """Local indices of recorded particles that take weight 0: massless ones and virtual sites."""
    return np.array([k for k, a in enumerate(atom_indices)
                     if system.isVirtualSite(int(a)) or system.getParticleMass(int(a))._value == 0.0], dtype=np.int64)


def residue(topology: app.Topology, mapping: CAMapping, atom_indices: np.ndarray,
            system: mm.System | None = None) -> ForceMap:
    """Each bead's label is the summed force on every recorded atom of its residue; with
    ``system``, checked valid (a constraint that crosses residues, e.g. ``AllBonds``' peptide
    bond, makes it invalid: DataError)."""
    atoms = list(topology.atoms())
    bead_of_residue = {atoms[int(ca)].residue.index: b for b, ca in enumerate(mapping.ca_indices)}
    w = np.zeros((mapping.n_beads, len(atom_indices)))
    for k, a in enumerate(atom_indices):
        b = bead_of_residue.get(atoms[int(a)].residue.index)
        if b is not None:
            w[b, k] = 1.0
    fmap = ForceMap("residue", np.asarray(atom_indices, np.int64), w)
    if system is not None:
        w[:, _excluded(system, fmap.atom_indices)] = 0.0
        bad = violations(fmap, system, mapping)
        if bad:
            raise DataError(f"the residue force map is not valid for this system: {bad[0]}")
    return fmap


def optimal(forces: np.ndarray, system: mm.System, mapping: CAMapping, atom_indices: np.ndarray,
            ridge: float) -> ForceMap:
    """The valid map of least mean squared mapped force on ``forces`` (n, n_atoms, 3) (module doc).

    Parameters
    ----------
    forces : recorded force-field forces of the frames the map is fitted on (kJ/mol/nm)
    system : the OpenMM System whose constraints tie weights
    mapping : the C-alpha coordinate map
    atom_indices : the recorded atoms (system particle indices), in the order of ``forces``
    ridge : regularisation, relative to the mean diagonal of the free groups' second moments
        (dimensionless; ``mapping.ridge``)
    """
    atom_indices = np.asarray(atom_indices, np.int64)
    groups = _groups(system, atom_indices)
    f = np.asarray(forces, np.float64)
    gf = np.stack([f[:, g].sum(axis=1) for g in groups], axis=1)  # (n, G, 3)
    m = np.einsum("ngx,nhx->gh", gf, gf) / (gf.shape[0] * 3)
    group_of = np.empty(len(atom_indices), dtype=np.int64)
    for k, g in enumerate(groups):
        group_of[g] = k
    ca_group = group_of[CAMapping._local(mapping.ca_indices, atom_indices)]
    zero = set(group_of[_excluded(system, atom_indices)].tolist()) - set(ca_group.tolist())
    if len(set(ca_group.tolist())) < len(ca_group):
        raise DataError("two C-alphas are joined by rigid constraints: no valid force map exists "
                        "(forcefield.constraints: use HBonds)")
    w = np.zeros((mapping.n_beads, len(atom_indices)))
    free = np.setdiff1d(np.arange(len(groups)), np.concatenate([ca_group, sorted(zero)]).astype(np.int64))
    for b, own in enumerate(ca_group):
        u = np.zeros(len(groups))
        u[own] = 1.0
        if len(free):
            mff = m[np.ix_(free, free)]
            reg = ridge * float(np.mean(np.diag(mff))) if mff.size else 0.0
            u[free] = -np.linalg.solve(mff + reg * np.eye(len(free)), m[free, own])
        w[b] = u[group_of]
    return ForceMap("optimal", atom_indices, w)


def violations(fmap: ForceMap, system: mm.System, mapping: CAMapping) -> list[str]:
    """Why ``fmap`` is not a valid force map (module doc), one line each; empty when valid."""
    out = []
    ca = CAMapping._local(mapping.ca_indices, fmap.atom_indices)
    target = np.eye(mapping.n_beads)
    bad = np.argwhere(~np.isclose(fmap.weights[:, ca], target, atol=1e-9))
    out += [f"bead {b}: weight {fmap.weights[b, ca[c]]:.3g} on the C-alpha of bead {c} (must be {target[b, c]:g})"
            for b, c in bad]
    for g in _groups(system, fmap.atom_indices):
        spread = np.ptp(fmap.weights[:, g], axis=1) if len(g) > 1 else np.zeros(mapping.n_beads)
        for b in np.flatnonzero(spread > 1e-9):
            atoms = ", ".join(str(int(fmap.atom_indices[k])) for k in g)
            out.append(f"bead {b}: unequal weights on rigidly constrained atoms {atoms}")
    return out


def second_moment(fmap: ForceMap, forces: np.ndarray) -> float:
    """Mean squared mapped force per component over frames, beads and x, y, z ((kJ/mol/nm)^2).

    Every valid map has the same mean force, so in expectation a lower second moment is less
    label noise by the same amount (on finite frames the maps' noise-mean cross terms differ)."""
    return float(np.mean(fmap.apply(forces) ** 2))


def heldout_second_moments(forces: np.ndarray, system: mm.System, topology: app.Topology, mapping: CAMapping,
                           atom_indices: np.ndarray, ridge: float) -> dict[str, float | None]:
    """The noise each map leaves, scored on later frames than the optimal map is fitted on.

    The optimal map is fitted on the first half of ``forces`` (n, n_atoms, 3) kJ/mol/nm; every
    map's mean squared mapped force per component ((kJ/mol/nm)^2) is taken on the second half.
    Valid maps share the mean force, so the ratios bound the ratios of label noise from above
    (:func:`second_moment`). ``residue`` is None where it is not valid for ``system``.
    """
    f = np.asarray(forces, np.float64)
    half = f.shape[0] // 2
    if half < 1:
        raise DataError(f"the force-map fit run holds {f.shape[0]} frames: at least 2 are needed to score it")
    maps = {"constrained": constrained(mapping, atom_indices),
            "optimal": optimal(f[:half], system, mapping, atom_indices, ridge)}
    try:
        maps["residue"] = residue(topology, mapping, atom_indices, system)
    except DataError:
        maps["residue"] = None
    return {k: None if m is None else second_moment(m, f[half:]) for k, m in sorted(maps.items())}


def build(kind: str, system: mm.System, topology: app.Topology, atom_indices: np.ndarray, ridge: float,
          forces: np.ndarray | None = None) -> ForceMap:
    """The ``kind`` map of ``system`` over the recorded atoms ``atom_indices``, checked valid.

    ``forces`` (n, n_atoms, 3) kJ/mol/nm: the frames an ``optimal`` map is fitted on (ignored by
    the others). Raises DataError, in one line, when the map breaks a validity rule.
    """
    mapping = CAMapping(topology, system)
    atom_indices = np.asarray(atom_indices, np.int64)
    if kind == "constrained":
        fmap = constrained(mapping, atom_indices)
    elif kind == "residue":
        fmap = residue(topology, mapping, atom_indices, system)
    elif kind == "optimal":
        if forces is None:
            raise ValueError("the optimal force map needs the forces it is fitted on")
        fmap = optimal(forces, system, mapping, atom_indices, ridge)
    else:
        raise ValueError(f"unknown force map {kind!r} (known: {', '.join(KINDS)})")
    bad = violations(fmap, system, mapping)
    if bad:
        raise DataError(f"the {kind} force map is not valid ({len(bad)} violations): {bad[0]}")
    return fmap


def plot_weights(fmap: ForceMap, topology: app.Topology, path: str, title: str = "") -> None:
    """A heat map of the weights: beads (rows) by recorded atoms (columns, residue ticks)."""
    from alcg.util.figure_io import plt, save_figure

    atoms = list(topology.atoms())
    w = fmap.weights
    lim = max(float(np.abs(w).max()), 1e-12)
    fig, ax = plt.subplots(figsize=(min(max(6.0, 2 + 0.05 * w.shape[1]), 14), 2.0 + 0.3 * w.shape[0]))
    im = ax.imshow(w, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    res = [atoms[int(a)].residue.index for a in fmap.atom_indices]
    starts = [k for k in range(len(res)) if k == 0 or res[k] != res[k - 1]]
    ax.set_xticks(starts, [f"{res[k] + 1} {atoms[int(fmap.atom_indices[k])].residue.name}" for k in starts],
                  rotation=90, fontsize=7)
    ax.set_xlabel("recorded atoms (ticks: the first of each residue)")
    ax.set_ylabel("bead")
    ax.set_title(title or f"{fmap.kind} force map weights", fontsize=9)
    fig.colorbar(im, ax=ax, label="weight")
    save_figure(fig, path)
