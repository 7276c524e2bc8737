"""Engine throughput against the number of steps per compiled call, with the window's settings
(the default preset: diagnostics on, basins analysed, escape events tracked).

A call keeps each particle's state in registers for all its steps; a call of few steps pays
each particle's loads and stores more often.  At N = 1e6 a step takes ≈ 7 ms here, so a window
drawing ≥ 30 frames/s can run at most ≈ 4 steps between frames; this prints what that costs
before any drawing, against the headless engine's 50-step calls.

    .venv/bin/python benchmarks/chunk_length.py [--sizes 1e4,1e6] [--chunks 1,2,4,8,50]
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
    parser.add_argument("--sizes", default="1e4,1e6")
    parser.add_argument("--chunks", default="1,2,4,8,50")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    base = load(ROOT / "presets" / "double_well_kramers.toml")
    for n in (int(float(s)) for s in args.sizes.split(",")):
        preset = base.with_changes(ensemble={"particles": n}, run={"record_every": 50})
        sim = Simulation(preset)
        sim.attach_structure(analyse(preset, resolution=256, sim=sim))
        sim.advance(50)
        rates = {}
        # the longest chunk measured first and last: this machine's speed drifts over minutes
        for chunk in [max(chunks)] + chunks:
            start, cpu0, steps = time.perf_counter(), sum(os.times()[:2]), 0
            while time.perf_counter() - start < args.seconds:
                sim.advance(chunk)
                steps += chunk
            elapsed = time.perf_counter() - start
            rate = steps * n / elapsed
            rates.setdefault(chunk, []).append(rate)
            print(f"N = {n:>8}: {chunk:>3} steps per call  {rate / 1e6:7.1f} M particle-steps/s"
                  f"  ({(sum(os.times()[:2]) - cpu0) / elapsed:.2f} cores)", flush=True)
        longest = sum(rates[max(chunks)]) / len(rates[max(chunks)])
        print("  relative to", max(chunks), "steps per call: " + ", ".join(
            f"{c}: {rates[c][-1] / longest:.2f}" for c in chunks))


if __name__ == "__main__":
    main()
