"""Escapes view: escape events per basin pair over time (binned rates, readable at any number
of events), basin occupation over time vs Gibbs/Laplace weights, and the measured mean
first-passage times beside Eyring–Kramers (all computed by the engine)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import (QHeaderView, QSplitter, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)
from PyQt6.QtCore import Qt

from ..engine_loop import FrameBundle
from .curves import SteadyAxes, add_legend, draw_thin

COLOURS = ["#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ce93d8", "#fff176", "#a1887f"]
# two-line headers: the table fits a narrow dock without cutting a title
COLUMNS = ["from → to", "events", "MFPT\n(steps)", "95 % CI\n(steps)", "Kramers\n(steps)",
           "ratio"]
RATE_BINS = 40  # time bins of the event-rate plot
RATE_PAIRS = len(COLOURS) - 1  # pairs drawn on their own; the rest are summed as "other"


def event_rates(events: np.ndarray, bins: int = RATE_BINS):
    """Escape events per 1 000 steps, per (from, to) pair, in ``bins`` equal time bins over the
    events' steps: ``(edges (bins + 1,), {(from, to): rates (bins,)})`` with the
    :data:`RATE_PAIRS` busiest pairs and the others summed under ``None``."""
    events = np.asarray(events).reshape(-1, 4)
    if not len(events):
        return np.zeros(0), {}
    first, last = float(events[:, 0].min()), float(events[:, 0].max())
    if last <= first:
        last = first + 1.0
    edges = np.linspace(first, last, bins + 1)
    width = (last - first) / bins
    pairs, inverse, totals = np.unique(events[:, 2:4], axis=0, return_inverse=True,
                                       return_counts=True)
    inverse = np.asarray(inverse).ravel()
    order = np.argsort(-totals, kind="stable")
    rates: dict = {}
    for rank, k in enumerate(order):
        counts, _ = np.histogram(events[inverse == k, 0], bins=edges)
        key = (int(pairs[k][0]), int(pairs[k][1])) if rank < RATE_PAIRS else None
        rate = counts * 1000.0 / width
        rates[key] = rates[key] + rate if key in rates else rate
    return edges, rates


class EscapesView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical)
        plots = pg.GraphicsLayoutWidget()
        self.raster_plot = plots.addPlot(row=0, col=0, title="escapes per 1 000 steps")
        self.raster_plot.setLabel("left", "events / 1 000 steps")
        self.raster_plot.setLabel("bottom", "step")
        add_legend(self.raster_plot)
        self.occupation_plot = plots.addPlot(row=1, col=0,
                                             title="basin occupation (lines: Laplace weights)")
        self.occupation_plot.setLabel("bottom", "step")
        self.occupation_plot.setYRange(0, 1)
        add_legend(self.occupation_plot)
        self.occupation_axes = SteadyAxes([self.occupation_plot])  # y stays 0 … 1
        # one step curve per basin pair (the busiest ones; the rest summed): a raster of one
        # tick per event was an unreadable blob at a few thousand events
        self.rates: dict = {}
        self.occupation_curves: list = []
        self.weight_lines: list = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # all six fit
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
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

    def _show_rates(self, events: np.ndarray) -> None:
        edges, rates = event_rates(events)
        for key in list(self.rates):
            if key not in rates:  # a pair no longer among the busiest (or a new run)
                item = self.rates.pop(key)
                self.raster_plot.legend.removeItem(item)
                self.raster_plot.removeItem(item)
        for rank, key in enumerate(sorted(rates, key=lambda k: (k is None, k))):
            item = self.rates.get(key)
            colour = COLOURS[-1] if key is None else COLOURS[rank % (len(COLOURS) - 1)]
            name = "other pairs" if key is None else f"{key[0]} → {key[1]}"
            if item is None or item.name() != name:
                if item is not None:
                    self.raster_plot.legend.removeItem(item)
                    self.raster_plot.removeItem(item)
                item = pg.PlotDataItem(stepMode="center", pen=pg.mkPen(colour, width=2),
                                       name=name)
                self.raster_plot.addItem(item)
                self.rates[key] = item
            item.setPen(pg.mkPen(colour, width=2))
            item.setData(edges, rates[key])

    def show_frame(self, bundle: FrameBundle) -> None:
        escapes = bundle.escapes
        if escapes is None or bundle.series is None:  # sent at ≤ 2 Hz
            return
        summary = escapes["summary"]
        events = escapes["events"]
        self._show_rates(events)
        total = summary["events"]
        self.raster_plot.setTitle(
            f"escapes per 1 000 steps (latest {len(events):,} of {total:,})"
            if len(events) < total else "escapes per 1 000 steps, per basin pair")
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
        header = (f"Kramers\nT = {temperature:.3g}" if temperature > 0
                  else "Kramers\n(steps)")
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
