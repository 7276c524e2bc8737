"""CNN sweeps on the sweep executor (engine.sweep.cnn_point, `engine cnn --grid`): each point is
the ghost-CNN experiment with its own training seed, reproducible point by point; CUDA points ask
for the Dask resource GPU only where a worker has it."""
from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("torch")

from engine.cli import main  # noqa: E402
from engine.cnn.config import load_cnn  # noqa: E402
from engine.sweep import _point_runner, build_sweep, point_seed  # noqa: E402
from engine.sweep.cnn_point import CNN_SCALARS, run_cnn_point  # noqa: E402
from engine.sweep.executor import _advertised  # noqa: E402
from engine.sweep.grid import preset_text  # noqa: E402
from engine.sweep.store import open_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "presets" / "cnn_smoke.toml"
TINY = ["--runs", "2", "--epochs", "3", "--set", "diagnostics.every=0", "--device", "cpu"]


def test_cnn_grid_sweep_runs_each_point_with_its_own_training_seed(tmp_path):
    out = tmp_path / "cnn.nc"
    assert main(["cnn", str(SMOKE), *TINY, "--grid", "training.lr=0.2", "--seeds", "2",
                 "--workers", "0", "--quiet", "--out", str(out)]) == 0
    ds = open_dataset(out)
    assert dict(ds["completed"].sizes) == {"training.lr": 1, "seed": 2}
    assert bool(ds["completed"].all())
    assert set(CNN_SCALARS) <= set(ds.data_vars)
    assert np.all(ds["runs"] == 2) and np.all(ds["epochs"] == 3)
    accuracy = ds["baseline_final_test_acc"].values
    assert np.all((accuracy >= 0) & (accuracy <= 1))
    # the seeds: SeedSequence([preset training.seed, point index]), so the replicates differ
    base = load_cnn(SMOKE).training.seed
    assert ds["point_seed"].values.ravel().tolist() == [point_seed(base, i) for i in range(2)]
    losses = ds["baseline_final_test_loss"].values
    assert losses[0, 0] != losses[0, 1]
    # a point is the experiment its preset and seed define: rerun directly, same numbers
    sweep = build_sweep(load_cnn(SMOKE), ["training.lr=0.2"], seeds=2, device="cpu")
    sets = ["training.runs=2", "training.epochs=3", "diagnostics.every=0"]
    again = run_cnn_point(preset_text(sweep.preset), sets + sweep.assignments(1), "cpu")
    assert again["scalars"]["baseline_final_test_loss"] == pytest.approx(
        float(ds["baseline_final_test_loss"].values[0, 1]), rel=1e-6)


def test_grid_options_without_a_grid_are_refused(tmp_path, capsys):
    assert main(["cnn", str(SMOKE), *TINY, "--seeds", "2", "--out",
                 str(tmp_path / "x.npz")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["cnn", str(SMOKE), *TINY, "--grid", "training.lr=0.1,-1", "--workers", "0",
                 "--out", str(tmp_path / "x.nc")]) == 2
    assert "training.lr" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_cuda_points_ask_for_a_gpu_worker_only_where_one_exists():
    preset = load_cnn(SMOKE)
    point, resources = _point_runner(build_sweep(preset, ["training.lr=0.1"], device="cuda"))
    assert isinstance(point, functools.partial) and point.keywords == {"device": "cuda"}
    assert resources == {"GPU": 1}
    assert _point_runner(build_sweep(preset, ["training.lr=0.1"], device="cpu"))[1] is None

    def client(*workers):
        return SimpleNamespace(scheduler_info=lambda: {
            "workers": {f"w{i}": {"resources": r} for i, r in enumerate(workers)}})
    assert _advertised(client({}, {"GPU": 1}), {"GPU": 1})
    assert not _advertised(client({}, {}), {"GPU": 1})


def _which_worker(preset_toml, assignments):
    """A stand-in point: the name of the worker that ran it."""
    from distributed import get_worker
    return {"worker": get_worker().name}


def test_cuda_points_run_only_on_the_worker_that_has_a_gpu():
    from distributed import Client, Scheduler, SpecCluster, Worker

    from engine.sweep.executor import run_points
    cluster = SpecCluster(
        scheduler={"cls": Scheduler, "options": {"dashboard_address": ":0"}},
        workers={"gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
                 "cpu": {"cls": Worker, "options": {"nthreads": 1}}})
    ran = {}
    try:
        with Client(cluster) as client:
            run_points("", {i: [] for i in range(8)}, lambda i, r: ran.__setitem__(i, r),
                       lambda i, message: pytest.fail(message), client=client,
                       point=_which_worker, resources={"GPU": 1})
    finally:
        cluster.close()
    assert sorted(ran) == list(range(8))
    assert {r["worker"] for r in ran.values()} == {"gpu"}
