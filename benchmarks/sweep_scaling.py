"""Sweep scaling on Dask (issue 23): a 16-point sweep of ≈ 2 s points on a LocalCluster of 1
and of 2 single-threaded workers, measured in the same run; prints the speed-up and the
per-point overhead (the time to the last point's arrival × workers − the points' own compute,
per point, against a point's compute; the merge into the dataset, once per sweep, apart).

    .venv/bin/python benchmarks/sweep_scaling.py                 # 16 points of ≈ 2 s
    .venv/bin/python benchmarks/sweep_scaling.py --points 8 --seconds 0.5

Clusters are started and their workers warmed (kernel loaded) before the clock starts: the
cluster's start-up (a few seconds, once per sweep) is printed apart.  On a machine shared with
other work the speed-up says how many cores were free, not what Dask can do.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=16, help="points in the sweep (even)")
    parser.add_argument("--seconds", type=float, default=2.0, help="target compute per point")
    parser.add_argument("--particles", type=int, default=2000)
    args = parser.parse_args()

    from distributed import Client

    from engine.presets import apply_sets, dumps, load
    from engine.sweep import build_sweep, run_point, run_sweep
    from engine.sweep.executor import local_cluster

    base = apply_sets(load(ROOT / "presets" / "arrhenius_sweep.toml"),
                      [f"ensemble.particles={args.particles}", "run.record_every=200"])
    # calibrate the steps so that a point takes about --seconds here
    probe = apply_sets(base, ["run.steps=4000"])
    run_point(dumps(probe), [])  # compile / load the kernel
    started = time.perf_counter()
    probe_seconds = run_point(dumps(probe), [])["wall_time_s"]
    steps = max(1000, int(4000 * args.seconds / probe_seconds) // 1000 * 1000)
    preset = apply_sets(base, [f"run.steps={steps}"])
    seeds = max(1, args.points // 2)
    sweep = build_sweep(preset, grids=["dynamics.temperature=0.25,0.33"], seeds=seeds)
    with tempfile.TemporaryDirectory() as folder:
        # the merge and the netCDF writer import once per process: not in the first timing
        run_sweep(build_sweep(apply_sets(preset, ["run.steps=100"]),
                              grids=["dynamics.temperature=0.25"]), Path(folder) / "warm.nc",
                  workers=0)
    print(f"sweep: {sweep.size} points of {args.particles} particles × {steps} steps "
          f"(calibrated in {time.perf_counter() - started:.1f} s); cores available: "
          f"{len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}")

    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 2):
            t0 = time.perf_counter()
            cluster = local_cluster(workers)
            client = Client(cluster)
            try:
                client.wait_for_workers(workers)
                warm = client.run(run_point, dumps(apply_sets(preset, ["run.steps=100"])), [])
                assert len(warm) == workers
                startup = time.perf_counter() - t0
                arrivals: list[float] = []
                t1 = time.perf_counter()
                outcome = run_sweep(sweep, Path(folder) / f"w{workers}.nc", client=client,
                                    on_point=lambda i, r: arrivals.append(time.perf_counter()))
                wall = time.perf_counter() - t1
                points_wall = arrivals[-1] - t1  # the last point in: the merge comes after
            finally:
                client.close()
                cluster.close()
            compute = float(outcome.dataset.wall_time_s.sum())
            cpu = float(outcome.dataset.cpu_time_s.sum())
            share = cpu / compute
            overhead = (points_wall * workers - compute) / sweep.size
            point = compute / sweep.size
            timings[workers] = wall
            print(f"{workers} worker{'s' if workers > 1 else ''}: sweep {wall:.2f} s, of "
                  f"which the merge and write after the last point {wall - points_wall:.2f} s "
                  f"(cluster start-up and warm-up {startup:.2f} s apart); mean point compute "
                  f"{point:.3f} s, with {100 * share:.0f} % of a core; per-point overhead "
                  f"{overhead * 1000:.0f} ms = "
                  f"{100 * overhead / point:.1f} % of a point's compute; the sweep had "
                  f"{cpu / wall:.2f} cores' worth of CPU")
    print(f"speed-up 2 workers vs 1: {timings[1] / timings[2]:.2f}×  (load average now "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
