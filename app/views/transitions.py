"""Transitions view: the committor between two minima's core sets with its q = 0.1 … 0.9
isolines and the q = ½ transition-state line, the reactive current as arrows, the minimum-energy
path and its energy profile, and the mean transition time from TPT, Eyring–Kramers and the
running cloud side by side (``engine.paths``; computed off the GUI thread)."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, QTimer
from PyQt6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QPushButton, QSpinBox, QSplitter,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

ROWS = ("TPT (diffusion)", "TPT (checked once a step)", "Eyring–Kramers", "measured (this run)")
ISOLINES = tuple(np.round(np.linspace(0.1, 0.9, 9), 2))
ARROWS = 20  # current arrows per side at most
CHECK_PARTICLES, CHECK_STEPS, CHECK_CELLS = 300, 4000, 16  # the empirical-committor check


def arrow_segments(x, y, current, count: int = ARROWS, scale: float = 0.8):
    """Line segments ``(2K, 2)`` (pairs: tail, head) of the reactive current on a sparse grid,
    ``scale`` × the spacing × √(|J|/max|J|) long; weak arrows (< 2 % of the largest) left out."""
    sx, sy = max(1, len(x) // count), max(1, len(y) // count)
    X, Y = np.meshgrid(x[::sx], y[::sy])
    J = current[::sy, ::sx]
    norm = np.hypot(J[..., 0], J[..., 1])
    top = float(norm.max()) if norm.size else 0.0
    if not top > 0:
        return np.zeros((0, 2))
    keep = norm > 0.02 * top
    length = scale * min(x[sx] - x[0] if len(x) > sx else 1.0,
                         y[sy] - y[0] if len(y) > sy else 1.0)
    # length ∝ √|J| (the current spans decades between the saddle and the wells)
    factor = length / np.sqrt(top) / np.sqrt(norm[keep])
    dx = J[..., 0][keep] * factor
    dy = J[..., 1][keep] * factor
    tails = np.column_stack([X[keep], Y[keep]])
    heads = tails + np.column_stack([dx, dy])
    return np.stack([tails, heads], axis=1).reshape(-1, 2)


def _key(preset):
    """What the report depends on: the landscape and the equivalent Langevin T and η."""
    from engine.simulation import equivalent_langevin
    return (repr(preset.landscape), equivalent_langevin(preset.dynamics))


class TransitionsView(QWidget):
    def __init__(self, parent=None, grid: int = 128):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.source = QSpinBox()
        self.target = QSpinBox()
        for label, box, value in (("from", self.source, 0), ("to", self.target, 1)):
            box.setRange(0, 1)
            box.setValue(value)
            box.setToolTip("minimum index, as `python -m engine info` lists them")
            row.addWidget(QLabel(label))
            row.addWidget(box)
        self.grid = QSpinBox()
        self.grid.setRange(32, 512)
        self.grid.setSingleStep(32)
        self.grid.setValue(grid)
        self.grid.setToolTip("committor grid: N × N cells over the bounds")
        row.addWidget(QLabel("grid"))
        row.addWidget(self.grid)
        self.compute_button = QPushButton("Compute")
        self.compute_button.clicked.connect(self.compute)
        row.addWidget(self.compute_button)
        self.check_button = QPushButton("Check with a cloud")
        self.check_button.setToolTip(
            f"run {CHECK_PARTICLES} particles of this preset for {CHECK_STEPS} steps, recording "
            "every step, and compare their committor per cell with the exact one")
        self.check_button.clicked.connect(self.check)
        row.addWidget(self.check_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.check_label = QLabel("")
        self.check_label.setWordWrap(True)
        layout.addWidget(self.check_label)

        splitter = QSplitter(Qt.Orientation.Vertical)
        plots = pg.GraphicsLayoutWidget()
        self.map_plot = plots.addPlot(row=0, col=0, title="committor q: isolines 0.1 … 0.9, "
                                                          "q = ½ bold; reactive current")
        self.map_plot.setAspectLocked(True)
        self.image = pg.ImageItem()
        self.image.setColorMap(pg.colormap.get("CET-D1"))
        self.map_plot.addItem(self.image)
        self.isolines = []
        for level in ISOLINES:
            pen = pg.mkPen("k", width=3 if level == 0.5 else 1)
            curve = pg.IsocurveItem(level=level, pen=pen)
            curve.setParentItem(self.image)
            self.isolines.append(curve)
        self.arrows = pg.PlotDataItem(pen=pg.mkPen("w", width=1.5), connect="pairs")
        self.map_plot.addItem(self.arrows)
        self.path = self.map_plot.plot(pen=pg.mkPen("#ffd54f", width=3))
        self.saddle = pg.ScatterPlotItem(symbol="star", size=16, brush="#ffd54f", pen="k")
        self.map_plot.addItem(self.saddle)
        self.profile_plot = plots.addPlot(row=1, col=0, title="f along the path")
        self.profile_plot.setLabel("bottom", "arc length")
        self.profile = self.profile_plot.plot(pen=pg.mkPen("#4fc3f7", width=2))
        plots.ci.layout.setRowStretchFactor(0, 3)
        plots.ci.layout.setRowStretchFactor(1, 1)
        splitter.addWidget(plots)
        self.table = QTableWidget(len(ROWS), 2)
        self.table.setHorizontalHeaderLabels(["mean time\n(steps)", "mean time\n(η·steps)"])
        self.table.setVerticalHeaderLabels(list(ROWS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout.addWidget(splitter, 1)

        self.preset = None
        self.presets = None  # asked for the run's preset at each frame, when set
        self.check_result: dict | None = None
        self.report: dict | None = None
        self.arrays: dict | None = None
        self._shown_key = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transitions")
        self._future: Future | None = None
        self._pending = False
        self._poll = QTimer(self)
        self._poll.setInterval(50)
        self._poll.timeout.connect(self._collect)

    # -- inputs ------------------------------------------------------------------------------
    def set_preset(self, preset, compute: bool = True) -> None:
        """Show the transitions of ``preset`` (computed again only when its landscape, T or η
        changed)."""
        key = _key(preset)
        self.preset = preset
        if key == self._shown_key:
            return
        self._shown_key = key
        if compute:
            self.compute()

    def show_frame(self, bundle) -> None:
        if bundle.structure is not None:
            self.set_minima(len(bundle.structure.minima))
        if self.presets is not None:  # the window's app.preset_controller.PresetController
            self.set_preset(self.presets.preset)
        if bundle.escapes is not None and self.report is not None:
            self._show_measured(bundle.escapes["summary"].get("transitions", []))

    # -- computation -------------------------------------------------------------------------
    def compute(self) -> None:
        if self.preset is None:
            return
        if self._future is not None and not self._future.done():
            self._pending = True  # once more when this one is done, with the latest settings
            return
        from engine.paths.report import transition_report
        source, target, grid = self.source.value(), self.target.value(), self.grid.value()
        if source == target:
            target = 1 if source == 0 else 0
        self.status.setText(f"computing {source} → {target} on {grid}² cells …")
        self._future = self._pool.submit(transition_report, self.preset, source, target, grid)
        self._poll.start()

    def busy(self) -> bool:
        return self._future is not None and not self._future.done()

    def check(self) -> None:
        """The empirical committor of a short recorded run against the exact one
        (:func:`engine.paths.cloud.committor_check`), reported under the status line."""
        if self.preset is None or self.report is None or self.busy():
            return
        from engine.paths.cloud import committor_check
        self.check_label.setText(f"checking with {CHECK_PARTICLES} particles × {CHECK_STEPS} "
                                 "steps …")
        self._future = self._pool.submit(committor_check, self.preset, self.report["from"],
                                         self.report["to"], CHECK_PARTICLES, CHECK_STEPS,
                                         CHECK_CELLS)
        self._poll.start()

    def _collect(self) -> None:
        if self._future is None or not self._future.done():
            return
        self._poll.stop()
        future, self._future = self._future, None
        try:
            result = future.result()
        except Exception as exc:  # a landscape without two minima, T = 0, …: say so
            self.report = self.arrays = None
            self.status.setText(f"no transitions: {exc}")
        else:
            if isinstance(result, dict):
                self._show_check(result)
            else:
                self._draw(*result)
        if self._pending:
            self._pending = False
            self.compute()

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self, report: dict, arrays: dict) -> None:
        self.report, self.arrays = report, arrays
        x, y, q = arrays["x"], arrays["y"], arrays["committor"]
        hx, hy = x[1] - x[0], y[1] - y[0]
        shown = np.nan_to_num(q, nan=0.5).T  # ImageItem: first axis is x
        self.image.setImage(shown, autoLevels=False, levels=(0.0, 1.0))
        self.image.setRect(QRectF(x[0] - hx / 2, y[0] - hy / 2, hx * len(x), hy * len(y)))
        for curve in self.isolines:
            curve.setData(shown)
        segments = arrow_segments(x, y, arrays["current"])
        self.arrows.setData(segments[:, 0], segments[:, 1])
        path = np.asarray(report["path"])
        self.path.setData(path[:, 0], path[:, 1])
        top = report["highest"]
        self.saddle.setData([top["x"]], [top["y"]])
        self.profile.setData(report["arc_length"], report["profile"])
        rates = report["rates"]
        lr = report["lr"]
        entries = [rates["tpt"], rates["tpt"].get("at_step"), rates["kramers"]]
        for r, entry in enumerate(entries):
            time = entry.get("mfpt_time") if entry else None
            self._set_row(r, time, lr)
        self._set_row(3, None, lr)
        saddle = report.get("saddle")
        self.status.setText(
            f"{report['from']} → {report['to']} at T = {report['temperature']:.4g}: highest "
            f"point f = {top['f']:.6g} at ({top['x']:.4f}, {top['y']:.4f})"
            + (f", {saddle['distance']:.1e} from the saddle of the structure analysis"
               if saddle else ""))

    def _show_check(self, check: dict) -> None:
        self.check_result = check
        if not check["cells_compared"]:
            self.check_label.setText("empirical committor: no cell had enough excursions")
            return
        verdict = ("consistent" if check["min_p"] > check["bonferroni_level"]
                   else "NOT consistent")
        self.check_label.setText(
            f"empirical vs exact committor ({check['particles']} particles × {check['steps']} "
            f"steps, {check['cells_compared']} cells, {check['excursions']:,} excursions): "
            f"max |q̂ − q| = {check['max_abs_error']:.3f}, RMS z = {check['rms_z']:.2f}, "
            f"smallest p = {check['min_p']:.2g} — {verdict} at 1 % (Bonferroni)")

    def _set_row(self, row: int, time: float | None, lr: float, note: str = "") -> None:
        cells = ("–", "–") if time is None else (f"{time / lr:,.0f}{note}", f"{time:.4g}")
        for c, text in enumerate(cells):
            self.table.setItem(row, c, QTableWidgetItem(text))

    def _show_measured(self, transitions: list[dict]) -> None:
        pair = next((p for p in transitions if p["from"] == self.report["from"]
                     and p["to"] == self.report["to"]), None)
        if pair is None:
            self._set_row(3, None, self.report["lr"])
            return
        self._set_row(3, pair["mfpt_steps"] * self.report["lr"], self.report["lr"],
                      f" ({pair['transitions']})")

    def set_minima(self, count: int) -> None:
        """Let the spin boxes reach every minimum of the landscape."""
        for box in (self.source, self.target):
            box.setRange(0, max(count - 1, 1))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)
