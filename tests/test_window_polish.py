"""The window at a real screen size (issue 22, part 2): it fits 1366×768 and 1600×1000 with every
preset and cuts no title, legend or header; sliders with usable resolution; readouts and controls
that follow the state; the CNN lab tab alone; readable escapes, trails that break at jumps, both
PCA arms visible; a clicked start point followed as one particle; exports with their sidecar."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication, QDockWidget, QScrollArea, QTabBar

from engine.presets import load
from tests.conftest import CNN_PRESETS, PRESETS, ROOT
from tests.test_app import _wait, window  # noqa: F401 - the window fixture

pytestmark = pytest.mark.qt

SIZES = ((1366, 768), (1600, 1000))


def _load(qtbot, win, path):
    before = win.worker.generation
    assert win.open_preset(path)
    _wait(qtbot, lambda: win.worker.generation > before and win._generation
          == win.worker.generation, timeout=90_000)
    assert win.last_error == "", (path, win.last_error)


def _settle(qtbot):
    for _ in range(5):
        QApplication.processEvents()
        qtbot.wait(20)


def _visible_scene_rect(view):
    return view.mapToScene(view.viewport().rect()).boundingRect()


def _clipped(win, front) -> list[str]:
    """What the window cuts at its current size: plot titles and legends outside their view
    (in the landscape view and ``front``, the raised dock), dock tab titles elided, table header
    sections and cells narrower than their text."""
    import pyqtgraph as pg
    problems = []
    roots = (win.landscape_view, front.widget())
    views = [v for root in roots for v in [root, *root.findChildren(pg.GraphicsView)]
             if isinstance(v, pg.GraphicsView)]
    for view in views:
        shown = _visible_scene_rect(view).adjusted(-1, -1, 1, 1)
        for item in view.scene().items():
            if isinstance(item, pg.PlotItem) and item.isVisible():
                title = item.titleLabel
                if title.isVisible() and title.text and not shown.contains(
                        title.item.sceneBoundingRect()):
                    problems.append(f"title {title.text!r}")
                legend = item.legend
                if legend is not None and legend.isVisible() and legend.items:
                    box = item.vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
                    if not box.contains(legend.sceneBoundingRect()):
                        problems.append(f"legend of {title.text!r}")
    for bar in win.findChildren(QTabBar):
        if not bar.isVisible():
            continue
        for i in range(bar.count()):
            text = bar.fontMetrics().horizontalAdvance(bar.tabText(i))
            if bar.tabRect(i).width() < text + 8:  # elided (the style pads a tab's text)
                problems.append(f"tab {bar.tabText(i)!r}")
    table = win.escapes_view.table
    if front.widget() is win.escapes_view:
        header = table.horizontalHeader()
        metrics = header.fontMetrics()
        for i in range(header.count()):
            text = table.horizontalHeaderItem(i).text()
            wide = max(metrics.horizontalAdvance(line) for line in text.split("\n"))
            if header.sectionSize(i) < wide + 6:
                problems.append(f"header {text!r}")
            for r in range(table.rowCount()):
                cell = table.item(r, i)
                if cell is not None and table.columnWidth(i) < table.fontMetrics(
                        ).horizontalAdvance(cell.text()) + 6:
                    problems.append(f"cell {cell.text()!r}")
        if header.length() > table.viewport().width() + 1:
            problems.append("table wider than its view")
    return problems


def test_the_window_fits_both_screens_with_every_preset_and_cuts_nothing(qtbot, window):
    assert isinstance(window.findChild(QDockWidget, "Controls").widget(), QScrollArea)
    for width, height in SIZES:
        window.resize(width, height)
        _settle(qtbot)
        window._size_docks()  # what the first show does on a screen of this size
        for path in PRESETS:
            _load(qtbot, window, path)
            _settle(qtbot)
            # was 1038 px tall with the Gaussian mixture: the status bar left the screen
            assert (window.width(), window.height()) == (width, height), path.name
            bar = window.statusBar()
            assert bar.isVisible() and bar.geometry().bottom() < height, path.name
            for dock in ("Time series", "Empirical measure vs Gibbs", "Escapes"):
                front = window.findChild(QDockWidget, dock)
                front.raise_()
                _settle(qtbot)
                assert _clipped(window, front) == [], (width, height, path.name, dock)
            window.findChild(QDockWidget, "Time series").raise_()


def test_dock_tabs_keep_their_whole_titles_at_1366(qtbot, window):
    window.resize(1366, 768)
    _settle(qtbot)
    bars = [bar for bar in window.findChildren(QTabBar)
            if "Time series" in [bar.tabText(i) for i in range(bar.count())]]
    assert len(bars) == 1, "the right-hand docks are tabbed together"
    bar = bars[0]
    titles = [bar.tabText(i) for i in range(bar.count())]
    assert {"Time series", "Escapes", "Sweeps"} <= set(titles)
    # whole titles: a tab is never narrower than its text (they scroll when they do not fit)
    assert bar.elideMode() == Qt.TextElideMode.ElideNone and bar.usesScrollButtons()
    metrics = bar.fontMetrics()
    for i, title in enumerate(titles):
        assert bar.tabRect(i).width() >= metrics.horizontalAdvance(title), title
    # only the docks' bars: the central Landscape | CNN lab tabs keep Qt's own style
    assert window.tabs.tabBar().expanding()


def test_sliders_are_wide_and_a_shift_drag_is_fine(qtbot, window):
    window.resize(1366, 768)
    _settle(qtbot)
    for key, slider in window.sliders.items():
        if slider.log:
            # was ≈ 30 px for five decades: an 11-px drag moved T from 0.2 to 10
            assert slider.decades_per_pixel() <= 1 / 40, (key, slider.slider.width())
    t = window.sliders["temperature"]
    t.set_value(0.2)
    handle = t.slider

    def drag(pixels, modifiers):
        x0 = handle.width() * (handle.value() / handle.maximum())
        y = handle.height() / 2
        events = [(QEvent.Type.MouseButtonPress, x0, Qt.MouseButton.LeftButton),
                  (QEvent.Type.MouseMove, x0 + pixels / 2, Qt.MouseButton.NoButton),
                  (QEvent.Type.MouseMove, x0 + pixels, Qt.MouseButton.NoButton),
                  (QEvent.Type.MouseButtonRelease, x0 + pixels, Qt.MouseButton.LeftButton)]
        for kind, x, button in events:
            point = QPointF(x, y)
            QApplication.sendEvent(handle, QMouseEvent(
                kind, point, handle.mapToGlobal(point), button, Qt.MouseButton.LeftButton,
                modifiers))

    drag(11, Qt.KeyboardModifier.NoModifier)
    coarse = t.value()
    assert 0.2 < coarse < 0.2 * 10 ** (11 / 40)          # a fraction of a decade, not 50×
    t.set_value(0.2)
    drag(11, Qt.KeyboardModifier.ShiftModifier)
    fine = t.value()
    assert 0.2 < fine < 0.2 * 1.07 and fine < coarse    # Shift: ten times finer
    _wait(qtbot, lambda: window.presets.preset.dynamics.temperature == pytest.approx(fine))


def test_controls_follow_the_kind_and_the_preset(qtbot, window):
    sliders = window.sliders
    for kind, enabled in (("gd", {"lr", "particles"}),
                          ("langevin", {"lr", "particles", "temperature", "momentum"}),
                          ("sgd", {"lr", "particles", "temperature", "momentum", "batch_size",
                                   "noise_scale"})):
        window.kind_combo.setCurrentText(kind)
        _wait(qtbot, lambda: window.presets.preset.dynamics.kind == kind)
        shown = {key for key, slider in sliders.items() if slider.isEnabled()}
        assert shown == enabled, kind
        assert not window.ghost_slider.isEnabled()
    # the expression box shows this preset's expression, and nothing for a built-in
    _load(qtbot, window, ROOT / "presets" / "custom_expression.toml")
    assert window.expr_edit.text() == window.preset.landscape.expr != ""
    _load(qtbot, window, ROOT / "presets" / "double_well_kramers.toml")
    assert window.expr_edit.text() == "" and window.expr_error.text() == ""
    window.expr_edit.setText("x**2 + y**2")
    assert window.expr_error.text() == "✓ valid" and "#81c784" in window.expr_error.styleSheet()
    window.expr_edit.setText("x**2 + foo")
    assert "#ff8a80" in window.expr_error.styleSheet()


def test_the_cursor_readout_follows_the_temperature(qtbot, window):
    view = window.landscape_view
    _wait(qtbot, lambda: view._structure is not None)
    left = min(view._structure.minima, key=lambda m: m.x)
    at = view.plot.plotItem.vb.mapViewToScene(QPointF(left.x, left.y))
    view._mouse_moved((at,))
    assert "at T = 0.2" in view.readout.text()
    window.sliders["temperature"].spin.setValue(0.5)
    # the cursor did not move: the readout still describes the minimum at the new T
    _wait(qtbot, lambda: "at T = 0.5" in view.readout.text())


def test_train_needs_a_cnn_preset_and_the_cnn_tab_hides_the_2d_docks(qtbot, window):
    assert not window.cnn_view.start_button.isEnabled()   # was enabled, and did nothing
    docks = [window.findChild(QDockWidget, name) for name in
             ("Controls", "Time series", "Empirical measure vs Gibbs", "Escapes")]
    shown = [d for d in docks if d.isVisible()]
    assert window.findChild(QDockWidget, "Controls") in shown
    window.show_cnn_preset(load_cnn_preset())
    assert window.cnn_view.start_button.isEnabled()
    assert window.tabs.currentWidget() is window.cnn_view
    _settle(qtbot)
    assert not any(d.isVisible() for d in docks)
    assert window.findChild(QDockWidget, "Presets").isVisible()
    window.tabs.setCurrentWidget(window.landscape_view)
    _settle(qtbot)
    assert [d for d in docks if d.isVisible()] == shown


def load_cnn_preset():
    from engine.cnn.config import load_cnn
    return load_cnn(next(p for p in CNN_PRESETS if "smoke" in p.stem))


def test_both_pca_arms_are_drawn_distinguishably(qtbot):
    from app.views.cnn_lab import CnnLabView
    view = CnnLabView()
    qtbot.addWidget(view)
    view._ensure_items((0, 2), runs=3)
    base, ghost = view._clouds
    assert ghost.zValue() > base.zValue()
    assert all(ghost.zValue() > trail.zValue() for trail in view._trails)
    # the ghost arm is an open symbol: the baseline shows through where both coincide
    assert ghost.opts["symbol"] != base.opts["symbol"]
    assert ghost.opts["brush"].style() == Qt.BrushStyle.NoBrush
    assert base.opts["brush"].color().alpha() < 255


def test_event_rates_per_basin_pair():
    from app.views.escapes import RATE_PAIRS, event_rates
    rng = np.random.default_rng(0)
    steps = np.sort(rng.integers(0, 10_000, 5000))
    pairs = rng.integers(0, 3, (5000, 2))
    events = np.column_stack([steps, rng.integers(0, 100, 5000), pairs])
    edges, rates = event_rates(events, bins=20)
    assert len(edges) == 21
    width = edges[1] - edges[0]
    assert sum(r.sum() for r in rates.values()) * width / 1000 == pytest.approx(5000)
    assert len([k for k in rates if k is not None]) <= RATE_PAIRS
    edges, rates = event_rates(np.zeros((0, 4), dtype=np.int64))
    assert rates == {}


def test_trails_break_at_a_periodic_wrap(qtbot):
    from app.views.landscape import LandscapeView, broken_at_jumps
    bounds = np.array([-2.0, 2.0, -2.0, 2.0])
    path = np.array([[1.9, 0.0], [1.95, 0.0], [-1.98, 0.0], [-1.9, 0.01]])
    broken = broken_at_jumps(path, bounds)
    assert np.isnan(broken[2]).all() and len(broken) == 5
    view = LandscapeView()
    qtbot.addWidget(view)
    state = SimpleNamespace(generation=1)
    for step, x in enumerate((1.9, 1.95, -1.98, -1.9)):
        positions = np.array([[x, 0.0]] * 5)
        frame = SimpleNamespace(positions=positions, step=step)
        view.show_frame(SimpleNamespace(frame=frame, density=None, state=state, bounds=bounds))
    qpath = view.trails.path()
    xs = [qpath.elementAt(i).x for i in range(qpath.elementCount())]
    # no segment of the drawn path spans the box: each trail is two pieces
    for i in range(1, len(xs)):
        if qpath.elementAt(i).isLineTo():
            assert abs(xs[i] - xs[i - 1]) < 1.0


def test_a_click_on_the_landscape_follows_one_particle(qtbot, window):
    from PyQt6.QtTest import QTest
    window.resize(1366, 768)
    _load(qtbot, window, ROOT / "presets" / "double_well_kramers.toml")
    view = window.landscape_view
    vb = view.plot.plotItem.vb
    _settle(qtbot)
    scene = vb.mapViewToScene(QPointF(0.5, 0.8))
    pixel = view.plot.mapFromScene(scene)
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, pixel)
    _wait(qtbot, lambda: view.probe is not None)
    start = view.probe["start"]
    assert abs(start[0] - 0.5) < 0.05 and abs(start[1] - 0.8) < 0.05
    assert window.probe_clear.isEnabled()
    window.set_playing(True)
    _wait(qtbot, lambda: len(view.probe["steps"]) > 50)
    probe = view.probe
    assert probe["steps"][0] <= window.worker.state.step
    assert np.all(np.diff(probe["steps"]) > 0)
    assert np.allclose(probe["positions"][0], start)
    # its loss is f along its own path: f(start) first ((x² − 1)² + y² of the double well)
    x, y = start
    assert probe["loss"][0] == pytest.approx((x * x - 1) ** 2 + y * y, rel=1e-6)
    curve = window.series_view.probe_loss
    _wait(qtbot, lambda: curve.xData is not None and len(curve.xData) > 2)
    assert not view.probe_path.path().isEmpty()
    window.clear_probe()
    _settle(qtbot)
    _wait(qtbot, lambda: view.probe is None)
    assert not window.probe_clear.isEnabled()


def test_probe_runs_the_ensembles_dynamics_from_its_start():
    from app.probe import MAX_POINTS, Probe
    from engine.simulation import Simulation
    preset = load(ROOT / "presets" / "double_well_kramers.toml")
    probe = Probe(preset, (0.3, 0.4))
    probe.advance(200)
    # the same particle as a one-particle simulation started there (same seed and streams)
    twin = Simulation(preset.with_changes(ensemble={"particles": 1, "init_mean": (0.3, 0.4),
                                                    "init_std": (0.0, 0.0)}))
    twin.advance(200)
    payload = probe.payload()
    assert np.array_equal(payload["positions"][-1], twin.positions[0])
    assert payload["steps"][-1] == 200 and len(payload["steps"]) == 17
    gd = Probe(preset.with_changes(dynamics={"kind": "gd"}), (0.3, 0.4))
    gd.advance(500)
    assert np.all(np.diff(gd.payload()["loss"]) <= 1e-12)   # GD descends
    for _ in range(MAX_POINTS // 16 + 10):
        gd.advance(16)
    assert len(gd.payload()["steps"]) <= MAX_POINTS + 1


def test_trajectory_export_writes_its_sidecar_thinned_and_in_float32(qtbot, window, tmp_path):
    window.set_playing(True)
    _wait(qtbot, lambda: window.worker.state.step >= 2000)
    window.set_playing(False)
    name = window.proposed_name(".npz")
    assert name.endswith(".npz") and "double_well_kramers_" in name
    full, thin = tmp_path / "full.npz", tmp_path / "thin.npz"
    window.export_trajectory(full)
    window.export_trajectory(thin, float32=True, every=3)
    _wait(qtbot, lambda: full.exists() and thin.exists())
    a, b = np.load(full), np.load(thin)
    assert a["positions"].dtype == np.float64 and b["positions"].dtype == np.float32
    frames = len(a["steps"])
    assert len(b["steps"]) == len(range(0, frames, 3)) + ((frames - 1) % 3 != 0)
    assert b["steps"][-1] == a["steps"][-1]
    assert np.allclose(b["positions"][1], a["positions"][3])
    for path, data in ((full, a), (thin, b)):
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        assert sidecar["run_id"] == str(data["run_id"]) and sidecar["file"] == path.name
        assert sidecar["steps"] >= 2000 and "escapes" in sidecar
    assert json.loads((tmp_path / "thin.npz.json").read_text())["export"] == {
        "every": 3, "float32": True, "frames": len(b["steps"])}


def test_the_step_size_control_shows_the_preset_s_small_step(qtbot, window):
    """The Müller–Brown preset runs at η = 5·10⁻⁵: the control shows it (its floor was 10⁻⁴,
    so it showed 0.00010 while the engine ran 5·10⁻⁵, and a touch would have changed η)."""
    before = window.worker.generation
    assert window.open_preset(ROOT / "presets" / "muller_brown_paths.toml")
    _wait(qtbot, lambda: window.worker.generation > before, what="the Müller–Brown preset")
    _wait(qtbot, lambda: window.preset.dynamics.lr == 5e-5, what="its η in the window")
    assert window.sliders["lr"].value() == pytest.approx(5e-5, rel=1e-9)
