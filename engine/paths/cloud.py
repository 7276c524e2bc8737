"""Transition statistics measured from the particle cloud.

:func:`record_cloud` steps a :class:`~engine.simulation.Simulation` one record at a time and keeps,
per particle and record, its cell on a (coarse) grid, whether it is in the core set A or B, and
optionally a value at its position (e.g. the PDE committor there).  From that record:

* :func:`empirical_committor` — per cell, among the *excursions* (stretches outside A ∪ B) that
  enter the cell, the fraction that reach B before A.  Only the first entry of an excursion into
  a cell counts: by the strong Markov property its outcome is a Bernoulli trial with success
  probability ``q(X_entry)``, independent of other excursions given their entry points, so the
  per-cell count is Poisson-binomial with mean ``Σ q(X_entry)`` and variance
  ``Σ q(1 − q)`` — the standard errors the comparison with the PDE uses.  (Counting every step
  would count one outcome many times over.)
* :func:`reactive_segments` — the excursions that left A and reach B (or the reverse): their
  durations and where they spend their time, to compare with TPT's reactive density
  ``π q (1 − q)`` and mean duration ``Σ π q (1 − q) / ν_AB``.

Core membership is checked at every recorded step (every step with ``every = 1``), as the step
kernel checks it for ``run``'s escape events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class CloudRecord:
    cells: np.ndarray          # (S, N) int32: flat cell index per record and particle
    core: np.ndarray           # (S, N) int8: 0 in A, 1 in B, −1 elsewhere
    value: np.ndarray | None   # (S, N, k) float32: value_of(positions) (N, k), if asked for
    dt: float                  # time between records (η·every)
    every: int
    n_cells: int


def cell_and_core_maps(structure, grid, source: int, target: int):
    """The two maps :func:`record_cloud` takes: a point's flat cell index on ``grid`` and its
    core set as the run's escape tracking sees it (0 for minimum ``source``, 1 for ``target``,
    −1 outside both)."""
    from .cores import core_grid, core_labels
    cores = core_grid(structure)
    nx = grid.shape[1]

    def cell_of(points):
        iy, ix = grid.cell_of(points)
        return iy * nx + ix

    def core_of(points):
        labels = core_labels(structure, points, cores=cores)
        return np.where(labels == source, 0, np.where(labels == target, 1, -1))

    return cell_of, core_of


def record_cloud(sim, steps: int, cell_of: Callable[[np.ndarray], np.ndarray],
                 core_of: Callable[[np.ndarray], np.ndarray], n_cells: int,
                 value_of: Callable[[np.ndarray], np.ndarray] | None = None,
                 every: int = 1) -> CloudRecord:
    """Advance ``sim`` by ``steps`` (a multiple of ``every``), recording every ``every`` steps
    (the starting positions included).  ``core_of`` maps points to 0 (A), 1 (B) or −1;
    ``value_of`` maps them to one value each ``(N,)`` or several ``(N, k)``."""
    count = steps // every + 1
    n = len(sim.positions)
    cells = np.empty((count, n), np.int32)
    core = np.empty((count, n), np.int8)
    value = None
    if value_of is not None:
        width = np.asarray(value_of(sim.positions[:1])).reshape(1, -1).shape[1]
        value = np.empty((count, n, width), np.float32)

    def take(k: int) -> None:
        pos = sim.snapshot(positions_only=True).positions
        cells[k] = cell_of(pos)
        core[k] = core_of(pos)
        if value is not None:
            value[k] = np.asarray(value_of(pos)).reshape(n, -1)

    take(0)
    for k in range(1, count):
        sim.advance(every)
        take(k)
    from ..simulation import equivalent_langevin
    step = equivalent_langevin(sim.preset.dynamics)[1]  # time per step of the Langevin clock
    return CloudRecord(cells, core, value, float(step) * every, every, n_cells)


def _next_and_last_core(core: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per record and particle, the core set entered next (the current one when inside it) and
    the one last visited (−1: none yet / none until the end)."""
    nxt = np.empty_like(core)
    last = np.empty_like(core)
    cur = np.full(core.shape[1], -1, core.dtype)
    for t in range(core.shape[0] - 1, -1, -1):
        cur = np.where(core[t] >= 0, core[t], cur)
        nxt[t] = cur
    cur = np.full(core.shape[1], -1, core.dtype)
    for t in range(core.shape[0]):
        cur = np.where(core[t] >= 0, core[t], cur)
        last[t] = cur
    return nxt, last


