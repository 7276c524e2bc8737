"""What the plots share: long time series drawn at about two points per pixel column, axes
that follow growing data without refitting at every update, and legends that stay legible over
the curves."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

# samples per pixel column that pyqtgraph's automatic downsampling keeps (its default is 5).
# Peak mode keeps each column's minimum and maximum, so 1 loses nothing visible; a 4 096-point
# curve with a 2-pixel pen took ≈ 3 ms to stroke at 5, ≈ 0.9 ms at 1.
SAMPLES_PER_PIXEL = 1.0


def draw_thin(plot: pg.PlotItem) -> None:
    """Peak-downsample ``plot``'s curves to its width and draw only the visible range.

    Call again after adding curves: the sampling density is a per-curve option.
    """
    plot.setDownsampling(auto=True, mode="peak")
    plot.setClipToView(True)
    for item in plot.listDataItems():
        item.opts["autoDownsampleFactor"] = SAMPLES_PER_PIXEL


def add_legend(plot: pg.PlotItem, offset: tuple[int, int] = (-5, 5)) -> pg.LegendItem:
    """A legend in ``plot``'s corner on a translucent dark backing: curves that pass under it
    stay visible but no longer run through its text."""
    return plot.addLegend(offset=offset, brush=pg.mkBrush(0, 0, 0, 150))


class SparseLogAxis(pg.AxisItem):
    """A log-scale axis that labels only 1, 2 and 5 × 10ᵏ: pyqtgraph labels every minor tick
    it has room for overall, and 0.6 … 0.9 (crowded at the top of each decade) overlapped."""

    KEPT_MANTISSAS = (1, 2, 5)

    def logTickStrings(self, values, scale, spacing):
        labels = super().logTickStrings(values, scale, spacing)
        kept = []
        for value, label in zip(values, labels):
            mantissa = 10.0 ** (float(value) - math.floor(float(value) + 1e-9))
            kept.append(label if round(mantissa) in self.KEPT_MANTISSAS
                        and abs(mantissa - round(mantissa)) < 1e-6 else "")
        # within a decade 1, 2 and 5 may leave a single label: keep them all then
        return kept if sum(1 for label in kept if label) >= 2 else labels


# spans the x axis steps through as a run grows: the curve fills 71–95 % of the width
SPAN_LADDER = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
Y_MARGIN = 0.08  # of the data's span, on each side: small excursions do not move the axis
X_HEADROOM = 1.05  # the step axis reaches at least 5 % past the last point


def ladder_ceil(value: float) -> float:
    """The smallest ``m × 10ᵏ ≥ value`` with ``m`` in :data:`SPAN_LADDER` (``value > 0``)."""
    exponent = math.floor(math.log10(value))
    for mantissa in SPAN_LADDER:
        candidate = mantissa * 10.0 ** exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)


def finite_bounds(*arrays: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values of ``arrays``, or None when there are none."""
    lows, highs = [], []
    for values in arrays:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if values.size:
            lows.append(values.min())
            highs.append(values.max())
    return (float(min(lows)), float(max(highs))) if lows else None


class SteadyAxes:
    """Auto-ranging for live plots that grow, which moves an axis only when it must.

    pyqtgraph's auto-range refits every axis at every update, and a moved axis lays its ticks
    out again: for the five time-series plots of a growing run that was 9 ms of range updates
    and 20 ms of paint per 5 Hz update (3 and 12 ms now), and the axes jittered.  Here the step axis (shared by ``plots``,
    linked to the first) spans a 1-2-2.5-… ladder ahead of the data, and each y axis keeps a
    margin that absorbs small excursions; an axis moves when the data leaves it, or no longer
    fills half of it (a reset).  Dragging or zooming a plot hands its axes to the user;
    pyqtgraph's "A" button hands them back.
    """

    def __init__(self, plots: list[pg.PlotItem]):
        self.plots = plots
        self.x_range: tuple[float, float] | None = None
        self.y_ranges: dict[int, tuple[float, float] | None] = {id(p): None for p in plots}
        self.x_manual = False
        self.y_manual = {id(p): False for p in plots}
        for plot in plots:
            plot.vb.disableAutoRange()
            plot.vb.sigRangeChangedManually.connect(
                lambda mask, plot=plot: self._taken_over(plot, mask))

    def _taken_over(self, plot: pg.PlotItem, mask) -> None:
        if mask[0]:
            self.x_manual = True
        if mask[1]:
            self.y_manual[id(plot)] = True

    def _released(self) -> None:
        """The "A" button turns pyqtgraph's own auto-range on: take the plot back."""
        for plot in self.plots:
            if any(plot.vb.state["autoRange"]):
                plot.vb.disableAutoRange()
                self.x_manual = False
                self.x_range = None
                self.y_manual[id(plot)] = False
                self.y_ranges[id(plot)] = None

    def update(self, x_first: float, x_last: float,
               y_bounds: dict[int, tuple[float, float] | None]) -> None:
        """Fit the axes to data spanning ``x_first … x_last`` and, per plot (``id``), the
        y bounds given (None: leave that axis)."""
        self._released()
        if not self.x_manual and x_last > x_first:
            current = self.x_range
            if (current is None or current[0] != x_first or x_last > current[1]
                    or x_last - x_first < 0.5 * (current[1] - current[0])):
                self.x_range = (x_first, x_first + ladder_ceil(X_HEADROOM * (x_last - x_first)))
                self.plots[0].setXRange(*self.x_range, padding=0)
        for plot in self.plots:
            bounds = y_bounds.get(id(plot))
            if bounds is None or self.y_manual[id(plot)]:
                continue
            low, high = bounds
            # a constant: ±8 % of its value, or ±0.08 around 0 (not ±10⁻¹³: a flat T_eff = 0)
            span = high - low if high > low else (abs(high) if high != 0 else 1.0)
            fitted = (low - Y_MARGIN * span, high + Y_MARGIN * span)
            current = self.y_ranges[id(plot)]
            if (current is None or low < current[0] or high > current[1]
                    or fitted[1] - fitted[0] < 0.5 * (current[1] - current[0])):
                self.y_ranges[id(plot)] = fitted
                plot.setYRange(*fitted, padding=0)
