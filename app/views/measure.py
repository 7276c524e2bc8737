"""Empirical-measure view: the pooled histogram of the cloud beside the Gibbs density at the
current T, and their total-variation distance over time (all computed in the worker)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF

from ..engine_loop import FrameBundle
from .curves import SparseLogAxis, SteadyAxes, add_legend, draw_thin, finite_bounds


class MeasureView(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        # short titles and one shared y axis: side by side in a dock of ≈ 460 px (1366 × 768)
        # the two titles and axes needed 509 px, and the Gibbs title was cut
        self.empirical_plot = self.addPlot(row=0, col=0, title="empirical μ_k (pooled)")
        self.gibbs_plot = self.addPlot(row=0, col=1, title="Gibbs exp(−f/T)/Z")
        self.gibbs_plot.setXLink(self.empirical_plot)
        self.gibbs_plot.setYLink(self.empirical_plot)
        self.gibbs_plot.hideAxis("left")
        self.distance_plot = self.addPlot(row=1, col=0, colspan=2,
                                          title="distance to Gibbs (grid cells)",
                                          axisItems={"left": SparseLogAxis("left")})
        self.distance_plot.setLabel("bottom", "step")
        self.distance_plot.setLogMode(y=True)
        add_legend(self.distance_plot)
        self.distance_axes = SteadyAxes([self.distance_plot])
        cmap = pg.colormap.get("inferno")
        self.empirical = pg.ImageItem()
        self.gibbs = pg.ImageItem()
        for item, plot in ((self.empirical, self.empirical_plot), (self.gibbs, self.gibbs_plot)):
            item.setColorMap(cmap)
            plot.addItem(item)
            plot.setAspectLocked(False)
        self.tv = self.distance_plot.plot(pen=pg.mkPen("#ffb74d", width=2), name="total variation")
        self.kl = self.distance_plot.plot(pen=pg.mkPen("#4fc3f7", width=2), name="KL(μ‖π)")
        draw_thin(self.distance_plot)
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 2)

    def show_frame(self, bundle: FrameBundle) -> None:
        m = bundle.measure
        if m is None:  # sent at ≤ 5 Hz
            return
        x0, x1, y0, y1 = m["bounds"]
        rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        top = max(float(m["gibbs"].max()), float(m["empirical"].max()), 1e-300)
        self.empirical.setImage(m["empirical"].T, autoLevels=False, levels=(0, top))
        self.gibbs.setImage(m["gibbs"].T, autoLevels=False, levels=(0, top))
        self.empirical.setRect(rect)
        self.gibbs.setRect(rect)
        steps = np.asarray(m["steps"], dtype=float)
        if steps.size:
            tv = np.maximum(np.asarray(m["tv"]), 1e-6)
            kl = np.asarray(m["kl"])
            kl = np.where(np.isfinite(kl), np.maximum(kl, 1e-6), np.nan)
            self.tv.setData(steps, tv)
            self.kl.setData(steps, kl)
            if steps.size > 1:  # a log axis: its range is in decades
                self.distance_axes.update(float(steps[0]), float(steps[-1]), {
                    id(self.distance_plot): finite_bounds(np.log10(tv), np.log10(kl))})
        else:  # pooling restarted (a new temperature, a reset): the old run's distances go
            self.tv.setData([], [])
            self.kl.setData([], [])
