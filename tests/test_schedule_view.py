"""The schedule view (app/views/schedule.py, at the top of the window's controls): each scheduled
parameter as a curve of its value against the step — the engine's own values — with a marker at
the current step; it follows preset changes and is hidden for a run without a schedule."""
import numpy as np
import pytest
from PyQt6.QtWidgets import QApplication

from app.views.schedule import ScheduleView
from engine.presets import load
from engine.schedules import scheduled
from tests.conftest import ROOT, make_preset
from tests.test_app import _wait, window  # noqa: F401 - the window fixture

pytestmark = pytest.mark.qt

ANNEALING = ROOT / "presets" / "annealing_muller_brown.toml"


def _preset(lr_end=0.001, temperature=0.5):
    return make_preset(dynamics={"kind": "sgd", "lr": 0.01, "temperature": temperature,
                                 "batch_size": 4, "schedule": {
                                     "every": 50,
                                     "lr": {"shape": "cosine", "end": lr_end, "steps": 1000},
                                     "batch_size": {"shape": "step", "factor": 2.0,
                                                    "interval": 400}}},
                       run={"steps": 1000, "record_every": 10})


def test_the_curves_are_the_engine_s_values_and_the_marker_sits_at_the_step(qtbot):
    view = ScheduleView()
    qtbot.addWidget(view)
    preset = _preset()
    view.show_frame(preset, 620)
    assert view.scheduled == ("lr", "batch_size")
    assert [view.plots[n].isVisible() for n in ("lr", "temperature", "batch_size")] == \
        [True, False, True]
    assert not view.isHidden() and view.ci.items.keys() == {view.plots["lr"],
                                                            view.plots["batch_size"]}
    for name in view.scheduled:
        steps, values = (view.curves[name].xData, view.curves[name].yData)
        assert steps[0] == 0 and steps[-1] == 1000
        expected = [getattr(scheduled(preset.dynamics, int(t)), name) for t in steps]
        np.testing.assert_array_equal(values, expected)
        (x,), (y,) = view.markers[name].getData()
        assert (x, y) == (620, getattr(scheduled(preset.dynamics, 620), name))
        assert view.lines[name].value() == 620
    assert view.curves["batch_size"].yData.max() == 16  # 4 → 8 → 16 at steps 400, 800
    # a new preset (another end value) redraws; the marker follows the step
    view.show_frame(_preset(lr_end=0.005), 700)
    assert view.curves["lr"].yData[-1] == pytest.approx(0.005)
    assert view.markers["lr"].getData()[0][0] == 700
    # past the run's end the drawn range grows with the step
    view.show_frame(_preset(lr_end=0.005), 2000)
    assert view.curves["lr"].xData[-1] >= 2000
    # no schedule: nothing shown, no room taken
    view.show_frame(make_preset(), 10)
    assert view.scheduled == () and view.isHidden()


def test_the_window_shows_the_annealing_schedule_with_the_current_step(qtbot, window):
    view = window.schedule_view
    assert not view.isVisible()  # the double well has no schedule
    before = window.worker.generation
    assert window.open_preset(ANNEALING)
    _wait(qtbot, lambda: window.worker.generation > before and window.frames_drawn > 0
          and window.preset.name == load(ANNEALING).name, 180_000, "the annealing preset")
    window.set_playing(True)
    _wait(qtbot, lambda: view.step >= 100, 60_000, "the first change of T (every = 100)")
    window.set_playing(False)
    assert view.isVisible()
    assert view.scheduled == ("temperature",)
    (x,), (y,) = view.markers["temperature"].getData()
    assert x == view.step
    assert y == scheduled(window.preset.dynamics, view.step).temperature < 30.0
    steps, values = (view.curves["temperature"].xData, view.curves["temperature"].yData)
    assert values[0] == 30.0 and values[-1] == 1.0
    # at the smallest screen the title, the curve's axes and the marker stay inside the view
    window.resize(1366, 768)
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)
    shown = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
    plot = view.plots["temperature"]
    for item in (plot.titleLabel.item, plot.getAxis("left"), plot.getAxis("bottom"),
                 view.markers["temperature"]):
        assert shown.contains(item.sceneBoundingRect()), item
    assert view.width() >= 250 and view.height() >= 140
