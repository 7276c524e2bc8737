"""The window, offscreen: presets open, sliders reach the engine, exports, broken presets."""
import time
from pathlib import Path

import numpy as np
import pytest

from app.widgets.text import reflowed
from tests.conftest import ALL_PRESETS, CNN_PRESETS, PRESETS, ROOT

pytestmark = pytest.mark.qt


def _wait(qtbot, condition, timeout=60_000, what=""):
    """``qtbot.waitUntil`` whose failure says what it waited for (e.g. which preset) and where
    the window stood."""
    try:
        qtbot.waitUntil(condition, timeout=timeout)
    except qtbot.TimeoutError as exc:
        window = getattr(qtbot, "_ergoscope_window", None)
        state = ""
        if window is not None:
            state = (f"; engine generation {window.worker.generation}, shown generation "
                     f"{window._generation}, frames drawn {window.frames_drawn}, "
                     f"last error {window.last_error!r}, "
                     f"status {window.statusBar().currentMessage()!r}")
        raise AssertionError(f"timed out after {timeout / 1000:.0f} s waiting for "
                             f"{what or 'a condition'}{state}") from exc


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow
    from engine.presets import load
    preset = load(ROOT / "presets" / "double_well_kramers.toml")
    win = MainWindow(preset)
    qtbot.addWidget(win)
    win.show()
    qtbot._ergoscope_window = win
    # the first frame waits for the step kernel: compiled on a fresh clone (cold numba cache)
    _wait(qtbot, lambda: win.frames_drawn >= 1, 180_000, "the first frame of the default preset")
    yield win
    win.shutdown()


def test_every_bundled_preset_opens_and_draws(qtbot, window):
    window.set_playing(True)
    for path in PRESETS:
        before = window.worker.generation
        assert window.open_preset(path)
        # each preset may compile kernels of its own kind first (cold numba cache: minutes in all)
        _wait(qtbot, lambda: window.worker.generation > before, 180_000,
              f"preset {path.name} to load")
        generation = window.worker.generation
        # a frame of the old simulation may still be in flight: wait for one of the new one
        _wait(qtbot, lambda: window._generation == generation, 180_000,
              f"the first frame of preset {path.name}")
        drawn = window.frames_drawn
        # (the first frame can come from the loaded state, before the kind's kernel is compiled)
        _wait(qtbot, lambda: window.frames_drawn > drawn, 180_000,
              f"a second frame of preset {path.name}")
        assert window.last_error == ""
        assert window.preset.source == str(path)
        # the gallery highlights the open preset and shows its description
        current = window.gallery.currentItem()
        assert current is not None and Path(current.data(256)) == path  # Qt.UserRole
        shown = window.description.toPlainText()
        assert shown == f"{window.preset.name}\n\n{reflowed(window.preset.description)}"
        # the reused bounding rectangles are those a fresh computation gives now
        view = window.landscape_view
        for item in (view.minima, view.saddles, view.scatter):
            assert item.boundingRect() == item.uncached_bounding_rect(), (path, item)


def test_slider_changes_reach_the_running_engine(qtbot, window):
    window.set_playing(True)
    _wait(qtbot, lambda: window.worker.state.step > 0)
    window.sliders["temperature"].spin.setValue(0.37)
    _wait(qtbot, lambda: window.presets.preset.dynamics.temperature == pytest.approx(0.37))
    window.sliders["lr"].slider.setValue(200)  # log scale 1e-4 … 1
    expected = window.sliders["lr"].value()
    _wait(qtbot, lambda: window.presets.preset.dynamics.lr == pytest.approx(expected))
    window.sliders["particles"].spin.setValue(3000)
    _wait(qtbot, lambda: window.worker.state.particles == 3000)
    step = window.worker.state.step
    _wait(qtbot, lambda: window.worker.state.step > step)  # still running, no restart


def test_speed_is_steps_per_shown_frame(qtbot, window):
    # the engine computes one batch ahead of the painted frame, never more: slow motion stays
    # slow however fast the engine is
    window.speed.spin.setValue(3)
    _wait(qtbot, lambda: window.worker.steps_per_frame == 3)
    window.set_playing(True)
    _wait(qtbot, lambda: window.frames_drawn >= 5)
    frames, step = window.frames_drawn, window.worker.state.step
    _wait(qtbot, lambda: window.frames_drawn >= frames + 40)
    shown = window.frames_drawn - frames
    advanced = window.worker.state.step - step
    assert 3 * (shown - 2) <= advanced <= 3 * (shown + 2)


