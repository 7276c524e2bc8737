"""Side by side in the window: the configurations of a ``[[compare]]`` preset, each in an engine
process of its own, drawn together.

The window's own worker runs configuration 0 (so its controls, time-series and escape docks show
that one as for any preset); :class:`SideBySide` starts an :class:`~app.worker.EngineWorker`
for each other configuration, overlays their clouds on the landscape in the colours of
:data:`app.views.compare.COLOURS` with a legend, and adds the "Side by side" dock with every
configuration's series and escapes.  Every command the window sends its worker is sent to all
of them (a live change only where the configuration does not override that key), so Play, the
step size, T or a reset act on every configuration at once, and an export writes a file pair
per configuration (:func:`configuration_file`).  The engines step in lockstep: a
worker more than a frame's worth of steps ahead of the slowest waits, its frame held, until
the others catch up.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, Qt
from PyQt6.QtWidgets import QDockWidget

from engine.presets import Preset, configurations, preset_from_dict, to_dict

from .engine_loop import FrameBundle
from .views.compare import COLOURS, SideBySideView
from .views.point_cloud import PointCloudItem
from .worker import EngineWorker

DOCK = "Side by side"
# commands that concern the run shown in the window's own controls only
MAIN_ONLY = frozenset({"probe", "probe_clear"})


def configuration_file(path: str, index: int) -> str:
    """Where configuration ``index`` (≥ 1) of an export to ``path`` goes: ``run.npz`` →
    ``run_cfg1.npz`` (configuration 0, the window's own run, writes ``path`` itself)."""
    target = Path(path)
    return str(target.with_name(f"{target.stem}_cfg{index}{target.suffix}"))


def occupied_cells(density: np.ndarray, bounds) -> np.ndarray:
    """Centres (K, 2) of the occupied cells of a binned cloud (``FrameBundle.density``: rows
    = y over ``bounds``), drawn in place of a large cloud's positions."""
    rows, cols = np.nonzero(density)
    x0, x1, y0, y1 = bounds
    ny, nx = density.shape
    return np.column_stack([x0 + (cols + 0.5) * (x1 - x0) / nx,
                            y0 + (rows + 0.5) * (y1 - y0) / ny])


def open_side_by_side(window, preset, current: "SideBySide | None") -> "SideBySide | None":
    """Close ``current``; for a preset with ``[[compare]]`` start and return a new one (the
    window's worker then loads its first configuration), else None."""
    if current is not None:
        current.close()
    if not isinstance(preset, Preset) or not preset.compare:
        return None
    return SideBySide(window, preset)


class SideBySide(QObject):
    """See the module docstring.  ``close()`` ends the other engines and removes what it drew."""

    def __init__(self, window, preset: Preset):
        super().__init__(window)
        self.window = window
        self.preset = preset
        self.labels = [spec.label for spec in preset.compare]
        self.overrides = [set(spec.overrides) for spec in preset.compare]
        self.presets = configurations(preset)
        self.main: EngineWorker = window.worker
        self.followers = [EngineWorker(p) for p in self.presets[1:]]
        self.workers = [self.main] + self.followers
        self.held: set[int] = set()
        self.closed = False
        # the window's calls on its worker reach every configuration: instance attributes
        # shadow the worker's methods until close() removes them
        self._submit_main = self.main.submit
        self._release = [self.main.frame_consumed] + [w.frame_consumed for w in self.followers]
        self.main.submit = self.submit
        self.main.frame_consumed = lambda: self.consumed(0)
        self.main.frame_ready.connect(self._main_frame)
        self.view = SideBySideView(self.labels)
        self.dock = QDockWidget(DOCK, window)
        self.dock.setObjectName(DOCK)
        self.dock.setWidget(self.view)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        series = window.findChild(QDockWidget, "Time series")
        if series is not None:
            window.tabifyDockWidget(series, self.dock)
        self.dock.raise_()
        self._raised = False  # raised again with the first frame: the window may raise others
        window.tabs.currentChanged.connect(self._tab_changed)
        plot = window.landscape_view.plot
        self.clouds = []
        for k in range(1, len(self.workers)):
            cloud = PointCloudItem(size=3, colour=(*COLOURS[k], 230))
            cloud.setZValue(6)
            plot.addItem(cloud)
            self.clouds.append(cloud)
        self.samples = [pg.ScatterPlotItem(symbol="s", size=9, pen=None,
                                           brush=pg.mkBrush(*COLOURS[k]))
                        for k in range(len(self.workers))]
        for sample, label in zip(self.samples, self.labels):
            plot.plotItem.legend.addItem(sample, label)
        for k, worker in enumerate(self.followers, start=1):
            worker.frame_ready.connect(lambda bundle, k=k: self._follower_frame(k, bundle))
            worker.failed.connect(
                lambda what, message, k=k: window._on_failed(f"{self.labels[k]}: {what}",
                                                              message))
            worker.exported.connect(
                lambda path: window.statusBar().showMessage(f"wrote {path}", 5000))
            worker.start()
            worker.submit("speed", int(window.speed.value()))
            if window.play_button.isChecked():
                worker.submit("play", True)
        self._submit_main("load", self.presets[0])

    # -- commands ------------------------------------------------------------------------------
    def submit(self, name: str, *args) -> None:
        """The window's command for its worker, sent to every configuration it concerns.  A
        new load replaces the comparison: it ends here."""
        if name == "load":
            self.close()
            self._submit_main(name, *args)
            return
        self._submit_main(name, *args)
        if name in MAIN_ONLY:
            return
        for k, worker in enumerate(self.followers, start=1):
            if name == "set" and args[0] in self.overrides[k]:
                continue  # this configuration keeps its own value of the key
            if name == "export":  # a file pair per configuration, beside the window's
                worker.submit(name, configuration_file(args[0], k), *args[1:])
            else:
                worker.submit(name, *args)

    def preset_now(self, first: Preset) -> Preset:
        """The side-by-side preset as it runs now, given ``first``, the window's preset (the
        first configuration, live edits included): the edits of keys that configuration does
        not override become the base's, so they reach every configuration that does not
        override them either; the ``[[compare]]`` tables stay as loaded.  Once closed:
        ``first`` itself."""
        if self.closed:
            return first
        data = to_dict(first)
        base = to_dict(self.preset)
        for key in self.overrides[0]:  # the first configuration's own values stay its own
            if key in base["dynamics"]:
                data["dynamics"][key] = base["dynamics"][key]
            else:  # a schedule of its own over a base without one
                data["dynamics"].pop(key, None)
        data["compare"] = base["compare"]
        return preset_from_dict(data, self.preset.source)

    # -- lockstep ------------------------------------------------------------------------------
    def _steps(self) -> list[int]:
        return [w.state.step if w.state is not None else 0 for w in self.workers]

    def consumed(self, index: int) -> None:
        """Worker ``index``'s frame is drawn: let it go on unless it is ahead of the slowest
        by more than a frame's worth of steps (then it waits for them)."""
        if self.closed:
            self._release[index]()
            return
        self.held.add(index)
        self._release_due()

    def _release_due(self) -> None:
        steps = self._steps()
        slack = max(w.steps_per_frame for w in self.workers)
        for index in sorted(self.held):
            if steps[index] <= min(steps) + slack:
                self.held.discard(index)
                self._release[index]()

    # -- frames --------------------------------------------------------------------------------
    def _main_frame(self, bundle: FrameBundle) -> None:
        if not self.closed:
            if not self._raised:
                self._raised = True
                self.dock.raise_()
            self.view.show_frame(0, bundle)
            self._release_due()

    def _follower_frame(self, index: int, bundle: FrameBundle) -> None:
        if self.closed:
            return
        try:
            positions = (occupied_cells(bundle.density, bundle.bounds)
                         if bundle.density is not None else bundle.frame.positions)
            self.clouds[index - 1].setData(positions)
            self.view.show_frame(index, bundle)
        finally:
            self.consumed(index)

    def _tab_changed(self, _index: int) -> None:
        """The dock belongs to the landscape: it steps aside on the other tabs."""
        if not self.closed:
            self.dock.setVisible(self.window.tabs.currentWidget() is self.window.landscape_view)

    # -- ending --------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the other engines, give the window's worker its own methods back and remove
        the clouds, legend entries and dock."""
        if self.closed:
            return
        self.closed = True
        del self.main.submit, self.main.frame_consumed
        if 0 in self.held:
            self.main.frame_consumed()
        self.held.clear()
        self.main.frame_ready.disconnect(self._main_frame)
        self.window.tabs.currentChanged.disconnect(self._tab_changed)
        for worker in self.followers:
            worker.stop()
        plot = self.window.landscape_view.plot
        for cloud in self.clouds:
            plot.removeItem(cloud)
        for sample in self.samples:
            plot.plotItem.legend.removeItem(sample)
        self.window.removeDockWidget(self.dock)
        self.dock.deleteLater()
