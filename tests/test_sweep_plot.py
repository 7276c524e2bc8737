"""`engine plot`: phase diagrams of a grid sweep (engine.sweep.plot) — the heatmap's cells are
the seed means, a 1-D sweep gives the mean with its Student-t 95 % interval over the seeds, and
a missing key or variable is one line naming what the dataset has (exit 2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("matplotlib")

from engine.cli import main  # noqa: E402
from engine.presets import apply_sets, load  # noqa: E402
from engine.sweep import build_sweep, run_sweep  # noqa: E402
from engine.sweep.plot import reduce_to, seed_interval  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "arrhenius_sweep.toml"
SMALL = ["ensemble.particles=100", "run.steps=2000", "run.record_every=50"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    """A 2 (T) × 2 (η) × 3 seeds sweep, in-process."""
    out = tmp_path_factory.mktemp("plot") / "sweep.nc"
    sweep = build_sweep(apply_sets(load(PRESET), SMALL),
                        grids=["dynamics.temperature=0.25,0.5", "dynamics.lr=0.004,0.006"],
                        seeds=3)
    outcome = run_sweep(sweep, out, workers=0)
    assert outcome.ok
    return out, outcome.dataset


def test_heatmap_cells_are_seed_means(sweep_file, tmp_path):
    path, ds = sweep_file
    fig = tmp_path / "fig" / "heat.png"
    assert main(["plot", str(path), "--x", "dynamics.lr", "--y", "dynamics.temperature",
                 "--var", "time_avg_loss", "--mark", "2/λ_max=0.005", "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == PNG
    cells = reduce_to(ds, "dynamics.lr", "dynamics.temperature", "time_avg_loss")
    assert cells.dims == ("dynamics.temperature", "dynamics.lr")
    raw = ds["time_avg_loss"].transpose("dynamics.temperature", "dynamics.lr", "seed").values
    np.testing.assert_allclose(cells.values, raw.mean(axis=-1))
    # hotter runs sit higher up the wells: the time-averaged loss grows with T at every η
    assert np.all(cells.values[1] > cells.values[0])


def test_one_dimensional_sweep_is_a_curve_with_seed_intervals(sweep_file, tmp_path):
    path, _ = sweep_file
    fig = tmp_path / "curve.png"
    # two grid keys, one on x: the other is held at its first value
    assert main(["plot", str(path), "--x", "dynamics.temperature", "--var", "mfpt_steps",
                 "--log", "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == PNG


def test_seed_interval_is_student_t_and_skips_missing_seeds():
    from scipy import stats
    values = np.array([[1.0, 2.0, 3.0, np.nan], [5.0, np.nan, np.nan, np.nan]])
    mean, half, count = seed_interval(values)
    np.testing.assert_allclose(mean, [2.0, 5.0])
    assert count.tolist() == [3, 1]
    np.testing.assert_allclose(half[0], stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3))
    assert np.isnan(half[1])  # one seed: no interval


@pytest.mark.parametrize("args, listed", [
    (["--x", "dynamics.lr", "--var", "not_a_variable"], ["time_avg_loss", "mfpt_steps"]),
    (["--x", "dynamics.gamma", "--var", "time_avg_loss"],
     ["dynamics.temperature", "dynamics.lr"]),
    (["--x", "dynamics.lr", "--y", "run.steps", "--var", "time_avg_loss"],
     ["dynamics.temperature"]),
    (["--var", "time_avg_loss"], ["dynamics.temperature", "dynamics.lr"]),
])
def test_missing_key_or_variable_lists_what_exists(sweep_file, tmp_path, capsys, args, listed):
    path, _ = sweep_file
    fig = tmp_path / "never.png"
    assert main(["plot", str(path), *args, "--out", str(fig)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert all(name in err for name in listed)
    assert not fig.exists()


def test_not_a_sweep_file(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "absent.nc"), "--var", "x",
                 "--out", str(tmp_path / "f.png")]) == 2
    assert "no such file" in capsys.readouterr().err
