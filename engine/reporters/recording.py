"""Recording as a reporter: the ensemble's scalar series every ``record_every`` steps and thinned
per-particle frames into the bounded :class:`~engine.history.History`.

:class:`HistoryReporter` owns the history and the record in progress.  A record reads the
particles in slices of :data:`RECORD_SLICE` (one compiled pass each, summed per block in block
order, so the sums are those of one pass), and can be left pending and taken later in pieces:
the window applies input between a step and its record, which at 10⁶ particles takes longer than
the step.  The simulation adds fields through its ``_extend_record`` hook (a kind's own
recorded values) and the escape reporter's (basins and occupations).
"""
from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from .. import dynamics as dyn
from ..history import History

QUANTILE_SAMPLE = 2**17  # particles behind the recorded γ̂ quantiles (standard error ≈ 0.005 σ)
RECORD_SLICE = 2**17  # particles per record piece (flush_record(seconds)); a multiple of dyn.BLOCK
# columns of the per-block partial sums of a record (see _record_sums)
(SUM_ALIVE, SUM_LOSS, SUM_TIME_AVG_LOSS, SUM_GRAD, SUM_TIME_AVG_GRAD, SUM_VANISHING,
 SUM_TANGENT, SUM_TANGENT_BAD, SUM_GAMMA_COUNT, SUM_GAMMA, SUM_GAMMA_NEGATIVE) = range(11)
N_SUMS = 11


@njit(cache=True, nogil=True)
def _record_sums(first, last, alive, out, acc, loss_start, lyap, tangent, partial):
    """Per block of dyn.BLOCK particles, ``partial[block]`` = the record's sums over its living
    particles (one pass instead of a dozen N-sized NumPy temporaries: ≈ 50 ms at 1e6)."""
    n = alive.shape[0]
    for block in range(first, last):
        sums = partial[block]
        sums[:] = 0.0
        for i in range(block * dyn.BLOCK, min(n, (block + 1) * dyn.BLOCK)):
            if not alive[i]:
                continue
            steps = acc[i, dyn.ACC_COUNT]
            per_step = max(steps, 1.0)
            sums[SUM_ALIVE] += 1.0
            sums[SUM_LOSS] += out[i, 0]
            sums[SUM_GRAD] += out[i, 1]
            sums[SUM_TIME_AVG_LOSS] += acc[i, dyn.ACC_LOSS] / per_step
            sums[SUM_TIME_AVG_GRAD] += acc[i, dyn.ACC_GRAD] / per_step
            if steps > 0:
                sums[SUM_VANISHING] += (loss_start[i] - out[i, 0]) / per_step
            if math.isfinite(tangent[i]):
                sums[SUM_TANGENT] += tangent[i]
            else:
                sums[SUM_TANGENT_BAD] += 1.0
            if math.isfinite(lyap[i]):
                sums[SUM_GAMMA_COUNT] += 1.0
                sums[SUM_GAMMA] += lyap[i]
                if lyap[i] < 0.0:
                    sums[SUM_GAMMA_NEGATIVE] += 1.0


