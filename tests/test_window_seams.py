"""The window on ghost presets: other landscapes and methods load, and the controls always show
the method the run uses (issue 20's window defects)."""
import pytest

from engine.presets import apply_sets, load
from tests.conftest import ROOT
from tests.test_app import _wait, window  # noqa: F401 - the window fixture

pytestmark = pytest.mark.qt


def _small_ghost_preset():
    return apply_sets(load(ROOT / "presets" / "ghost_corridor.toml"),
                      ["ensemble.particles=200"])


def _load(qtbot, win, preset):
    before = win.presets.loads
    win.worker.submit("load", preset)
    _wait(qtbot, lambda: win.presets.loads > before)   # the window took the engine's load


def _next_generation(qtbot, win, before):
    """The preset of the next load after ``before`` loads, once the controls show it."""
    _wait(qtbot, lambda: win.presets.loads > before or bool(win.last_error))
    assert win.last_error == ""
    preset = win.presets.preset
    _wait(qtbot, lambda: win.kind_combo.currentText() == preset.dynamics.kind)
    return preset


def test_apply_expression_and_other_landscapes_on_a_ghost_preset(qtbot, window):
    _load(qtbot, window, _small_ghost_preset())
    assert window.kind_combo.currentText() == "ghost"
    # was: "command failed: KeyError: 'task'"
    before = window.presets.loads
    window.expr_edit.setText("(x**2 - 1)**2 + 0.5*y**2")
    window.apply_expression()
    preset = _next_generation(qtbot, window, before)
    assert preset.landscape.expr == "(x**2 - 1)**2 + 0.5*y**2"
    assert preset.dynamics.kind == "sgd"    # ghosts need the classifier: plain SGD here
    _load(qtbot, window, _small_ghost_preset())
    before = window.presets.loads
    index = window.landscape_combo.findText("double_well")
    window.landscape_combo.activated.emit(index)
    preset = _next_generation(qtbot, window, before)
    assert preset.landscape.builtin == "double_well" and preset.dynamics.kind == "sgd"
    assert window.kind_combo.currentText() == "sgd"


def test_the_method_shown_is_the_method_the_run_uses(qtbot, window):
    _load(qtbot, window, _small_ghost_preset())
    window.set_playing(True)
    # langevin on the classifier runs another kernel: a new run of that kind
    before = window.presets.loads
    window.kind_combo.setCurrentText("langevin")
    preset = _next_generation(qtbot, window, before)
    assert preset.dynamics.kind == "langevin" == window.kind_combo.currentText()
    step = window.worker.state.step
    _wait(qtbot, lambda: window.worker.state.step > step)   # and it runs
    assert window.presets.preset.dynamics.kind == "langevin"
    # a method the landscape refuses leaves the run as it was, and the controls show it
    _load(qtbot, window, load(ROOT / "presets" / "double_well_kramers.toml"))
    window.kind_combo.setCurrentText("ghost")
    _wait(qtbot, lambda: "parameter failed" in window.last_error)
    assert "dynamics.kind" in window.last_error
    _wait(qtbot, lambda: window.kind_combo.currentText() == "langevin")
    assert window.presets.preset.dynamics.kind == "langevin"
    # a setting the run's kind refuses: the slider goes back to the value in use
    _load(qtbot, window, _small_ghost_preset())
    window.last_error = ""
    window.sliders["momentum"].spin.setValue(0.5)
    _wait(qtbot, lambda: "dynamics.momentum = 0.5" in window.last_error)
    _wait(qtbot, lambda: window.sliders["momentum"].value() == 0.0)
    assert window.presets.preset.dynamics.momentum == 0.0


def test_the_window_keeps_the_preset_in_one_controller(qtbot, window):
    # frames carry no preset; the window, the landscape view and the transitions view all ask
    # the one controller, which follows the engine's loads and applied live edits
    presets = window.presets
    assert window.landscape_view.presets is presets is window.transitions_view.presets
    assert window.worker.presets is presets
    seen = []
    presets.changed.connect(lambda preset, new_run: seen.append((preset, new_run)))
    frames = []
    window.worker.frame_ready.connect(frames.append)
    window.set_playing(True)
    window.sliders["temperature"].spin.setValue(0.41)
    _wait(qtbot, lambda: window.preset.dynamics.temperature == pytest.approx(0.41))
    assert seen and seen[-1][1] is False and presets.edits >= 1
    drawn = len(frames)
    _wait(qtbot, lambda: len(frames) > drawn)   # the next frame's markers use the new T
    assert window.landscape_view._dynamics.temperature == pytest.approx(0.41)
    loads = presets.loads
    _load(qtbot, window, _small_ghost_preset())
    assert presets.loads == loads + 1 and presets.edits == 0 and seen[-1][1] is True
    assert window.preset.dynamics.kind == "ghost" == window.kind_combo.currentText()
    _wait(qtbot, lambda: len(frames) > 2)
    for bundle in frames:
        assert not hasattr(bundle.frame, "preset") and not hasattr(bundle.state, "preset")
