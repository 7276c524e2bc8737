"""Sweep files (engine.sweep.bundled, presets/sweeps/): every bundled one loads and its grid is
valid without running anything, a bad file is refused naming the file and the key, and
`engine sweep SWEEP_FILE --out X.nc` runs its grid and draws its figures beside the dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("matplotlib")

from engine.cli import main  # noqa: E402
from engine.presets import PresetError  # noqa: E402
from engine.sweep import build_sweep  # noqa: E402
from engine.sweep.bundled import critical_lr, is_sweep_file, load_sweep_file  # noqa: E402
from engine.sweep.plot import _geometric_levels  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SWEEP_FILES = sorted((ROOT / "presets" / "sweeps").glob("*.toml"))
PNG = b"\x89PNG\r\n\x1a\n"
UP = "../"  # a sweep file names its preset relative to itself


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_bundled_sweep_files_load_and_their_grids_are_valid(path):
    assert is_sweep_file(path)
    spec = load_sweep_file(path)
    sweep = build_sweep(spec.preset, list(spec.grid), list(spec.vary), spec.seeds)
    keys = set(sweep.dims)
    for figure in spec.figures:
        assert figure.x in keys and (figure.y is None or figure.y in keys)
        assert figure.multiply_by is None or figure.multiply_by in keys


def test_presets_are_not_sweep_files():
    assert not is_sweep_file(ROOT / "presets" / "arrhenius_sweep.toml")


def test_critical_step_of_zhang_is_two_over_lambda_max():
    spec = load_sweep_file(ROOT / "presets" / "sweeps" / "zhang_eta.toml")
    # f = 100 sin x sin y: the Hessian at a minimum is 100·I, so GD is stable below 2/100
    assert critical_lr(spec.preset) == pytest.approx(0.02, rel=1e-9)


@pytest.mark.parametrize("text, key", [
    (f'name = "x"\npreset = "{UP}arrhenius_sweep.toml"\ngrids = ["a=1"]\n', "grids"),
    ('name = "x"\n', "preset"),
    (f'name = "x"\npreset = "{UP}arrhenius_sweep.toml"\nseeds = 0\n', "seeds"),
    (f'name = "x"\npreset = "{UP}arrhenius_sweep.toml"\n[[figure]]\nname = "f"\nkind = "pie"\n'
     'x = "dynamics.lr"\n', "figure[0].kind"),
    (f'name = "x"\npreset = "{UP}arrhenius_sweep.toml"\n[[figure]]\nname = "f"\nkind = "heatmap"'
     '\nx = "dynamics.lr"\n', "figure[0].y"),
    (f'name = "x"\npreset = "{UP}arrhenius_sweep.toml"\nset = ["dynamics.lr=-1"]\n', "dynamics.lr"),
])
def test_bad_sweep_file_names_file_and_key(tmp_path, text, key):
    folder = tmp_path / "sweeps"
    folder.mkdir()
    (tmp_path / "arrhenius_sweep.toml").write_text(
        (ROOT / "presets" / "arrhenius_sweep.toml").read_text())
    path = folder / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as error:
        load_sweep_file(path)
    assert key in str(error.value)


def test_sweep_file_runs_its_grid_and_draws_its_figures(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(f'''name = "tiny"
preset = "{(ROOT / "presets" / "arrhenius_sweep.toml").as_posix()}"
set = ["ensemble.particles=100", "run.steps=2000", "run.record_every=50"]
grid = ["dynamics.temperature=0.3,0.5"]
seeds = 2

[[figure]]
name = "mfpt"
kind = "arrhenius"
x = "dynamics.temperature"

[[figure]]
name = "loss"
kind = "curve"
x = "dynamics.temperature"
var = "time_avg_loss"
''')
    out = tmp_path / "out" / "tiny.nc"
    # the command line adds a dimension to the file's grid
    assert main(["sweep", str(spec), "--grid", "dynamics.lr=0.004,0.005", "--workers", "0",
                 "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(out.with_name("tiny_mfpt.png")),
                       str(out.with_name("tiny_loss.png"))]
    for name in printed[1:]:
        assert Path(name).read_bytes()[:8] == PNG
    from engine.sweep.store import open_dataset
    ds = open_dataset(out)
    assert dict(ds["completed"].sizes) == {"dynamics.temperature": 2, "dynamics.lr": 2,
                                           "seed": 2}
    assert int(ds["particles"].max()) == 100
    # the figures again from the dataset alone
    again = tmp_path / "redrawn" / "re.png"
    assert main(["plot", str(out), "--figures", str(spec), "--out", str(again)]) == 0
    assert capsys.readouterr().out.split() == [str(again.with_name("re_mfpt.png")),
                                               str(again.with_name("re_loss.png"))]


def test_contour_levels_are_sqrt2_apart_through_the_middle_cell():
    x, y = np.meshgrid([0.01, 0.0125, 0.015, 0.0175, 0.02], [4, 5, 6, 7, 8])
    levels = _geometric_levels(x / y)
    assert np.any(np.isclose(levels, 0.0025))
    np.testing.assert_allclose(levels[1:] / levels[:-1], np.sqrt(2))
    assert levels.min() > 0.01 / 8 and levels.max() < 0.02 / 4
