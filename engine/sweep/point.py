"""One sweep point: run the preset with its settings and reduce the run to numbers.

:func:`run_point` is what a Dask worker executes (it imports nothing of Dask).  Its result is a
plain dict of floats and lists (JSON-ready, exact: floats survive ``json`` round trips):

* ``scalars``: final and time-averaged loss, γ̂ and the tangent exponent, T_eff, TV and KL of
  the pooled measure to Gibbs, the fraction of particles converged and the converged flag, the
  first passage from the start (MFPT, interval, escaped and censored counts), …;
* ``transitions``: per (from, to) basin pair, the exposure-based MFPT with its 95 % interval
  (censored time counted in the exposure), the count, the Kramers prediction and barrier;
* ``states``: occupation per basin beside its Laplace weight;
* ``wall_time_s`` and ``cpu_time_s``: the point's own wall-clock and CPU time (the only
  numbers that are not reproducible; their ratio shows how much of a core the point had).
"""
from __future__ import annotations

import math
import time

import numpy as np

# a particle has converged when its final gradient norm is at most this (engine sweep
# --converged-tol); the point's flag ``converged`` is 1 when at least half of them have
CONVERGED_TOL = 1e-6

SCALARS = ("loss_final", "time_avg_loss", "lyapunov", "tangent_lyapunov", "grad_norm_final",
           "effective_temperature", "temperature", "lr_equivalent", "tv_gibbs", "kl_gibbs",
           "converged_fraction", "converged", "frozen", "particles", "steps", "events",
           "first_passage_mfpt_steps", "first_passage_ci95_low", "first_passage_ci95_high",
           "first_passage_escaped", "first_passage_censored", "vanishing_change")
TRANSITION_VARS = ("mfpt_steps", "mfpt_ci95_low", "mfpt_ci95_high", "transitions",
                   "exposure_steps", "kramers_mfpt_steps", "barrier", "barrier_over_T")
STATE_VARS = ("occupation", "laplace_weight")


def _number(value) -> float:
    if value is None:
        return math.nan
    value = float(value)
    return value


def run_point(preset_toml: str, assignments: list[str],
              converged_tol: float = CONVERGED_TOL) -> dict:
    """Run the preset in ``preset_toml`` with ``assignments`` (``key=value``, the point's seed
    among them) and return its numbers (module docstring).  Numba runs on one thread here, as
    on a worker, so a point gives the same numbers in-process and on any worker."""
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _run_point(preset_toml, assignments, converged_tol)
    finally:
        numba.set_num_threads(threads)


def _run_point(preset_toml: str, assignments: list[str], converged_tol: float) -> dict:
    from ..api import run_preset, summary
    from ..presets import apply_sets, loads

    started, cpu_started = time.perf_counter(), time.process_time()
    preset = apply_sets(loads(preset_toml, "<sweep>"), assignments)
    sim = run_preset(preset)
    with np.errstate(all="ignore"):
        info = summary(sim)
        frame = sim.snapshot()
        alive = frame.alive.astype(bool)
        grad = frame.grad_norm[alive] if frame.grad_norm is not None else np.empty(0)
        converged = float(np.mean(grad <= converged_tol)) if grad.size else math.nan
        grad_final = float(grad.mean()) if grad.size else math.nan
    escapes = info["escapes"] or {}
    measure = info["measure"] or {}
    passage = escapes.get("first_passage_from_start") or {}
    passage_ci = passage.get("mfpt_steps_ci95") or (None, None)
    structure = sim.structure
    temperature = structure.temperature if structure is not None else math.nan
    scalars = {
        "loss_final": info["loss_mean"], "time_avg_loss": info["time_avg_loss_mean"],
        "lyapunov": info["lyapunov_mean"], "tangent_lyapunov": info["tangent_lyapunov_mean"],
        "grad_norm_final": grad_final,
        "effective_temperature": info["effective_temperature"],
        "temperature": temperature,
        "lr_equivalent": structure.lr if structure is not None else math.nan,
        "tv_gibbs": measure.get("tv"), "kl_gibbs": measure.get("kl"),
        "converged_fraction": converged,
        "converged": math.nan if math.isnan(converged) else float(converged >= 0.5),
        "frozen": info["frozen"], "particles": info["particles"], "steps": info["steps"],
        "events": escapes.get("events", 0),
        "first_passage_mfpt_steps": passage.get("mfpt_steps"),
        "first_passage_ci95_low": passage_ci[0], "first_passage_ci95_high": passage_ci[1],
        "first_passage_escaped": passage.get("escaped"),
        "first_passage_censored": passage.get("censored"),
        "vanishing_change": info["vanishing_change_mean"],
    }
    scalars = {k: _number(scalars[k]) for k in SCALARS}
    measured = {(p["from"], p["to"]): p for p in escapes.get("transitions", [])}
    predicted = {(k["from"], k["to"]): k for k in structure.kramers} if structure else {}
    exposure = (sim.escape_log.transition_table(sim.step)["exposure_steps"]
                if structure is not None else [])
    transitions = []
    for pair in sorted(set(measured) | set(predicted)):
        seen, theory = measured.get(pair, {}), predicted.get(pair, {})
        low, high = seen.get("mfpt_steps_ci95", (None, None))
        barrier = theory.get("barrier")
        transitions.append({
            "from": int(pair[0]), "to": int(pair[1]),
            "mfpt_steps": _number(seen.get("mfpt_steps")), "mfpt_ci95_low": _number(low),
            "mfpt_ci95_high": _number(high), "transitions": _number(seen.get("transitions", 0)),
            # time spent in the source basin: a pair never seen was watched this long
            "exposure_steps": _number(exposure[pair[0]] if pair[0] < len(exposure) else None),
            "kramers_mfpt_steps": _number(theory.get("mfpt_steps")),
            "barrier": _number(barrier),
            "barrier_over_T": _number(barrier / temperature)
            if barrier is not None and temperature else math.nan})
    states = {"occupation": [_number(v) for v in escapes.get("occupation", [])],
              "laplace_weight": [_number(v) for v in escapes.get("laplace_weights", [])]}
    return {"scalars": scalars, "transitions": transitions, "states": states,
            "wall_time_s": time.perf_counter() - started,
            "cpu_time_s": time.process_time() - cpu_started}