def _first_entries(rec: CloudRecord, mask: np.ndarray) -> np.ndarray:
    """Flat (particle-major) indices of the first record of each (particle, excursion, cell)
    among the records where ``mask`` holds."""
    core = rec.core.T                      # (N, S): each particle's records contiguous
    excursion = np.cumsum(core >= 0, axis=1)
    idx = np.flatnonzero(mask.T)
    particle = idx // core.shape[1]
    key = (particle.astype(np.int64) * (core.shape[1] + 1)
           + excursion.ravel()[idx]) * rec.n_cells + rec.cells.T.ravel()[idx]
    _, first = np.unique(key, return_index=True)
    return idx[first]


@dataclass
class EmpiricalCommittor:
    trials: np.ndarray     # (n_cells,) excursions that entered the cell and ended in A or B
    to_B: np.ndarray       # (n_cells,) of them, those that reached B first
    expected: np.ndarray   # (n_cells,) Σ value(entry point) (the PDE's prediction of to_B)
    variance: np.ndarray   # (n_cells,) Σ value (1 − value)

    @property
    def estimate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.to_B / self.trials

    @property
    def standard_error(self) -> np.ndarray:
        """Binomial standard error of :attr:`estimate` at the predicted mean, per cell."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.variance) / self.trials

    def p_values(self) -> np.ndarray:
        """Two-sided p-value of each cell's count of B-first outcomes under the prediction:
        binomial tails at the mean predicted probability, which are at least as wide as the
        Poisson-binomial's (Hoeffding 1956), so the test is conservative and valid for the small
        expected counts where a z-score is not (NaN without trials)."""
        from scipy.stats import binom
        n = self.trials
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.clip(self.expected / n, 0.0, 1.0)
            tails = np.minimum(binom.cdf(self.to_B, n, p), binom.sf(self.to_B - 1, n, p))
        return np.where(n > 0, np.minimum(1.0, 2.0 * tails), np.nan)

    def z_scores(self) -> np.ndarray:
        """``(to_B − expected) / √variance`` per cell (NaN where the variance is 0)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.to_B - self.expected) / np.sqrt(self.variance)


def empirical_committor(rec: CloudRecord, column: int = 0) -> EmpiricalCommittor:
    """See the module docstring; ``expected`` and ``variance`` use ``rec.value[..., column]``
    as the committor predicted at each position.  Excursions still open at the end are left
    out (censored)."""
    nxt, _ = _next_and_last_core(rec.core)
    entries = _first_entries(rec, (rec.core < 0) & (nxt >= 0))
    cells = rec.cells.T.ravel()[entries]
    hit_b = (nxt.T.ravel()[entries] == 1).astype(float)
    n = rec.n_cells
    trials = np.bincount(cells, minlength=n).astype(float)
    to_b = np.bincount(cells, weights=hit_b, minlength=n)
    if rec.value is not None:
        v = np.clip(rec.value[..., column].T.ravel()[entries].astype(float), 0.0, 1.0)
        expected = np.bincount(cells, weights=v, minlength=n)
        variance = np.bincount(cells, weights=v * (1 - v), minlength=n)
    else:
        expected = np.full(n, np.nan)
        variance = np.full(n, np.nan)
    return EmpiricalCommittor(trials, to_b, expected, variance)


