"""Physical prior energy of a C-alpha chain, fitted by Boltzmann inversion.

Terms (energies in kJ/mol, lengths in nm, angles in rad):

- harmonic bonds (i, i+1): ``k/2 (r - r0)^2`` with ``r0`` the mean and ``k = kT / var``
- harmonic angles (i, i+1, i+2): same form in the angle
- pseudo-dihedrals (i..i+3): Fourier series fitted to ``-kT ln p(phi)``
- repulsion of pairs |i-j| >= 3: ``kT (sigma / r)^6`` with ``sigma`` a low percentile of
  the observed distances (excluded volume)

The fitted parameters are stored as ``priors.json``; this module owns that file
(:func:`save`, :func:`load`, :class:`FittedPriors`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from alcg.cg import geometry
from alcg.util.errors import DataError
from alcg.util.fileio import write_json
from alcg.config.settings import Priors

#: Boltzmann constant, kJ/mol/K
KB_KJ_MOL_K = 0.0083144626


class PriorEnergy(nn.Module):
    """Prior energy of a chain of ``n_beads`` beads; parameters are buffers (not trained)."""

    def __init__(self, n_beads: int, kt: float, bond_r0, bond_k, angle_t0, angle_k,
                 dih_cos, dih_sin, rep_sigma: float):
        super().__init__()
        self.n_beads = n_beads
        self.kt = float(kt)
        as_t = lambda v: torch.as_tensor(np.asarray(v), dtype=torch.get_default_dtype())  # noqa: E731
        for name, value in dict(bond_r0=bond_r0, bond_k=bond_k, angle_t0=angle_t0, angle_k=angle_k,
                                dih_cos=dih_cos, dih_sin=dih_sin).items():
            self.register_buffer(name, as_t(value))
        self.register_buffer("rep_sigma", as_t(rep_sigma))
        self.register_buffer("pairs", geometry.nonbonded_pairs(n_beads), persistent=False)

    def params(self) -> dict:
        """Constructor arguments, as plain numbers/lists (to save with a model)."""
        out = {k: getattr(self, k).detach().cpu().numpy().tolist()
               for k in ("bond_r0", "bond_k", "angle_t0", "angle_k", "dih_cos", "dih_sin", "rep_sigma")}
        return {"n_beads": self.n_beads, "kt": self.kt, **out}

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energy of each term per structure (B,) for coordinates x (B, N, 3) nm."""
        r = geometry.bonds(x)
        t = geometry.angles(x)
        out = {"bonds": (0.5 * self.bond_k * (r - self.bond_r0) ** 2).sum(-1),
               "angles": (0.5 * self.angle_k * (t - self.angle_t0) ** 2).sum(-1)}
        if self.dih_cos.numel() and self.n_beads >= 4:
            phi = geometry.dihedrals(x)[..., None]
            n = torch.arange(1, self.dih_cos.shape[-1] + 1, device=x.device, dtype=x.dtype)
            out["dihedrals"] = (self.dih_cos * torch.cos(n * phi) + self.dih_sin * torch.sin(n * phi)).sum((-1, -2))
        if self.pairs.shape[1]:
            d = geometry.pair_distances(x, self.pairs)
            out["repulsion"] = (self.kt * (self.rep_sigma / d) ** 6).sum(-1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Total prior energy (B,) in kJ/mol."""
        return sum(self.terms(x).values())


def statistical_inefficiency(phi: np.ndarray) -> float:
    """Statistical inefficiency g >= 1 (frames per independent sample) of a pseudo-dihedral
    series phi (rad), frames in their recorded order (several runs one after another): the
    larger integrated autocorrelation time of cos phi and sin phi
    (:func:`alcg.util.autocorrelation.integrated_time`); a series that never moves counts as
    one sample. Runs that differ from one another show as slow correlation across their joins,
    as batch means would count them; within a run it measures how fast the angle forgets in the
    states visited, not how rarely the run crosses between states: a lower bound on g for rare
    transitions."""
    from alcg.util.autocorrelation import integrated_time

    taus = [integrated_time(f(np.asarray(phi, float))) for f in (np.cos, np.sin)]
    return float(min(max(taus), len(phi)))


def _fourier_fit(phi: np.ndarray, kt: float, n_terms: int, n_bins: int,
                 counts_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Fourier coefficients (kJ/mol) fitted to ``-kT ln p(phi)`` of the histogram with +1 per
    bin added to ``counts / counts_scale`` (``counts_scale``: frames per counted sample)."""
    counts, edges = np.histogram(phi, bins=n_bins, range=(-np.pi, np.pi))
    counts = counts / counts_scale
    centers = 0.5 * (edges[1:] + edges[:-1])
    free = -kt * np.log((counts + 1.0) / (counts.sum() + n_bins))
    n = np.arange(1, n_terms + 1)
    basis = np.hstack([np.ones((n_bins, 1)), np.cos(centers[:, None] * n), np.sin(centers[:, None] * n)])
    w = np.sqrt(counts + 1.0)
    coef, *_ = np.linalg.lstsq(basis * w[:, None], free * w, rcond=None)
    return coef[1:1 + n_terms], coef[1 + n_terms:]


def fit_priors(coords_nm: np.ndarray, temperature_k: float, settings: Priors) -> PriorEnergy:
    """Fit a :class:`PriorEnergy` to CG coordinates by Boltzmann inversion.

    Parameters
    ----------
    coords_nm : (n, N, 3) C-alpha coordinates in nm
    temperature_k : temperature of the ensemble in K (kT in kJ/mol sets the energy scale)
    settings : ``priors`` settings: Fourier terms per pseudo-dihedral, histogram bins of the
        dihedral fit and what their +1 pseudocount is added to (``dihedral_counts``: frame
        counts, or counts of independent samples with the frames in their recorded order),
        percentile (in %) of the non-bonded distances that sets the repulsion
    """
    dihedral_terms, n_bins = settings.dihedral_terms, settings.n_bins
    repulsion_percentile = settings.repulsion_percentile
    kt = KB_KJ_MOL_K * temperature_k
    x = torch.as_tensor(np.asarray(coords_nm, dtype=np.float64))
    n_beads = x.shape[1]
    r = geometry.bonds(x).numpy()
    t = geometry.angles(x).numpy()
    var_floor = 1e-8
    bond_k = kt / np.maximum(r.var(0), var_floor)
    angle_k = kt / np.maximum(t.var(0), var_floor)
    if n_beads >= 4 and dihedral_terms:
        phi = geometry.dihedrals(x).numpy()
        scale = [statistical_inefficiency(phi[:, i]) if settings.dihedral_counts == "independent" else 1.0
                 for i in range(phi.shape[1])]
        fits = [_fourier_fit(phi[:, i], kt, dihedral_terms, n_bins, scale[i]) for i in range(phi.shape[1])]
        dih_cos, dih_sin = np.array([f[0] for f in fits]), np.array([f[1] for f in fits])
    else:
        dih_cos = dih_sin = np.zeros((max(n_beads - 3, 0), 0))
    pairs = geometry.nonbonded_pairs(n_beads)
    if pairs.shape[1]:
        d = geometry.pair_distances(x, pairs).numpy()
        sigma = float(np.percentile(d, repulsion_percentile))
    else:
        sigma = 0.0
    return PriorEnergy(n_beads, kt, r.mean(0), bond_k, t.mean(0), angle_k, dih_cos, dih_sin, sigma)


# ------------------------------------------------------------------ the priors.json file
@dataclass(frozen=True)
class FittedPriors:
    """The content of ``priors.json``: fitted prior parameters and where they come from.

    Attributes
    ----------
    n_beads : beads of the chain
    kt : kT in kJ/mol
    bond_r0 : (N-1,) bond lengths in nm; ``bond_k`` (N-1,) in kJ/mol/nm^2
    angle_t0 : (N-2,) angles in rad; ``angle_k`` (N-2,) in kJ/mol/rad^2
    dih_cos, dih_sin : (N-3, terms) Fourier coefficients of the pseudo-dihedrals in kJ/mol
    rep_sigma : repulsion distance in nm
    fitted_on : run key of the dataset the priors were fitted on
    n_frames : training frames used by the fit
    """

    n_beads: int
    kt: float
    bond_r0: tuple
    bond_k: tuple
    angle_t0: tuple
    angle_k: tuple
    dih_cos: tuple
    dih_sin: tuple
    rep_sigma: float
    fitted_on: str
    n_frames: int

    @classmethod
    def of(cls, prior: PriorEnergy, fitted_on: str, n_frames: int) -> "FittedPriors":
        """The file content of a fitted ``prior``."""
        return cls(**{k: _frozen(v) for k, v in prior.params().items()}, fitted_on=fitted_on,
                   n_frames=int(n_frames))

    def energy(self) -> PriorEnergy:
        """The :class:`PriorEnergy` with these parameters."""
        names = [f.name for f in dataclasses.fields(self) if f.name not in ("fitted_on", "n_frames")]
        return PriorEnergy(**{k: getattr(self, k) for k in names})


def _frozen(value):
    """Nested lists as nested tuples (a frozen, comparable copy of JSON arrays)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def save(path: str | Path, prior: PriorEnergy, fitted_on: str, n_frames: int) -> None:
    """Write ``priors.json``: the parameters of ``prior`` and their provenance (atomically)."""
    write_json(path, dataclasses.asdict(FittedPriors.of(prior, fitted_on, n_frames)))


def load(path: str | Path) -> FittedPriors:
    """Read ``priors.json`` written by :func:`save`."""
    raw = json.loads(Path(path).read_text())
    names = [f.name for f in dataclasses.fields(FittedPriors)]
    missing = [k for k in names if k not in raw]
    if missing:
        raise DataError(f"{path} is not a priors file: no {', '.join(missing)}")
    return FittedPriors(**{k: _frozen(raw[k]) for k in names})
