"""Autocorrelation and integrated autocorrelation time (IAT) of recorded observables."""
from __future__ import annotations

import numpy as np


def autocorrelation(series: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation ρ(k) along axis 0, averaged over the other axis if any.

    ``series`` has shape ``(F,)`` or ``(F, N)`` (N independent chains, e.g. particles).
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x - x.mean(axis=0)
    n = x.shape[0]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size, axis=0)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=0)[:n].mean(axis=1)
    if acf[0] <= 0:
        return np.zeros(n)
    return acf / acf[0]


def integrated_autocorrelation_time(series: np.ndarray, window_factor: float = 5.0) -> float:
    """τ = 1 + 2 Σ_{k≥1} ρ(k), summed up to Sokal's automatic window M ≥ c·τ(M).

    In units of the sampling interval.  τ = 1 for independent samples; the effective sample
    size of F frames is F/τ.
    """
    rho = autocorrelation(series)
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(taus.size) < window_factor * taus
    m = int(np.argmin(window)) if not window.all() else taus.size - 1
    return float(taus[m])
