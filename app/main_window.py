"""Main window: layout and wiring only.  The worker owns the engine; views draw frames."""
from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path

import pyqtgraph as pg
from PyQt6.QtCore import QSettings, Qt, QThread, pyqtSignal
from PyQt6.QtGui import QAction, QGuiApplication, QImage, QKeySequence
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDockWidget,
                             QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel,
                             QLineEdit, QListWidget, QListWidgetItem, QMainWindow, QPushButton,
                             QScrollArea, QSpinBox, QTabBar, QTabWidget, QTextBrowser, QVBoxLayout,
                             QWidget)

from engine.kinds import kind_named, kind_names
from engine.landscapes import BUILTINS, ExpressionError, parse
from engine.cnn.config import CnnPreset, is_cnn_document, load_cnn
from engine.presets import Preset, PresetError, load, parse_toml, read_text, save

from .cnn_worker import CnnWorker
from .preset_controller import PresetController
from .views.cnn_lab import CnnLabView
from .views.escapes import EscapesView
from .views.transitions import TransitionsView
from .views.landscape import LandscapeView
from .views.measure import MeasureView
from .views.schedule import ScheduleView
from .views.series import SeriesView
from .widgets.kind_controls import KIND_PARAMETERS, kind_parameter_sliders
from .widgets.sliders import ValueSlider
from .widgets.text import reflowed
from .worker import EngineWorker, FrameBundle

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
MAX_RECENT = 8
PREFERRED_SIZE = (1500, 950)  # the window's size where the screen has room for it
LEFT_DOCK_WIDTH = 330  # px: the controls' sliders get ≈ 290 px of it
RIGHT_DOCK_SHARE = 0.34  # of the window's width for the time series, measure and escapes
OK_STYLE = "color: #81c784;"  # a valid expression
ERROR_STYLE = "color: #ff8a80;"
DOCKS_2D = ("Controls", "Time series", "Empirical measure vs Gibbs", "Escapes", "Transitions")
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _render_svg(widget: QWidget, filename: str) -> None:
    """Vector SVG of a widget through QSvgGenerator (pyqtgraph's own SVG exporter fails with
    Qt 6.11 path syntax)."""
    from PyQt6.QtCore import QRectF
    from PyQt6.QtGui import QPainter
    from PyQt6.QtSvg import QSvgGenerator
    generator = QSvgGenerator()
    generator.setFileName(filename)
    generator.setSize(widget.size())
    generator.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
    generator.setTitle("ErgoScope")
    painter = QPainter(generator)
    try:
        widget.render(painter)
    finally:
        painter.end()


def applicable_controls(kind: str, classifier: bool) -> dict[str, bool]:
    """Which dynamics controls ``kind`` uses on this landscape, as the kind declares
    (:meth:`engine.kinds.Kind.controls`): e.g. GD ignores T and β, σ scales SGD's analytic
    noise model, which the classifier's real minibatches do not have, e is the ghost runs'."""
    used = kind_named(kind).controls(classifier)
    return {"lr": True, "particles": True,
            **{key: key in used for key in ("temperature", "momentum", "batch_size",
                                            "noise_scale", "ghosts", *KIND_PARAMETERS)}}


def bundled_presets() -> list[Path]:
    return sorted(PRESET_DIR.glob("*.toml"))


def load_any(path: str | Path) -> Preset | CnnPreset:
    """A 2D landscape preset or a CNN-lab preset, told apart by their tables."""
    text = read_text(path)
    if is_cnn_document(parse_toml(text, str(path))):
        return load_cnn(path)
    return load(path)


