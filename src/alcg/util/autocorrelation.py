"""The integrated autocorrelation time of a series (Sokal's automatic window), shared by the
reference check (:mod:`alcg.analysis.convergence`) and the priors' pseudocount rule
(:func:`alcg.cg.priors.statistical_inefficiency`)."""
from __future__ import annotations

import numpy as np

#: Sokal's automatic window: sum the autocorrelation up to the first lag M >= C * tau(M)
SOKAL_C = 5.0


def integrated_time(x: np.ndarray) -> float:
    """Integrated autocorrelation time ``1 + 2 sum rho`` (frames; 1 for uncorrelated frames) of
    one series, ``inf`` for a series that never changes."""
    x = np.asarray(x, float)
    n = len(x)
    if n < 4 or np.var(x) == 0:
        return float("inf")
    d = x - x.mean()
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (np.arange(n, 0, -1) * np.var(x))
    tau = 1.0
    for m in range(1, n):
        tau += 2.0 * acf[m]
        if m >= SOKAL_C * tau:
            break
    return float(max(tau, 1.0))
