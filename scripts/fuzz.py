"""Long fuzz campaigns over hostile input: generated expressions (parsed, compiled and
evaluated), preset mutations (loaded, analysed and run for a few steps) and ``--set`` values.

Each input is handled by a worker process with a time limit; a worker that overruns it is
killed and the input counted as a hang.  Prints the count of each outcome per kind:

    ok         accepted (and compiled / run)
    error      refused with the engine's one-line error naming file, key and value
    traceback  any other exception (a defect; the first few are printed)
    hang       over the time limit
    executed   the input made the process launch something or touch the canary file

Usage: ``.venv/bin/python scripts/fuzz.py --expressions 5000 --presets 2000 --sets 250``
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _generate(strategy, count: int, seed: int) -> list:
    from hypothesis import HealthCheck, Phase, given, seed as fix_seed, settings
    found: list = []

    @fix_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value):
        found.append(value)

    collect()
    return found


def _worker(connection) -> None:
    from tests import hostile
    hostile.watch_for_execution()
    while True:
        job = connection.recv()
        if job is None:
            return
        kind, value = job
        if kind == "expression":
            result = hostile.outcome(lambda: hostile.check_expression(value))
        elif kind == "preset":
            result = hostile.outcome(lambda: hostile.check_preset(value[1], run=True))
        else:
            result = hostile.outcome(lambda: hostile.check_set(value))
        executed = hostile.executions()
        connection.send(("executed", "; ".join(executed)) if executed else result)


class _Pool:
    """Workers fed one input at a time; one that overruns ``limit`` is replaced."""

    def __init__(self, size: int, limit: float):
        self.limit = limit
        self.workers = [self._start() for _ in range(size)]

    @staticmethod
    def _start():
        parent, child = mp.Pipe()
        process = mp.get_context("spawn").Process(target=_worker, args=(child,), daemon=True)
        process.start()
        return process, parent

    def run(self, jobs: list, report) -> None:
        pending = list(enumerate(jobs))
        busy: dict[int, tuple] = {}
        while pending or busy:
            for slot, (process, connection) in enumerate(self.workers):
                if slot not in busy and pending:
                    index, job = pending.pop(0)
                    connection.send(job)
                    busy[slot] = (index, job, time.monotonic())
            time.sleep(0.002)
            for slot, (index, job, started) in list(busy.items()):
                process, connection = self.workers[slot]
                if connection.poll():
                    report(job, *connection.recv())
                    del busy[slot]
                elif time.monotonic() - started > self.limit or not process.is_alive():
                    process.kill()
                    process.join()
                    report(job, "hang" if process.exitcode == -9 else "traceback",
                           f"worker exit {process.exitcode}")
                    self.workers[slot] = self._start()
                    del busy[slot]

    def close(self) -> None:
        for process, connection in self.workers:
            connection.send(None)
            process.join(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expressions", type=int, default=5000)
    parser.add_argument("--presets", type=int, default=2000)
    parser.add_argument("--sets", type=int, default=250)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=float, default=120.0,
                        help="seconds per input before it counts as a hang (kernel compiles "
                             "included)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    from tests import hostile
    hostile.CANARY.unlink(missing_ok=True)
    jobs = ([("expression", v) for v in _generate(hostile.expressions(), args.expressions,
                                                 args.seed)]
            + [("preset", v) for v in _generate(hostile.preset_texts(), args.presets, args.seed)]
            + [("set", v) for v in _generate(hostile.set_values(), args.sets, args.seed)])
    counts: dict[str, Counter] = {"expression": Counter(), "preset": Counter(), "set": Counter()}
    shown = Counter()
    started = time.monotonic()

    def report(job, outcome, detail):
        kind = job[0]
        counts[kind][outcome] += 1
        if outcome not in ("ok", "error") and shown[outcome] < 10:
            shown[outcome] += 1
            print(f"{outcome} ({kind}): {job[1]!r:.200} -> {detail:.300}", flush=True)
        done = sum(sum(c.values()) for c in counts.values())
        if done % 500 == 0:
            print(f"… {done}/{len(jobs)} in {time.monotonic() - started:.0f} s", flush=True)

    pool = _Pool(args.workers, args.limit)
    try:
        pool.run(jobs, report)
    finally:
        pool.close()
    print(f"\n{len(jobs)} inputs in {time.monotonic() - started:.0f} s (seed {args.seed})")
    outcomes = ("ok", "error", "traceback", "hang", "executed")
    print(f"{'kind':<12}" + "".join(f"{o:>11}" for o in outcomes))
    for kind, counter in counts.items():
        print(f"{kind:<12}" + "".join(f"{counter[o]:>11}" for o in outcomes))
    if hostile.CANARY.exists():
        print(f"the canary {hostile.CANARY} exists: an input executed code")
        return 1
    bad = sum(c[o] for c in counts.values() for o in ("traceback", "hang", "executed"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
