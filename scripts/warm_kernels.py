"""Compile the step kernels the bundled presets use into the kernel cache (engine.kernel_cache),
so the window's first frame and the test suite do not wait for numba.  Seconds when the cache is
warm; about a minute per core when it is cold.  Run by scripts/test.sh.

    .venv/bin/python scripts/warm_kernels.py [--workers 2]

Each job runs one configuration as the window first does (a preset with ``[[compare]]`` runs
every configuration side by side, so each is a job).  The jobs are ordered so that both workers
stay busy to the end: the kinds with the costliest kernels first, and the jobs of one landscape
apart, so that two workers rarely need the same kernel at once (one would wait for the other's
compile, engine.kernel_cache).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# kinds whose kernels take longest to compile (the rest: the fused kernel's copies, ≈ 5 s)
_COSTLIER = {"ghost": 3, "adam": 2, "adamw": 2, "rmsprop": 2, "underdamped": 2}


def _configuration(path: str, index: int):
    """The preset at ``path``, or its ``[[compare]]`` configuration ``index`` (≥ 0)."""
    from engine.presets import configurations, load
    preset = load(path)
    return preset if index < 0 else configurations(preset)[index]


def warm(job: tuple[str, int]) -> tuple[str, float]:
    """Run the job's configuration as the window first does: structure analysis, escape
    tracking, steps."""
    sys.path.insert(0, str(ROOT))
    from engine.diagnostics.structure import analyse
    from engine.simulation import Simulation
    started = time.perf_counter()
    path, index = job
    preset = _configuration(path, index).with_changes(ensemble={"particles": 64})
    sim = Simulation(preset)
    sim.attach_structure(analyse(preset, resolution=32, sim=sim))
    sim.advance(2)
    name = Path(path).stem + ("" if index < 0 else f" [{preset.dynamics.kind}]")
    return name, time.perf_counter() - started


def jobs(paths: list[Path]) -> list[tuple[str, int]]:
    """One job per configuration of each preset, in the order described in the module
    docstring: round by round, one job of each landscape per round, costliest first."""
    from engine.presets import configurations, load
    by_landscape: dict[str, list[tuple[int, tuple[str, int]]]] = defaultdict(list)
    for path in paths:
        preset = load(path)
        configs = configurations(preset)
        for index, config in enumerate(configs) if configs else [(-1, preset)]:
            landscape = config.landscape
            key = repr((landscape.builtin, landscape.expr, sorted(landscape.params.items())))
            cost = _COSTLIER.get(config.dynamics.kind, 1)
            by_landscape[key].append((cost, (str(path), index)))
    queues = sorted((sorted(queue, key=lambda job: -job[0]) for queue in by_landscape.values()),
                    key=lambda queue: -queue[0][0])
    rounds = zip_longest(*queues)
    return [job for one_round in rounds
            for _, job in sorted((job for job in one_round if job), key=lambda job: -job[0])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.conftest import PRESETS
    started = time.perf_counter()
    todo = jobs(PRESETS)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for done in as_completed([pool.submit(warm, job) for job in todo]):
            name, seconds = done.result()
            print(f"  {name}: {seconds:.1f} s", flush=True)
    print(f"kernels ready for {len(PRESETS)} presets ({len(todo)} configurations) in "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
