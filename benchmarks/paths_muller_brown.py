"""``python -m engine paths`` on Müller–Brown: wall time at 256² (target ≤ 5 s, issue 25), the
grid-refinement convergence of the committor (order printed), and the figure for the README.

    .venv/bin/python benchmarks/paths_muller_brown.py [--figure assets/paths/muller_brown.png]

1. The command itself, timed as a user runs it (a fresh process: imports, structure analysis,
   path, committor, files), three times; the best and the median are printed.
2. q on grids of 64², 128², 256², 512² cells (the same core sets: those of ``run``), compared at
   the centres of a 32² grid by bilinear interpolation: successive differences ``e_N = max|q_N −
   q_2N|`` and the observed order ``log2(e_N / e_2N)``.  The scheme is second order in the
   interior; the core sets are unions of cells of the structure grid, whose staircase edges the
   committor grid resolves at first order, so the observed order lies between 1 and 2.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "muller_brown_paths.toml"


def time_command(runs: int = 3) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "engine", "paths", str(PRESET), "--from", "0",
                            "--to", "1", "--out", f"{tmp}/paths.json", "--quiet"],
                           cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    return times


def convergence() -> list[tuple[int, float]]:
    from engine.diagnostics.structure import analyse
    from engine.paths.committor import make_grid, transition_path_theory
    from engine.paths.cores import core_labels
    from engine.presets import load
    from engine.simulation import Simulation

    preset = load(PRESET)
    sim = Simulation(preset.with_changes(ensemble={"particles": 1}))
    st = analyse(preset, sim=sim)
    probe = make_grid(sim.evaluate, sim.bounds, 32, 32, st.temperature)
    points = probe.points()
    values = {}
    for n in (64, 128, 256, 512):
        g = make_grid(sim.evaluate, sim.bounds, n, n, st.temperature)
        labels = core_labels(st, g.points()).reshape(g.shape)
        q = transition_path_theory(g, labels == 0, labels == 1).committor
        values[n] = g.interpolate(q, points)
    inside = core_labels(st, points) < 0  # compare off the core sets, where q is solved for
    return [(n, float(np.max(np.abs(values[n] - values[2 * n])[inside])))
            for n in (64, 128, 256)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figure", default=None, help="also write the report's figure here")
    args = parser.parse_args()
    times = time_command()
    print(f"engine paths muller_brown_paths --from 0 --to 1 (256² cells): best {min(times):.2f} s,"
          f" median {statistics.median(times):.2f} s wall (target ≤ 5 s)")
    diffs = convergence()
    for (n, e), (_, e2) in zip(diffs, diffs[1:] + [(None, None)]):
        order = f", order log2(e_N/e_2N) = {np.log2(e / e2):.2f}" if e2 else ""
        print(f"max |q_{n} − q_{2 * n}| = {e:.3e}{order}")
    if args.figure:
        from engine.paths.figure import plot_report
        from engine.paths.report import transition_report
        from engine.presets import load
        report, arrays = transition_report(load(PRESET), 0, 1, grid=256, simulate=True,
                                           steps=20000)
        print(json.dumps(report["rates"]["measured"]))
        print(plot_report(report, arrays, args.figure,
                          "Müller–Brown, T = 10: committor 0 → 1, q = ½ bold, current"))


if __name__ == "__main__":
    main()
