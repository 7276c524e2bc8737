"""Escapes view: event raster, basin occupation over time vs Gibbs/Laplace weights, and the
measured mean first-passage times beside Eyring–Kramers (all computed by the engine)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import (QHeaderView, QSplitter, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)
from PyQt6.QtCore import Qt

from ..engine_loop import FrameBundle
from .curves import SteadyAxes, add_legend, draw_thin

COLOURS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ce93d8", "#fff176", "#a1887f"]
COLUMNS = ["from → to", "events", "MFPT (steps)", "95 % CI", "Kramers (steps)", "ratio"]


class EscapesView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical)
        plots = pg.GraphicsLayoutWidget()
        self.raster_plot = plots.addPlot(row=0, col=0, title="escape events (core → core)")
        self.raster_plot.setLabel("left", "particle")
        self.occupation_plot = plots.addPlot(row=1, col=0,
                                             title="basin occupation (lines: Laplace weights)")
        self.occupation_plot.setLabel("bottom", "step")
        self.occupation_plot.setYRange(0, 1)
        add_legend(self.occupation_plot)
        self.occupation_axes = SteadyAxes([self.occupation_plot])  # y stays 0 … 1
        # each event a short vertical tick, one line item per colour (the destination core):
        # one scatter item with a brush per point spent ≈ 18 ms per update of 3 000 events
        # styling them point by point, a path of line pairs is built in one vectorised pass
        self.rasters = [pg.PlotCurveItem(pen=pg.mkPen(c, width=2), connect="pairs")
                        for c in COLOURS]
        for item in self.rasters:
            self.raster_plot.addItem(item)
        self.occupation_curves: list = []
        self.weight_lines: list = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # all six fit
        header.setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)  # the first column names the row
        self.table.setToolTip("measured mean first-passage time between core sets (exposure / "
                              "transitions, censoring included) beside the Eyring–Kramers time")
        splitter.addWidget(plots)
        splitter.addWidget(self.table)
        splitter.setSizes([500, 160])
        layout.addWidget(splitter)

    def _ensure_curves(self, n: int) -> None:
        while len(self.occupation_curves) < n:
            k = len(self.occupation_curves)
            colour = COLOURS[k % len(COLOURS)]
            self.occupation_curves.append(self.occupation_plot.plot(
                pen=pg.mkPen(colour, width=2), name=f"basin {k}"))
            line = pg.InfiniteLine(angle=0, pen=pg.mkPen(colour, style=Qt.PenStyle.DashLine))
            self.occupation_plot.addItem(line)
            self.weight_lines.append(line)
            draw_thin(self.occupation_plot)

    def show_frame(self, bundle: FrameBundle) -> None:
        escapes = bundle.escapes
        if escapes is None or bundle.series is None:  # sent at ≤ 2 Hz
            return
        summary = escapes["summary"]
        events = escapes["events"]
        colour = events[:, 3] % len(COLOURS) if len(events) else np.zeros(0, dtype=int)
        half = max(0.5, bundle.state.particles / 250)  # tick half-height, in particles
        for k, item in enumerate(self.rasters):
            mine = colour == k
            x = np.repeat(events[mine, 0].astype(float), 2)
            y = np.repeat(events[mine, 1].astype(float), 2)
            y[0::2] -= half
            y[1::2] += half
            item.setData(x, y)
        total = summary["events"]
        self.raster_plot.setTitle(
            f"escape events (core → core): latest {len(events):,} of {total:,}"
            if len(events) < total else "escape events (core → core)")
        steps = bundle.series["steps"]
        weights = summary["laplace_weights"]
        self._ensure_curves(len(weights))
        for k, curve in enumerate(self.occupation_curves):
            values = bundle.series.get(f"occupation_{k}")
            if values is not None and k < len(weights):
                curve.setData(steps[-len(values):], values)
                self.weight_lines[k].setPos(weights[k])
                self.weight_lines[k].setVisible(True)
            else:
                curve.setData([], [])
                self.weight_lines[k].setVisible(False)
        if len(steps) > 1:
            self.occupation_axes.update(float(steps[0]), float(steps[-1]), {})
        temperature = summary.get("prediction_temperature") or 0.0
        header = (f"Kramers at T = {temperature:.3g} (steps)" if temperature > 0
                  else "Kramers (steps)")
        if self.table.horizontalHeaderItem(4).text() != header:  # T_eff of SGD, β, …
            self.table.setHorizontalHeaderItem(4, QTableWidgetItem(header))
        rows = summary["transitions"]
        self.table.setRowCount(len(rows))
        for r, pair in enumerate(rows):
            kramers = pair.get("kramers_mfpt_steps")
            low, high = pair["mfpt_steps_ci95"]
            cells = [f"{pair['from']} → {pair['to']}", str(pair["transitions"]),
                     f"{pair['mfpt_steps']:,.0f}", f"[{low:,.0f}, {high:,.0f}]",
                     f"{kramers:,.0f}" if kramers else "–",
                     f"{pair['mfpt_steps'] / kramers:.2f}" if kramers else "–"]
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
