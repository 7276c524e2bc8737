"""Running sweep points on Dask distributed.

``workers=N`` starts a :class:`distributed.LocalCluster` of N worker *processes* with one thread
each and numba, OpenMP and BLAS limited to one thread there (N points at once on N cores, no
oversubscription); ``scheduler=ADDRESS`` submits to a running cluster (``dask scheduler`` /
``dask worker``, dask-jobqueue, …); ``workers=0`` runs the points one after another in this
process (debugging: breakpoints and tracebacks work).  Each task is one whole point, so a worker
compiles (or loads from the kernel cache) its step kernel once and keeps it for its next points.

A worker that dies mid-point (SIGKILL, out of memory) loses its task; the scheduler runs it
again elsewhere (``distributed.scheduler.allowed-failures``).  A point that raises is reported
with its error and the others go on.  Results come back to this process, which persists each
one as it arrives (:class:`engine.sweep.store.PartStore`): points are keyed by index, so a
result can never be counted twice.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from .point import CONVERGED_TOL, run_point

# one thread per worker process: numba, OpenMP (torch) and BLAS pools would otherwise each
# start a thread per core in every worker
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@dataclass
class Progress:
    """What a progress callback sees."""
    total: int
    done: int = 0           # finished in this session or before (resumed)
    resumed: int = 0        # of which found on disk at the start
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)
    dashboard: str | None = None

    def eta_seconds(self) -> float | None:
        fresh = self.done - self.resumed
        left = self.total - self.done - self.failed
        if fresh <= 0 or left <= 0:
            return None if left > 0 else 0.0
        return (time.monotonic() - self.started) / fresh * left


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def local_cluster(workers: int, **kwargs):
    """A LocalCluster of ``workers`` single-threaded processes on the loopback interface; the
    dashboard is served when bokeh is installed."""
    import logging

    from distributed import LocalCluster

    # ":0": a free port (the scheduler's HTTP server binds one even without bokeh, and 8787 may
    # be another cluster's)
    options = dict(n_workers=workers, threads_per_worker=1, processes=True,
                   host="127.0.0.1", dashboard_address=":0", env=dict(WORKER_ENV),
                   silence_logs=logging.ERROR, preload=["engine.sweep.worker_preload"])
    options.update(kwargs)
    return LocalCluster(**options)


def run_points(preset_toml: str, tasks: dict[int, list[str]],
               on_result: Callable[[int, dict], None], on_error: Callable[[int, str], None],
               workers: int | None = None, scheduler: str | None = None, client=None,
               converged_tol: float = CONVERGED_TOL,
               progress: Callable[[Progress], None] | None = None,
               state: Progress | None = None, point: Callable[..., dict] | None = None,
               resources: dict[str, float] | None = None) -> Progress:
    """Run ``tasks`` (point index → its ``key=value`` assignments); call ``on_result(index,
    result)`` as each finishes (in this process) and ``on_error(index, message)`` for each that
    raised.  ``client`` (a :class:`distributed.Client`) takes precedence over ``scheduler``,
    which takes precedence over ``workers``.  ``point(preset_toml, assignments)`` runs a point
    (default: :func:`engine.sweep.point.run_point` with ``converged_tol``); ``resources`` (e.g.
    ``{"GPU": 1}``) sends the tasks to the workers that advertise them, when any does."""
    state = state or Progress(total=len(tasks))
    if point is None:
        point = functools.partial(run_point, converged_tol=converged_tol)
    if client is None and scheduler is None and workers == 0:
        for index, assignments in tasks.items():
            state.running = 1
            _report(progress, state)
            try:
                result = point(preset_toml, assignments)
            except Exception as exc:  # a failing point is reported, the others go on
                state.failed += 1
                on_error(index, f"{type(exc).__name__}: {exc}")
            else:
                state.done += 1
                on_result(index, result)
        state.running = 0
        _report(progress, state, final=True)
        return state

    from distributed import Client

    owned = []
    try:
        if client is None:
            if scheduler is not None:
                client = Client(scheduler)
            else:
                cluster = local_cluster(workers or default_workers())
                owned.append(cluster)
                client = Client(cluster)
            owned.insert(0, client)
        state.dashboard = client.dashboard_link if _has_dashboard(client) else None
        if resources and not _advertised(client, resources):
            resources = None  # no worker has them: any worker takes the points
        _drive(client, point, preset_toml, tasks, on_result, on_error, progress, state,
               resources)
    finally:
        for thing in owned:  # client first, then its cluster
            thing.close()
    return state


def _has_dashboard(client) -> bool:
    try:
        info = client.scheduler_info()
        return bool(info.get("services", {}).get("dashboard"))
    except Exception:  # pragma: no cover - a scheduler that does not say
        return False


def _advertised(client, resources: dict[str, float]) -> bool:
    """Whether some worker of ``client``'s cluster has every one of ``resources``."""
    try:
        workers = client.scheduler_info().get("workers", {}).values()
    except Exception:  # pragma: no cover - a scheduler that does not say
        return False
    return any(all(w.get("resources", {}).get(name, 0) >= amount
                   for name, amount in resources.items()) for w in workers)


def _drive(client, point, preset_toml, tasks, on_result, on_error, progress, state,
           resources=None) -> None:
    from distributed import as_completed

    futures = {}
    for index, assignments in tasks.items():
        future = client.submit(point, preset_toml, assignments,
                               key=f"ergoscope-point-{index}-{os.getpid()}-{id(tasks)}",
                               pure=False, resources=resources)
        futures[future] = index
    last = 0.0
    for future in as_completed(list(futures)):
        index = futures.pop(future)
        if future.status == "finished":
            result = future.result()
            state.done += 1
            on_result(index, result)
        else:
            state.failed += 1
            try:
                exc = future.exception()
            except BaseException as cancelled:  # cancelled: the scheduler dropped it
                exc = cancelled
            on_error(index, f"{type(exc).__name__}: {exc}")
        future.release()
        now = time.monotonic()
        if progress is not None and (now - last >= 0.5 or not futures):
            last = now
            state.running = _running(client, len(futures)) if futures else 0
            _report(progress, state)
    state.running = 0
    _report(progress, state, final=True)


def _running(client, pending: int) -> int:
    try:
        return min(pending, sum(len(v) for v in client.processing().values()),
                   sum(client.nthreads().values()))
    except Exception:  # pragma: no cover - a scheduler that went away
        return 0


def _report(progress, state: Progress, final: bool = False) -> None:
    if progress is not None:
        progress(state)
