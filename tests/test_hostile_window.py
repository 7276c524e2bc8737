"""The window under hostile landscapes: an error is shown, the running session keeps running,
and nothing is left "loading…"."""
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.qt


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow
    from engine.presets import load
    win = MainWindow(load(ROOT / "presets" / "double_well_kramers.toml"))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.frames_drawn >= 1, timeout=90_000)
    win.set_playing(True)
    yield win
    win.shutdown()


def _still_running(qtbot, window, generation, preset):
    drawn = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn > drawn + 2, timeout=30_000)
    assert window.worker.generation == generation
    assert window.presets.preset == preset
    assert "loading" not in window.statusBar().currentMessage()


@pytest.mark.parametrize("expr,message", [
    ("sqrt(x) + sqrt(-x) + y", "not finite anywhere"),   # refused by the engine, after parsing
    ("exp(1000 + x*x) + y", "not finite anywhere"),
    ("x*10**400 + y", "overflows float64"),              # refused when the file is read
])
def test_a_failing_landscape_file_is_reported_and_the_session_keeps_running(
        qtbot, window, tmp_path, expr, message):
    bad = tmp_path / "hostile.toml"
    bad.write_text(f'name = "h"\n[landscape]\nexpr = "{expr}"\n')
    generation, preset = window.worker.generation, window.presets.preset
    window.open_preset(bad)
    qtbot.waitUntil(lambda: message in window.last_error, timeout=60_000)
    assert "hostile.toml" in window.last_error
    _still_running(qtbot, window, generation, preset)


def test_applying_a_landscape_finite_nowhere_keeps_the_session(qtbot, window):
    generation, preset = window.worker.generation, window.presets.preset
    window.expr_edit.setText("log(-x*x - y*y - 1)")
    window.apply_expression()
    qtbot.waitUntil(lambda: "not finite anywhere" in window.last_error, timeout=60_000)
    _still_running(qtbot, window, generation, preset)


def test_a_landscape_of_values_near_the_float64_limit_opens_and_draws(qtbot, window, tmp_path):
    huge = tmp_path / "huge.toml"
    huge.write_text('name = "huge"\n[landscape]\nexpr = "x*1e308*10 + y"\n')  # inf for |x| > 0.18
    generation = window.worker.generation
    assert window.open_preset(huge)
    qtbot.waitUntil(lambda: window.worker.generation > generation, timeout=60_000)
    qtbot.waitUntil(lambda: window._generation == window.worker.generation, timeout=60_000)
    drawn = window.frames_drawn
    qtbot.waitUntil(lambda: window.frames_drawn > drawn + 2, timeout=30_000)
    assert window.last_error == ""
