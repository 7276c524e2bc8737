"""The step's speed over a long run, interval by interval, as the window runs it: the Kramers
double-well preset with all diagnostics and escape tracking, 50-step chunks, history records.

A rate that falls as the run goes on points to state-dependent slow arithmetic: before the
tangent vector's subnormal components were flushed, this fell from ≈ 47 to ≈ 28 M/s after 10⁴
steps (≈ 41 → 18 M/s on one thread), and the GUI benchmark read the drop as GUI cost.

    .venv/bin/python benchmarks/long_run.py [--particles 1e4] [--intervals 6] [--seconds 1.5]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.diagnostics.structure import analyse  # noqa: E402
from engine.presets import load  # noqa: E402
from engine.simulation import Simulation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=float, default=1e4)
    parser.add_argument("--intervals", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    n = int(args.particles)
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": n}, run={"record_every": 50})
    sim = Simulation(preset)
    sim.attach_structure(analyse(preset, resolution=256, sim=sim))
    sim.advance(50)  # compiled
    print(f"N = {n}, diagnostics and escapes on; M particle-steps/s per interval")
    for _ in range(args.intervals):
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            sim.advance(50)
            steps += 50
        rate = steps * n / (time.perf_counter() - start) / 1e6
        print(f"  steps {sim.step - steps:>7} … {sim.step:>7}: {rate:6.1f}", flush=True)


if __name__ == "__main__":
    main()