class HistoryReporter:
    """The recorded history of one run and the record left pending, if any.

    Parameters
    ----------
    record_every : int
        Steps between records (the history's initial stride).
    budget_bytes : int
        Memory for per-particle frames (decimated when exceeded).
    """

    def __init__(self, record_every: int, budget_bytes: int):
        self.history = History(record_every, budget_bytes)
        self.deferred: dict | None = None  # the parameters of a record left pending
        self.work = None  # the record in progress (a generator), see flush

    def due(self, step: int) -> bool:
        return self.history.due(step)

    def report(self, sim) -> None:
        """Record ``sim``'s state now."""
        self.record(sim)

    @property
    def pending(self) -> bool:
        return self.deferred is not None

    def defer(self, sim) -> None:
        """Leave the record of the current step pending, with this step's parameters."""
        self.deferred = parameters_of(sim)

    def drop_pending(self) -> None:
        self.deferred = self.work = None

    def flush(self, sim, seconds: float | None = None) -> bool:
        """Take the pending record, if any (in pieces: with ``seconds``, stop after the first
        piece that ends past that budget); returns whether none is pending any more."""
        if self.deferred is None:
            return True
        if self.work is None:
            self.work = self.pieces(sim, self.deferred)
        end = math.inf if seconds is None else time.perf_counter() + seconds
        try:
            for _ in self.work:
                if time.perf_counter() >= end:
                    return False
        except BaseException:
            self.work = None  # retried from the start by the next flush
            raise
        self.deferred = self.work = None
        return True

    def record(self, sim, parameters: dict[str, float] | None = None) -> None:
        for _ in self.pieces(sim, parameters):
            pass

    def pieces(self, sim, parameters: dict[str, float] | None):
        """The record as a generator that yields after each slice of particles (the sums are
        exactly those of one pass: per-block partials, added in block order at the end)."""
        alive = sim.alive.astype(bool)
        n = len(alive)
        n_blocks = -(-n // dyn.BLOCK)
        partial = np.empty((n_blocks, N_SUMS))
        lyap, tangent = np.empty(n), np.empty(n)
        out = sim.out
        yield
        for first in range(0, n, RECORD_SLICE):
            rows = slice(first, min(n, first + RECORD_SLICE))
            lyap[rows], tangent[rows] = sim.running_lyapunov(rows)
            blocks = -(-(rows.stop - first) // dyn.BLOCK)
            dyn.run_blocks(_record_sums, blocks, 10 * (rows.stop - first),
                           (alive[rows], out[rows], sim.acc[rows], sim.loss_start[rows],
                            lyap[rows], tangent[rows],
                            partial[first // dyn.BLOCK:first // dyn.BLOCK + blocks]))
            yield
        sums = partial.sum(axis=0)
        scalars = _ensemble_scalars(sums, lyap, alive, n, sim.step)
        scalars.update(parameters if parameters is not None else parameters_of(sim))
        per_particle = None
        if self.history.frame_due(sim.step):
            per_particle = {"positions": sim.positions, "loss": sim.out[:, 0],
                            "lyapunov": lyap}
        sim.escapes.extend_record(per_particle, scalars, sim.positions, sim.last_core, alive,
                                  sums[SUM_ALIVE])
        sim._extend_record(per_particle, scalars)
        self.history.record(sim.step, per_particle, scalars)

    def clear(self) -> None:
        """Forget the history and any pending record."""
        self.drop_pending()
        self.history.clear()


def parameters_of(sim) -> dict[str, float]:
    """The recorded scalars that depend on parameters rather than on the particles (η and T
    as scheduled for the steps from here)."""
    d = sim.scheduled_dynamics()
    return {"time": sim.time, "effective_temperature": sim.effective_temperature(),
            "lr": d.lr, "temperature": d.temperature, "batch_size": d.batch_size,
            "momentum": d.momentum}


def _ensemble_scalars(sums: np.ndarray, lyap: np.ndarray, alive: np.ndarray, n: int,
                      step: int) -> dict[str, float]:
    """The recorded ensemble means from a record's sums, and the γ̂ band's quantiles."""
    living = sums[SUM_ALIVE]

    def mean(column: int) -> float:
        return float(sums[column] / living) if living else math.nan

    # γ̂ over living particles with a finite estimate: a view when that is all of them
    finite_gamma = int(sums[SUM_GAMMA_COUNT])
    gam = lyap if finite_gamma == n else lyap[alive & np.isfinite(lyap)]
    # the band's quantiles from at most QUANTILE_SAMPLE evenly spaced particles (they are
    # exchangeable): an exact quantile of 10⁶ values was a third of a record
    gam = gam[::-(-gam.size // QUANTILE_SAMPLE)] if gam.size else gam
    q10, q90 = (np.quantile(gam, [0.1, 0.9]).tolist() if gam.size > 1
                else (math.nan, math.nan))
    return {
        "loss_mean": mean(SUM_LOSS),
        "time_avg_loss": mean(SUM_TIME_AVG_LOSS if step else SUM_LOSS),
        "grad_norm_mean": mean(SUM_GRAD),
        # Zhang et al. (2022), §4: E_{μ_n}[f(θ) − f(F(θ))] = (f(θ_0) − f(θ_n))/n → 0
        "vanishing_change": mean(SUM_VANISHING),
        "time_avg_grad_norm": mean(SUM_TIME_AVG_GRAD if step else SUM_GRAD),
        "lyapunov_mean": float(sums[SUM_GAMMA] / finite_gamma) if finite_gamma else math.nan,
        "lyapunov_q10": q10,
        "lyapunov_q90": q90,
        "lyapunov_negative_fraction": float(sums[SUM_GAMMA_NEGATIVE] / finite_gamma)
        if finite_gamma else 0.0,
        "tangent_lyapunov_mean": mean(SUM_TANGENT) if not sums[SUM_TANGENT_BAD]
        else math.nan,
        "n_frozen": float(n - living),
    }
