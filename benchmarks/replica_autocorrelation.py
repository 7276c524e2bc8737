"""Integrated autocorrelation time of the basin occupation at the lowest temperature: replica
exchange (``[ensemble] replicas``) against plain Langevin at the same T, η and seed, on the
asymmetric double well and on Müller–Brown.

The observable is, per chain and recorded frame, the indicator that the lowest rung's particle
(plain Langevin: the particle) is in the deepest basin (:mod:`engine.diagnostics.structure`'s
basins).  Its autocorrelation is taken about the mean of all chains together (the chains are
exchangeable; a chain's own mean would hide the chains that never crossed), averaged over the
chains, and summed up to Sokal's automatic window (as :mod:`engine.diagnostics.mixing`).  A τ
whose window reaches the end of the run is only a lower bound and printed with ``≥``.

Replica exchange pays K rungs' steps per step: the gain is also given divided by K (per
particle-step of work), and the wall time against K plain runs (kernels compiled beforehand).  Burn-in: the first fifth of the frames is dropped.

    .venv/bin/python benchmarks/replica_autocorrelation.py [--chains 200] [--scale 1.0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from engine.diagnostics.structure import analyse
from engine.presets import loads
from engine.simulation import Simulation

CASES = {
    "double well (tilt 0.1, T = 0.2)": ("""
[landscape]
builtin = "double_well"
params = { tilt = 0.1 }
[dynamics]
kind = "langevin"
lr = 0.01
temperature = 0.2
[ensemble]
init = { mean = [-1.0, 0.0], std = 0.05 }
""", "count = 4, t_max = 1.5, swap_every = 10", 200_000, 100),
    "Müller–Brown (T = 10)": ("""
[landscape]
builtin = "muller_brown"
bounds = [[-1.5, 1.2], [-0.5, 2.0]]
[dynamics]
kind = "langevin"
lr = 0.0001
temperature = 10.0
[ensemble]
init = { mean = [0.62, 0.03], std = 0.02 }
""", "count = 5, t_max = 60.0, swap_every = 10", 200_000, 100),
}


def pooled_iat(indicator: np.ndarray, window_factor: float = 5.0) -> tuple[float, bool]:
    """τ (in frames) of ``indicator (F, N)`` about its pooled mean, and whether Sokal's window
    stopped before the end of the series (False: τ is a lower bound)."""
    x = indicator - indicator.mean()
    n = x.shape[0]
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size, axis=0)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=0)[:n].mean(axis=1)
    acf /= np.arange(n, 0, -1)  # unbiased lag sums: fewer pairs at long lags
    if acf[0] <= 0:
        return float("nan"), False
    taus = 2.0 * np.cumsum(acf / acf[0]) - 1.0
    inside = np.arange(n) < window_factor * taus
    if inside.all():
        return float(taus[-1]), False
    return float(taus[int(np.argmin(inside))]), True


def measure(body: str, replicas: str | None, steps: int, every: int, chains: int) -> dict:
    table = f"replicas = {{ {replicas} }}\n" if replicas else ""
    text = (f'name = "replica autocorrelation"\n{body}'
            .replace("[ensemble]\n", f"[ensemble]\nparticles = {chains}\nseed = 1\n{table}")
            + f"[run]\nrecord_every = {every}\n")
    preset = loads(text)
    structure = analyse(preset)
    deepest = int(np.argmin([m.f for m in structure.minima]))
    warm = Simulation(preset.with_changes(ensemble={"particles": 8}))  # compiles or loads
    warm.attach_structure(structure)                                   # the kernels: untimed
    warm.advance(2 * every)
    sim = Simulation(preset, history_budget_bytes=2**31)
    sim.attach_structure(structure)
    started = time.perf_counter()
    sim.advance(steps)
    seconds = time.perf_counter() - started
    arrays = sim.trajectory_arrays()
    stride = int(arrays["steps"][1] - arrays["steps"][0])
    basin = arrays["basin"][arrays["basin"].shape[0] // 5:]
    tau, converged = pooled_iat((basin == deepest).astype(float))
    out = {"tau_steps": tau * stride, "converged": converged, "seconds": seconds,
           "occupation": float((basin == deepest).mean()), "weight": structure.weights[deepest],
           "rungs": sim.rungs if replicas else 1}
    if replicas:
        info = sim.replica_summary()
        out["acceptance"] = [round(p["acceptance"], 3) for p in info["pairs"]]
        out["round_trip_steps"] = info["mean_round_trip_steps"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the run lengths")
    args = parser.parse_args()
    for name, (body, replicas, steps, every) in CASES.items():
        steps = int(steps * args.scale) // every * every
        plain = measure(body, None, steps, every, args.chains)
        tempered = measure(body, replicas, steps, every, args.chains)
        print(f"\n{name}: {args.chains} chains × {steps} steps, ladder {{{replicas}}}")
        for label, r in (("plain Langevin", plain), ("replica exchange", tempered)):
            bound = "" if r["converged"] else "≥ "
            extra = (f", swap acceptance {r['acceptance']}, mean round trip "
                     f"{r['round_trip_steps']:.0f} steps" if "acceptance" in r else "")
            print(f"  {label:17s} τ = {bound}{r['tau_steps']:9.0f} steps   deepest-basin "
                  f"occupation {r['occupation']:.3f} (Laplace weight {r['weight']:.3f}), "
                  f"{r['seconds']:.1f} s{extra}")
        ratio = plain["tau_steps"] / tempered["tau_steps"]
        bound = "" if plain["converged"] else "≥ "
        print(f"  ratio τ_plain/τ_replica = {bound}{ratio:.1f}; per particle-step of work "
              f"(÷ {tempered['rungs']} rungs) {bound}{ratio / tempered['rungs']:.1f}; wall time "
              f"replica / ({tempered['rungs']} × plain) = "
              f"{tempered['seconds'] / (tempered['rungs'] * plain['seconds']):.2f}")


if __name__ == "__main__":
    main()
