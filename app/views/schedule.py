"""Schedule view: each scheduled parameter of the run (η, T, B; ``[dynamics.schedule]``,
:mod:`engine.schedules`) as a curve of its value against the step, with a marker at the current
step.  The curves are the engine's own function of the preset (:func:`engine.schedules.
values_over`), drawn again only when the preset changes (a load, an edited start value) or the
run passes the end of the drawn range; a frame moves the marker only.  It sits at the top of the
window's controls, above the sliders that set each schedule's start value, and is hidden for a
run without a schedule (most presets), so it costs them no room."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from engine.presets import Preset
from engine.schedules import SCHEDULED, values_over

SAMPLES = 800  # points per curve: a segment of `every` steps is ≥ 1 px up to 800 segments
PLOT_HEIGHT = 150  # px per scheduled parameter: title, curve, value and step axes readable
TITLES = {"lr": "step size η", "temperature": "temperature T", "batch_size": "batch size B"}
COLOURS = {"lr": "#4fc3f7", "temperature": "#ce93d8", "batch_size": "#ffb74d"}


class ScheduleView(pg.GraphicsLayoutWidget):
    """One plot per parameter the preset schedules; hidden when it schedules none."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setToolTip("the schedule of the run ([dynamics.schedule]): value against step, "
                        "the dot at the current step; it starts from the slider's value")
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.markers: dict[str, pg.ScatterPlotItem] = {}
        self.lines: dict[str, pg.InfiniteLine] = {}
        for name in SCHEDULED:
            plot = pg.PlotItem()
            plot.setTitle(TITLES[name], size="9pt")
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "step")
            # an expression's value may be undefined at some steps: gaps, not a broken line
            self.curves[name] = plot.plot(pen=pg.mkPen(COLOURS[name], width=2), connect="finite")
            self.lines[name] = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e0e0e0", width=1))
            self.markers[name] = pg.ScatterPlotItem(size=10, brush=pg.mkBrush("#ffffff"),
                                                    pen=pg.mkPen("#000000"))
            plot.addItem(self.lines[name])
            plot.addItem(self.markers[name])
            self.plots[name] = plot
        for name in SCHEDULED[1:]:
            self.plots[name].setXLink(self.plots[SCHEDULED[0]])
        self._dynamics = None  # the DynamicsSpec the curves were drawn for
        self._horizon = 0  # the last step the curves reach
        self.scheduled: tuple[str, ...] = ()
        self.step = 0
        self.setVisible(False)

    def show_frame(self, preset: Preset, step: int) -> None:
        """Show ``preset``'s schedule with the marker at ``step`` (cheap when neither the
        preset's dynamics nor the drawn range changed)."""
        d = preset.dynamics
        if d != self._dynamics or step > self._horizon:
            self._draw(preset, step)
        self.step = int(step)
        for name in self.scheduled:
            value = float(values_over(d, name, np.array([self.step]))[0])
            self.lines[name].setValue(self.step)
            self.markers[name].setData([self.step], [value])

    def _draw(self, preset: Preset, step: int) -> None:
        d = preset.dynamics
        self._dynamics = d
        schedule = d.schedule
        self.scheduled = () if schedule is None else tuple(
            name for name in SCHEDULED if getattr(schedule, name) is not None)
        # the run's length, or a quarter beyond the current step once the run goes past it
        self._horizon = max(preset.run.steps, 1) if step <= preset.run.steps else int(step * 1.25)
        steps = np.unique(np.linspace(0, self._horizon, SAMPLES).round().astype(np.int64))
        self.ci.clear()  # only the scheduled parameters' plots take room
        for row, name in enumerate(self.scheduled):
            self.ci.addItem(self.plots[name], row=row, col=0)
            self.curves[name].setData(steps.astype(float), values_over(d, name, steps))
            self.plots[name].setXRange(0, self._horizon, padding=0.02)
        for name in SCHEDULED:
            self.plots[name].setVisible(name in self.scheduled)
        self.setFixedHeight(PLOT_HEIGHT * max(len(self.scheduled), 1))
        self.setVisible(bool(self.scheduled))
