"""Escape statistics from core-set events (DESIGN §7).

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
"""
from __future__ import annotations

import math

import numpy as np


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
    events = np.asarray(events, dtype=np.int64).reshape(-1, 4)
    initial = np.asarray(initial, dtype=np.int64)
    exposure = np.zeros(n_states)
    counts = np.zeros((n_states, n_states), dtype=np.int64)
    order = np.lexsort((events[:, 0], events[:, 1]))
    ev = events[order]
    last_step = np.full(initial.size, start, dtype=np.int64)
    state = initial.copy()
    if ev.size:
        particle = ev[:, 1]
        first_of_particle = np.r_[True, particle[1:] != particle[:-1]]
        previous = np.where(first_of_particle, start, np.r_[start, ev[:-1, 0]])
        valid = ev[:, 2] >= 0
        np.add.at(exposure, ev[valid, 2], (ev[valid, 0] - previous[valid]).astype(float))
        np.add.at(counts, (ev[valid, 2], ev[valid, 3]), 1)
        last_of_particle = np.r_[particle[1:] != particle[:-1], True]
        last_step[particle[last_of_particle]] = ev[last_of_particle, 0]
        state[particle[last_of_particle]] = ev[last_of_particle, 3]
    ok = state >= 0
    np.add.at(exposure, state[ok], (end - last_step[ok]).astype(float))
    pairs = []
    for i in range(n_states):
        for j in range(n_states):
            if i != j and counts[i, j] > 0:
                tau = exposure[i] / counts[i, j]
                pairs.append({"from": i, "to": j, "transitions": int(counts[i, j]),
                              "exposure_steps": float(exposure[i]), "mfpt_steps": tau,
                              "mfpt_steps_ci95": _interval(tau, int(counts[i, j]))})
    return {"exposure_steps": exposure.tolist(), "counts": counts.tolist(), "pairs": pairs}


def first_passage(events: np.ndarray, initial: np.ndarray, start: int, end: int) -> dict:
    """First exit from the starting state per particle, censored at ``end``; exponential fit."""
    events = np.asarray(events, dtype=np.int64).reshape(-1, 4)
    initial = np.asarray(initial, dtype=np.int64)
    n = initial.size
    first = np.full(n, -1, dtype=np.int64)
    if events.size:
        order = np.lexsort((events[:, 0], events[:, 1]))
        ev = events[order]
        is_first = np.r_[True, ev[1:, 1] != ev[:-1, 1]]
        first[ev[is_first, 1]] = ev[is_first, 0]
    observed = first >= 0
    times = (first[observed] - start).astype(float)
    horizon = float(end - start)
    n_obs = int(observed.sum())
    n_cens = int(n - n_obs)
    result = {"particles": n, "escaped": n_obs, "censored": n_cens, "horizon_steps": horizon}
    if n_obs == 0:
        result.update(mfpt_steps=float("nan"), mfpt_steps_ci95=[float("nan")] * 2,
                      ks_statistic=float("nan"), ks_pvalue=float("nan"))
        return result
    tau = (times.sum() + n_cens * horizon) / n_obs
    sorted_times = np.sort(times)
    cdf = (1 - np.exp(-sorted_times / tau)) / (1 - math.exp(-horizon / tau))
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
