"""Kernels compiled once per machine: cold and warm start of a headless run, and the time from
a method switch to its first step, for every bundled 2D preset and every kind.

Targets (issue 20): warm start of ``python -m engine run presets/double_well_kramers.toml
--steps 20`` ≤ 2 s wall; a method switch ≤ 1 s once the cache is warm.  Uses a fresh kernel
cache folder (``ERGOSCOPE_KERNEL_CACHE``) so "cold" means cold.

    .venv/bin/python benchmarks/warm_start.py [--presets double_well_kramers,zhang_sin_lr004]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("gd", "sgd", "langevin", "momentum", "ghost")

_SWITCHES = """
import json, sys, time
from engine.presets import PresetError, load
from engine.simulation import Simulation, simulation_class
preset = load(sys.argv[1]).with_changes(ensemble={"particles": 1000})
times = {}
sim = Simulation(preset)
sim.advance(1)
for kind in sys.argv[2:]:
    started = time.perf_counter()
    try:
        changed = sim.preset_with(kind=kind)
        if simulation_class(changed) is not type(sim):
            sim = Simulation(changed)   # the window starts a new run of another class
        else:
            sim.update_params(kind=kind)
        sim.advance(1)
    except PresetError as exc:
        times[kind] = None             # the preset refuses this kind (e.g. ghost off the classifier)
        continue
    times[kind] = time.perf_counter() - started
print(json.dumps(times))
"""


def _run(args, env) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="", help="comma-separated names (default: all 2D)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.conftest import PRESETS
    presets = [p for p in PRESETS if not args.presets or p.stem in args.presets.split(",")]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ERGOSCOPE_KERNEL_CACHE": cache, "PYTHONPATH": str(ROOT)}
        out = Path(cache) / "o.npz"
        command = [sys.executable, "-m", "engine", "run", "presets/double_well_kramers.toml",
                   "--steps", "20", "--out", str(out), "--quiet"]
        cold = _run(command, env)
        warm = min(_run(command, env) for _ in range(3))
        print(f"engine run double_well_kramers --steps 20: cold {cold:.2f} s, warm {warm:.2f} s "
              f"(target ≤ 2 s; cold/warm {cold / warm:.1f}x)")
        print(f"{'preset':28}" + "".join(f"{k:>10}" for k in KINDS) + "   (s, warm cache)")
        for preset in presets:
            command = [sys.executable, "-c", _SWITCHES, str(preset), *KINDS]
            subprocess.run(command, env=env, check=True, capture_output=True)  # warm the cache
            result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            times = json.loads(result.stdout.splitlines()[-1])
            cells = "".join(f"{times[k]:>10.2f}" if times[k] is not None else f"{'—':>10}"
                            for k in KINDS)
            print(f"{preset.stem:28}{cells}", flush=True)


if __name__ == "__main__":
    main()
