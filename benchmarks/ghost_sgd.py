"""Ghost SGD particle-steps per second on the sine classifier (n = 256, B = 16, e = 2) beside
plain SGD (e = 0) on the same model, same run, with and without the fused running Lyapunov
estimate.  Target: ≥ 1 M particle-steps/s at N = 1e4.

    .venv/bin/python benchmarks/ghost_sgd.py [--particles 10000] [--steps 200]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.presets import apply_sets, load  # noqa: E402
from engine.simulation import Simulation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    base = load(Path(__file__).resolve().parents[1] / "presets" / "ghost_corridor.toml")
    for ghosts, diagnostics in ((0, False), (2, False), (0, True), (2, True)):
        preset = apply_sets(base, [f"dynamics.ghosts={ghosts}", "dynamics.batch_size=16",
                                   "dynamics.dataset_size=256",
                                   f"ensemble.particles={args.particles}",
                                   "run.record_every=1000000000"])
        sim = Simulation(preset, diagnostics=diagnostics)
        sim.advance(2)
        t0 = time.perf_counter()
        sim.advance(args.steps)
        rate = args.particles * args.steps / (time.perf_counter() - t0)
        label = "plain SGD (e = 0)" if ghosts == 0 else f"ghost SGD (e = {ghosts})"
        extra = "with running Lyapunov" if diagnostics else "plain step"
        print(f"{label:20} {extra:22} N = {args.particles}: {rate / 1e6:.2f} M particle-steps/s")


if __name__ == "__main__":
    main()
