"""Escape statistics from core-set events (docs/science.md § 4).

Events are rows ``(step, particle, from, to)``: particle entered core set ``to`` and the last core
set it had visited was ``from`` (its basin at the start counts as visited).  From them:

* **Transition rates** (competing exponential risks): the time each particle spends attributed to
  state ``i`` is its exposure ``E_i``; ``n_ij`` transitions give ``τ_ij = E_i / n_ij`` steps — the
  maximum-likelihood mean first-passage time with censoring handled by the exposure (particles that
  never left still contribute their time).  95 % interval ``τ exp(±1.96/√n_ij)``.
* **First passage from the starting basin**: per particle the step of its first event; particles
  without one are right-censored at the end of the run (counted, not dropped).  The MLE of an
  exponential law with censoring is ``τ = (Σ observed + Σ censored times) / n_observed``, and a
  Kolmogorov–Smirnov distance compares the observed times with that law conditioned on ``t ≤ T``
  (the parameter is fitted on the same data, so the p-value is conservative).

A run of 10⁶ particles on the double well logs ≈ 60 events a step, so a list of every event grows
by ≈ 140 MB an hour at 20 steps/s.  :class:`EscapeLog` keeps what these statistics need instead —
per particle its state, the step of its last event and whether it has left its starting state;
per state the closed exposure and its open stays; per pair the transition count; the first exits
in the order they happen — updated chunk by chunk (``O(N + S²)`` memory, the same numbers as the
batch functions on the whole list), and the latest events in a ring buffer for the window's
raster and the export.
"""
from __future__ import annotations

import math

import numpy as np

EVENT_LOG_CAPACITY = 1 << 20  # latest events kept (32 MB); the statistics cover all of them


