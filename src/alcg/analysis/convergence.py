"""Is a reference an equilibrium ensemble? The check of its start halves.

The reference runs start from two (or more) structures, e.g. folded and extended. If the
ensemble is at equilibrium, each start's runs sample the same distribution: the folded
fraction and the means of the order parameters agree within their standard errors. The
verdict rests on that agreement, not on an autocorrelation time (a time estimated from a run
too short to cross the barrier is biased low, and looks converged).

Per start group: the folded fraction ``p_fold`` and its standard error
``sqrt(tau p (1 - p) / n)``, ``tau = 1 + 2 sum rho`` the integrated autocorrelation time
(frames) of the folded indicator (Sokal's window, ``c = 5``); the mean and standard error of
each order parameter the same way; and the number of transitions between the folded and the
unfolded *core* sets (each run's ``core``: +1 clearly folded, -1 clearly unfolded, 0 between),
so that recrossings at the threshold do not count. Between the first two groups: the
difference of each quantity in combined standard errors (``z``). Converged when every ``|z|``
is at most :data:`MAX_Z`, each group made at least :data:`MIN_TRANSITIONS` core-to-core
transitions (a group that never crossed cannot show equilibrium, whatever its spread), and
each group's ``p_fold`` is known to :data:`MAX_P_FOLD_SE` (agreement within a large error
shows nothing).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alcg.util.autocorrelation import SOKAL_C, integrated_time  # noqa: F401  (re-exported)

#: largest difference between start groups, in combined standard errors, called agreement
MAX_Z = 3.0
#: core-to-core transitions (folded <-> unfolded) each start group must make
MIN_TRANSITIONS = 10
#: largest standard error of a group's folded fraction for a verdict of agreement
MAX_P_FOLD_SE = 0.05
def _pooled(series: list[np.ndarray]) -> tuple[float, float, float]:
    """(mean, standard error, tau in frames) over independent runs of one group."""
    values = np.concatenate(series)
    taus = [integrated_time(s) for s in series]
    finite = [(t, len(s)) for s, t in zip(series, taus) if np.isfinite(t)]
    tau = float(np.average([t for t, _ in finite], weights=[n for _, n in finite])) if finite else float("inf")
    var = float(np.var(values))
    se = float(np.sqrt(var * tau / len(values))) if np.isfinite(tau) else float("nan")
    return float(values.mean()), se, tau


def transitions(core: np.ndarray) -> int:
    """Transitions between the folded (+1) and unfolded (-1) core sets along one run; frames in
    between (0) keep the last core visited, so a recrossing of the threshold is not counted."""
    visited = np.asarray(core)[np.asarray(core) != 0]
    return int(np.count_nonzero(visited[1:] != visited[:-1]))


def core_sets(value: np.ndarray, threshold: float, margin: float, folded_above: bool) -> np.ndarray:
    """+1 (folded core), -1 (unfolded core) or 0 per frame: ``value`` beyond ``threshold`` by
    more than ``margin`` on the folded or the unfolded side."""
    sign = 1.0 if folded_above else -1.0
    d = sign * (np.asarray(value, float) - threshold)
    return np.where(d > margin, 1, np.where(d < -margin, -1, 0))


def check(groups: dict[str, list[dict[str, np.ndarray]]], frame_interval_ps: float) -> dict:
    """The convergence report of a reference.

    Parameters
    ----------
    groups
        ``{start: [run, ...]}``; each run maps ``"folded"`` (bool per frame), ``"core"``
        (:func:`core_sets`) and any order parameters (e.g. ``"q"``, ``"rg_nm"``,
        ``"rmsd_folded_nm"``) to per-frame arrays.
    frame_interval_ps
        Time between frames (ps), to report times in ps.

    Returns
    -------
    dict
        ``groups`` (per start: ``p_fold``, ``p_fold_se``, ``tau_ps``, ``n_transitions``,
        ``length_ps``, per order parameter ``mean``/``se``), ``z`` (per quantity, first two
        groups), ``converged`` and ``reasons``.
    """
    names = list(groups)
    keys = [k for k in groups[names[0]][0] if k not in ("folded", "core")]
    report: dict = {"groups": {}, "z": {}, "max_z": MAX_Z, "min_transitions": MIN_TRANSITIONS,
                    "max_p_fold_se": MAX_P_FOLD_SE}
    for name in names:
        runs = groups[name]
        p, se, tau = _pooled([r["folded"].astype(float) for r in runs])
        g = {"p_fold": p, "p_fold_se": se, "tau_ps": tau * frame_interval_ps,
             "n_transitions": sum(transitions(r["core"]) for r in runs),
             "length_ps": sum(len(r["folded"]) for r in runs) * frame_interval_ps, "n_runs": len(runs)}
        for key in keys:
            mean, kse, _ = _pooled([r[key] for r in runs])
            g[key] = {"mean": mean, "se": kse}
        report["groups"][name] = g
    reasons = [f"start {n}: {report['groups'][n]['n_transitions']} folding/unfolding transitions "
               f"(< {MIN_TRANSITIONS})" for n in names if report["groups"][n]["n_transitions"] < MIN_TRANSITIONS]
    reasons += [f"start {n}: P_fold standard error {report['groups'][n]['p_fold_se']:.3g} (> {MAX_P_FOLD_SE})"
                for n in names if not report["groups"][n]["p_fold_se"] <= MAX_P_FOLD_SE]
    if len(names) >= 2:
        a, b = (report["groups"][n] for n in names[:2])
        pairs = {"p_fold": (a["p_fold"], a["p_fold_se"], b["p_fold"], b["p_fold_se"])}
        pairs.update({k: (a[k]["mean"], a[k]["se"], b[k]["mean"], b[k]["se"]) for k in keys})
        for k, (ma, sa, mb, sb) in pairs.items():
            se = float(np.hypot(sa, sb))
            z = abs(ma - mb) / se if se > 0 else (0.0 if ma == mb else float("inf"))
            z = z if np.isfinite(z) else float("inf")
            report["z"][k] = z
            if not z <= MAX_Z:
                reasons.append(f"{k}: starts {names[0]} and {names[1]} differ by {z:.1f} standard errors "
                               f"({ma:.3g} vs {mb:.3g})")
    else:
        reasons.append("one start only: no halves to compare")
    report["converged"] = not reasons
    report["reasons"] = reasons
    return report


def save(path: str | Path, report: dict) -> None:
    """Write a convergence report (JSON) atomically."""
    from alcg.util.fileio import write_json

    write_json(path, report)


def load(path: str | Path) -> dict:
    """Read a convergence report written by :func:`save`."""
    return json.loads(Path(path).read_text())
