"""``python -m engine paths PRESET --from i --to j --out paths.json``: the transition report.

The JSON holds the minimum-energy path (``path``, ``profile``, ``highest`` and the saddle of the
structure analysis it matches), the rates side by side (``rates``: TPT, Eyring–Kramers and, with
``simulate``, the rate measured by ``run``'s escape tracking), the slowest relaxation time of the
discretised generator, and the name of the NPZ beside it (``paths.json.npz``) with the grid
fields ``x (nx,)``, ``y (ny,)``, ``committor (ny, nx)``, ``reactive_density (ny, nx)``,
``current (ny, nx, 2)``, ``gibbs (ny, nx)``, ``core (ny, nx)`` (0: A, 1: B, −1: neither),
``path (M, 2)`` and ``profile (M,)``.  A and B are the core sets of minima ``i`` and ``j`` in
``run``'s escape tracking (:mod:`.cores`); the committor and the reactive fields are those of
the pair (q = 0 on A, 1 on B; the other core sets are ordinary ground).

``rates.tpt`` is the rate i → j as ``run``'s escape log defines it — between *all* the core sets
(:func:`.committor.core_set_rates`; with two minima it is TPT's ``ν_AB / ρ_A``, with more the
time after entering a third set is that set's) — for the diffusion, and under ``at_step`` for the
chain, whose core membership is checked once a step (the sets eroded by the Siegmund shift
``β√(2ηT)``, :mod:`.cores`): the one to compare with ``measured``.  ``rates.tpt.two_set`` holds
the pair's own TPT numbers (flux, ρ_A, ρ_B, reactive probability, mean reactive duration).
Rates are per unit time of the equivalent Langevin dynamics (``η·steps``); ``*_steps`` fields
count steps of the preset.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..presets import Preset, PresetError


def _kramers(structure, source: int, target: int) -> dict | None:
    for entry in structure.kramers:
        if entry["from"] == source and entry["to"] == target:
            tau = entry.get("mfpt_time")
            return {"rate": 1.0 / tau if tau else None, "mfpt_time": tau,
                    "mfpt_steps": entry.get("mfpt_steps"), "barrier": entry["barrier"],
                    "barrier_over_T": entry.get("barrier_over_T"),
                    "saddle_refined": entry["saddle_refined"]}
    return None


def transition_report(preset: Preset, source: int, target: int, grid: int = 256,
                      images: int = 65, simulate: bool = False, steps: int | None = None,
                      spectral: bool = False,
                      progress: Callable[[int, int], None] | None = None
                      ) -> tuple[dict, dict[str, np.ndarray]]:
    """The report's JSON and NPZ arrays (module docstring)."""
    from ..diagnostics.structure import StructureError, analyse
    from ..simulation import Simulation
    from .committor import core_set_rates, make_grid, spectral_gap, transition_path_theory
    from .cores import core_labels, discrete_monitoring_shift, monitored_core_labels
    from .mep import minimum_energy_path

    timings = {}
    clock = time.perf_counter()
    sim = Simulation(preset.with_changes(ensemble={"particles": 1}))
    try:
        structure = analyse(preset, sim=sim)
    except StructureError as exc:
        raise PresetError(preset.source, "landscape", str(exc)) from None
    timings["structure_s"] = time.perf_counter() - clock
    n = len(structure.minima)
    for flag, index in (("--from", source), ("--to", target)):
        if not 0 <= index < n:
            raise PresetError(flag, str(index), f"no such minimum: the landscape has {n} "
                              f"(indices 0…{n - 1}, as `engine info` lists them)")
    if source == target:
        raise PresetError("--to", str(target), "must differ from --from")
    temperature, lr = structure.temperature, structure.lr
    if not temperature > 0:
        raise PresetError(preset.source, "dynamics",
                          "committors and rates need noise: the equivalent Langevin temperature "
                          "is 0 (gradient descent, or state-dependent noise)")
    if not 8 <= grid <= 2048:
        raise PresetError("--grid", str(grid), "must be between 8 and 2048 (cells per side; "
                          "2048² takes about 2 GB)")

    clock = time.perf_counter()
    a, b = structure.minima[source], structure.minima[target]
    path = minimum_energy_path(sim.evaluate, (a.x, a.y), (b.x, b.y), images=images)
    top = path.points[path.highest]
    saddle = None
    if structure.saddles:
        dist = [math.hypot(c.x - top[0], c.y - top[1]) for c, _ in structure.saddles]
        k = int(np.argmin(dist))
        crit, pair = structure.saddles[k]
        saddle = {"x": crit.x, "y": crit.y, "f": crit.f, "connects": list(pair),
                  "distance": dist[k]}
    timings["path_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    g = make_grid(sim.evaluate, sim.bounds, grid, grid, temperature,
                  periodic=preset.landscape.boundary == "periodic")
    labels = core_labels(structure, g.points()).reshape(g.shape)
    A, B = labels == source, labels == target
    tpt = transition_path_theory(g, A, B)
    # rates between all core sets, as run's escape log counts them; and for the chain, whose
    # core membership is checked once a step: the sets eroded by the Siegmund shift
    continuum = core_set_rates(g, labels)
    shift = discrete_monitoring_shift(temperature, lr)
    eroded = monitored_core_labels(structure, g.points(), sim.evaluate, shift).reshape(g.shape)
    monitored = core_set_rates(g, eroded) if np.all(np.isin(continuum.labels, eroded)) else None
    timings["committor_s"] = time.perf_counter() - clock
    relaxation = None
    if spectral:
        clock = time.perf_counter()
        mu = spectral_gap(g, 1)
        relaxation = {"slowest_rate": float(mu[1]), "relaxation_time": float(1.0 / mu[1])
                      if mu[1] > 0 else None, "two_set_rate_sum": tpt.rate_AB + tpt.rate_BA}
        timings["spectral_s"] = time.perf_counter() - clock

    measured = None
    if simulate:
        clock = time.perf_counter()
        from ..api import escape_summary, run_preset
        run = run_preset(preset, steps=steps, progress=progress)
        escapes = escape_summary(run) or {}
        pair = next((p for p in escapes.get("transitions", [])
                     if p["from"] == source and p["to"] == target), None)
        measured = {"steps": int(run.step), "particles": int(len(run.alive)),
                    "transitions": pair["transitions"] if pair else 0,
                    "mfpt_steps": pair["mfpt_steps"] if pair else None,
                    "mfpt_steps_ci95": pair["mfpt_steps_ci95"] if pair else None,
                    "mfpt_time": pair["mfpt_steps"] * lr if pair else None,
                    "rate": 1.0 / (pair["mfpt_steps"] * lr) if pair else None}
        timings["simulate_s"] = time.perf_counter() - clock

    def rate_entry(rates) -> dict | None:
        if rates is None:
            return None
        k = rates.rate(source, target)
        return {"rate": k, "mfpt_time": 1.0 / k if k > 0 else None,
                "mfpt_steps": 1.0 / k / lr if k > 0 else None}

    rates = {"units": "per unit time of the equivalent Langevin dynamics (η·steps)",
             "tpt": {**rate_entry(continuum),
                     "at_step": {**(rate_entry(monitored) or {}), "core_shift": shift},
                     "two_set": tpt.to_json()},
             "kramers": _kramers(structure, source, target),
             "measured": measured}
    report = {"preset": preset.name, "from": source, "to": target,
              "minima": {"from": a.to_json(), "to": b.to_json()},
              "temperature": temperature, "lr": lr, "grid": [grid, grid],
              **path.to_json(), "saddle": saddle, "rates": rates,
              "relaxation": relaxation, "timings": timings}
    arrays = {"x": g.x, "y": g.y, "committor": tpt.committor,
              "reactive_density": tpt.reactive_density, "current": tpt.current,
              "gibbs": g.gibbs() / (g.hx * g.hy),
              "core": np.where(A, 0, np.where(B, 1, -1)).astype(np.int8),
              "path": path.points, "profile": path.profile}
    return report, arrays


def write_report(out: str | Path, report: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``out`` (JSON) and ``out + ".npz"`` beside it, each atomically: the NPZ first, so
    the JSON that names it never exists without it."""
    from ..export import prepare_output, write_json, write_npz
    out = prepare_output(out)
    npz = prepare_output(out.with_name(out.name + ".npz"))
    write_npz(npz, arrays)
    write_json(out, {**report, "npz": npz.name})
    return npz
