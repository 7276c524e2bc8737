"""Time-series view: loss (instantaneous and time-averaged), gradient norm, the running Lyapunov
estimate (ensemble mean, 10–90 % band, tangent-vector exponent, zero line) and T_eff; the
followed particle's own loss (a click on the landscape starts it) in white on the loss plot."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ..engine_loop import FrameBundle
from .curves import SteadyAxes, add_legend, draw_thin, finite_bounds


class SeriesView(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = self.addPlot(row=0, col=0, title="loss f (ensemble mean)")
        self.grad_plot = self.addPlot(row=1, col=0, title="gradient norm ‖∇f‖ (mean)")
        self.lyap_plot = self.addPlot(row=2, col=0, title="running Lyapunov estimate γ̂")
        self.temp_plot = self.addPlot(row=3, col=0, title="effective temperature T_eff")
        plots = (self.loss_plot, self.grad_plot, self.lyap_plot, self.temp_plot)
        for plot in plots:
            add_legend(plot)
            if plot is not self.loss_plot:
                plot.setXLink(self.loss_plot)
        self.temp_plot.setLabel("bottom", "step")
        self.loss = self.loss_plot.plot(pen=pg.mkPen("#4fc3f7"), name="instantaneous")
        self.loss_avg = self.loss_plot.plot(pen=pg.mkPen("#ffb74d", width=2), name="time average")
        # one particle's loss is noisy: thin and translucent, under the ensemble's curves
        self.probe_loss = self.loss_plot.plot(pen=pg.mkPen(255, 255, 255, 150, width=1),
                                              name="followed particle")
        self.probe_loss.setZValue(-1)
        self.grad = self.grad_plot.plot(pen=pg.mkPen("#4fc3f7"), name="instantaneous")
        self.grad_avg = self.grad_plot.plot(pen=pg.mkPen("#ffb74d", width=2), name="time average")
        self.lyap_lo = self.lyap_plot.plot(pen=None)
        self.lyap_hi = self.lyap_plot.plot(pen=None)
        self.band = pg.FillBetweenItem(self.lyap_lo, self.lyap_hi, brush=pg.mkBrush(129, 199, 132, 60))
        self.lyap_plot.addItem(self.band)
        self.lyap = self.lyap_plot.plot(pen=pg.mkPen("#81c784", width=2), name="γ̂ mean (10–90 % band)")
        self.tangent = self.lyap_plot.plot(pen=pg.mkPen("#e57373", width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                           name="top exponent (tangent vector)")
        self.lyap_plot.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("w", width=1)))
        self.temp = self.temp_plot.plot(pen=pg.mkPen("#ce93d8", width=2), name="T_eff")
        self.ghost_plot = self.addPlot(row=4, col=0, title="ghosts: mass Σŷ_ghost and f_ghost")
        add_legend(self.ghost_plot)
        self.ghost_plot.setXLink(self.loss_plot)
        self.ghost_plot.showGrid(x=True, y=True, alpha=0.2)
        self.ghost_mass = self.ghost_plot.plot(pen=pg.mkPen("#fff176", width=2),
                                               name="ghost mass")
        self.f_ghost = self.ghost_plot.plot(pen=pg.mkPen("#a1887f", width=2), name="f_ghost")
        self.ghost_plot.setVisible(False)
        for plot in plots + (self.ghost_plot,):
            draw_thin(plot)
        self._curves = (self.loss, self.loss_avg, self.grad, self.grad_avg, self.lyap_lo,
                        self.lyap_hi, self.lyap, self.tangent, self.temp, self.ghost_mass,
                        self.f_ghost, self.probe_loss)
        self.axes = SteadyAxes(list(plots) + [self.ghost_plot])
        self._show_in_legend(self.loss_plot, self.probe_loss, False)  # listed once one is followed

    @staticmethod
    def _show_in_legend(plot: pg.PlotItem, item: pg.PlotDataItem, shown: bool) -> None:
        listed = any(sample.item is item for sample, _ in plot.legend.items)
        if shown and not listed:
            plot.legend.addItem(item, item.name())
        elif listed and not shown:
            plot.legend.removeItem(item)

    def show_frame(self, bundle: FrameBundle) -> None:
        s = bundle.series
        if s is None:  # the worker sends series at ≤ 5 Hz
            return
        steps = s["steps"].astype(float)
        if steps.size < 2:  # one record is no series: auto-ranging it gave axes like 0 … 6e-17
            for item in self._curves:  # (a reset or a new run: the old run's curves go)
                item.setData([], [])
            return

        def clean(key):
            values = s.get(key)
            if values is None:
                return np.zeros_like(steps)
            return np.where(np.isfinite(values), values, np.nan)

        loss, loss_avg = clean("loss_mean"), clean("time_avg_loss")
        grad, grad_avg = clean("grad_norm_mean"), clean("time_avg_grad_norm")
        lyap_lo, lyap_hi, lyap = clean("lyapunov_q10"), clean("lyapunov_q90"), clean("lyapunov_mean")
        tangent, temp = clean("tangent_lyapunov_mean"), clean("effective_temperature")
        for item, values in ((self.loss, loss), (self.loss_avg, loss_avg), (self.grad, grad),
                             (self.grad_avg, grad_avg), (self.lyap_lo, lyap_lo),
                             (self.lyap_hi, lyap_hi), (self.lyap, lyap), (self.tangent, tangent),
                             (self.temp, temp)):
            item.setData(steps, values)
        # ghost runs do not compute the tangent-vector exponent: no empty legend entry for it
        self._show_in_legend(self.lyap_plot, self.tangent, np.isfinite(tangent).any())
        probe = bundle.probe
        probe_loss = np.zeros(0)
        if probe is not None and len(probe["steps"]) > 1:
            probe_loss = np.where(np.isfinite(probe["loss"]), probe["loss"], np.nan)
            self.probe_loss.setData(probe["steps"].astype(float), probe_loss)
        else:
            self.probe_loss.setData([], [])
        self._show_in_legend(self.loss_plot, self.probe_loss, probe_loss.size > 0)
        y_bounds = {id(self.loss_plot): finite_bounds(loss, loss_avg, probe_loss),
                    id(self.grad_plot): finite_bounds(grad, grad_avg),
                    # the zero line stays in view: the sign of γ̂ is the point of this plot
                    id(self.lyap_plot): finite_bounds(lyap_lo, lyap_hi, lyap, tangent, [0.0]),
                    id(self.temp_plot): finite_bounds(temp)}
        has_ghosts = "ghost_mass_mean" in s
        self.ghost_plot.setVisible(has_ghosts)
        if has_ghosts:
            n = len(s["ghost_mass_mean"])
            self.ghost_mass.setData(steps[-n:], s["ghost_mass_mean"])
            self.f_ghost.setData(steps[-n:], s["f_ghost_mean"])
            y_bounds[id(self.ghost_plot)] = finite_bounds(s["ghost_mass_mean"], s["f_ghost_mean"])
        self.axes.update(steps[0], steps[-1], y_bounds)
