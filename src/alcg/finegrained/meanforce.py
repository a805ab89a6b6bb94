"""Mean-force estimators: the label of a ``mean_force`` query and its standard error.

Two ways to hold the beads at ``R0`` while everything else is sampled:

Fixed beads (the Go model: nothing is constrained to a C-alpha bead)
    The mean force is the plain average of the mapped force over the samples,
    ``F(R0) = <f>``; :func:`block_mean` gives it with a block-averaged standard error.
Harmonic restraint ``0.5 k |R - R0|^2`` (atoms: ``HBonds`` constrains C-alpha/H-alpha, and
OpenMM refuses constraints on a massless particle)
    The restrained average of the mapped force is biased: in a locally harmonic PMF with
    Hessian ``H`` it is ``k (k + H)^-1 F(R0)``, and it equals ``k (<R> - R0)``, minus the mean
    restraint force. Umbrella integration (Kaestner & Thiel, J. Chem. Phys. 123, 144104
    (2005); multidimensional: Kaestner, J. Chem. Phys. 131, 034109 (2009)) corrects it from
    the mean ``mu`` and covariance ``C`` of the restrained coordinates: if the restrained
    distribution of ``R`` is Gaussian, ``dA/dR (R0) = kT C^-1 (R0 - mu)``, so

        F(R0) = kT C^-1 (mu - R0),

    exact for a harmonic PMF at any ``k`` (:func:`umbrella_mean_force`). The inverse of a
    sample covariance is biased high: for ``n`` independent Gaussian samples in ``d``
    dimensions ``E[S^-1] = (n - 1) / (n - d - 2) C^-1`` (the inverse-Wishart mean), 1.46x at
    ``n = 100, d = 30`` (10 C-alphas), so the estimate is multiplied by ``(n - d - 2) / (n - 1)``,
    which makes it unbiased for independent samples (correlated samples have fewer effective
    ones, and a residual bias of the same sign). Its standard error is a jackknife over blocks
    of consecutive samples.

Units: nm, kJ/mol, kJ/mol/nm; ``kT`` in kJ/mol.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from alcg.util.errors import DataError

#: Boltzmann constant, kJ/mol/K
KB_KJ_MOL_K = 0.0083144626


@dataclass(frozen=True)
class MeanForce:
    """A mean-force estimate.

    Attributes
    ----------
    force : (d,) kJ/mol/nm
    sem2 : (d,) squared standard error of each component, (kJ/mol/nm)^2
    n_samples : samples used
    """

    force: np.ndarray
    sem2: np.ndarray
    n_samples: int

    @property
    def var(self) -> float:
        """Mean squared standard error over components, (kJ/mol/nm)^2: the label's variance."""
        return float(np.mean(self.sem2))


def _blocks(n: int, n_blocks: int) -> list[np.ndarray]:
    if n < n_blocks:
        raise DataError(f"{n} samples cannot make {n_blocks} blocks for a standard error "
                        "(lengthen oracle.length_ps or lower oracle.n_blocks)")
    return np.array_split(np.arange(n), n_blocks)


def block_mean(samples: np.ndarray, n_blocks: int) -> MeanForce:
    """Mean of ``samples`` (n, d) with a block-averaged standard error.

    The samples are cut into ``n_blocks`` consecutive blocks; the squared standard error is
    the variance of the block means over ``n_blocks`` (ddof 1), which holds for correlated
    samples when a block is longer than the correlation time.
    """
    x = np.asarray(samples, np.float64).reshape(len(samples), -1)
    means = np.stack([x[b].mean(0) for b in _blocks(len(x), n_blocks)])
    return MeanForce(x.mean(0), means.var(0, ddof=1) / n_blocks, len(x))


def _jackknife(estimate: Callable[[np.ndarray], np.ndarray], n: int, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """(estimate on all samples, jackknife squared standard error over blocks)."""
    blocks = _blocks(n, n_blocks)
    full = estimate(np.arange(n))
    leave_out = np.stack([estimate(np.setdiff1d(np.arange(n), b)) for b in blocks])
    return full, (n_blocks - 1) / n_blocks * ((leave_out - leave_out.mean(0)) ** 2).sum(0)


def covariance_samples_needed(dim: int, n_blocks: int) -> int:
    """The fewest restrained samples whose every jackknife leave-out estimates a ``dim x dim``
    covariance with a finite inverse-Wishart correction (``n - ceil(n / n_blocks) > dim + 2``).

    Parameters
    ----------
    dim : coordinates held by the restraint (3 per C-alpha)
    n_blocks : blocks of the jackknife standard error
    """
    n = dim + 3
    while n - -(-n // n_blocks) <= dim + 2:
        n += 1
    return n


def umbrella_mean_force(positions: np.ndarray, r0: np.ndarray, kt_kj_mol: float, n_blocks: int) -> MeanForce:
    """Mean force at ``r0`` from restrained samples: ``kT C^-1 (mu - r0)`` (module doc).

    Parameters
    ----------
    positions : (n, ...) restrained coordinates (nm), flattened to ``d`` per sample
    r0 : the restraint centre, same shape as one sample (nm)
    kt_kj_mol : kT (kJ/mol)
    n_blocks : blocks of the jackknife standard error
    """
    x = np.asarray(positions, np.float64).reshape(len(positions), -1)
    ref = np.asarray(r0, np.float64).reshape(-1)
    d = x.shape[1]
    if len(x) < covariance_samples_needed(d, n_blocks):
        raise DataError(f"{len(x)} restrained samples cannot estimate a {d}x{d} covariance with "
                        f"{n_blocks} jackknife blocks; lengthen oracle.length_ps")

    def estimate(idx: np.ndarray) -> np.ndarray:
        s = x[idx]
        cov = np.cov(s, rowvar=False).reshape(d, d)
        unbias = (len(s) - d - 2) / (len(s) - 1)  # inverse-Wishart mean (module doc)
        return unbias * kt_kj_mol * np.linalg.solve(cov, s.mean(0) - ref)

    force, sem2 = _jackknife(estimate, len(x), n_blocks)
    return MeanForce(force, sem2, len(x))


def restrained_average(positions: np.ndarray, r0: np.ndarray, k_kj_mol_nm2: float, n_blocks: int) -> MeanForce:
    """The uncorrected restrained estimate ``k (<R> - r0)`` (biased: module doc), for comparison."""
    x = np.asarray(positions, np.float64).reshape(len(positions), -1)
    return block_mean(k_kj_mol_nm2 * (x - np.asarray(r0, np.float64).reshape(-1)), n_blocks)
