"""Langevin particle-steps per second: the engine vs a straightforward NumPy update, same run.

Prints, for the double well and the Gaussian mixture at N = 1e3 … 1e6, the NumPy baseline rate,
the engine's plain step, the engine with all diagnostics fused (running Lyapunov sum, tangent
vector, time averages), and the ratios.  Issue targets: engine ≥ 5× NumPy at N = 1e5 on the double
well, and diagnostics ≤ 2× the plain step.

    .venv/bin/python benchmarks/engine_step.py [--sizes 1e3,1e4,1e5,1e6] [--seconds 0.5]

Then each kind's rate beside Langevin's and NumPy's, same run, on the double well (issue 26
targets at N = 1e5: Adam ≥ 40 %, BAOAB ≥ 60 % of Langevin's rate; issue 20: Langevin ≥ 9×
NumPy); ``--kinds-only`` prints just that table (``--kind-sizes`` its N, default 1e5).  The
rates are wall-clock, each the best of ``--repeats`` timed calls: on a shared host take ratios
within one run and repeat it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.presets import preset_from_dict  # noqa: E402
from engine.simulation import Simulation  # noqa: E402

LR, T = 0.005, 0.5


def numpy_double_well(pos, rng, steps):
    x, y = pos[:, 0], pos[:, 1]
    s = np.sqrt(2 * LR * T)
    for _ in range(steps):
        gx = 4 * x * (x * x - 1)
        gy = 2 * y
        x = x - LR * gx + s * rng.standard_normal(x.size)
        y = y - LR * gy + s * rng.standard_normal(y.size)
    return np.column_stack([x, y])


MU = np.array([[-1.2, -0.8], [1.3, -1.0], [0.0, 1.3], [1.6, 1.4]])
W = np.array([1.0, 0.6, 0.5, 0.3])
S = np.array([0.7, 0.25, 0.4, 0.2])


def numpy_mixture(pos, rng, steps):
    s = np.sqrt(2 * LR * T)
    for _ in range(steps):
        d = pos[:, None, :] - MU[None]
        logits = np.log(W) - 0.5 * (d ** 2).sum(-1) / S ** 2
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        e /= e.sum(axis=1, keepdims=True)
        grad = (e[..., None] * d / (S ** 2)[None, :, None]).sum(1)
        pos = pos - LR * grad + s * rng.standard_normal(pos.shape)
    return pos


REPEATS = 5


def rate(fn, n, seconds):
    """Particle-steps/s of ``fn(steps)``: the step count grown until one call takes
    ``seconds``, then the best of ``REPEATS`` such calls (as ``timeit`` reports the minimum:
    on a host whose other work comes and goes, the fastest call is the one least disturbed,
    for the engine and the NumPy baseline alike)."""
    steps = 2
    while True:
        t0 = time.perf_counter()
        fn(steps)
        dt = time.perf_counter() - t0
        if dt > seconds or steps > 10**6:
            break
        steps *= 2 if dt < seconds / 4 else 1
        if dt >= seconds / 4:
            steps = int(steps * seconds / dt) + 1
    for _ in range(REPEATS - 1):
        t0 = time.perf_counter()
        fn(steps)
        dt = min(dt, time.perf_counter() - t0)
    return n * steps / dt


def engine_rate(builtin, n, diagnostics, seconds, kind="langevin"):
    preset = preset_from_dict({
        "name": "bench", "landscape": {"builtin": builtin, "boundary": "none"},
        "dynamics": {"kind": kind, "lr": LR, "temperature": T,
                     "momentum": 0.9 if kind == "momentum" else 0.0},
        "ensemble": {"particles": n, "seed": 0, "init": {"mean": [-1.0, 0.0], "std": 0.1}},
        "run": {"steps": 1, "record_every": 10**9}})
    sim = Simulation(preset, diagnostics=diagnostics)
    sim.advance(2)  # compile
    return rate(sim.advance, n, seconds)


KINDS = ("langevin", "momentum", "sgd", "underdamped", "adam", "rmsprop", "adamw")


def kinds_table(sizes, seconds) -> None:
    """Particle-steps/s of every analytic-landscape kind beside Langevin's and the NumPy
    Langevin baseline's, with and without the fused diagnostics (momentum: β = 0.9; sgd and
    the adaptive kinds: B = 8 of n = 64, additive σ-noise)."""
    print(f"{'kind':12} {'N':>8} {'plain M/s':>10} {'diag M/s':>10} {'plain/lang':>11} "
          f"{'diag/lang':>10} {'plain/numpy':>12}")
    for n in sizes:
        rng = np.random.default_rng(0)
        pos = rng.normal(size=(n, 2))
        numpy = rate(lambda k: numpy_double_well(pos, rng, k), n, seconds)
        base = None
        for kind in KINDS:
            plain = engine_rate("double_well", n, False, seconds, kind)
            diag = engine_rate("double_well", n, True, seconds, kind)
            base = base or (plain, diag)
            print(f"{kind:12} {n:>8} {plain / 1e6:>10.2f} {diag / 1e6:>10.2f} "
                  f"{plain / base[0]:>10.0%} {diag / base[1]:>10.0%} "
                  f"{plain / numpy:>11.1f}x", flush=True)
        print(f"{'numpy':12} {n:>8} {numpy / 1e6:>10.2f}", flush=True)


def main() -> None:
    global REPEATS
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--kind-sizes", default="1e5")
    parser.add_argument("--kinds-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help="timed calls per rate; the fastest counts (default %(default)s)")
    args = parser.parse_args()
    REPEATS = max(1, args.repeats)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.kinds_only:
        kinds_table([int(float(s)) for s in args.kind_sizes.split(",")], args.seconds)
        return
    print(f"{'landscape':18} {'N':>8} {'numpy M/s':>10} {'plain M/s':>10} {'diag M/s':>10} "
          f"{'plain/numpy':>12} {'diag cost':>10}")
    for builtin, baseline in (("double_well", numpy_double_well),
                              ("gaussian_mixture", numpy_mixture)):
        for n in sizes:
            rng = np.random.default_rng(0)
            pos = rng.normal(size=(n, 2))
            base = rate(lambda k: baseline(pos, rng, k), n, args.seconds)
            plain = engine_rate(builtin, n, False, args.seconds)
            diag = engine_rate(builtin, n, True, args.seconds)
            print(f"{builtin:18} {n:>8} {base / 1e6:>10.1f} {plain / 1e6:>10.1f} "
                  f"{diag / 1e6:>10.1f} {plain / base:>11.1f}x {plain / diag:>9.2f}x",
                  flush=True)
    print()
    kinds_table([int(float(s)) for s in args.kind_sizes.split(",")], args.seconds)


if __name__ == "__main__":
    main()
