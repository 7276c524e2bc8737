"""Sweeps over grids × seeds on Dask distributed, resumable (README, "Sweeps on Dask").

    python -m engine sweep PRESET --grid dynamics.temperature=0.2,0.25,0.33 \\
        --grid dynamics.lr=0.005:0.05:10 --seeds 8 --workers 4 --out out/sweep.nc

From Python::

    from engine.presets import load
    from engine.sweep import build_sweep, run_sweep
    sweep = build_sweep(load("presets/arrhenius_sweep.toml"),
                        grids=["dynamics.temperature=0.2,0.25"], seeds=2)
    outcome = run_sweep(sweep, "out/arrhenius.nc", workers=2)
    outcome.dataset            # xarray.Dataset: dims (dynamics.temperature, seed, …)

* :mod:`.grid` — axes, seeds per point, validation of every point before anything runs;
* :mod:`.point` — one point (what a worker runs) reduced to numbers; :mod:`.cnn_point` the
  same for a CNN preset (``engine cnn --grid``);
* :mod:`.bundled` — sweep files (``presets/sweeps/``): a preset with its grid and figures;
* :mod:`.plot` — phase diagrams (``engine plot``);
* :mod:`.executor` — LocalCluster / scheduler address / in-process, failures, progress;
* :mod:`.store` — one part per finished point, resume, merge into the Dataset, netCDF/Zarr/CSV.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .grid import SEED_DIM, Axis, Sweep, build_sweep, parse_values, point_seed
from .point import CONVERGED_TOL, run_point

__all__ = ["Axis", "Sweep", "SweepOutcome", "build_sweep", "parse_values", "point_seed",
           "run_point", "run_sweep", "SEED_DIM", "CONVERGED_TOL"]


@dataclass
class SweepOutcome:
    dataset: object              # xarray.Dataset
    out: Path
    ran: int                     # points run by this call
    resumed: int                 # points found done on disk
    errors: dict[int, str]       # failed points: index → "ErrorType: message"

    @property
    def ok(self) -> bool:
        return not self.errors


def run_sweep(sweep: Sweep, out: str | Path, workers: int | None = None,
              scheduler: str | None = None, client=None, csv: str | Path | None = None,
              progress: Callable | None = None,
              on_point: Callable[[int, dict], None] | None = None,
              on_error: Callable[[int, str], None] | None = None,
              on_start: Callable | None = None) -> SweepOutcome:
    """Run the points of ``sweep`` not yet persisted beside ``out``, persisting each as it
    arrives; merge all of them into the Dataset written to ``out`` (.nc or .zarr) and, with
    ``csv``, the tidy table.  Executor arguments as :func:`engine.sweep.executor.run_points`.
    ``on_start(progress)`` is called once the parts are read, before any point runs."""
    from ..export import prepare_output
    from .executor import Progress, run_points
    from .grid import preset_text
    from .store import PartStore, check_output, to_dataset, write_csv, write_dataset

    out = check_output(out)
    if csv is not None:
        prepare_output(csv)
    store = PartStore(out, sweep)
    results = store.open()
    resumed = len(results)
    errors: dict[int, str] = {}
    tasks = {i: sweep.assignments(i) for i in range(sweep.size) if i not in results}
    state = Progress(total=sweep.size, done=resumed, resumed=resumed)

    def finished(index: int, result: dict) -> None:
        store.write(index, result)
        results[index] = result
        if on_point is not None:
            on_point(index, result)

    def failed(index: int, message: str) -> None:
        errors[index] = message
        if on_error is not None:
            on_error(index, message)

    if on_start is not None:
        on_start(state)
    if tasks:
        point, resources = _point_runner(sweep)
        run_points(preset_text(sweep.preset), tasks, finished, failed, workers=workers,
                   scheduler=scheduler, client=client, converged_tol=sweep.converged_tol,
                   progress=progress, state=state, point=point, resources=resources)
    # the merge reads the persisted parts, so a resumed and an uninterrupted sweep merge the
    # very same numbers
    results = store.open()
    dataset = to_dataset(sweep, results, errors)
    write_dataset(dataset, out)
    if csv is not None:
        write_csv(dataset, csv)
    if not errors and len(results) == sweep.size:
        store.remove()
    return SweepOutcome(dataset, out, len(tasks) - len(errors), resumed, errors)


def _point_runner(sweep: Sweep) -> tuple[Callable | None, dict | None]:
    """What runs a point of ``sweep`` and the Dask resources it asks for: a CNN preset's
    points train on ``sweep.device`` and, for CUDA, go to workers with a GPU resource."""
    from .grid import is_cnn
    if not is_cnn(sweep.preset):
        return None, None
    import functools

    from .cnn_point import DEVICE_RESOURCE, run_cnn_point, wants_gpu
    point = functools.partial(run_cnn_point, device=sweep.device)
    return point, ({DEVICE_RESOURCE: 1} if wants_gpu(sweep.device) else None)
