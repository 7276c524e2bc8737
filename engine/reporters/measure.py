"""The empirical measure of a run against the Gibbs density: the one place it is computed, for
the headless summary (:func:`engine.api.measure_summary`) and the window's live panel.

Positions (or an already-binned histogram of them) are pooled on a ``bins × bins`` grid over
the landscape bounds after a burn-in; the Gibbs cells ``∝ ∫_cell exp(−f/T)`` are computed once
at the run's equivalent temperature; total variation and KL divergence follow, with a bounded
series of their values over the run (docs/science.md § 3; Zhang et al. (2022), eq. 5).
"""
from __future__ import annotations

import numpy as np

from ..diagnostics.measure import EmpiricalMeasure, gibbs_cells, kl_divergence, total_variation

MAX_SERIES_POINTS = 4096  # TV/KL points kept (every other one dropped beyond it)


class MeasureReporter:
    """Pools positions after ``burn_in`` steps, every ``every`` steps (a reporter, see
    :mod:`engine.reporters.base`); ``summary()`` compares the pooled measure with Gibbs."""

    def __init__(self, sim, bins: int = 64, burn_in: int = 0, every: int = 1):
        self.bins = int(bins)
        self.every = max(1, int(every))
        self.bounds = sim.bounds.copy()
        self.measure = EmpiricalMeasure(self.bounds, self.bins, burn_in=int(burn_in))
        self.temperature = float(sim.effective_temperature())
        self.gibbs = gibbs_cells(sim.evaluate, self.bounds, self.bins, self.temperature)
        self.series: dict[str, list] = {"steps": [], "tv": [], "kl": []}

    @property
    def burn_in(self) -> int:
        return self.measure.burn_in

    def due(self, step: int) -> bool:
        return step > self.measure.burn_in and step % self.every == 0

    def report(self, sim) -> None:
        self.add(sim.step, sim.positions)

    def add(self, step: int, positions: np.ndarray) -> None:
        """Pool ``positions`` (N, 2) seen at ``step`` (ignored before the burn-in)."""
        self.measure.add(step, positions)

    def add_counts(self, step: int, counts: np.ndarray, samples: int) -> None:
        """Pool a histogram of ``samples`` positions already binned on the same bounds (on
        this grid or a finer one whose size is a multiple of it)."""
        self.measure.add_counts(step, counts, samples)

    def density(self) -> np.ndarray:
        return self.measure.density()

    def note_distances(self, step: int) -> None:
        """Append the current TV and KL to the series (bounded: thinned by 2 when full)."""
        if not self.measure.samples:
            return
        density = self.density()
        self.series["steps"].append(step)
        self.series["tv"].append(total_variation(density, self.gibbs))
        self.series["kl"].append(kl_divergence(density, self.gibbs))
        if len(self.series["steps"]) > MAX_SERIES_POINTS:
            for key in self.series:
                self.series[key] = self.series[key][::2]

    def summary(self) -> dict:
        """``temperature``, ``bins``, ``samples``, ``tv``, ``kl`` (None without samples or
        without a positive temperature: no Gibbs density to compare with)."""
        density = self.density()
        usable = self.measure.samples > 0 and self.temperature > 0
        return {"temperature": self.temperature, "bins": self.bins,
                "burn_in_steps": self.burn_in, "samples": self.measure.samples,
                "tv": total_variation(density, self.gibbs) if usable else None,
                "kl": kl_divergence(density, self.gibbs) if usable else None}