def _kolmogorov_p(statistic: float, n: int) -> float:
    """Asymptotic Kolmogorov p-value with the Stephens small-sample correction."""
    if n <= 0:
        return float("nan")
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * statistic
    if lam < 1e-3:
        return 1.0
    total = sum(2 * (-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return float(min(max(total, 0.0), 1.0))


def _interval(tau: float, count: int) -> list[float]:
    if count == 0 or not math.isfinite(tau):
        return [float("nan"), float("nan")]
    half = 1.96 / math.sqrt(count)
    return [tau * math.exp(-half), tau * math.exp(half)]


def transition_table(events: np.ndarray, initial: np.ndarray, start: int, end: int,
                     n_states: int) -> dict:
    """Exposure per state and ``τ_ij`` (steps) per observed pair; see module docstring."""
    return log_of(events, initial, start, n_states).transition_table(end)


def first_passage(events: np.ndarray, initial: np.ndarray, start: int, end: int) -> dict:
    """First exit from the starting state per particle, censored at ``end``; exponential fit."""
    events = np.asarray(events, dtype=np.int64).reshape(-1, 4)
    labels = np.concatenate([np.asarray(initial, dtype=np.int64).ravel(), events[:, 2:].ravel()])
    n_states = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 1
    return log_of(events, initial, start, n_states).first_passage(end)


def exposure_table(exposure: np.ndarray, counts: np.ndarray) -> dict:
    """``τ_ij = E_i / n_ij`` with its 95 % interval for every pair with ``n_ij > 0``."""
    n_states = len(exposure)
    pairs = []
    for i in range(n_states):
        for j in range(n_states):
            if i != j and counts[i, j] > 0:
                tau = exposure[i] / counts[i, j]
                pairs.append({"from": i, "to": j, "transitions": int(counts[i, j]),
                              "exposure_steps": float(exposure[i]), "mfpt_steps": tau,
                              "mfpt_steps_ci95": _interval(tau, int(counts[i, j]))})
    return {"exposure_steps": exposure.tolist(), "counts": counts.tolist(), "pairs": pairs}


def exponential_first_passage(times: np.ndarray, particles: int, horizon: float) -> dict:
    """Censored exponential fit of the observed first-exit ``times`` (steps after the start,
    ascending) of ``particles`` particles watched for ``horizon`` steps; the others are
    censored."""
    n_obs = int(times.size)
    n_cens = int(particles - n_obs)
    result = {"particles": particles, "escaped": n_obs, "censored": n_cens,
              "horizon_steps": horizon}
    if n_obs == 0:
        result.update(mfpt_steps=float("nan"), mfpt_steps_ci95=[float("nan")] * 2,
                      ks_statistic=float("nan"), ks_pvalue=float("nan"))
        return result
    tau = (times.sum() + n_cens * horizon) / n_obs
    cdf = (1 - np.exp(-times / tau)) / (1 - math.exp(-horizon / tau))
    upper = np.arange(1, n_obs + 1) / n_obs
    lower = np.arange(0, n_obs) / n_obs
    statistic = float(max(np.max(upper - cdf), np.max(cdf - lower)))
    result.update(mfpt_steps=float(tau), mfpt_steps_ci95=_interval(tau, n_obs),
                  mean_observed_steps=float(times.mean()), ks_statistic=statistic,
                  ks_pvalue=_kolmogorov_p(statistic, n_obs), times=times)
    return result


def occupation(states: np.ndarray, n_states: int) -> list[float]:
    """Fraction of particles attributed to each state."""
    states = np.asarray(states)
    states = states[states >= 0]
    if states.size == 0:
        return [0.0] * n_states
    return (np.bincount(states, minlength=n_states)[:n_states] / states.size).tolist()


class EscapeLog:
    """Escape statistics from ``start`` on for particles starting in states ``initial``.

    Events are rows ``(step, particle, from, to)`` (see :mod:`.escapes`).  :meth:`add` takes
    each chunk of steps' events, chunks in step order (rows within a chunk in any order).
    """

    def __init__(self, initial: np.ndarray, start: int, n_states: int,
                 capacity: int = EVENT_LOG_CAPACITY):
        self.initial = np.array(initial, dtype=np.int64)
        self.start = int(start)
        self.n_states = int(n_states)
        self.state = self.initial.copy()                 # state each particle is attributed to
        self.last_step = np.full(self.initial.size, self.start, dtype=np.int64)
        self.escaped_once = np.zeros(self.initial.size, dtype=bool)
        self.exposure = np.zeros(self.n_states)          # closed stays only
        self.counts = np.zeros((self.n_states, self.n_states), dtype=np.int64)
        # open stays per state: how many particles, and the sum of the steps they entered at,
        # so that the exposure at any end step costs O(states), not a pass over N particles
        counted = self.initial >= 0
        self.open_count = np.bincount(self.initial[counted],
                                      minlength=self.n_states)[:self.n_states]
        self.open_since = self.open_count * self.start
        # first exits in the order they happened, i.e. sorted: the exponential fit and its KS
        # distance need no sort of N values
        self.first_times = np.empty(self.initial.size, dtype=np.int64)
        self.escaped = 0
        self.total = 0
        self._ring = np.empty((max(int(capacity), 0), 4), dtype=np.int64)

    def add(self, events: np.ndarray) -> None:
        """Take one chunk's events (steps after every earlier chunk's)."""
        events = np.asarray(events, dtype=np.int64).reshape(-1, 4)
        if not len(events):
            return
        by_particle = events[np.lexsort((events[:, 0], events[:, 1]))]
        step, particle = by_particle[:, 0], by_particle[:, 1]
        first_in_chunk = np.r_[True, particle[1:] != particle[:-1]]
        last_in_chunk = np.r_[particle[1:] != particle[:-1], True]
        previous = np.where(first_in_chunk, self.last_step[particle], np.r_[0, step[:-1]])
        left = by_particle[:, 2]
        valid = left >= 0
        np.add.at(self.exposure, left[valid], (step[valid] - previous[valid]).astype(float))
        np.add.at(self.counts, (left[valid], by_particle[valid, 3]), 1)
        ends = particle[last_in_chunk]
        self._open_stays(self.state[ends], self.last_step[ends], -1)
        self.last_step[ends] = step[last_in_chunk]
        self.state[ends] = by_particle[last_in_chunk, 3]
        self._open_stays(self.state[ends], self.last_step[ends], 1)
        starts = particle[first_in_chunk]
        unseen = ~self.escaped_once[starts]
        exits = step[first_in_chunk][unseen]
        self.escaped_once[starts[unseen]] = True
        self.first_times[self.escaped:self.escaped + exits.size] = np.sort(exits)
        self.escaped += exits.size
        self._keep(events[np.lexsort((events[:, 1], events[:, 0]))])

    def _open_stays(self, states: np.ndarray, since: np.ndarray, sign: int) -> None:
        counted = states >= 0
        np.add.at(self.open_count, states[counted], sign)
        np.add.at(self.open_since, states[counted], sign * since[counted])

    def _keep(self, in_order: np.ndarray) -> None:
        capacity = len(self._ring)
        if capacity:
            tail = in_order[-capacity:]
            at = (self.total + len(in_order) - len(tail)) % capacity
            first = min(len(tail), capacity - at)
            self._ring[at:at + first] = tail[:first]
            self._ring[:len(tail) - first] = tail[first:]
        self.total += len(in_order)

    @property
    def retained(self) -> int:
        """How many of the latest events the ring holds."""
        return min(self.total, len(self._ring))

    def recent(self, count: int) -> np.ndarray:
        """The latest ``min(count, retained)`` events, ``(E, 4)`` sorted by (step, particle)."""
        count = max(0, min(int(count), self.retained))
        if count == 0:
            return np.empty((0, 4), dtype=np.int64)
        end = self.total % len(self._ring)
        index = np.arange(end - count, end) % len(self._ring)
        return self._ring[index]

    def events(self) -> np.ndarray:
        """Every retained event: all of them unless more than ``capacity`` happened."""
        return self.recent(self.retained)

    def transition_table(self, end: int) -> dict:
        """Exposure per state and ``τ_ij`` per observed pair at step ``end``, as
        :func:`.escapes.transition_table` gives on the whole event list."""
        open_exposure = self.open_count * int(end) - self.open_since  # exact integers
        return exposure_table(self.exposure + open_exposure, self.counts)

    def first_passage(self, end: int) -> dict:
        """First exit from the starting state per particle, censored at ``end``, as
        :func:`.escapes.first_passage` gives on the whole event list."""
        times = (self.first_times[:self.escaped] - self.start).astype(float)
        return exponential_first_passage(times, self.initial.size, float(end - self.start))

    def copy(self) -> "EscapeLog":
        twin = EscapeLog.__new__(EscapeLog)
        twin.__dict__ = {key: value.copy() if isinstance(value, np.ndarray) else value
                         for key, value in self.__dict__.items()}
        return twin


def log_of(events: np.ndarray, initial: np.ndarray, start: int, n_states: int) -> EscapeLog:
    """A log that has taken ``events`` (a whole run's, any order), keeping none of the rows."""
    log = EscapeLog(initial, start, n_states, capacity=0)
    log.add(events)
    return log
