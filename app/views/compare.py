"""Side-by-side view: the ensemble series of every ``[[compare]]`` configuration in its own
colour (loss, gradient norm, the Lyapunov estimates, T_eff, the occupation of each basin) and
one escape table with a block of rows per configuration.  It draws what the engines computed;
:mod:`app.comparison` feeds it each configuration's frames."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (QHeaderView, QLabel, QSplitter, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)

from ..engine_loop import FrameBundle
from .curves import SteadyAxes, draw_thin, finite_bounds

# configuration 0 keeps the landscape view's own cloud colour; the others stand out on viridis
COLOURS = ((255, 90, 30), (255, 255, 255), (255, 64, 255), (0, 229, 255))
# (axis label, series key, dashed second key or None, tooltip): stacked, the step axis shared
PLOTS = (("loss f", "loss_mean", None, "ensemble mean of the loss"),
         ("‖∇f‖", "grad_norm_mean", None, "ensemble mean of the gradient norm"),
         ("Lyapunov", "tangent_lyapunov_mean", "lyapunov_mean",
          "solid: tangent-vector exponent; dashed: running estimate γ̂ (ensemble means)"),
         ("T_eff", "effective_temperature", None, "effective temperature"),
         ("basin 0", "occupation_0", "occupation_1",
          "occupation of basin 0 (solid) and basin 1 (dashed)"))
DARK = "background: #101010;"  # the colours (white among them) read on a dark backing
COLUMNS = ["run", "from → to", "events", "MFPT\n(steps)", "95 % CI\n(steps)",
           "Kramers\n(steps)", "ratio"]


def escape_rows(label: str, summary: dict | None) -> list[list[str]]:
    """The table's rows of one configuration: one per basin pair seen, or one saying none
    was."""
    pairs = (summary or {}).get("transitions") or []
    if not pairs:
        return [[label, "–", "0", "–", "–", "–", "–"]]
    rows = []
    for pair in pairs:
        kramers = pair.get("kramers_mfpt_steps")
        low, high = pair["mfpt_steps_ci95"]
        rows.append([label, f"{pair['from']} → {pair['to']}", str(pair["transitions"]),
                     f"{pair['mfpt_steps']:,.0f}", f"[{low:,.0f}, {high:,.0f}]",
                     f"{kramers:,.0f}" if kramers else "–",
                     f"{pair['mfpt_steps'] / kramers:.2f}" if kramers else "–"])
    return rows


class SideBySideView(QWidget):
    """Series and escapes of ``labels`` (2 to 4 configurations), coloured as :data:`COLOURS`."""

    def __init__(self, labels: list[str], parent=None):
        super().__init__(parent)
        self.labels = list(labels)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.status = []
        for k, label in enumerate(self.labels):
            line = QLabel(f"■ {k + 1}  {label}")
            line.setStyleSheet(f"color: rgb{COLOURS[k]}; font-weight: bold; {DARK} "
                               "padding: 1px 4px;")
            line.setWordWrap(True)
            line.setToolTip("a configuration, its step and T_eff (the escape table's run "
                            "column gives its number)")
            layout.addWidget(line)
            self.status.append(line)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.plots = pg.GraphicsLayoutWidget()
        self.plot_items = []
        self.curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        for row, (label, key, dashed, tooltip) in enumerate(PLOTS):
            plot = self.plots.addPlot(row=row, col=0)
            plot.setLabel("left", label)
            plot.getAxis("left").setToolTip(tooltip)
            plot.getAxis("left").setWidth(58)  # the plots' left edges line up
            plot.getAxis("left").enableAutoSIPrefix(False)  # "(x0.001)" overran the label
            plot.showGrid(x=True, y=True, alpha=0.15)
            if row:
                plot.setXLink(self.plot_items[0])
            if row == len(PLOTS) - 1:
                plot.setLabel("bottom", "step")
            else:
                plot.getAxis("bottom").setStyle(showValues=False)
            for k, label in enumerate(self.labels):
                self.curves[(k, key)] = plot.plot(pen=pg.mkPen(COLOURS[k], width=2))
                if dashed:
                    self.curves[(k, dashed)] = plot.plot(pen=pg.mkPen(
                        COLOURS[k], width=1, style=Qt.PenStyle.DashLine))
            draw_thin(plot)
            self.plot_items.append(plot)
        self.axes = SteadyAxes(self.plot_items)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("each configuration's measured mean first-passage times between "
                              "core sets beside the Eyring–Kramers time at its equivalent "
                              "Langevin temperature")
        splitter.addWidget(self.plots)
        splitter.addWidget(self.table)
        splitter.setSizes([520, 180])
        layout.addWidget(splitter, 1)
        self.series: list[dict | None] = [None] * len(self.labels)
        self.escapes: list[dict | None] = [None] * len(self.labels)

    def show_frame(self, index: int, bundle: FrameBundle) -> None:
        """Configuration ``index``'s frame: its status line always, its series and escape
        rows when the frame brings them (a few times a second)."""
        frame = bundle.frame
        frozen = f", {frame.n_frozen} frozen" if frame.n_frozen else ""
        self.status[index].setText(f"■ {index + 1}  {self.labels[index]}: step {frame.step:,}, "
                                   f"T_eff {frame.effective_temperature:.3g}{frozen}")
        if bundle.series is not None:
            self.series[index] = bundle.series
            self._draw_series()
        if bundle.escapes is not None:
            self.escapes[index] = bundle.escapes["summary"]
            self._fill_table()

    def _draw_series(self) -> None:
        first = last = None
        values: dict[int, list[np.ndarray]] = {id(p): [] for p in self.plot_items}
        for k, series in enumerate(self.series):
            if series is None or len(series["steps"]) < 2:
                for (index, _), curve in self.curves.items():
                    if index == k:
                        curve.setData([], [])
                continue
            steps = series["steps"].astype(float)
            first = steps[0] if first is None else min(first, steps[0])
            last = steps[-1] if last is None else max(last, steps[-1])
            for plot, (_, key, dashed, _) in zip(self.plot_items, PLOTS):
                for name in (key, dashed):
                    if name is None:
                        continue
                    data = series.get(name)
                    if data is None:
                        self.curves[(k, name)].setData([], [])
                        continue
                    data = np.where(np.isfinite(data), data, np.nan)
                    self.curves[(k, name)].setData(steps[-len(data):], data)
                    values[id(plot)].append(data)
        if first is None:
            return
        bounds = {key: finite_bounds(*arrays) if arrays else None
                  for key, arrays in values.items()}
        lyapunov = self.plot_items[2]
        if bounds[id(lyapunov)] is not None:  # the sign is the point: zero stays in view
            bounds[id(lyapunov)] = finite_bounds(*values[id(lyapunov)], [0.0])
        self.axes.update(first, last, bounds)

    def _fill_table(self) -> None:
        rows = []
        for k in range(len(self.labels)):
            rows += [(k, cells) for cells in escape_rows(f"■ {k + 1}", self.escapes[k])]
        self.table.setRowCount(len(rows))
        for r, (k, cells) in enumerate(rows):
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setForeground(QColor(*COLOURS[k]))
                    item.setBackground(QColor(16, 16, 16))
                    item.setToolTip(self.labels[k])
                self.table.setItem(r, c, item)