class ExportDialog(QDialog):
    """File ▸ Export trajectory: the file (a proposed name), single precision and thinning.
    The JSON sidecar (``<file>.json``: the run's summary) is always written beside it."""

    def __init__(self, parent, proposed: str, filt: str, suffix: str, particles: int):
        super().__init__(parent)
        self.setWindowTitle("Export trajectory")
        self.filt, self.suffix = filt, suffix
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit(proposed)
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        form = QFormLayout()
        self.float32 = QCheckBox("float32 (half the size; ≈ 7 significant digits)")
        self.float32.setChecked(particles > 10_000)
        form.addRow("precision", self.float32)
        self.every = QSpinBox()
        self.every.setRange(1, 1_000_000)
        self.every.setValue(1)
        self.every.setPrefix("every ")
        self.every.setSuffix(" recorded frame(s)")
        self.every.setToolTip("keep every k-th recorded frame of the per-particle arrays "
                              "(the last one always); series and events stay whole")
        form.addRow("thinning", self.every)
        layout.addLayout(form)
        note = QLabel(f"A JSON summary is written beside it ({Path(proposed).name}.json).")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.path_edit.textChanged.connect(
            lambda t: note.setText(f"A JSON summary is written beside it ({Path(t).name}.json)."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export trajectory", self.path_edit.text(),
                                              self.filt)
        if path:
            self.path_edit.setText(path)

    def choice(self) -> tuple[str, bool, int]:
        path = self.path_edit.text().strip()
        if path and not path.endswith(self.suffix):
            path += self.suffix
        return path, self.float32.isChecked(), self.every.value()


class MainWindow(QMainWindow):
    _cnn_start = pyqtSignal(object, str)

    def __init__(self, preset: Preset):
        super().__init__()
        pg.setConfigOptions(antialias=False, imageAxisOrder="col-major")
        self.setWindowTitle("ErgoScope")
        self.resize(*self._fitted_size())
        # the one copy of the run's preset: the engine reports loads and applied edits to it
        self.presets = PresetController(preset)
        self.last_error = ""
        self.frames_drawn = 0
        self._fps_times: list[float] = []
        self._generation = -1
        self._structure = None
        self._status_at = 0.0
        self._animation: dict | None = None
        self.animation_done: str | None = None
        self.settings = QSettings("ErgoScope", "ErgoScope")

        self.landscape_view = LandscapeView()
        self.landscape_view.start_requested.connect(self.follow_particle)
        self.series_view = SeriesView()
        self.measure_view = MeasureView()
        self.escapes_view = EscapesView()
        self.transitions_view = TransitionsView()
        self.cnn_view = CnnLabView()
        self.cnn_summary: dict | None = None
        self.tabs = QTabWidget()
        self.tabs.addTab(self.landscape_view, "Landscape")
        self.tabs.addTab(self.cnn_view, "CNN lab")
        self.setCentralWidget(self.tabs)
        self._dock("Time series", self.series_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Empirical measure vs Gibbs", self.measure_view,
                   Qt.DockWidgetArea.RightDockWidgetArea, shown="Measure vs Gibbs")
        self._dock("Escapes", self.escapes_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Transitions", self.transitions_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.findChild(QDockWidget, "Time series"),
                              self.findChild(QDockWidget, "Empirical measure vs Gibbs"))
        self.tabifyDockWidget(self.findChild(QDockWidget, "Time series"),
                              self.findChild(QDockWidget, "Escapes"))
        self.tabifyDockWidget(self.findChild(QDockWidget, "Time series"),
                              self.findChild(QDockWidget, "Transitions"))
        self.findChild(QDockWidget, "Time series").raise_()
        self._dock("Controls", self._scrolling(self._build_controls()),
                   Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Presets", self._build_gallery(), Qt.DockWidgetArea.LeftDockWidgetArea)
        self._size_docks()
        # the CNN lab tab shows only what applies to it: the 2D docks step aside meanwhile
        self._hidden_2d_docks: list[QDockWidget] = []
        self.tabs.currentChanged.connect(self._tab_changed)
        self.error_banner = QLabel("")
        self.error_banner.setStyleSheet(ERROR_STYLE + " font-weight: bold;")
        self.error_banner.setWordWrap(True)
        # a normal (not permanent) widget: temporary messages (saved, compiling…) show over it
        self.statusBar().addWidget(self.error_banner, 1)
        self.status_rates = QLabel("")
        self.statusBar().addPermanentWidget(self.status_rates)
        self._build_menus()
        self._cache_static_items()
        # a .toml file dropped on the window opens like File ▸ Open (the plots and read-only
        # text ignore a drag, so Qt hands it on up to the window)
        self.setAcceptDrops(True)

        self.worker = EngineWorker(self.presets)  # the engine runs in a process of its own
        self.worker.frame_ready.connect(self.show_frame)
        self.presets.changed.connect(self._on_preset_changed)
        self.landscape_view.presets = self.transitions_view.presets = self.presets
        self.worker.failed.connect(self._on_failed)
        self.worker.exported.connect(lambda p: self.statusBar().showMessage(f"wrote {p}", 5000))
        self.worker.busy.connect(self._on_busy)
        self._busy_shown = False
        self.worker.start()
        from .comparison import open_side_by_side
        # a [[compare]] preset: its other configurations run beside this one (app.comparison)
        self.side_by_side = open_side_by_side(self, preset, None)

        self.cnn_worker = CnnWorker()
        self.cnn_thread = QThread()
        self.cnn_worker.moveToThread(self.cnn_thread)
        self._cnn_start.connect(self.cnn_worker.start)
        self.cnn_worker.frame_ready.connect(self._show_cnn_frame)
        self.cnn_worker.progress.connect(self.cnn_view.set_progress)
        self.cnn_worker.finished.connect(self._cnn_finished)
        self.cnn_worker.failed.connect(self._cnn_failed)
        self.cnn_view.start_requested.connect(self.start_cnn)
        # a direct call: a queued slot would wait behind the worker's training loop
        self.cnn_view.cancel_requested.connect(self.cancel_cnn)
        self.cnn_view.export_requested.connect(self._cnn_export_dialog)
        self.cnn_thread.start()
        self._add_sweeps_dock()

    def _add_sweeps_dock(self) -> None:
        """The Sweeps dock (app.views.sweeps), tabbed with the time series and hidden on the
        CNN tab; a clicked cell's preset runs in the live view like File ▸ Open."""
        from .views.sweeps import SweepsView
        self.sweeps_view = SweepsView()
        self.sweeps_view.presets = self.presets
        self.sweeps_view.refresh_keys()
        dock = self._dock("Sweeps", self.sweeps_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.findChild(QDockWidget, "Time series"), dock)
        self.findChild(QDockWidget, "Time series").raise_()
        self.presets.changed.connect(
            lambda preset, loaded: self.sweeps_view.preset_loaded(preset) if loaded else None)
        self.sweeps_view.load_requested.connect(self._load_sweep_cell)
        self.sweeps_view.stop_with(self)
        self.tabs.currentChanged.connect(
            lambda index: self.sweeps_view.follow_tab(dock, self.tabs.widget(index)
                                                      is not self.cnn_view))

    def _load_sweep_cell(self, preset) -> None:
        self.tabs.setCurrentWidget(self.landscape_view)
        self.worker.submit("load", preset)

    def _cache_static_items(self) -> None:
        """Axes and legends change rarely: let Qt keep them as pixmaps instead of re-running
        pyqtgraph's Python paint code on every frame (the main cost of a frame here)."""
        from PyQt6.QtWidgets import QGraphicsItem
        cache = QGraphicsItem.CacheMode.DeviceCoordinateCache
        for item in self.findChildren(pg.GraphicsView):
            for graphics in item.scene().items():
                if isinstance(graphics, (pg.AxisItem, pg.LegendItem, pg.LabelItem)):
                    graphics.setCacheMode(cache)

    # -- construction --------------------------------------------------------------------------
    def _fitted_size(self) -> tuple[int, int]:
        """The preferred size, shrunk to the screen's available area (1366×768 included)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return PREFERRED_SIZE
        available = screen.availableGeometry()
        # a window manager's frame and title bar take a little more than the client area
        return (min(PREFERRED_SIZE[0], available.width() - 8),
                min(PREFERRED_SIZE[1], available.height() - 32))

    def _size_docks(self) -> None:
        width = self.width()
        left = min(LEFT_DOCK_WIDTH, int(0.3 * width))
        right = int(RIGHT_DOCK_SHARE * width)
        self.resizeDocks([self.findChild(QDockWidget, "Controls")], [left],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.findChild(QDockWidget, "Time series")], [right],
                         Qt.Orientation.Horizontal)
        height = self.height()
        self.resizeDocks([self.findChild(QDockWidget, "Controls"),
                          self.findChild(QDockWidget, "Presets")],
                         [int(0.64 * height), int(0.36 * height)], Qt.Orientation.Vertical)

    @staticmethod
    def _scrolling(panel: QWidget) -> QScrollArea:
        """``panel`` in a vertical scroll area: however many landscape parameters a preset has,
        the control panel never makes the window taller than the screen."""
        area = QScrollArea()
        area.setWidget(panel)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setMinimumWidth(panel.minimumSizeHint().width()
                             + area.verticalScrollBar().sizeHint().width() + 4)
        return area

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):  # dock sizes apply once laid out
            self._docks_sized = True
            from PyQt6.QtCore import QTimer
            QTimer.singleShot(0, self._size_docks)

    def childEvent(self, event) -> None:  # noqa: N802 - Qt API
        # Qt creates the tab bars of tabified docks lazily, as children of the window
        super().childEvent(event)
        if event.added() and not getattr(self, "_tab_titles_pending", False):
            self._tab_titles_pending = True
            from PyQt6.QtCore import QTimer
            QTimer.singleShot(0, self._keep_tab_titles_whole)

    def _keep_tab_titles_whole(self) -> None:
        """Dock tabs show whole titles and scroll (arrows) when they do not fit, instead of
        eliding every title to a few letters at 1366 px."""
        self._tab_titles_pending = False
        # the docks' tab bars are the window's own children; the central widget's tab bar
        # (Landscape | CNN lab) keeps its style
        direct = Qt.FindChildOption.FindDirectChildrenOnly
        for bar in self.findChildren(QTabBar, options=direct):
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)
            bar.setExpanding(False)

    def _tab_changed(self, index: int) -> None:
        """On the CNN lab tab hide the 2D docks (controls, time series, measure, escapes);
        back on the landscape tab restore those that were shown."""
        if self.tabs.widget(index) is self.cnn_view:
            if not self._hidden_2d_docks:
                docks = [self.findChild(QDockWidget, name) for name in DOCKS_2D]
                self._hidden_2d_docks = [d for d in docks if d.isVisible()]
                for dock in self._hidden_2d_docks:
                    dock.hide()
        else:
            for dock in self._hidden_2d_docks:
                dock.show()
            if self._hidden_2d_docks:
                self.findChild(QDockWidget, "Time series").raise_()
            self._hidden_2d_docks = []

    def _dock(self, title: str, widget: QWidget, area, shown: str | None = None) -> QDockWidget:
        """A dock named ``title`` (its object name); ``shown`` a shorter title for its tab."""
        dock = QDockWidget(shown or title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_controls(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        buttons = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.toggled.connect(self.set_playing)
        step = QPushButton("Step")
        step.setToolTip("Advance one frame of steps (S)")
        step.clicked.connect(lambda: self.worker.submit("step", int(self.speed.value())))
        reset = QPushButton("Reset")
        reset.setToolTip("Restart from the initial cloud with the current parameters (R)")
        reset.clicked.connect(lambda: self.worker.submit("reset"))
        for b in (self.play_button, step, reset):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.schedule_view = ScheduleView()  # η, T, B against the step: shown for a schedule
        layout.addWidget(self.schedule_view)

        dyn_box = QGroupBox("Dynamics")
        form = QVBoxLayout(dyn_box)
        self.kind_combo = QComboBox()
        self.kind_combo.addItems(list(kind_names()))
        self.kind_combo.currentTextChanged.connect(self._kind_picked)
        row = QFormLayout()
        row.addRow("method", self.kind_combo)
        form.addLayout(row)
        self.sliders = {
            "lr": ValueSlider("learning rate η", 1e-5, 1.0, 0.01, log=True, decimals=6,
                              tooltip="step size η"),
            # up to 100: Müller–Brown's barriers are ≈ 40, its annealing starts at T = 30
            "temperature": ValueSlider("temperature T", 1e-3, 100.0, 0.1, log=True, zero=True,
                                       tooltip="Langevin temperature T (noise √(2ηT)ξ); "
                                               "leftmost = 0"),
            "batch_size": ValueSlider("batch size B", 1, 1024, 8, log=True, integer=True,
                                      tooltip="SGD minibatch size (≤ dataset size n)"),
            "momentum": ValueSlider("momentum β", 0.0, 0.99, 0.0, decimals=3,
                                    tooltip="heavy-ball v ← βv − ηg; w ← w + v"),
            "noise_scale": ValueSlider("SGD noise σ", 0.0, 20.0, 1.0, decimals=3,
                                       tooltip="scale of per-sample gradient noise"),
            "particles": ValueSlider("particles N", 10, 1_000_000, 1000, log=True, integer=True,
                                     tooltip="ensemble size; density image above 20 000"),
            **kind_parameter_sliders(),  # shown only for the kinds that use them
        }
        self.ghost_slider = ValueSlider("ghosts e", 0, 8, 0, integer=True,
                                        tooltip="ghost logits of the classifier (kind 'ghost'); "
                                                "a new e restarts the run from the same cloud")
        self.ghost_slider.value_changed.connect(self._ghosts_changed)
        form.addWidget(self.ghost_slider)
        for key, slider in self.sliders.items():
            slider.value_changed.connect(lambda v, k=key: self._set(
                k, int(v) if k in ("batch_size", "particles") else float(v)))
            form.addWidget(slider)
        self.speed = ValueSlider("steps / frame", 1, 20000, 20, log=True, integer=True,
                                 tooltip="how many steps the engine takes between frames")
        self.speed.value_changed.connect(lambda v: self.worker.submit("speed", int(v)))
        form.addWidget(self.speed)
        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("seed"))
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.valueChanged.connect(lambda s: self.worker.submit("seed", int(s)))
        seed_row.addWidget(self.seed_spin)
        form.addLayout(seed_row)
        self.t_eff_label = QLabel("T_eff = –")
        self.t_eff_label.setToolTip("T_eff = η·tr Cov(g)/(2d) + T, ÷(1 − β) with momentum")
        form.addWidget(self.t_eff_label)
        self.rung_row = QWidget()  # replica exchange only: which rung the cloud shows
        rung_layout = QHBoxLayout(self.rung_row)
        rung_layout.setContentsMargins(0, 0, 0, 0)
        rung_layout.addWidget(QLabel("replica shown"))
        self.rung_combo = QComboBox()
        self.rung_combo.setToolTip("the rung of the temperature ladder the cloud shows; the "
                                   "measure, escapes and series stay the lowest rung's")
        self.rung_combo.currentIndexChanged.connect(
            lambda k: self.worker.submit("rung", max(0, int(k))))
        rung_layout.addWidget(self.rung_combo, 1)
        self.rung_row.setVisible(False)
        form.addWidget(self.rung_row)
        layout.addWidget(dyn_box)

        probe_box = QGroupBox("Follow one particle")
        probe_layout = QVBoxLayout(probe_box)
        self.probe_label = QLabel("Click on the landscape to start a particle there: its "
                                  "path and loss are drawn in white.")
        self.probe_label.setWordWrap(True)
        self.probe_clear = QPushButton("Clear followed particle")
        self.probe_clear.setEnabled(False)
        self.probe_clear.clicked.connect(self.clear_probe)
        probe_layout.addWidget(self.probe_label)
        probe_layout.addWidget(self.probe_clear)
        layout.addWidget(probe_box)

        land_box = QGroupBox("Landscape")
        land_layout = QVBoxLayout(land_box)
        self.landscape_combo = QComboBox()
        self.landscape_combo.addItems(sorted(BUILTINS) + ["sine_classifier", "expression"])
        self.landscape_combo.activated.connect(self._landscape_picked)
        land_layout.addWidget(self.landscape_combo)
        self.param_box = QWidget()
        self.param_layout = QVBoxLayout(self.param_box)
        self.param_layout.setContentsMargins(0, 0, 0, 0)
        land_layout.addWidget(self.param_box)
        self.expr_edit = QLineEdit()
        self.expr_edit.setPlaceholderText("f(x, y), e.g. (x**2 - 1)**2 + 0.5*y**2 + 0.3*x")
        self.expr_edit.textChanged.connect(self.validate_expression)
        self.expr_edit.returnPressed.connect(self.apply_expression)
        self.expr_error = QLabel("")
        self.expr_error.setStyleSheet(ERROR_STYLE)
        self.expr_error.setWordWrap(True)
        apply = QPushButton("Apply expression")
        apply.clicked.connect(self.apply_expression)
        land_layout.addWidget(self.expr_edit)
        land_layout.addWidget(self.expr_error)
        land_layout.addWidget(apply)
        layout.addWidget(land_box)
        layout.addStretch(1)
        self.param_sliders: dict[str, ValueSlider] = {}
        return panel

    def _build_gallery(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        self.gallery = QListWidget()
        for path in bundled_presets():
            try:
                preset = load_any(path)
            except PresetError:
                continue
            prefix = "CNN lab · " if isinstance(preset, CnnPreset) else ""
            item = QListWidgetItem(prefix + preset.name)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            item.setToolTip(f"{path.name}: double-click to open")
            self.gallery.addItem(item)
        # long names wrap instead of hiding behind a horizontal scroll bar
        self.gallery.setWordWrap(True)
        self.gallery.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.gallery.currentItemChanged.connect(self._gallery_selected)
        self.gallery.itemDoubleClicked.connect(
            lambda item: self.open_preset(item.data(Qt.ItemDataRole.UserRole)))
        self.description = QTextBrowser()
        open_button = QPushButton("Open selected preset")
        open_button.clicked.connect(lambda: self.gallery.currentItem() and self.open_preset(
            self.gallery.currentItem().data(Qt.ItemDataRole.UserRole)))
        layout.addWidget(self.gallery, 2)
        layout.addWidget(self.description, 2)
        layout.addWidget(open_button)
        return panel

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open preset…", QKeySequence.StandardKey.Open,
                     self._open_dialog)
        self._action(file_menu, "&Save preset as…", QKeySequence.StandardKey.Save,
                     self._save_dialog)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._refresh_recent()
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        export = self.menuBar().addMenu("&Export")
        self._action(export, "Trajectory (.npz)…", "Ctrl+E",
                     lambda: self._export_dialog("NPZ (*.npz)", ".npz"))
        self._action(export, "Trajectory (.csv)…", None,
                     lambda: self._export_dialog("CSV (*.csv)", ".csv"))
        self._action(export, "Screenshot of the window (.png)…", "Ctrl+P",
                     lambda: self._screenshot_dialog(None))
        self._action(export, "Landscape view (.png / .svg)…", None,
                     lambda: self._screenshot_dialog(self.landscape_view))
        self._action(export, "Animation of the cloud (.gif)…", None, self._animation_dialog)
        self._action(export, "CNN experiment (.npz + .json + figures)…", None,
                     self._cnn_export_dialog)
        self._action(export, "CNN lab view (.png)…", None,
                     lambda: self._screenshot_dialog(self.cnn_view))
        run = self.menuBar().addMenu("&Run")
        self._action(run, "Play / pause", "Space", self.play_button.toggle)
        self._action(run, "Step", "S", lambda: self.worker.submit("step",
                                                                  int(self.speed.value())))
        self._action(run, "Reset", "R", lambda: self.worker.submit("reset"))
        view = self.menuBar().addMenu("&View")
        for dock in self.findChildren(QDockWidget):
            view.addAction(dock.toggleViewAction())

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    # -- user actions ----------------------------------------------------------------------------
    def _set(self, key: str, value) -> None:
        self.worker.submit("set", key, value)

    def follow_particle(self, x: float, y: float) -> None:
        """Start one particle at (x, y) with the run's dynamics, drawn with its path and its
        own loss curve (the engine runs it beside the ensemble)."""
        self.worker.submit("probe", float(x), float(y))
        self._probe_shown({"start": (x, y)})

    def clear_probe(self) -> None:
        self.worker.submit("probe_clear")
        self.landscape_view.set_probe(None)
        self._probe_shown(None)

    def _probe_shown(self, probe: dict | None) -> None:
        following = probe is not None
        if following == self.probe_clear.isEnabled():
            return
        self.probe_clear.setEnabled(following)
        self.probe_label.setText(
            "Following one particle (white): click elsewhere to restart it there."
            if following else "Click on the landscape to start a particle there: its path "
                              "and loss are drawn in white.")

    def set_playing(self, playing: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(playing)
        self.play_button.blockSignals(False)
        self.play_button.setText("Pause" if playing else "Play")
        self.worker.submit("play", playing)

    def open_preset(self, path: str | Path) -> bool:
        """Load a preset (2D or CNN lab); on error show it and keep the session untouched."""
        try:
            preset = load_any(path)
        except PresetError as exc:
            self._on_failed("open preset", str(exc))
            return False
        self._remember(str(path))
        if isinstance(preset, CnnPreset):
            return self.show_cnn_preset(preset)
        self.tabs.setCurrentWidget(self.landscape_view)
        from .comparison import open_side_by_side
        self.side_by_side = open_side_by_side(self, preset, self.side_by_side)
        if self.side_by_side is not None:  # [[compare]]: it loads the first configuration
            return True
        self.worker.submit("load", preset)
        return True

    def show_cnn_preset(self, preset: CnnPreset) -> bool:
        """Bring the CNN lab to the front with this experiment in its controls (not training;
        refused while one trains)."""
        if self.cnn_worker.running.is_set():
            self._on_failed("open preset", "a CNN experiment is training: cancel it first")
            return False
        self.cnn_view.set_preset(preset)
        self.tabs.setCurrentWidget(self.cnn_view)
        self._select_in_gallery(preset.source)
        self.error_banner.setText("")
        return True

    # -- drag and drop -------------------------------------------------------------------------
    @staticmethod
    def dropped_preset(mime) -> str | None:
        """The first local ``.toml`` file a drag carries, or None (not a drag for us)."""
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".toml"):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.dropped_preset(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.dropped_preset(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        path = self.dropped_preset(event.mimeData())
        if path is None:
            super().dropEvent(event)
            return
        event.acceptProposedAction()
        self.open_preset(path)  # a bad file: the error in the status bar, the session intact

    # -- CNN lab -------------------------------------------------------------------------------
    def start_cnn(self, preset: CnnPreset, device: str) -> bool:
        """Train the CNN experiment in the CNN worker; pauses the 2D run to leave it the CPU."""
        if self.cnn_worker.running.is_set():
            return False
        self.set_playing(False)
        self.cnn_summary = None
        self.cnn_view.set_running(True)
        self.cnn_worker.running.set()      # before the queued start, so a second click waits
        self._cnn_start.emit(preset, device)
        return True

    def cancel_cnn(self) -> None:
        self.cnn_worker.cancel()

    def _show_cnn_frame(self, frame) -> None:
        try:
            self.cnn_view.show_frame(frame)
        finally:
            self.cnn_worker.frame_consumed()

    def _cnn_finished(self, summary: dict) -> None:
        from engine.cnn.report import text_report
        self.cnn_summary = summary
        self.cnn_view.show_report(text_report(summary), self.cnn_worker.cancelled)

    def _cnn_failed(self, what: str, message: str) -> None:
        self.cnn_view.set_running(False)
        # in the tab's report too (it wraps): the banner alone is easy to miss on this tab
        self.cnn_view.status.setText("failed (see below)")
        self.cnn_view.report.setPlainText(f"Failed — {what}: {message}")
        self._on_failed(what, message)

    def export_cnn(self, path: str | Path) -> bool:
        """NPZ of the last CNN experiment, its JSON summary and PNG figures (atomic writes)."""
        from engine.cnn.api import experiment_arrays
        from engine.cnn.report import write_figures
        from engine.export import write_json, write_npz
        experiment = self.cnn_worker.experiment
        if self.cnn_summary is None or experiment is None or self.cnn_worker.running.is_set():
            self._on_failed("CNN export", "no finished CNN experiment to export")
            return False
        path = Path(path).with_suffix(".npz")
        try:
            write_npz(path, experiment_arrays(experiment, self.cnn_summary))
            write_json(path.with_suffix(".json"), self.cnn_summary)
            write_figures(experiment.metrics(), self.cnn_summary, path.with_suffix(""))
        except (OSError, ValueError) as exc:
            self._on_failed("CNN export", f"{path}: {exc}")
            return False
        self.statusBar().showMessage(f"wrote {path} (+ .json, figures)", 5000)
        return True

    def _cnn_export_dialog(self) -> None:
        preset = self.cnn_view.preset
        stem = Path(preset.source).stem if preset is not None and preset.source else "cnn"
        folder = self.settings.value("export_folder", "") or os.getcwd()
        path, _ = QFileDialog.getSaveFileName(self, "Export CNN experiment",
                                              str(Path(folder) / f"{stem}.npz"), "NPZ (*.npz)")
        if path:
            self._remember_folder(path)
            self.export_cnn(path)

    def save_preset(self, path: str | Path) -> None:
        try:
            save(self.preset if self.side_by_side is None  # [[compare]]: all configurations
                 else self.side_by_side.preset_now(self.preset), path)
        except OSError as exc:
            self._on_failed("save preset", f"{path}: {exc}")
            return
        self._remember(str(path))
        self.statusBar().showMessage(f"saved {path}", 5000)

    def export_trajectory(self, path: str | Path, float32: bool = False, every: int = 1) -> None:
        """NPZ or CSV of the run's recorded frames with its JSON sidecar, written by the engine
        process (``every``: every k-th frame; ``float32``: single precision)."""
        self.worker.submit("export", str(path), bool(float32), max(1, int(every)))

    def proposed_name(self, suffix: str, what: str = "") -> str:
        """A file name for a save dialog: ``<preset>_<step><what><suffix>`` in the folder of
        the last export (or the working folder)."""
        source = getattr(self.preset, "source", "") or ""
        stem = Path(source).stem if source.endswith(".toml") else re.sub(
            r"[^A-Za-z0-9]+", "_", self.preset.name).strip("_").lower() or "ergoscope"
        state = self.worker.state
        step = state.step if state is not None else 0
        folder = self.settings.value("export_folder", "") or os.getcwd()
        return str(Path(folder) / f"{stem}_{step}{what}{suffix}")

    def _remember_folder(self, path: str) -> None:
        self.settings.setValue("export_folder", str(Path(path).parent))

    def save_screenshot(self, path: str | Path, widget: QWidget | None = None) -> bool:
        """PNG of the window (or one view); SVG for a plot view. Written atomically."""
        path = Path(path)
        target = widget or self
        try:
            directory = path.parent if str(path.parent) else Path(".")
            if not directory.is_dir():
                raise OSError(f"directory {directory} does not exist")
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix,
                                       dir=directory)
            os.close(fd)
            if path.suffix.lower() == ".svg":
                _render_svg(target, tmp)
            elif not target.grab().save(tmp, "PNG"):
                raise OSError("could not encode PNG")
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)
        except OSError as exc:
            if "tmp" in locals() and os.path.exists(tmp):
                os.unlink(tmp)
            self._on_failed("screenshot", f"{path}: {exc}")
            return False
        self.statusBar().showMessage(f"wrote {path}", 5000)
        return True

    def record_animation(self, path: str | Path, frames: int = 60, fps: int = 15) -> None:
        """Capture the landscape view on the next ``frames`` drawn frames (the run plays), then
        encode a GIF in a background thread and write it atomically.  Progress goes to the
        status bar; ``animation_done`` (path or error text) is set when finished."""
        self._animation = {"path": Path(path), "frames": [], "target": int(frames),
                           "fps": int(fps)}
        self.animation_done: str | None = None
        self.set_playing(True)

    def _capture_animation_frame(self) -> None:
        job = self._animation
        image = self.landscape_view.plot.grab().toImage().convertToFormat(
            QImage.Format.Format_RGB888)
        width, height = image.width(), image.height()
        data = bytes(image.constBits().asarray(image.sizeInBytes()))
        job["frames"].append((width, height, image.bytesPerLine(), data))
        self.statusBar().showMessage(
            f"recording animation {len(job['frames'])}/{job['target']}", 2000)
        if len(job["frames"]) >= job["target"]:
            self._animation = None
            threading.Thread(target=self._encode_animation, args=(job,), daemon=True).start()

    def _encode_animation(self, job: dict) -> None:
        from PIL import Image
        path = job["path"]
        tmp = None
        try:
            images = [Image.frombuffer("RGB", (w, h), data, "raw", "RGB", stride, 1)
                      for w, h, stride, data in job["frames"]]
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".gif", dir=path.parent)
            os.close(fd)
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=int(1000 / job["fps"]), loop=0)
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)
            self.animation_done = str(path)
        except (OSError, ValueError) as exc:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            self.animation_done = f"error: {path}: {exc}"

    def validate_expression(self, text: str) -> bool:
        names = tuple(self.preset.landscape.params) if self.preset.landscape.expr else ()
        try:
            parse(text, names)
        except ExpressionError as exc:
            pointer = ""
            if exc.position >= 0:
                pointer = f"\n{text}\n{' ' * exc.position}^"
            self.expr_error.setStyleSheet(ERROR_STYLE)
            self.expr_error.setText(f"{exc}{pointer}")
            return False
        self.expr_error.setStyleSheet(OK_STYLE)
        self.expr_error.setText("✓ valid")
        return True

    def apply_expression(self) -> None:
        text = self.expr_edit.text()
        if not self.validate_expression(text):
            return
        params = dict(self.preset.landscape.params) if self.preset.landscape.expr else {}
        from dataclasses import replace
        landscape = replace(self.preset.landscape, builtin=None, expr=text, params=params)
        self._load_on_landscape(landscape)

    def _load_on_landscape(self, landscape) -> None:
        """Load the current preset on another landscape, validated like a file.  Ghost runs
        need the classifier: elsewhere they become plain SGD.  Minibatches of the classifier's
        data have no momentum, walls or analytic noise model: those settings go back to their
        defaults there."""
        from dataclasses import replace
        from engine.presets import DynamicsSpec, preset_from_dict, to_dict
        data = to_dict(replace(self.preset, landscape=landscape))
        dynamics = data["dynamics"]
        classifier = landscape.builtin == "sine_classifier"
        if dynamics["kind"] == "ghost" and not classifier:
            dynamics["kind"] = "sgd"
        if classifier and dynamics["kind"] in ("sgd", "ghost"):
            defaults = to_dict(replace(self.preset, dynamics=DynamicsSpec()))["dynamics"]
            for key in ("noise", "noise_scale", "noise_cov", "momentum"):
                dynamics[key] = defaults[key]
            if data["landscape"]["boundary"] == "wall":
                data["landscape"]["boundary"] = "reflect"
        try:
            preset = preset_from_dict(data, self.preset.source)
        except PresetError as exc:
            self._on_failed("landscape", str(exc))
            return
        self.worker.submit("load", preset)

    def _ghosts_changed(self, value: float) -> None:
        from engine.presets import apply_sets
        try:
            preset = apply_sets(self.preset, [f"dynamics.ghosts={int(value)}"])
        except PresetError as exc:
            self._on_failed("ghosts", str(exc))
            return
        self.worker.submit("load", preset)

    def _landscape_picked(self, index: int) -> None:
        name = self.landscape_combo.itemText(index)
        if name == "expression":
            self.expr_edit.setFocus()
            return
        from dataclasses import replace
        landscape = replace(self.preset.landscape, builtin=name, expr=None, params={},
                            bounds=None)
        self._load_on_landscape(landscape)

    # -- dialogs ----------------------------------------------------------------------------------
    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open preset", str(PRESET_DIR),
                                              "Presets (*.toml)")
        if path:
            self.open_preset(path)

    def _save_dialog(self) -> None:
        source = getattr(self.preset, "source", "") or ""
        name = Path(source).name if source.endswith(".toml") else "my_preset.toml"
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", str(PRESET_DIR / name),
                                              "Presets (*.toml)")
        if path:
            self.save_preset(path if path.endswith(".toml") else path + ".toml")

    def _export_dialog(self, filt: str, suffix: str) -> None:
        state = self.worker.state
        dialog = ExportDialog(self, self.proposed_name(suffix), filt, suffix,
                              state.particles if state is not None else 0)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        path, float32, every = dialog.choice()
        if path:
            self._remember_folder(path)
            self.export_trajectory(path, float32=float32, every=every)

    def _animation_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save animation",
                                              self.proposed_name(".gif"), "GIF (*.gif)")
        if path:
            if not Path(path).parent.is_dir():
                self._on_failed("animation", f"{path}: directory does not exist")
                return
            self.record_animation(path if path.endswith(".gif") else path + ".gif")

    def _screenshot_dialog(self, widget) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot",
                                              self.proposed_name(".png"),
                                              "PNG (*.png);;SVG (*.svg)")
        if path:
            self.save_screenshot(path, widget)

    def _remember(self, path: str) -> None:
        recent = [p for p in (self.settings.value("recent", []) or []) if p != path]
        self.settings.setValue("recent", [path] + recent[:MAX_RECENT - 1])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.value("recent", []) or []:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_preset(p))

    # -- worker signals ---------------------------------------------------------------------------
    def _select_in_gallery(self, path: str | Path) -> None:
        """Highlight the open preset in the gallery (its description shows below), or nothing
        when it is not a bundled one."""
        try:
            resolved = Path(path).resolve()
        except (OSError, ValueError):
            return
        for row in range(self.gallery.count()):
            item = self.gallery.item(row)
            if Path(item.data(Qt.ItemDataRole.UserRole)).resolve() == resolved:
                self.gallery.setCurrentItem(item)
                self.gallery.scrollToItem(item)
                return
        self.gallery.clearSelection()

    def _gallery_selected(self, item) -> None:
        if item is None:
            return
        try:
            preset = load_any(item.data(Qt.ItemDataRole.UserRole))
        except PresetError as exc:
            self.description.setPlainText(str(exc))
            return
        self.description.setPlainText(f"{preset.name}\n\n{reflowed(preset.description)}")

    @property
    def preset(self) -> Preset:
        """The preset the engine runs (:attr:`presets`, its one copy)."""
        return self.presets.preset

    def _on_preset_changed(self, preset: Preset, new_run: bool) -> None:
        if new_run:
            self._on_loaded(preset)
        else:  # a live T scales the replica ladder the selector lists
            self._show_rungs(preset)

    def _on_loaded(self, preset: Preset) -> None:
        self.error_banner.setText("")
        self.setWindowTitle(f"ErgoScope — {preset.name}")
        if preset.source and self.tabs.currentWidget() is not self.cnn_view:
            self._select_in_gallery(preset.source)  # (a CNN preset opened meanwhile keeps it)
        self._show_dynamics(preset)
        self.seed_spin.blockSignals(True)
        self.seed_spin.setValue(min(preset.ensemble.seed, 2**31 - 1))
        self.seed_spin.blockSignals(False)
        self.landscape_combo.setCurrentText(preset.landscape.builtin or "expression")
        # the box shows this landscape's expression, or nothing (its placeholder) for a built-in
        self.expr_edit.blockSignals(True)
        self.expr_edit.setText(preset.landscape.expr or "")
        self.expr_edit.blockSignals(False)
        self.expr_error.setText("")
        self._probe_shown(None)
        self._rebuild_param_sliders()

    def _rebuild_param_sliders(self) -> None:
        for slider in self.param_sliders.values():
            slider.setParent(None)
            slider.deleteLater()
        self.param_sliders = {}
        state = self.worker.state
        if state is None:
            return
        for name, value in zip(state.param_names, state.params):
            if name in state.structural:  # defines the dataset: changed by editing the preset
                continue
            span = max(abs(value), 1.0) * 2
            low = 1e-3 if name.startswith(("w", "s")) and value > 0 else value - span
            slider = ValueSlider(name, low, value + span, float(value), decimals=4)
            slider.value_changed.connect(
                lambda v, n=name: self._set("landscape_params", {n: float(v)}))
            self.param_layout.addWidget(slider)
            self.param_sliders[name] = slider

    def _on_busy(self, message: str) -> None:
        self._busy_shown = True
        self.statusBar().showMessage(message)
        # also over the landscape, which stays empty until the first frame (compiling…)
        self.landscape_view.plot.setTitle(message.split(":")[-1].strip() or message,
                                          color="#e0c050")

    def _show_dynamics(self, preset: Preset) -> None:
        """Put the run's method and dynamics parameters in the controls (no signals)."""
        d = preset.dynamics
        self.kind_combo.blockSignals(True)
        self.kind_combo.setCurrentText(d.kind)
        self.kind_combo.blockSignals(False)
        for key, value in (("lr", d.lr), ("temperature", d.temperature),
                           ("batch_size", d.batch_size), ("momentum", d.momentum),
                           ("noise_scale", d.noise_scale),
                           ("particles", preset.ensemble.particles),
                           *((k, getattr(d, k)) for k in KIND_PARAMETERS)):
            self.sliders[key].set_value(value)
        self.ghost_slider.set_value(d.ghosts)
        self._show_rungs(preset)
        self._enable_for_kind(d.kind, preset.landscape.builtin == "sine_classifier")

    def _show_rungs(self, preset: Preset) -> None:
        """The replica selector: one entry per rung with its temperature, the choice kept while
        the ladder has it (the engine is told the choice, which it keeps across loads)."""
        replicas = preset.ensemble.replicas
        ladder = [] if replicas is None else replicas.ladder(preset.dynamics.temperature)
        index = self.rung_combo.currentIndex()
        index = index if 0 <= index < len(ladder) else 0
        self.rung_combo.blockSignals(True)
        self.rung_combo.clear()
        self.rung_combo.addItems([f"{k}: T = {t:.4g}" + (" (target)" if k == 0 else "")
                                  for k, t in enumerate(ladder)])
        self.rung_combo.setCurrentIndex(index)
        self.rung_combo.blockSignals(False)
        self.rung_row.setVisible(replicas is not None)
        self.worker.submit("rung", index)

    def _kind_picked(self, kind: str) -> None:
        self._enable_for_kind(kind, self.preset.landscape.builtin == "sine_classifier")
        self._set("kind", kind)

    def _enable_for_kind(self, kind: str, classifier: bool) -> None:
        """Enable the controls the method uses, disable the others (with the reason)."""
        applies = applicable_controls(kind, classifier)
        for key, widget in list(self.sliders.items()) + [("ghosts", self.ghost_slider)]:
            widget.setEnabled(applies.get(key, True))
        self.ghost_slider.setVisible(classifier)  # ghost logits exist on the classifier only
        for key in KIND_PARAMETERS:  # a kind's own parameters: hidden, not greyed, elsewhere
            self.sliders[key].setVisible(applies[key])

    def _on_failed(self, what: str, message: str) -> None:
        self._busy_shown = False
        self.landscape_view.plot.setTitle(None)
        self.last_error = f"{what} failed: {message}"
        self.error_banner.setText(self.last_error)
        self.statusBar().showMessage(self.last_error, 10000)
        if what == "parameter":
            # a refused change changed nothing: the controls show what the run uses
            self._show_dynamics(self.preset)

    def show_frame(self, bundle: FrameBundle) -> None:
        if self._busy_shown:  # the pause announced by the worker is over
            self._busy_shown = False
            self.statusBar().clearMessage()
            self.landscape_view.plot.setTitle(None)
        try:
            if (bundle.state.generation != self._generation
                    or bundle.structure is not self._structure):
                self._generation = bundle.state.generation
                self.landscape_view.set_structure(bundle.structure, bundle.bounds)
            self._structure = bundle.structure
            self.landscape_view.show_frame(bundle)
            self.landscape_view.set_probe(bundle.probe)
            self._probe_shown(bundle.probe)
            if self._animation is not None:
                self._capture_animation_frame()
            self.series_view.show_frame(bundle)
            self.schedule_view.show_frame(self.preset, bundle.frame.step)
            if self.measure_view.isVisible():
                self.measure_view.show_frame(bundle)
            if self.escapes_view.isVisible():
                self.escapes_view.show_frame(bundle)
            if self.transitions_view.isVisible():
                self.transitions_view.show_frame(bundle)
            frame = bundle.frame
            now = time.perf_counter()
            self._fps_times = [t for t in self._fps_times if now - t < 1.0] + [now]
            self.frames_drawn += 1
            if now - self._status_at > 0.25 or not bundle.state.playing:
                # text changes relayout the window: at most 4 Hz
                self._status_at = now
                self.t_eff_label.setText(f"T_eff = {frame.effective_temperature:.4g}")
                self.status_rates.setText(
                    f"step {frame.step:,} · N = {bundle.state.particles:,} · frozen "
                    f"{frame.n_frozen} · {bundle.steps_per_second:,.0f} steps/s · "
                    f"{len(self._fps_times)} fps")
        finally:
            self.worker.frame_consumed()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.shutdown()
        super().closeEvent(event)

    def dispose(self) -> None:
        """Stop the worker, close and schedule deletion (scripts opening many windows)."""
        self.close()  # closeEvent stops the worker thread
        self.deleteLater()

    def shutdown(self) -> None:
        if self.side_by_side is not None:
            self.side_by_side.close()
        self.worker.stop()
        self.cnn_worker.cancel()
        self.cnn_thread.quit()
        self.cnn_thread.wait(30000)
