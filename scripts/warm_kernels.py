"""Compile the step kernels the bundled presets use into the kernel cache (engine.kernel_cache),
so the window's first frame and the test suite do not wait for numba.  Seconds when the cache is
warm; about a minute per core when it is cold.  Run by scripts/setup.sh.

    .venv/bin/python scripts/warm_kernels.py [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def warm(path: str) -> tuple[str, float]:
    """Run the preset as the window first does: structure analysis, escape tracking, steps."""
    sys.path.insert(0, str(ROOT))
    from engine.diagnostics.structure import analyse
    from engine.presets import load
    from engine.simulation import Simulation
    started = time.perf_counter()
    preset = load(path).with_changes(ensemble={"particles": 64})
    sim = Simulation(preset)
    sim.attach_structure(analyse(preset, resolution=32, sim=sim))
    sim.advance(2)
    return Path(path).stem, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.conftest import PRESETS
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for name, seconds in pool.map(warm, [str(p) for p in PRESETS]):
            print(f"  {name}: {seconds:.1f} s", flush=True)
    print(f"kernels ready for {len(PRESETS)} presets in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