def test_500_rapid_slider_changes_neither_crash_nor_freeze(qtbot, window):
    window.set_playing(True)
    slider = window.sliders["temperature"].slider
    for i in range(500):
        slider.setValue(1 + (i * 37) % 999)
        if i % 50 == 0:
            qtbot.wait(1)
    final = window.sliders["temperature"].value()
    _wait(qtbot, lambda: window.presets.preset.dynamics.temperature == pytest.approx(final))
    drawn = window.frames_drawn
    _wait(qtbot, lambda: window.frames_drawn > drawn + 2, timeout=20_000)
    assert window.last_error == ""


def test_exports_write_valid_files(qtbot, window, tmp_path):
    window.set_playing(True)
    _wait(qtbot, lambda: window.worker.state.step >= 200)
    npz, csv, png, svg = (tmp_path / n for n in ("t.npz", "t.csv", "w.png", "l.svg"))
    window.export_trajectory(npz)
    window.export_trajectory(csv)
    _wait(qtbot, lambda: npz.exists() and csv.exists())
    data = np.load(npz)
    assert data["positions"].ndim == 3 and data["positions"].shape[2] == 2
    assert "preset" in data.files
    header = csv.read_text().splitlines()[0]
    assert header.startswith("step,particle,x,y,loss")
    assert window.save_screenshot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert window.save_screenshot(svg, window.landscape_view)
    assert "<svg" in svg.read_text()[:2000]
    saved = tmp_path / "saved.toml"
    window.save_preset(saved)
    from engine.presets import load
    assert load(saved) == window.preset


