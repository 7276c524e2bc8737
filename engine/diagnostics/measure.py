"""Empirical measure of an ensemble vs the Gibbs density on a grid (docs/science.md § 3;
Zhang et al. (2022), eq. 5).

``μ_k = (1/k) Σ δ_{w_t}`` pooled over particles and sampling times after a burn-in, binned on a
``bins × bins`` grid over the landscape bounds, beside ``π ∝ exp(−f/T)`` on the same cells (cell
averages of ``exp(−f/T)`` from a 4×4 sub-grid per cell, so sharp wells are not under-resolved).
"""
from __future__ import annotations

import math

import numpy as np

from .binning import histogram2d


class EmpiricalMeasure:
    """Pooled histogram of positions; see module docstring."""

    def __init__(self, bounds: np.ndarray, bins: int = 64, burn_in: int = 0):
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.bins = int(bins)
        self.burn_in = int(burn_in)
        self.counts = np.zeros((self.bins, self.bins))
        self.samples = 0

    def add(self, step: int, positions: np.ndarray) -> None:
        if step < self.burn_in:
            return
        histogram2d(positions, self.bounds, self.bins, self.counts)
        self.samples += positions.shape[0]

    def add_counts(self, step: int, counts: np.ndarray, samples: int) -> None:
        """Add an already-binned histogram over the same bounds (``bins × bins``, or a finer
        grid whose size is a multiple of ``bins``: summed down), pooling ``samples`` points."""
        if step < self.burn_in:
            return
        factor, rest = divmod(counts.shape[0], self.bins)
        if rest or factor < 1 or counts.shape != (counts.shape[0], counts.shape[0]):
            raise ValueError(f"a {counts.shape} histogram does not refine {self.bins} bins")
        self.counts += counts.reshape(self.bins, factor, self.bins, factor).sum(axis=(1, 3))
        self.samples += int(samples)

    def reset(self) -> None:
        self.counts[:] = 0.0
        self.samples = 0

    def density(self) -> np.ndarray:
        """Probability per cell (sums to 1), rows = y."""
        total = self.counts.sum()
        return self.counts / total if total > 0 else self.counts.copy()


def gibbs_cells(evaluate, bounds: np.ndarray, bins: int, temperature: float,
                sub: int = 4) -> np.ndarray:
    """Gibbs probability per cell, ``∝ ∫_cell exp(−f/T)``, rows = y; ``evaluate`` maps (M,2)→(M,6)."""
    x0, x1, y0, y1 = bounds
    fine = bins * sub
    xs = x0 + (np.arange(fine) + 0.5) * (x1 - x0) / fine
    ys = y0 + (np.arange(fine) + 0.5) * (y1 - y0) / fine
    X, Y = np.meshgrid(xs, ys)
    f = evaluate(np.column_stack([X.ravel(), Y.ravel()]))[:, 0].reshape(fine, fine)
    if temperature <= 0 or not math.isfinite(temperature):
        weights = (f == f.min()).astype(float)
    else:
        logw = -(f - np.nanmin(f)) / temperature
        weights = np.exp(np.where(np.isfinite(logw), logw, -np.inf))
    cells = weights.reshape(bins, sub, bins, sub).sum(axis=(1, 3))
    return cells / cells.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) over cells where p > 0 (inf if q vanishes there)."""
    mask = p > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))
