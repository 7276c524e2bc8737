"""The Sweeps dock (app/views/sweeps.py): a tiny in-process sweep (workers 0) runs off the GUI
thread, its heatmap fills in point by point with the numbers engine.sweep gives, a bad value is
refused before anything runs, and a click on a cell asks to load that cell's preset."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("distributed")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402

import engine.sweep.executor as executor  # noqa: E402
from app.views.sweeps import SweepsView, default_range, numeric_keys  # noqa: E402
from engine.presets import dumps  # noqa: E402
from engine.sweep import run_point  # noqa: E402
from tests.conftest import make_preset  # noqa: E402


def _preset():
    return make_preset(landscape={"builtin": "double_well", "params": {"kappa": 1.0},
                                  "bounds": [[-2.0, 2.0], [-1.5, 1.5]]},
                       dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.25},
                       ensemble={"particles": 40, "seed": 3},
                       run={"steps": 300, "record_every": 50})


@pytest.fixture
def view(qtbot):
    widget = SweepsView()
    qtbot.addWidget(widget)
    widget.presets = SimpleNamespace(preset=_preset())
    widget.refresh_keys()
    yield widget
    widget.shutdown()


def _choose(view, x, x_values, y=None, y_values=""):
    view.axis_keys[0].setCurrentText(x)
    view.axis_values[0].setText(x_values)
    view.axis_keys[1].setCurrentText(y or "—")
    view.axis_values[1].setText(y_values)
    view.seeds.setValue(2)
    view.workers.setValue(0)


def test_keys_and_default_ranges_come_from_the_preset(view):
    keys = numeric_keys(_preset())
    assert keys["dynamics.lr"] == 0.01 and keys["dynamics.temperature"] == 0.25
    assert "ensemble.seed" not in keys and "run.steps" not in keys
    assert view.axis_keys[0].currentText() == "dynamics.lr"
    assert view.axis_keys[1].currentText() == "dynamics.temperature"
    assert view.axis_values[0].text() == default_range(0.01) == "log:0.005:0.02:5"
    assert view.particles.value() == 40 and view.steps.value() == 300


def test_bad_value_is_refused_before_anything_runs(view):
    _choose(view, "dynamics.lr", "0.01,-1")
    assert not view.start()
    assert not view.running and view.sweep is None
    assert "dynamics.lr" in view.status.text() and "-1" in view.status.text()


def test_sweep_fills_in_point_by_point_off_the_gui_thread(view, qtbot, monkeypatch):
    gate, threads = threading.Event(), []

    def gated(preset_toml, assignments, converged_tol):
        threads.append(threading.get_ident())
        if len(threads) == 2:
            assert gate.wait(60)  # hold the second point until the test saw the first
        return run_point(preset_toml, assignments, converged_tol)

    monkeypatch.setattr(executor, "run_point", gated)
    _choose(view, "dynamics.temperature", "0.25,0.5", "dynamics.lr", "0.005,0.01")
    view.seeds.setValue(1)
    with qtbot.waitSignal(view.finished, timeout=120000) as done:
        assert view.start()
        assert view.running
        qtbot.waitUntil(lambda: len(view.results) == 1, timeout=60000)
        cells = view.cell_values()
        assert cells.shape == (2, 2) and np.isfinite(cells).sum() == 1
        gate.set()
    assert done.args == [True]
    assert threading.get_ident() not in threads and len(threads) == 4
    assert np.isfinite(view.cell_values()).all()
    # a point's numbers are those engine.sweep gives for it
    sweep = view.sweep
    assert view.results[3]["scalars"] == run_point(dumps(sweep.preset),
                                                   sweep.assignments(3))["scalars"]

    # a click on a cell asks for that cell's preset, with its point's seed
    view.resize(500, 500)
    view.show()
    qtbot.waitExposed(view)
    scene = view.plot.getPlotItem().vb.mapViewToScene(QPointF(1.0, 0.0))
    where = view.plot.mapFromScene(scene)
    with qtbot.waitSignal(view.load_requested, timeout=5000) as clicked:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    preset = clicked.args[0]
    assert preset.dynamics.temperature == 0.5 and preset.dynamics.lr == 0.005
    assert f"ensemble.seed={preset.ensemble.seed}" in sweep.assignments(view.cell_index(1, 0))
    assert preset.run.steps == 300 and preset.ensemble.particles == 40


def test_cancel_stops_after_the_running_point(view, qtbot, monkeypatch):
    gate, calls = threading.Event(), []

    def gated(preset_toml, assignments, converged_tol):
        calls.append(assignments)
        assert gate.wait(60)
        return run_point(preset_toml, assignments, converged_tol)

    monkeypatch.setattr(executor, "run_point", gated)
    _choose(view, "dynamics.temperature", "0.25,0.5,1.0")
    view.seeds.setValue(1)
    with qtbot.waitSignal(view.finished, timeout=120000) as done:
        assert view.start()
        qtbot.waitUntil(lambda: len(calls) == 1, timeout=60000)
        view.cancel()
        gate.set()
    assert done.args == [False]
    assert len(calls) == 1 and len(view.results) == 1
    assert "cancelled" in view.status.text() and view.run_button.isEnabled()


def test_cells_are_seed_means_of_the_points_finished(view):
    from engine.presets import apply_sets
    from engine.sweep import build_sweep
    view.sweep = build_sweep(apply_sets(_preset(), []), seeds=3,
                             grids=["dynamics.temperature=0.25,0.5", "dynamics.lr=0.005,0.01"])
    var = view.variable.currentText()
    view.results = {i: {"scalars": {var: float(i)}, "transitions": []} for i in range(12)
                    if i != 1}  # point 1 (cell (0, 0), seed 1) not finished yet
    expected = np.arange(12.0).reshape(2, 2, 3).mean(axis=-1)
    expected[0, 0] = (0 + 2) / 2
    np.testing.assert_allclose(view.cell_values(), expected)


def test_a_loaded_preset_resets_only_what_changed(view):
    from engine.presets import apply_sets
    view.axis_values[0].setText("0.01,0.02")  # the user's values for dynamics.lr
    view.preset_loaded(view.presets.preset)   # the same preset again: nothing changes
    assert view.axis_values[0].text() == "0.01,0.02"
    view.presets = SimpleNamespace(preset=apply_sets(_preset(), ["dynamics.lr=0.04"]))
    view.preset_loaded(view.presets.preset)   # another η: values around it
    assert view.axis_values[0].text() == default_range(0.04)
    clicked = apply_sets(view.presets.preset, ["dynamics.lr=0.08"])
    view._requested = clicked                 # a cell this dock asked for comes back
    view.axis_values[0].setText("0.01,0.02")
    view.preset_loaded(clicked)
    assert view.axis_values[0].text() == "0.01,0.02"


def test_window_has_the_dock_and_loads_a_clicked_cell(qtbot):
    from PyQt6.QtWidgets import QDockWidget

    from app.main_window import MainWindow
    from engine.presets import apply_sets
    window = MainWindow(_preset())
    qtbot.addWidget(window)
    window.show()
    try:
        dock = window.findChild(QDockWidget, "Sweeps")
        assert dock is not None and dock.widget() is window.sweeps_view
        assert window.sweeps_view.axis_keys[0].currentText() == "dynamics.lr"
        cell = apply_sets(_preset(), ["dynamics.temperature=0.5", "ensemble.seed=99"])
        window.sweeps_view._requested = cell
        window.sweeps_view.load_requested.emit(cell)
        qtbot.waitUntil(lambda: window.presets.preset == cell, timeout=60000)
        window.tabs.setCurrentWidget(window.cnn_view)
        assert not dock.isVisible()
        window.tabs.setCurrentWidget(window.landscape_view)
        assert dock.isVisible()
    finally:
        window.shutdown()
