"""Where the suite's numba compile time goes: ``pytest --compile-report=DIR`` (see conftest).

Every numba compilation (a cache miss: numba's ``numba:compile`` event, not a cache load) is
timed in CPU seconds of the compiling thread and charged to the test running when it ends; a
compile nested inside another (a callee compiled while the caller is typed) counts only in the
outermost one.  Each process (each xdist worker) appends its records to ``DIR/<pid>.jsonl``::

    {"test": nodeid, "function": "module.qualname", "what": landscape/variant, "cpu": s, "wall": s}

``python tests/compile_report.py DIR`` sums them per test and per kernel.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from numba.core import event

_VARIANT_FLAGS = ("LEAN", "WITH_DIAGNOSTICS", "MOMENTUM", "FOLDS", "MINIBATCH")


def describe(py_func) -> str:
    """``py_func``'s kernel variant: for a generated kernel module (engine.kernel_cache), its
    template, landscape function and copy flags; else ''."""
    module = sys.modules.get(py_func.__module__)
    if module is None or not py_func.__module__.startswith("ergoscope_kernels."):
        return ""
    template = "kind_kernels" if hasattr(module, "baoab_range") else "step_kernels"
    func = getattr(module, "func", None)
    landscape = getattr(getattr(func, "py_func", func), "__qualname__", "?")
    flags = [name for name in _VARIANT_FLAGS if getattr(module, name, False)]
    return f"{template}[{landscape}{'' if not flags else ' ' + '+'.join(flags)}]"


class CompileRecorder(event.Listener):
    """Outermost numba compilations, timed per thread."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.records: list[dict] = []

    def on_start(self, ev: event.Event) -> None:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        stack.append((time.thread_time(), time.perf_counter()))

    def on_end(self, ev: event.Event) -> None:
        cpu0, wall0 = self._local.stack.pop()
        if self._local.stack:
            return
        py_func = ev.data["dispatcher"].py_func
        with self._lock:
            self.records.append({"function": f"{py_func.__module__}.{py_func.__qualname__}",
                                 "what": describe(py_func),
                                 "cpu": time.thread_time() - cpu0,
                                 "wall": time.perf_counter() - wall0})

    def take(self) -> list[dict]:
        with self._lock:
            taken, self.records = self.records, []
        return taken


class CompileReportPlugin:
    """pytest hooks: charge the recorder's records to the test that ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.recorder = CompileRecorder()
        event.register("numba:compile", self.recorder)

    def _write(self, test: str) -> None:
        records = self.recorder.take()
        if not records:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps({"test": test, **record}) + "\n")

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        self._write(nodeid)

    def pytest_sessionfinish(self) -> None:
        self._write("<session end>")


def summarise(folder: Path, top: int = 40) -> str:
    """Compile CPU seconds per test, per kernel variant and per function, largest first."""
    records = [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
               for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [f"{len(records)} compilations, {sum(r['cpu'] for r in records):.1f} CPU s "
             f"({sum(r['wall'] for r in records):.1f} s wall)"]
    for title, key in (("per test", lambda r: r["test"]),
                       ("per kernel variant", lambda r: r["what"] or r["function"]),
                       ("per function", lambda r: r["function"].split(".k_")[0]
                        + (" " + r["function"].rsplit(".", 1)[1] if ".k_" in r["function"]
                           else ""))):
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        for r in records:
            totals[key(r)][0] += r["cpu"]
            totals[key(r)][1] += 1
        lines.append(f"\n{title}:")
        for name, (cpu, count) in sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]:
            lines.append(f"  {cpu:7.1f} s  {count:4d}×  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40))
