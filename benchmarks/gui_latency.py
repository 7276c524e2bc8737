"""How fast the running window reacts to input: a temperature edit made through the GUI's own
spin box, timed until the engine process reports it applied (a frame or message carrying its new
preset reached the window's process) and until a frame made with it is drawn (offscreen).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_latency.py [--sizes 1e4,1e6]

Issue target: the window reacts to input within 100 ms at any N.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from gui_session import close_window, default_preset, open_window, particle_counts, pump


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1e4,1e6")
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    base = default_preset()
    print(f"{'N':>8} {'applied median':>15} {'applied max':>12} {'shown median':>13} "
          f"{'shown max':>10}   (ms)")
    for n in particle_counts(args.sizes):
        window = open_window(base.with_changes(ensemble={"particles": n}))
        pump(3)
        times = []
        for k in range(args.changes):
            value = round(0.2 + 0.01 * (k + 1), 4)
            t0 = time.perf_counter()
            window.sliders["temperature"].spin.setValue(value)
            pump(10, lambda: abs(window.worker.state.preset.dynamics.temperature - value) < 1e-12)
            applied = time.perf_counter() - t0
            # show_frame takes the preset of the frame it draws
            pump(10, lambda: abs(window.preset.dynamics.temperature - value) < 1e-12)
            times.append((applied, time.perf_counter() - t0))
            pump(0.3)
        ms = 1000 * np.array(times)
        print(f"{n:>8} {np.median(ms[:, 0]):>15.0f} {ms[:, 0].max():>12.0f} "
              f"{np.median(ms[:, 1]):>13.0f} {ms[:, 1].max():>10.0f}", flush=True)
        close_window(window)


if __name__ == "__main__":
    main()