def test_failed_export_changes_nothing(qtbot, window, tmp_path):
    missing = tmp_path / "no_such_dir" / "t.npz"
    window.export_trajectory(missing)
    _wait(qtbot, lambda: "export failed" in window.last_error)
    assert not missing.exists()
    assert not window.save_screenshot(tmp_path / "nope" / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_broken_preset_leaves_the_session_untouched(qtbot, window, tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "b"\n[landscape]\nbuiltin = "double_well"\n[dynamics]\nlr = -3\n')
    generation, engine_preset = window.worker.generation, window.presets.preset
    preset_before = window.preset
    assert not window.open_preset(bad)
    assert "broken.toml: dynamics.lr" in window.last_error
    time.sleep(0.2)
    assert window.worker.generation == generation and window.preset == preset_before
    assert window.presets.preset == engine_preset


def test_expression_editor_validates_inline(qtbot, window):
    window.expr_edit.setText("x**2 + foo")
    assert "'foo' at position 7" in window.expr_error.text()
    window.expr_edit.setText("x**2 + 0.5*y**2")
    assert window.expr_error.text().startswith("✓")
    before = window.worker.generation
    window.apply_expression()
    _wait(qtbot, lambda: window.worker.generation > before)
    assert window.presets.preset.landscape.expr == "x**2 + 0.5*y**2"


def test_escapes_view_shows_measured_and_kramers_times(qtbot, window):
    from PyQt6.QtWidgets import QDockWidget
    window.findChild(QDockWidget, "Escapes").raise_()
    window.speed.spin.setValue(2000)
    window.set_playing(True)
    # at T = 0.2 the Kramers time is 16 500 steps: events arrive within a few thousand steps
    _wait(qtbot, lambda: window.escapes_view.table.rowCount() > 0, timeout=90_000)
    kramers = window.escapes_view.table.item(0, 4).text()
    assert kramers.replace(",", "") == "16485"
    header = window.escapes_view.table.horizontalHeaderItem(4).text()
    assert header == "Kramers\nT = 0.2"   # two lines: the header fits a narrow dock
    assert window.worker.state.events > 0
    # events per basin pair over time: step curves of rates (events per 1 000 steps)
    curves = {key: item for key, item in window.escapes_view.rates.items()
              if item.xData is not None and len(item.xData)}
    assert curves
    for key, item in curves.items():
        assert key is None or key in ((0, 1), (1, 0))
        assert len(item.xData) == len(item.yData) + 1     # bin edges and one rate per bin
        assert np.all(item.yData >= 0) and item.yData.sum() > 0
        assert 0 <= item.xData[0] < item.xData[-1] <= window.worker.state.step


def test_animation_export_writes_a_gif(qtbot, window, tmp_path):
    from PIL import Image
    target = tmp_path / "cloud.gif"
    window.record_animation(target, frames=6, fps=10)
    _wait(qtbot, lambda: window.animation_done is not None, timeout=60_000)
    assert window.animation_done == str(target)
    with Image.open(target) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2
    assert [p.name for p in tmp_path.iterdir()] == ["cloud.gif"]  # no temp file left


def test_cnn_presets_open_in_the_cnn_lab_train_live_and_export(qtbot, window, tmp_path):
    from tests.conftest import CNN_PRESETS
    generation = window.worker.generation
    for path in CNN_PRESETS:
        assert window.open_preset(path)
        assert window.tabs.currentWidget() is window.cnn_view
        assert window.cnn_view.preset.source == str(path)
        assert Path(window.gallery.currentItem().data(256)) == path
    assert window.worker.generation == generation          # the 2D session is untouched
    # a 2D (re)load while the CNN lab is in front leaves the CNN preset highlighted
    loads = []
    window.worker.loaded.connect(loads.append)
    window.worker.submit("seed", 5)  # a reload with another seed
    _wait(qtbot, lambda: len(loads) > 0)
    qtbot.wait(100)
    assert Path(window.gallery.currentItem().data(256)) == CNN_PRESETS[-1]
    assert window.open_preset(ROOT / "presets" / "cnn_smoke.toml")
    view = window.cnn_view
    view.runs.setValue(3)
    view.epochs.setValue(8)
    view.device.setCurrentText("cpu")
    view.start_button.click()
    assert not view.start_button.isEnabled() and view.cancel_button.isEnabled()
    _wait(qtbot, lambda: window.cnn_summary is not None, timeout=120_000)
    assert window.last_error == ""
    assert view.frames_shown >= 1 and view.progress.value() == 8
    x, y = view._bands["test_loss"][1].mean.getData()
    assert len(x) == 9 and np.all(np.isfinite(y))          # epochs 0…8 of the ghost arm
    assert len(view._clouds[0].data) == 3                   # three runs in the PCA plane
    assert "ghost − baseline" in view.report.toPlainText()
    out = tmp_path / "cnn.npz"
    assert window.export_cnn(out)
    with np.load(out) as npz:
        assert npz["test_loss"].shape == (9, 6)
    assert (tmp_path / "cnn_bands.png").exists() and (tmp_path / "cnn.json").exists()


def test_cnn_training_can_be_cancelled_and_keeps_what_it_trained(qtbot, window):
    assert window.open_preset(ROOT / "presets" / "rmnist30_ghost.toml")
    window.cnn_view.runs.setValue(2)
    window.cnn_view.device.setCurrentText("cpu")
    assert window.start_cnn(window.cnn_view.configured_preset(), "cpu")
    assert not window.start_cnn(window.cnn_view.configured_preset(), "cpu")   # one at a time
    _wait(qtbot, lambda: window.cnn_view.progress.value() >= 2)
    window.cnn_view.cancel_button.click()
    _wait(qtbot, lambda: window.cnn_summary is not None)
    assert window.cnn_worker.cancelled
    assert 2 <= window.cnn_summary["epochs"] + 1 < 400
    assert "Cancelled" in window.cnn_view.report.toPlainText()
    assert not window.open_preset(ROOT / "presets" / "missing.toml")
    assert "file not found" in window.last_error


def test_a_kernel_compile_is_announced_and_the_notice_cleared_by_the_next_frame(qtbot, window):
    window.set_playing(True)
    messages = []
    window.worker.busy.connect(messages.append)
    # an expression no other test uses: its step kernel is compiled now
    window.expr_edit.setText("x**4 - 2*x**2 + 0.75*y**2 + 0.0137*x*y")
    window.apply_expression()
    _wait(qtbot, lambda: bool(messages))
    assert "compil" in messages[0]
    _wait(qtbot, lambda: window.preset.landscape.expr is not None and window.frames_drawn > 0
          and not window._busy_shown)
    assert window.statusBar().currentMessage() == ""


def test_a_crashed_engine_process_is_reported_and_restarted(qtbot, window):
    # the engine runs in its own process: if it dies, the window survives, says so and
    # starts a fresh engine on the last preset the engine loaded
    window.set_playing(True)
    old, loads = window.worker._process, window.presets.loads
    old.kill()
    _wait(qtbot, lambda: "ended unexpectedly" in window.last_error)
    _wait(qtbot, lambda: window.worker._process is not None
          and window.worker._process is not old and window.worker._process.is_alive())
    window.set_playing(True)  # the fresh engine starts paused, like any load
    drawn = window.frames_drawn
    _wait(qtbot, lambda: window.frames_drawn > drawn + 2)
    # the fresh engine reported its load, of the preset the window had
    _wait(qtbot, lambda: window.presets.loads == loads + 1)
    from engine.presets import load
    assert window.preset == load(ROOT / "presets" / "double_well_kramers.toml")


def test_a_temperature_change_brings_new_weights_on_the_same_grids(qtbot, window):
    # the engine process sends the landscape grids (≈ 1 MB) once; a new temperature brings new
    # Laplace weights and Kramers times on the very same grid arrays, so the heatmap stays baked
    window.set_playing(True)
    _wait(qtbot, lambda: window._structure is not None)
    before = window._structure
    window.sliders["temperature"].spin.setValue(0.3)
    _wait(qtbot, lambda: window._structure is not before)
    after = window._structure
    assert after.temperature == pytest.approx(0.3) and before.temperature == pytest.approx(0.2)
    assert after.values is before.values and after.basins is before.basins
    assert after.kramers[0]["mfpt_steps"] < before.kramers[0]["mfpt_steps"]  # hotter: faster


def test_switching_to_sgd_predicts_escapes_at_its_batch_size_temperature(qtbot, window):
    # the double well preset runs Langevin at T = 0.2; as minibatch SGD (σ = 1 by default,
    # n = 64) its escapes are predicted at T_eff = T + η σ² tr Σ (n − B)/(4B(n − 1))
    window.set_playing(True)
    _wait(qtbot, lambda: window._structure is not None)
    window.kind_combo.setCurrentText("sgd")
    window.sliders["noise_scale"].spin.setValue(10.0)
    window.sliders["temperature"].spin.setValue(0.0)

    def t_eff(batch):
        return 0.01 * 100.0 * 2.0 * (64 - batch) / (4.0 * batch * 63)

    _wait(qtbot, lambda: window._structure.temperature == pytest.approx(t_eff(8), rel=1e-9))
    window.sliders["batch_size"].spin.setValue(16)
    _wait(qtbot, lambda: window._structure.temperature == pytest.approx(t_eff(16), rel=1e-9))
    assert window.presets.preset.dynamics.kind == "sgd"


def test_the_cursor_over_a_marker_describes_the_critical_point(qtbot, window):
    from PyQt6.QtCore import QPointF
    view = window.landscape_view
    _wait(qtbot, lambda: view._structure is not None)
    vb = view.plot.plotItem.vb
    left = min(view._structure.minima, key=lambda m: m.x)
    index = view._structure.minima.index(left)
    at = vb.mapViewToScene(QPointF(left.x, left.y))
    # (x² − 1)² + y² at (−1, 0): Hessian diag(8, 2), GD converges for η < 2/8, two equal
    # wells share the Laplace weight at the preset's T = 0.2
    text = view.readout_text(at + QPointF(3, -2))
    assert text.endswith(f"minimum {index}: f = 0, Hessian eigenvalues 2, 8, GD converges to it "
                         "for η < 2/λ_max = 0.25, Laplace weight 0.5 at T = 0.2"), text
    near = vb.mapSceneToView(at + QPointF(3, -2)).x()
    assert -1.05 < near < -0.95 and text.startswith(f"x = {near:.4g}")  # 3 px off: still it
    assert "minimum" not in view.readout_text(at + QPointF(30, 0))
    # the long description wraps in the view's readout band: the plot keeps its size
    size = view.plot.size()
    view.readout.setText(text)
    qtbot.wait(100)
    assert view.plot.size() == size
    # with heavy-ball momentum β the stable steps reach 2(1 + β)/λ_max
    window.sliders["momentum"].spin.setValue(0.5)
    _wait(qtbot, lambda: "β = 0.5: η < 2(1 + β)/λ_max = 0.375" in view.readout_text(at))
    saddle = vb.mapViewToScene(QPointF(0.0, 0.0))
    assert "saddle between minima 0 and 1: f = 1, Hessian eigenvalues -4, 2" in \
        view.readout_text(saddle)


def test_a_batch_is_cut_into_equal_chunks():
    from app.engine_loop import equal_chunk
    for remaining, longest in ((143, 70), (100, 50), (7, 70), (1000, 1), (99, 98)):
        chunks = []
        left = remaining
        while left:
            chunks.append(equal_chunk(left, longest))
            left -= chunks[-1]
        assert sum(chunks) == remaining
        assert max(chunks) <= longest
        assert len(chunks) == -(-remaining // longest)  # no more calls than needed
        assert max(chunks) - min(chunks) <= 1
    assert [equal_chunk(143, 70), equal_chunk(95, 70), equal_chunk(47, 70)] == [48, 48, 47]


def test_long_series_are_drawn_at_about_two_points_per_pixel_column(qtbot):
    from types import SimpleNamespace

    from app.views.series import SeriesView
    view = SeriesView()
    qtbot.addWidget(view)
    view.resize(500, 800)
    view.show()
    steps = np.arange(4096) * 50.0
    wave = np.sin(steps / 3000.0) + np.random.default_rng(0).normal(0.0, 0.1, steps.size)
    first = {"steps": steps[:1], "loss_mean": wave[:1]}
    view.show_frame(SimpleNamespace(series=first, probe=None))  # one record is no series: nothing drawn
    assert view.loss.xData is None or len(view.loss.xData) == 0
    series = {"steps": steps, "loss_mean": wave}
    view.show_frame(SimpleNamespace(series=series, probe=None))
    assert len(view.loss.xData) == steps.size
    view.show_frame(SimpleNamespace(series=first, probe=None))  # a reset: the old run's curve goes
    assert view.loss.xData is None or len(view.loss.xData) == 0
    view.show_frame(SimpleNamespace(series=series, probe=None))
    qtbot.waitUntil(lambda: view.loss.curve.xData is not None, timeout=5_000)
    qtbot.wait(50)
    drawn = view.loss.curve.yData
    width = view.loss_plot.vb.width()
    assert 0 < width < 500
    assert drawn.size <= 2 * width + 4          # a minimum and a maximum per pixel column
    # peak mode keeps the extremes: the drawn curve spans what the data spans
    assert drawn.max() == wave.max() and drawn.min() == wave.min()


def test_a_diagnostic_the_run_does_not_compute_has_no_legend_entry(qtbot):
    # ghost runs leave the tangent-vector exponent NaN: its legend entry goes, and comes back
    # with a run that computes it
    from types import SimpleNamespace

    from app.views.series import SeriesView
    view = SeriesView()
    qtbot.addWidget(view)
    steps = np.arange(10) * 25.0

    def labels():
        return [label.text for _, label in view.lyap_plot.legend.items]

    def show(tangent):
        view.show_frame(SimpleNamespace(probe=None, series={
            "steps": steps, "lyapunov_mean": np.linspace(0.1, 0.2, 10),
            "tangent_lyapunov_mean": tangent}))

    show(np.full(10, np.nan))
    assert labels() == ["γ̂ mean (10–90 % band)"]
    show(np.linspace(0.0, 0.1, 10))
    assert labels() == ["γ̂ mean (10–90 % band)", "top exponent (tangent vector)"]
    show(np.linspace(0.0, 0.1, 10))
    assert len(labels()) == 2


def test_the_log_axis_labels_only_one_two_and_five_per_decade(qtbot):
    from app.views.curves import SparseLogAxis
    axis = SparseLogAxis("left")
    ticks = np.log10([0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.2, 0.3, 0.5, 0.9, 1.0, 2.0, 3.0])
    labels = axis.logTickStrings(list(ticks), 1.0, 1.0)
    shown = [round(10 ** t, 2) for t, label in zip(ticks, labels) if label]
    assert shown == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    # inside one decade that would leave a single label: all are kept
    within = np.log10([0.06, 0.07, 0.08, 0.09])
    assert all(axis.logTickStrings(list(within), 1.0, 1.0))


def test_steady_axes_move_only_when_the_data_leaves_them(qtbot):
    import pyqtgraph as pg

    from app.views.curves import SteadyAxes, ladder_ceil
    assert [ladder_ceil(v) for v in (1.0, 1.1, 7.0, 9.0, 11.0, 0.031)] == \
        [1.0, 1.2, 8.0, 10.0, 12.0, 0.04]
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    top, bottom = widget.addPlot(row=0, col=0), widget.addPlot(row=1, col=0)
    bottom.setXLink(top)
    axes = SteadyAxes([top, bottom])
    moves = []
    top.vb.sigRangeChanged.connect(lambda *_: moves.append(top.vb.viewRange()))

    def update(last, top_bounds, bottom_bounds=(0.0, 1.0)):
        axes.update(0.0, last, {id(top): top_bounds, id(bottom): bottom_bounds})
        return top.vb.viewRange()

    x, y = update(1000.0, (1.0, 2.0))
    assert x == [0.0, 1200.0] and y == pytest.approx([0.92, 2.08])  # 5 % headroom at least
    assert bottom.vb.viewRange()[0] == [0.0, 1200.0]             # linked
    moves.clear()
    for last in (1010.0, 1100.0, 1190.0):                         # inside the axes: no move
        update(last, (1.1, 1.9))
    assert moves == []
    x, _ = update(1250.0, (1.1, 1.9))                             # past the right edge
    assert x == [0.0, 1500.0]
    _, y = update(1260.0, (0.5, 1.9))                              # below the bottom
    assert y == pytest.approx([0.5 - 0.112, 1.9 + 0.112])
    x, _ = update(100.0, (1.0, 1.2))                               # a reset: refit both
    assert x == [0.0, 120.0] and top.vb.viewRange()[1] == pytest.approx([0.984, 1.216])
    _, y = update(100.0, (0.0, 0.0), bottom_bounds=(0.5, 0.5))     # constants
    assert y == pytest.approx([-0.08, 0.08])
    assert bottom.vb.viewRange()[1] == pytest.approx([0.46, 0.54])
    # a drag hands the axes to the user; pyqtgraph's "A" button hands them back
    top.vb.sigRangeChangedManually.emit([True, True])
    top.vb.setRange(xRange=(10.0, 20.0), yRange=(5.0, 6.0), padding=0)
    assert update(5000.0, (1.0, 9.0)) == [[10.0, 20.0], [5.0, 6.0]]
    top.vb.enableAutoRange()
    x, y = update(5000.0, (1.0, 9.0))
    assert x == [0.0, 6000.0] and y == pytest.approx([0.36, 9.64])
    assert not any(top.vb.state["autoRange"])                   # refits stay ours


def test_distance_plot_spans_the_decades_of_the_data_and_clears_on_a_restart(qtbot):
    from types import SimpleNamespace

    from app.views.measure import MeasureView
    view = MeasureView()
    qtbot.addWidget(view)
    cells = np.full((64, 64), 1 / 4096)

    def show(steps, tv, kl):
        view.show_frame(SimpleNamespace(measure={
            "bounds": np.array([-1.0, 1.0, -1.0, 1.0]), "empirical": cells, "gibbs": cells,
            "steps": steps, "tv": tv, "kl": kl}))

    steps = np.arange(10) * 100.0
    show(steps, np.geomspace(0.5, 0.05, 10), np.geomspace(2.0, 0.02, 10))
    x, y = view.distance_plot.vb.viewRange()
    assert x == [0.0, 1000.0]                        # 900 steps, 5 % headroom, on the ladder
    assert y == pytest.approx([np.log10(0.02) - 0.16, np.log10(2.0) + 0.16])  # 2 decades ± 8 %
    show(np.array([]), np.array([]), np.array([]))  # pooling restarted
    assert view.tv.xData is None or len(view.tv.xData) == 0


def test_cached_bounding_rectangles_follow_the_data_and_the_view(qtbot):
    import pyqtgraph as pg

    from app.views.point_cloud import PointCloudItem
    from app.views.view_bounds import StaticMarkers
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 400)
    widget.show()
    markers, cloud = StaticMarkers(size=10), PointCloudItem(size=3)
    for item in (markers, cloud):
        widget.addItem(item)
    widget.setRange(xRange=(-10, 10), yRange=(-10, 10), padding=0)
    markers.setData([0.0], [0.0])
    cloud.setData(np.array([[1.0, 1.0], [2.0, 2.0]]))
    qtbot.wait(20)
    small_pad = markers.boundingRect().width()
    assert 0 < small_pad < 2 and cloud.boundingRect().contains(2.0, 2.0)
    markers.setData([0.0, 5.0], [0.0, 5.0])                     # new data: a new rectangle
    cloud.setData(np.array([[1.0, 1.0], [8.0, -7.0]]))
    assert markers.boundingRect().contains(5.0, 5.0)
    assert cloud.boundingRect().contains(8.0, -7.0)
    markers.setData([0.0], [0.0])
    assert markers.boundingRect().width() == pytest.approx(small_pad)
    widget.setRange(xRange=(-100, 100), yRange=(-100, 100), padding=0)  # zoomed out
    qtbot.wait(20)
    # the same marker now pads by 10 px of a 10× wider view: its rectangle grows ≈ 10×
    assert markers.boundingRect().width() == pytest.approx(10 * small_pad, rel=0.05)


def test_trails_cover_the_last_steps_not_the_last_frames(qtbot):
    from types import SimpleNamespace

    from app.views.landscape import TRAIL_LENGTH, TRAIL_STEPS, LandscapeView
    view = LandscapeView()
    qtbot.addWidget(view)
    from engine.presets import load
    positions = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    state = SimpleNamespace(generation=1,
                            preset=load(ROOT / "presets" / "double_well_kramers.toml"))

    def show(step):
        frame = SimpleNamespace(positions=positions + 1e-4 * step, step=step)
        view.show_frame(SimpleNamespace(frame=frame, density=None, state=state,
                                        bounds=np.array([-2.0, 2.0, -2.0, 2.0])))
        # five trails, each a polyline ended by a NaN: one path element per point, plus one
        return view.trails.path().elementCount() // 5 - 1

    slow = [show(10 * i) for i in range(100)]
    assert slow[-1] == TRAIL_LENGTH                     # 40 frames × 10 steps ≤ TRAIL_STEPS
    fast = [show(1000 + 100 * i) for i in range(1, 30)]
    assert fast[-1] == TRAIL_STEPS // 100               # the frames of the last 400 steps
    assert show(0) == 1                                 # the run restarted: a fresh trail


def test_an_off_diagnostic_plot_keeps_the_runs_epoch_axis(qtbot):
    from app.views.cnn_lab import CnnLabView
    from engine.cnn.config import apply_cnn_sets, load_cnn
    from engine.cnn.trainer import CnnExperiment
    preset = apply_cnn_sets(load_cnn(ROOT / "presets" / "cnn_smoke.toml"),
                            ["diagnostics.every=0", "training.runs=2", "training.epochs=4"])
    experiment = CnnExperiment(preset, "cpu").run()
    view = CnnLabView()
    qtbot.addWidget(view)
    view.show_frame(experiment.frame())
    for key in ("lambda_max", "lyapunov", "noise_norm"):     # off: no data at all
        assert not np.isfinite(experiment.metrics()[key]).any()
        low, high = view.plots[key].vb.viewRange()[0]
        assert low <= 0 < 4 <= high < 5
    # the next run has them on: their axes follow its data again
    on = CnnExperiment(apply_cnn_sets(preset, ["diagnostics.every=2"]), "cpu").run()
    view.show_frame(on.frame())
    for key in ("lambda_max", "lyapunov", "noise_norm"):
        assert np.isfinite(on.metrics()[key]).any()
        assert view.plots[key].vb.autoRangeEnabled()[0]


def test_descriptions_are_reflowed_into_paragraphs():
    # the TOML source's hard line breaks went to the screen as ragged short lines
    text = ("One sentence that the file\nwraps at 95 columns.\n\n"
            "A second paragraph:\n- item one\n- item two\n")
    assert reflowed(text) == ("One sentence that the file wraps at 95 columns.\n\n"
                              "A second paragraph:\n- item one\n- item two")


# -- the command line (python -m app) and drag-and-drop ---------------------------------------
@pytest.fixture
def launch(qtbot):
    """``launch(*argv)``: what ``python -m app *argv`` builds before the event loop (a shown
    window, or the exit status); the windows are shut down at the end."""
    from app.__main__ import build_window
    windows = []

    def _launch(*argv):
        window = build_window([str(a) for a in argv])
        if not isinstance(window, int):
            qtbot.addWidget(window)
            windows.append(window)
        return window

    yield _launch
    for window in windows:
        window.shutdown()


def _assert_cnn_controls_show(view, path):
    from engine.cnn.config import load_cnn
    preset = load_cnn(path)
    assert view.preset == preset and view.preset.source == str(path)
    assert view.lr.value() == pytest.approx(preset.training.lr)
    assert view.epochs.value() == preset.training.epochs
    assert view.runs.value() == preset.training.runs
    assert view.ghosts.value() == preset.model.ghosts
    assert view.diag_every.value() == preset.diagnostics.every


@pytest.mark.parametrize("path", ALL_PRESETS, ids=lambda p: p.name)
def test_every_bundled_preset_opens_from_the_command_line(qtbot, launch, path):
    window = launch(path)
    assert not isinstance(window, int)
    if path in CNN_PRESETS:
        assert window.tabs.currentWidget() is window.cnn_view
        _assert_cnn_controls_show(window.cnn_view, path)
        assert Path(window.gallery.currentItem().data(256)) == path  # Qt.UserRole
        # the 2D side holds the default preset, paused; the CNN waits for Train
        _wait(qtbot, lambda: window.worker.state is not None)
        assert window.presets.preset.source == str(ROOT / "presets" /
                                                         "double_well_kramers.toml")
        qtbot.wait(300)
        assert window.worker.state.step == 0 and not window.play_button.isChecked()
        assert not window.cnn_worker.running.is_set() and window.cnn_view.start_button.isEnabled()
        assert window.tabs.currentWidget() is window.cnn_view     # the 2D load kept it in front
    else:
        assert window.tabs.currentWidget() is window.landscape_view
        assert window.play_button.isChecked()
        _wait(qtbot, lambda: window.worker.state is not None and window.worker.state.step > 0)
        assert window.presets.preset.source == str(path)
    assert window.last_error == ""


def test_a_cnn_preset_with_run_trains_at_once(qtbot, launch):
    path = ROOT / "presets" / "cnn_smoke.toml"
    window = launch(path, "--run")
    assert window.tabs.currentWidget() is window.cnn_view
    _assert_cnn_controls_show(window.cnn_view, path)
    assert window.cnn_worker.running.is_set() and window.cnn_view.cancel_button.isEnabled()
    _wait(qtbot, lambda: window.cnn_view.progress.value() >= 1)
    window.cnn_view.cancel_button.click()
    _wait(qtbot, lambda: not window.cnn_worker.running.is_set())
    assert window.cnn_worker.cancelled and window.last_error == ""
    assert not window.play_button.isChecked()                   # the 2D side stayed paused


def test_a_broken_preset_on_the_command_line_exits_2_with_one_line(launch, tmp_path, capsys):
    from PyQt6.QtWidgets import QApplication

    from app.main_window import MainWindow

    def shown_windows():
        return [w for w in QApplication.topLevelWidgets()
                if isinstance(w, MainWindow) and w.isVisible()]

    before = shown_windows()
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "b"\n[landscape]\nbuiltin = "double_well"\n[dynamics]\nlr = -3\n')
    cnn = tmp_path / "bad_cnn.toml"
    cnn.write_text('name = "c"\n[training]\nepochs = 0\n')
    syntax = tmp_path / "syntax.toml"
    syntax.write_text('name = "s"\n[landscape\n')
    for path, why in ((bad, "dynamics.lr"), (cnn, "training.epochs"),
                      (syntax, "TOML syntax error"), (tmp_path / "missing.toml", "not found")):
        assert launch(path) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"error: {path}") and why in err, err
    assert launch("--help") == 0 and "--run" in capsys.readouterr().out
    assert shown_windows() == before                                 # no window came up


def _drag_and_drop(target, path) -> tuple[bool, bool]:
    """Drag a local file over ``target`` and drop it, the way Qt delivers it (the enter goes up
    the parents until one accepts; the drop goes where the enter was accepted).  Whether the
    enter and the drop were accepted."""
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent
    from PyQt6.QtWidgets import QApplication
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    point = QPointF(target.width() / 2, target.height() / 2)
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(point.toPoint(), *args)
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False, False
    drop = QDropEvent(point, *args)
    QApplication.sendEvent(target, drop)
    return True, drop.isAccepted()


def test_a_dropped_preset_opens_and_a_broken_one_is_reported(qtbot, window, tmp_path):
    cnn = ROOT / "presets" / "cnn_smoke.toml"
    text = tmp_path / "notes.txt"
    text.write_text("not a preset")
    plot = window.landscape_view.plot.viewport()     # the plot ignores drags: the window takes it
    assert _drag_and_drop(plot, text) == (False, False)
    generation = window.worker.generation
    assert _drag_and_drop(plot, cnn) == (True, True)
    assert window.tabs.currentWidget() is window.cnn_view
    _assert_cnn_controls_show(window.cnn_view, cnn)
    assert not window.cnn_worker.running.is_set() and window.last_error == ""
    # a broken file: said in the status bar, the session goes on untouched
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "b"\n[training]\nlr = "fast"\n')
    assert _drag_and_drop(window.cnn_view, bad) == (True, True)
    assert "broken.toml: training.lr" in window.last_error
    assert "broken.toml" in window.statusBar().currentMessage()
    assert window.cnn_view.preset.source == str(cnn)
    assert window.worker.generation == generation
    drawn = window.frames_drawn
    window.set_playing(True)
    _wait(qtbot, lambda: window.frames_drawn > drawn)            # still alive


def test_a_cnn_run_that_fails_says_why_in_the_cnn_tab(qtbot, window):
    # a device torch refuses: the experiment fails once started, not at the settings check
    assert window.open_preset(ROOT / "presets" / "cnn_smoke.toml")
    assert window.start_cnn(window.cnn_view.configured_preset(), "no_such_device")
    _wait(qtbot, lambda: window.cnn_view.status.text().startswith("failed"))
    report = window.cnn_view.report.toPlainText()
    assert report.startswith("Failed — CNN experiment") and "no_such_device" in report
    assert window.cnn_view.start_button.isEnabled()          # the tab is ready for another run
