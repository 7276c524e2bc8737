"""The ghost comparison (Park & Yun (2025), Result 5.5): one initial cloud of w, e = 0, 1, 2, 4.

For each e: the fraction of particles that have reached the teacher basin's core set by each
checkpoint (Wilson 95 % interval), the median hitting time with a distribution-free 95 % interval
(order statistics of a binomial(n, ½); unreached particles count as +∞), the final ``f_orig``
(mean with 95 % interval, quantiles) and the ghost mass over time (mean with 95 % interval).
Hitting times have the resolution of ``run.record_every``.
"""
from __future__ import annotations

import math

import numpy as np

from .diagnostics.structure import analyse
from .presets import Preset, apply_sets
from .simulation import Simulation

Z95 = 1.959963984540054


def wilson(successes: int, n: int) -> list[float]:
    if n == 0:
        return [float("nan")] * 2
    p = successes / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    return [centre - half, centre + half]


def median_with_ci(times: np.ndarray) -> dict:
    """Median of times (inf = never) with the order-statistic 95 % interval."""
    t = np.sort(times)
    n = t.size
    lo = max(int(math.floor(n / 2 - Z95 * math.sqrt(n) / 2)), 0)
    hi = min(int(math.ceil(n / 2 + Z95 * math.sqrt(n) / 2)), n - 1)
    as_json = (lambda v: None if not np.isfinite(v) else float(v))
    return {"median": as_json(np.median(t)), "ci95": [as_json(t[lo]), as_json(t[hi])]}


def good_basin(structure) -> int:
    return int(np.argmin([m.f for m in structure.minima]))


def compare(preset: Preset, ghost_counts=(0, 1, 2, 4), steps: int | None = None,
            progress=None) -> dict:
    steps = preset.run.steps if steps is None else int(steps)
    structure = analyse(preset.with_changes(dynamics={"ghosts": 0}))
    target = good_basin(structure)
    checkpoints = sorted({max(1, steps // 4), max(1, steps // 2), steps})
    arms = []
    for ghosts in ghost_counts:
        variant = apply_sets(preset, [f"dynamics.ghosts={ghosts}"])
        sim = Simulation(variant, diagnostics=False)  # no Lyapunov needed: faster
        sim.attach_structure(structure)
        reached = np.full(sim.positions.shape[0], np.inf)
        in_core = sim._grid_lookup(sim._cores, sim.positions) == target
        reached[in_core] = 0
        mass_curve = []
        done = 0
        stride = variant.run.record_every
        while done < steps:
            chunk = min(stride, steps - done)
            sim.advance(chunk)
            done += chunk
            in_core = sim._grid_lookup(sim._cores, sim.positions) == target
            reached[in_core & ~np.isfinite(reached)] = done
            mass = sim.metrics[:, 3]
            mass_curve.append([done, float(mass.mean()),
                               float(Z95 * mass.std(ddof=1) / math.sqrt(mass.size))])
            if progress is not None:
                progress(f"e={ghosts}", done, steps)
        n = reached.size
        fractions = []
        for k in checkpoints:
            hits = int(np.sum(reached <= k))
            fractions.append({"step": k, "fraction": hits / n, "ci95": wilson(hits, n)})
        f_final = sim.out[:, 0]
        arms.append({
            "ghosts": ghosts, "particles": n, "reached_by": fractions,
            "time_to_reach_steps": median_with_ci(reached),
            "final_f_orig": {"mean": float(f_final.mean()),
                             "ci95_half": float(Z95 * f_final.std(ddof=1) / math.sqrt(n)),
                             "quantiles_10_50_90": np.quantile(f_final, [0.1, 0.5, 0.9]).tolist()},
            "final_accuracy_mean": float(sim.metrics[:, 4].mean()),
            "ghost_mass": mass_curve[:: max(1, len(mass_curve) // 50)] + mass_curve[-1:],
            "final_ghost_mass_mean": mass_curve[-1][1],
            "final_f_ghost_mean": float(sim.metrics[:, 1].mean()),
        })
    d = preset.dynamics
    return {"preset": preset.name, "steps": steps, "lr": d.lr, "batch_size": d.batch_size,
            "temperature": d.temperature, "ghost_init": d.ghost_init,
            "target_basin": {"index": target, "x": structure.minima[target].x,
                             "y": structure.minima[target].y,
                             "f": structure.minima[target].f},
            "arms": arms}


def table_rows(result: dict) -> list[dict]:
    """Flat rows (one per arm) for CSV output."""
    rows = []
    for arm in result["arms"]:
        row = {"ghosts": arm["ghosts"], "particles": arm["particles"]}
        for item in arm["reached_by"]:
            row[f"reached_by_{item['step']}"] = item["fraction"]
            row[f"reached_by_{item['step']}_lo"] = item["ci95"][0]
            row[f"reached_by_{item['step']}_hi"] = item["ci95"][1]
        row["median_steps"] = arm["time_to_reach_steps"]["median"]
        row["median_lo"], row["median_hi"] = arm["time_to_reach_steps"]["ci95"]
        row["final_f_orig_mean"] = arm["final_f_orig"]["mean"]
        row["final_f_orig_ci95_half"] = arm["final_f_orig"]["ci95_half"]
        row["final_ghost_mass"] = arm["final_ghost_mass_mean"]
        rows.append(row)
    return rows
