"""Recording: the ensemble's scalar series every ``record_every`` steps and thinned
per-particle frames into the bounded :class:`~engine.history.History`, taken in pieces so the
window can read input between them (a mixin of :class:`engine.simulation.Simulation`)."""
from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from . import dynamics as dyn

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


class Recording:
    """Records of a run into its history, and the arrays exported from it."""

    @property
    def record_pending(self) -> bool:
        """Whether ``advance(defer_record=True)`` left a record to take."""
        return self._deferred is not None

    def flush_record(self, seconds: float | None = None) -> bool:
        """Take the record that ``advance(defer_record=True)`` left pending, if any; returns
        whether none is pending any more.

        With ``seconds``, stop after the first piece (:data:`RECORD_SLICE` particles) that ends
        past that budget; the next call goes on.  At 10⁶ particles a record takes 35–80 ms, and
        the window reads input between its pieces.  Live changes of :data:`STEP_ONLY_PARAMS`
        leave a record in progress as it is; everything that would change what it reads
        finishes it first.
        """
        if self._deferred is None:
            return True
        if self._record_work is None:
            self._record_work = self._record_pieces(self._deferred)
        end = math.inf if seconds is None else time.perf_counter() + seconds
        try:
            for _ in self._record_work:
                if time.perf_counter() >= end:
                    return False
        except BaseException:
            self._record_work = None  # retried from the start by the next flush
            raise
        self._deferred = self._record_work = None
        return True

    def _record_parameters(self) -> dict[str, float]:
        """The recorded scalars that depend on parameters rather than on the particles (η and
        T as scheduled for the steps from here)."""
        d = self.scheduled_dynamics()
        return {"time": self.time, "effective_temperature": self.effective_temperature(),
                "lr": d.lr, "temperature": d.temperature, "batch_size": d.batch_size,
                "momentum": d.momentum}

    def _record(self, parameters: dict[str, float] | None = None) -> None:
        for _ in self._record_pieces(parameters):
            pass

    def _record_pieces(self, parameters: dict[str, float] | None):
        """The record as a generator that yields after each slice of particles (the sums are
        exactly those of one pass: per-block partials, added in block order at the end)."""
        alive = self.alive.astype(bool)
        n = len(alive)
        n_blocks = -(-n // dyn.BLOCK)
        partial = np.empty((n_blocks, N_SUMS))
        lyap, tangent = np.empty(n), np.empty(n)
        out = self.out
        yield
        for first in range(0, n, RECORD_SLICE):
            rows = slice(first, min(n, first + RECORD_SLICE))
            lyap[rows], tangent[rows] = self.running_lyapunov(rows)
            blocks = -(-(rows.stop - first) // dyn.BLOCK)
            dyn.run_blocks(_record_sums, blocks, 10 * (rows.stop - first),
                           (alive[rows], out[rows], self.acc[rows], self.loss_start[rows],
                            lyap[rows], tangent[rows],
                            partial[first // dyn.BLOCK:first // dyn.BLOCK + blocks]))
            yield
        sums = partial.sum(axis=0)
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
        scalars = {
            "loss_mean": mean(SUM_LOSS),
            "time_avg_loss": mean(SUM_TIME_AVG_LOSS if self.step else SUM_LOSS),
            "grad_norm_mean": mean(SUM_GRAD),
            # Zhang et al. (2022), §4: E_{μ_n}[f(θ) − f(F(θ))] = (f(θ_0) − f(θ_n))/n → 0
            "vanishing_change": mean(SUM_VANISHING),
            "time_avg_grad_norm": mean(SUM_TIME_AVG_GRAD if self.step else SUM_GRAD),
            "lyapunov_mean": float(sums[SUM_GAMMA] / finite_gamma) if finite_gamma else math.nan,
            "lyapunov_q10": q10,
            "lyapunov_q90": q90,
            "lyapunov_negative_fraction": float(sums[SUM_GAMMA_NEGATIVE] / finite_gamma)
            if finite_gamma else 0.0,
            "tangent_lyapunov_mean": mean(SUM_TANGENT) if not sums[SUM_TANGENT_BAD]
            else math.nan,
            "n_frozen": float(n - living),
            **(parameters if parameters is not None else self._record_parameters()),
        }
        per_particle = None
        if self.history.frame_due(self.step):
            per_particle = {"positions": self.positions, "loss": self.out[:, 0],
                            "lyapunov": lyap}
            if self._cores.shape != (1, 1):
                per_particle["basin"] = self.basin_of(self.positions)
        if self._cores.shape != (1, 1):
            n_states = int(self._basin_grid.max()) + 1
            counts = np.bincount(self.last_core[alive & (self.last_core >= 0)],
                                 minlength=n_states)
            for state, count in enumerate(counts[:n_states]):
                scalars[f"occupation_{state}"] = count / max(living, 1.0)
        self._extend_record(per_particle, scalars)
        self.history.record(self.step, per_particle, scalars)

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        """Hook for subclasses to add recorded fields (``per_particle`` is None when no
        per-particle frame is due)."""

    def trajectory_arrays(self) -> dict[str, np.ndarray]:
        """The export fields (README, "Headless use") the history holds, plus ensemble series."""
        self.flush_record()
        from .presets import dumps
        arrays = self.history.particle_arrays()
        arrays["preset"] = np.array(dumps(self.preset))
        arrays["events"] = self.events()
        # events beyond the log's capacity are counted here though no longer listed
        arrays["events_total"] = np.array(self.event_count(), dtype=np.int64)
        for key, value in self.history.scalar_series().items():
            if key != "steps":
                arrays[f"series_{key}"] = value
        arrays["series_steps"] = self.history.scalar_series()["steps"]
        return arrays
