"""Time-step validation with power: a candidate step's configurational distributions against a
small-step reference, judged by their statistical error.

BAOAB samples harmonic configurational distributions exactly at any stable step, so bond and
angle widths cannot reveal a step that is too large; anharmonic observables (pseudo-dihedrals,
end-to-end distance, RMSD or Q to the native state, potential energy) can. Each observable is
summarized per replica by its mean and by the fraction of its frames in each of ``bins_per_observable``
bins (edges: quantiles of the pooled reference), so shifts of shape are seen as well as shifts
of the mean. Replicas are the independent units: the standard error of a statistic is the
spread of its per-replica values over sqrt(replicas), which holds whatever the time
correlation within a replica.

Paired design (``paired=True``). Unpaired, a per-replica mean over a run shorter than the
slowest relaxation varies mostly with where the replica started, and that start-to-start
spread enters the standard error twice (once per step). Paired, replica r of the reference
and replica r of the candidate start from the same configuration x0_r (with independent noise),
and the unit is the per-start difference d_r = s_cand(r) - s_ref(r): its mean estimates the
bias and its spread over sqrt(R) the standard error. The start-to-start spread then cancels.
This needs the starts drawn from (close to) the model's Boltzmann distribution pi: under H0
("the candidate step samples pi") and x0 ~ pi, E f(x_t) = E_pi f at every t for both runs, so
E d_r = 0 whatever the run length and no burn-in is needed. Starts away from pi (e.g. a short
relaxation from the native state) break this: the two steps relax differently (their dynamics
differ even when their stationary distributions agree), and the transient difference would
read as bias. So take the starts as well-separated frames of long small-step runs of the same
model. The test is then of the hypothesis that both steps preserve the distribution of their
common starts.

Verdict:

- ``fail``: some statistic differs by more than ``z_crit`` standard errors (two-sided,
  Bonferroni over all statistics at level ``false_rejection``);
- ``underpowered``: no significant difference, but a difference as large as the tolerance
  would be detected with less than 80 % probability for some statistic (more sampling needed);
- ``pass``: neither.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

#: the power the check demands for a difference of one tolerance
POWER = 0.8


@dataclass
class StepCheck:
    """Result of :func:`compare_steps`; arrays are per statistic (``names``)."""

    names: list[str]
    reference: np.ndarray
    candidate: np.ndarray
    diff: np.ndarray
    se: np.ndarray
    z: np.ndarray
    z_crit: float
    detectable: np.ndarray   # smallest difference detected with probability POWER
    tolerance: np.ndarray
    verdict: str             # 'pass' | 'fail' | 'underpowered'

    def summary(self) -> dict:
        """JSON-ready summary: verdict, the worst statistics by |z| and by power."""
        worst = int(np.argmax(np.abs(self.z)))
        weakest = int(np.argmax(self.detectable / self.tolerance))
        return {"verdict": self.verdict, "z_crit": self.z_crit, "n_statistics": len(self.names),
                "max_abs_z": float(abs(self.z[worst])), "max_abs_z_statistic": self.names[worst],
                "max_detectable_over_tolerance": float(self.detectable[weakest] / self.tolerance[weakest]),
                "weakest_statistic": self.names[weakest],
                "significant": [n for n, z in zip(self.names, self.z) if abs(z) > self.z_crit]}


def _per_replica(obs: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """(R, S) per-replica statistics: each observable's mean, then its bin fractions."""
    cols = [obs.mean(1)]
    for k, e in enumerate(edges):
        b = np.clip(np.searchsorted(e, obs[:, :, k]), 0, len(e))  # interior edges: len(e) + 1 bins
        cols.append(np.stack([(b == j).mean(1) for j in range(len(e) + 1)], axis=1))
    return np.concatenate(cols, axis=1)


