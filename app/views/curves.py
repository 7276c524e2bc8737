"""What the plots share: long time series drawn at about two points per pixel column, and
legends that stay legible over the curves."""
from __future__ import annotations

import math

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
