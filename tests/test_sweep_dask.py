"""Grid sweeps on Dask distributed (engine.sweep, issue 23): grids × seeds, identical results
for 0, 1 and 2 workers, resume after a killed sweep, a worker killed with SIGKILL, bad values
refused before anything runs.  Small on purpose: N = 100 particles, a few thousand steps,
LocalClusters of at most 2 workers, always closed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("distributed")

from engine.cli import main  # noqa: E402
from engine.presets import apply_sets, load  # noqa: E402
from engine.sweep import build_sweep, point_seed, run_sweep  # noqa: E402
from engine.sweep.store import open_dataset, parts_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "arrhenius_sweep.toml"
SMALL = ["ensemble.particles=100", "run.steps=2000", "run.record_every=50"]
GRIDS = ["dynamics.temperature=0.25,0.5", "dynamics.lr=0.004:0.006:2"]
CLI_SMALL = [arg for s in SMALL for arg in ("--set", s)]


def small_sweep(seeds: int = 2):
    return build_sweep(apply_sets(load(PRESET), SMALL), grids=GRIDS, seeds=seeds)


def reproducible(ds):
    return ds.drop_vars(["wall_time_s", "cpu_time_s"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 16-point sweep (2 × 2 grid × 4 seeds) run in-process: the result every executor
    and every resume must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "ref.nc"
    outcome = run_sweep(small_sweep(seeds=4), out, workers=0)
    assert outcome.ok and outcome.ran == 16
    return open_dataset(out)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    from engine.sweep.executor import local_cluster
    local = local_cluster(2)
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def test_grid_product_values_and_seeds():
    preset = apply_sets(load(PRESET), SMALL)
    sweep = build_sweep(preset, grids=["dynamics.temperature=log:0.1:1:3",
                                       "dynamics.lr=0.005:0.05:10"],
                        varies=["dynamics.batch_size=4,8", "dynamics.kind=\"sgd\",langevin"],
                        seeds=3)
    assert sweep.dims == ("vary", "dynamics.temperature", "dynamics.lr", "seed")
    assert sweep.shape == (2, 3, 10, 3) and sweep.size == 180
    assert sweep.axes[0].values == ((4, "sgd"), (8, "langevin"))  # --vary zipped
    assert sweep.axes[1].column("dynamics.temperature") == [0.1, 0.316227766017, 1.0]
    lrs = sweep.axes[2].column("dynamics.lr")
    assert lrs[0] == 0.005 and lrs[-1] == 0.05 and lrs[2] == 0.015  # read as written
    assert build_sweep(preset, grids=["dynamics.batch_size=4:16:4"]).axes[0].column(
        "dynamics.batch_size") == [4, 8, 12, 16]  # whole-number ranges stay integers
    # point index: C order over the dims; its seed from SeedSequence([preset seed, index])
    index = np.ravel_multi_index((1, 2, 7, 1), sweep.shape)
    sets = sweep.assignments(index)
    assert sets[:4] == ["dynamics.batch_size=8", 'dynamics.kind="langevin"',
                        "dynamics.temperature=1.0", f"dynamics.lr={lrs[7]!r}"]
    state = np.random.SeedSequence([preset.ensemble.seed, index]).generate_state(1, np.uint64)
    assert sets[4] == f"ensemble.seed={int(state[0]) >> 1}"
    seeds = {point_seed(preset.ensemble.seed, i) for i in range(sweep.size)}
    assert len(seeds) == sweep.size and all(0 <= s < 2**63 for s in seeds)


def test_bad_grid_values_are_rejected_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "bad.nc"
    for grid, named in (["dynamics.temperature=0.25,-0.1", "dynamics.temperature = -0.1"],
                        ["dynamics.lr=0.01:0:3", "dynamics.lr = 0.0: must be > 0"],
                        ["dynamics.lr=log:0:1:3", "log:start:stop:count needs start > 0"],
                        ["dynamics.batch_size=4,9.5", "dynamics.batch_size = 9.5"],
                        ["dynamics.nonsense=1,2", "dynamics.nonsense: unknown key"]):
        status = main(["sweep", str(PRESET), "--grid", "ensemble.particles=50,100",
                       "--grid", grid, "--workers", "0", "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert status == 2 and named in err, (grid, err)
        assert not out.exists() and not parts_folder(out).exists()
    status = main(["sweep", str(PRESET), "--vary", "dynamics.lr=0.01,0.02", "--vary",
                   "dynamics.temperature=0.3", "--grid", "dynamics.batch_size=4,8",
                   "--out", str(out)])
    assert status == 2 and "has 1 values where dynamics.lr has 2" in capsys.readouterr().err
    status = main(["sweep", str(PRESET), "--grid", "dynamics.lr=0.01",
                   "--out", str(tmp_path / "table.csv")])
    assert status == 2 and "give --out FILE.nc or FILE.zarr" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_dataset_contents_zarr_and_tidy_csv(tmp_path, reference):
    ds = reference
    assert dict(ds.sizes) == {"dynamics.temperature": 2, "dynamics.lr": 2, "seed": 4,
                              "transition": 2, "state": 2}
    assert ds["dynamics.lr"].values.tolist() == [0.004, 0.006]
    assert bool(ds.completed.all()) and ds.attrs["points_completed"] == 16
    assert ds.attrs["base_seed"] == 7 and "[dynamics]" in ds.attrs["preset_toml"]
    assert json.loads(ds.attrs["versions"])["dask"]
    # the double well's two transitions, with Kramers at the swept temperature
    assert ds.transition_from.values.tolist() == [0, 1]
    kramers = ds.kramers_mfpt_steps.isel(seed=0, transition=0)
    assert (kramers.sel({"dynamics.temperature": 0.25}) >
            kramers.sel({"dynamics.temperature": 0.5})).all()
    np.testing.assert_allclose(ds.laplace_weight.values, 0.5, atol=1e-6)  # symmetric wells
    assert np.all(ds.temperature.values == ds["dynamics.temperature"].values[:, None, None])
    # MFPT 0 → 1 at T = 0.5 with ≥ 20 observed escapes per point: measured within a factor
    # 1 ± 3/√n of Kramers for n escapes (the exponential law's relative s.e. is 1/√n), plus the
    # prefactor's ≈ 25 % at ΔU/T = 2 (preset description)
    hot = ds.sel({"dynamics.temperature": 0.5}).isel(transition=0)
    n = hot.transitions.values
    assert n.min() >= 20
    ratio = hot.mfpt_steps.values / hot.kramers_mfpt_steps.values
    assert np.all(np.abs(ratio - 1) <= 3 / np.sqrt(n) + 0.25), ratio
    # zarr gives the same dataset; the tidy CSV has a row per point
    sweep = build_sweep(apply_sets(load(PRESET), SMALL), grids=[GRIDS[0]], seeds=1)
    outcome = run_sweep(sweep, tmp_path / "s.zarr", workers=0, csv=tmp_path / "s.csv")
    nc = run_sweep(sweep, tmp_path / "s.nc", workers=0)
    xr.testing.assert_identical(reproducible(open_dataset(tmp_path / "s.zarr")),
                                reproducible(nc.dataset))
    assert outcome.dataset.attrs == nc.dataset.attrs
    lines = (tmp_path / "s.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert len(lines) == 3 and header[:3] == ["dynamics.temperature", "seed", "point_index"]
    assert {"mfpt_steps_0to1", "kramers_mfpt_steps_1to0", "occupation_1",
            "converged_fraction", "wall_time_s"} <= set(header)
    assert not parts_folder(tmp_path / "s.nc").exists()  # removed once every point is in


def test_identical_results_for_0_1_and_2_workers(tmp_path, reference, cluster):
    sweep = small_sweep(seeds=4)
    two = run_sweep(sweep, tmp_path / "two.nc", client=cluster)
    xr.testing.assert_identical(reproducible(open_dataset(tmp_path / "two.nc")),
                                reproducible(reference))
    assert two.ran == 16 and two.ok
    one = run_sweep(sweep, tmp_path / "one.nc", workers=1)
    xr.testing.assert_identical(reproducible(one.dataset), reproducible(reference))


def test_worker_killed_with_sigkill_mid_sweep_completes_every_point(tmp_path, reference,
                                                                    cluster):
    pids = cluster.run(os.getpid)  # worker address → process id
    seen: list[int] = []
    killed: list[str] = []

    def on_point(index, result):
        seen.append(index)
        if not killed:
            busy = [w for w, keys in cluster.processing().items() if keys]
            os.kill(pids[busy[0]], signal.SIGKILL)  # a worker in the middle of a point
            killed.append(busy[0])

    outcome = run_sweep(small_sweep(seeds=4), tmp_path / "k.nc", client=cluster,
                        on_point=on_point)
    assert killed and outcome.ok, outcome.errors
    assert sorted(seen) == list(range(16))  # every point once: none lost, none duplicated
    xr.testing.assert_identical(reproducible(outcome.dataset), reproducible(reference))
    deadline = time.monotonic() + 60
    while len(cluster.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the nanny restarts the killed worker
    assert set(cluster.run(os.getpid).values()) - set(pids.values())


def test_resume_after_a_killed_sweep_gives_the_identical_dataset(tmp_path, reference):
    out = tmp_path / "resumed.nc"
    parts = parts_folder(out)
    command = [sys.executable, "-m", "engine", "sweep", str(PRESET), *CLI_SMALL,
               "--grid", GRIDS[0], "--grid", GRIDS[1], "--seeds", "4", "--workers", "2",
               "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    crash = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(parts.glob("p*.json"))) < 3 and crash.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(crash.pid, signal.SIGKILL)  # the sweep and its worker processes crash
        crash.wait(30)
    done = sorted(parts.glob("p*.json"))
    assert 3 <= len(done) < 16 and not out.exists(), crash.stderr.read().decode()
    crash.stderr.close()
    walls = {int(p.stem[1:]): json.loads(p.read_text())["result"]["wall_time_s"] for p in done}
    resumed = subprocess.run(command[:-5] + ["--workers", "0", "--out", str(out)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(done)} of 16 points already done" in resumed.stderr
    ds = open_dataset(out)
    xr.testing.assert_identical(reproducible(ds), reproducible(reference))
    flat = ds.wall_time_s.values.ravel()
    assert all(flat[i] == wall for i, wall in walls.items())  # kept, not run again
    assert not parts.exists()


def test_a_failing_point_is_reported_and_the_others_go_on(tmp_path, capsys):
    out = tmp_path / "f.nc"
    status = main(["sweep", str(PRESET), *CLI_SMALL, "--grid", "ensemble.particles=10,0",
                   "--workers", "0", "--out", str(out)])
    assert status == 2 and "ensemble.particles = 0" in capsys.readouterr().err
    # valid presets both, but at c = 10 the landscape log(x - c) is finite nowhere in the
    # bounds: that point fails when it runs (its structure analysis), the other one runs
    sets = ["--set", "run.steps=200", "--set", "ensemble.particles=10",
            "--set", 'landscape.expr="(x**2 - 1)**2 + y**2 + log(x - c)"',
            "--set", "landscape.params={c=0.0}"]
    status = main(["sweep", str(PRESET), *sets, "--grid", "landscape.params.c=-5.0,10.0",
                   "--workers", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1, err
    assert "point 1 (landscape.params.c=10.0 seed#0) failed: PresetError" in err
    assert "not finite anywhere" in err and "1 of 2 points failed" in err
    ds = open_dataset(out)
    assert ds.completed.values.ravel().tolist() == [True, False]
    assert np.isfinite(ds.loss_final.values[0, 0]) and np.isnan(ds.loss_final.values[1, 0])
    assert "not finite anywhere" in json.loads(ds.attrs["failed_points"])["1"]
    assert [p.name for p in parts_folder(out).glob("p*.json")] == ["p000000000.json"]


def test_phase_diagram_png(tmp_path, reference):
    from engine.sweep.plot import phase_diagram, reduce_to
    grid = reduce_to(reference, "dynamics.lr", "dynamics.temperature", "mfpt_steps")
    assert grid.dims == ("dynamics.temperature", "dynamics.lr")
    np.testing.assert_allclose(grid.values[1, 0], float(
        reference.mfpt_steps.isel({"dynamics.temperature": 1, "dynamics.lr": 0,
                                   "transition": 0}).mean("seed")))
    out = phase_diagram(reference, "dynamics.lr", "dynamics.temperature", "mfpt_steps",
                        tmp_path / "fig" / "mfpt.png", log_color=True,
                        marks={"η = 0.005": 0.005})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ctrl_c_keeps_the_finished_points_and_exits_130(tmp_path):
    out = tmp_path / "c.nc"
    command = [sys.executable, "-m", "engine", "sweep", str(PRESET), *CLI_SMALL, "--grid",
               GRIDS[0], "--seeds", "6", "--workers", "2", "--out", str(out), "--quiet"]
    # a test run started in the background inherits SIGINT ignored (the shell's job control):
    # the command gets the terminal's default, as when it runs in the foreground
    run = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(parts_folder(out).glob("p*.json")) and run.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
        err = run.communicate(timeout=120)[1]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, err
    assert "interrupted: the finished points are kept" in err and "Traceback" not in err, err
    assert list(parts_folder(out).glob("p*.json")) and not out.exists()