@dataclass
class ReactiveSegments:
    durations: np.ndarray   # (K,) records spent outside A ∪ B by each reactive excursion
    occupancy: np.ndarray   # (K, n_cells) records each of them spent in each cell
    direction: np.ndarray   # (K,) +1 for A → B, −1 for B → A
    dt: float
    value_occupancy: np.ndarray | None = None  # (K, bins) records per bin of the value

    def mean_duration(self) -> tuple[float, float]:
        """Mean time of a reactive segment, ``(K·dt·mean, its standard error)``; a segment of
        ``L`` records outside the cores lasts ``L·dt`` (its first record to the entry into the
        other core set is ``L`` record intervals)."""
        d = self.durations * self.dt
        return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def reactive_segments(rec: CloudRecord, value_bins: np.ndarray | None = None,
                      column: int = 0) -> ReactiveSegments:
    """Excursions from A that end in B and from B that end in A (module docstring); with
    ``value_bins`` (edges) also each segment's records per bin of ``rec.value[..., column]``
    (e.g. of the committor: TPT's reactive density projected on q)."""
    nxt, last = _next_and_last_core(rec.core)
    outside = rec.core < 0
    reactive = outside & (last >= 0) & (nxt >= 0) & (last != nxt)
    core = rec.core.T
    excursion = np.cumsum(core >= 0, axis=1)
    n_rec = core.shape[1]
    idx = np.flatnonzero(reactive.T)
    particle = idx // n_rec
    key = particle.astype(np.int64) * (n_rec + 1) + excursion.ravel()[idx]
    segments, seg = np.unique(key, return_inverse=True)
    k = segments.size
    durations = np.bincount(seg, minlength=k)
    occupancy = np.zeros((k, rec.n_cells), np.int32)
    np.add.at(occupancy, (seg, rec.cells.T.ravel()[idx]), 1)
    first = np.zeros(k, np.int64)
    first[seg[::-1]] = idx[::-1]
    direction = np.where(nxt.T.ravel()[first] == 1, 1, -1)
    by_value = None
    if value_bins is not None and rec.value is not None:
        edges = np.asarray(value_bins, float)
        v = rec.value[..., column].T.ravel()[idx]
        b = np.searchsorted(edges, v, side="right") - 1
        inside = (b >= 0) & (b < edges.size - 1)
        by_value = np.zeros((k, edges.size - 1), np.int32)
        np.add.at(by_value, (seg[inside], b[inside]), 1)
    return ReactiveSegments(durations, occupancy, direction, rec.dt, by_value)


def committor_check(preset, source: int, target: int, particles: int = 300, steps: int = 5000,
                    cells: int = 20, grid: int = 160, min_trials: int = 20) -> dict:
    """Run ``particles`` of ``preset`` from its initial cloud for ``steps`` steps, recording
    every step, and compare the empirical committor per cell (``cells`` × ``cells``) with the
    PDE's at the entry points, for the chain checked once a step (core edges moved in by the
    Siegmund shift, :func:`.cores.monitored_core_labels`): per cell with ``min_trials``
    excursions or more, the estimate, the prediction, the binomial p-value; in all, the largest
    |q̂ − q|, the RMS z-score and the smallest p-value against its Bonferroni level (1 %)."""
    from ..diagnostics.structure import analyse
    from ..simulation import Simulation, equivalent_langevin
    from .committor import make_grid, transition_path_theory
    from .cores import discrete_monitoring_shift, monitored_core_labels

    sim = Simulation(preset.with_changes(ensemble={"particles": int(particles)}),
                     diagnostics=False)
    structure = analyse(preset, sim=sim)
    temperature, lr = equivalent_langevin(preset.dynamics)
    fine = make_grid(sim.evaluate, sim.bounds, grid, grid, temperature)
    seen = monitored_core_labels(structure, fine.points(), sim.evaluate,
                                 discrete_monitoring_shift(temperature, lr)).reshape(fine.shape)
    tpt = transition_path_theory(fine, seen == source, seen == target)
    coarse = make_grid(sim.evaluate, sim.bounds, cells, cells, temperature)
    cell_of, core_of = cell_and_core_maps(structure, coarse, source, target)
    rec = record_cloud(sim, int(steps), cell_of, core_of, cells * cells,
                       lambda points: fine.interpolate(tpt.committor, points))
    ec = empirical_committor(rec)
    used = ec.trials >= min_trials
    estimate, predicted = ec.estimate, ec.expected / np.where(ec.trials > 0, ec.trials, 1)
    z, p = ec.z_scores(), ec.p_values()
    count = int(used.sum())
    return {"particles": int(particles), "steps": int(steps), "cells": [cells, cells],
            "cells_compared": count, "excursions": int(ec.trials[used].sum()),
            "max_abs_error": float(np.max(np.abs(estimate - predicted)[used])) if count else None,
            "rms_z": float(np.sqrt(np.nanmean(z[used] ** 2))) if count else None,
            "min_p": float(np.nanmin(p[used])) if count else None,
            "bonferroni_level": 0.01 / count if count else None,
            "x": coarse.x, "y": coarse.y,
            "estimate": np.where(used, estimate, np.nan).reshape(cells, cells),
            "predicted": np.where(used, predicted, np.nan).reshape(cells, cells)}
