"""The step's speed over a long run, interval by interval, as the window runs it: the Kramers
double-well preset with all diagnostics and escape tracking, 50-step chunks, history records.

A rate that falls as the run goes on points to state-dependent slow arithmetic: before the
tangent vector's subnormal components were flushed, this fell from ≈ 47 to ≈ 28 M/s after 10⁴
steps (≈ 41 → 18 M/s on one thread), and the GUI benchmark read the drop as GUI cost.

It also prints the escape events so far and the process's resident memory: both the history and
the escape log are bounded, so memory must level off however many events the run logs (a hotter
``--temperature`` logs more: 10⁵ particles at T = 0.5 pass the event log's 2²⁰ rows within a
few minutes).

    .venv/bin/python benchmarks/long_run.py [--particles 1e4] [--intervals 6] [--seconds 1.5]
        [--temperature 0.2]
"""
from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--temperature", type=float, default=0.2)
    args = parser.parse_args()
    n = int(args.particles)
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": n}, run={"record_every": 50},
        dynamics={"temperature": args.temperature})
    sim = Simulation(preset)
    sim.attach_structure(analyse(preset, resolution=256, sim=sim))
    sim.advance(50)  # compiled
    print(f"N = {n}, T = {args.temperature}, diagnostics and escapes on; "
          "M particle-steps/s per interval, escape events so far, resident memory")
    for _ in range(args.intervals):
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            sim.advance(50)
            steps += 50
        rate = steps * n / (time.perf_counter() - start) / 1e6
        print(f"  steps {sim.step - steps:>7} … {sim.step:>7}: {rate:6.1f} M/s  "
              f"{sim.event_count():>9} events  {resident_mb():6.0f} MB", flush=True)


def resident_mb() -> float:
    """Resident set size now (Linux /proc), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


if __name__ == "__main__":
    main()