def compare_steps(reference: np.ndarray, candidate: np.ndarray, names: list[str], bins_per_observable: int = 8,
                  false_rejection: float = 0.01, mean_tolerance_sd: float = 0.05,
                  bin_tolerance: float = 0.01, paired: bool = False) -> StepCheck:
    """Compare observables sampled at a candidate step with those of a small-step reference.

    Parameters
    ----------
    reference, candidate : (R, T, K) K observables over T equilibrated frames of R independent
        replicas (R >= 3 each; replica and frame counts may differ between the two)
    names : the K observables' names (units are the caller's)
    bins_per_observable : bins per observable (equal-count bins of the pooled reference)
    false_rejection : family-wise false-rejection probability of a step that samples correctly
    mean_tolerance_sd : tolerance of a mean, in reference standard deviations of the observable
    bin_tolerance : tolerance of a bin fraction (absolute; each bin holds 1 / bins_per_observable)
    paired : replica r of ``candidate`` started from the same configuration as replica r of
        ``reference`` (same R; starts drawn from the model's equilibrium, see the module
        docstring): the standard error is that of the per-start differences
    """
    reference, candidate = np.asarray(reference, float), np.asarray(candidate, float)
    if reference.ndim != 3 or candidate.ndim != 3 or {reference.shape[2], candidate.shape[2]} != {len(names)}:
        raise ValueError(f"expected (R, T, {len(names)}) arrays, got {reference.shape} and {candidate.shape}")
    if min(len(reference), len(candidate)) < 3:
        raise ValueError(f"need >= 3 replicas per step, got {len(reference)} and {len(candidate)}")
    if paired and len(reference) != len(candidate):
        raise ValueError(f"a paired comparison needs one candidate replica per reference replica, got "
                         f"{len(reference)} and {len(candidate)}")
    qs = np.linspace(0, 1, bins_per_observable + 1)[1:-1]
    edges = [np.quantile(reference[:, :, k], qs) for k in range(len(names))]
    r, c = _per_replica(reference, edges), _per_replica(candidate, edges)
    labels = [f"{n} mean" for n in names] + [f"{n} bin {j}" for n in names for j in range(bins_per_observable)]
    sd = reference.reshape(-1, len(names)).std(0)
    tolerance = np.concatenate([mean_tolerance_sd * sd, np.full(len(names) * bins_per_observable, bin_tolerance)])
    diff = c.mean(0) - r.mean(0)
    se = np.maximum(_standard_error(r, c, paired), 1e-300)
    z = diff / se
    z_crit = float(stats.norm.ppf(1 - false_rejection / (2 * len(labels))))
    detectable = (z_crit + stats.norm.ppf(POWER)) * se
    if (np.abs(z) > z_crit).any():
        verdict = "fail"
    elif (detectable > tolerance).any():
        verdict = "underpowered"
    else:
        verdict = "pass"
    return StepCheck(labels, r.mean(0), c.mean(0), diff, se, z, z_crit, detectable, tolerance, verdict)


def _standard_error(r: np.ndarray, c: np.ndarray, paired: bool) -> np.ndarray:
    """Standard error of mean(c) - mean(r) over replicas (rows): of the per-row differences
    when ``paired``, else of two independent means."""
    if paired:
        return (c - r).std(0, ddof=1) / np.sqrt(len(c))
    return np.sqrt(c.var(0, ddof=1) / len(c) + r.var(0, ddof=1) / len(r))


def chain_observables(xyz: np.ndarray, energy: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Anharmonic observables of C-alpha frames (R, T, N, 3) nm: (R, T, K) and names.

    End-to-end distance (nm), radius of gyration (nm), the cosine and sine of each
    pseudo-dihedral (N - 3 of them), and the potential ``energy`` (R, T) kJ/mol if given.
    """
    x = np.asarray(xyz, dtype=np.float64)
    cols = [np.linalg.norm(x[..., -1, :] - x[..., 0, :], axis=-1),
            np.sqrt(((x - x.mean(-2, keepdims=True)) ** 2).sum(-1).mean(-1))]
    names = ["end_to_end_nm", "rg_nm"]
    b1, b2, b3 = (x[..., 1:-2, :] - x[..., :-3, :], x[..., 2:-1, :] - x[..., 1:-2, :], x[..., 3:, :] - x[..., 2:-1, :])
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    m1 = np.cross(n1, b2 / np.linalg.norm(b2, axis=-1, keepdims=True))
    phi = np.arctan2((m1 * n2).sum(-1), (n1 * n2).sum(-1))  # (R, T, N - 3)
    for j in range(phi.shape[-1]):
        cols += [np.cos(phi[..., j]), np.sin(phi[..., j])]
        names += [f"cos_dihedral_{j}", f"sin_dihedral_{j}"]
    if energy is not None:
        cols.append(np.asarray(energy, dtype=np.float64))
        names.append("energy_kj_mol")
    return np.stack(cols, axis=-1), names
