"""Landscape view: heatmap + contours of f, the particle cloud (scatter or density), trails,
minima and saddles, the followed particle (a click places its start point) and the cursor
readout (x, y, f; a critical point's curvature, GD step limit and Laplace weight over its
marker).

Signal: ``start_requested(float, float)`` — a left click in the plot asks to follow one particle
from that point."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QPainterPath
from PyQt6.QtWidgets import (QGraphicsItem, QGraphicsPathItem, QLabel, QSizePolicy,
                             QVBoxLayout, QWidget)

from ..engine_loop import TRAIL_PARTICLES, FrameBundle
from .point_cloud import PointCloudItem
from .view_bounds import StaticMarkers

TRAIL_LENGTH = 40  # points per trail at most
# a trail shows where its particle was over the last TRAIL_STEPS steps: at a high speed (steps
# per frame) far-apart frames joined by straight lines drew a web across the basin
TRAIL_STEPS = 400
MARKER_PICK_PIXELS = 8  # the cursor this close to a minimum or saddle describes it
CONTOURS = 12
CONTOUR_RGB = np.array([255.0, 255.0, 255.0])
CONTOUR_ALPHA = 0.4
# a trail (or the followed path) breaks where one segment jumps more than this many cells of a
# 64 × 64 grid over the box: a periodic wrap or a long stride is not a straight line across
JUMP_CELLS = 4
JUMP_GRID = 64
PROBE_COLOUR = (255, 255, 255)
PROBE_RECENT = 150  # the followed path's latest points drawn bright, the rest faint


def broken_at_jumps(points: np.ndarray, bounds, cells: float = JUMP_CELLS) -> np.ndarray:
    """``points`` (K, 2) with a NaN row inserted before every point that lies more than
    ``cells`` cells of a :data:`JUMP_GRID`² grid over ``bounds`` from the previous one, so a
    path drawn with ``connect="finite"`` breaks there."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(points) < 2 or bounds is None:
        return points
    x0, x1, y0, y1 = bounds
    limit = cells * np.array([x1 - x0, y1 - y0]) / JUMP_GRID
    jump = (np.abs(np.diff(points, axis=0)) > limit).any(axis=1)
    if not jump.any():
        return points
    at = np.flatnonzero(jump) + 1
    return np.insert(points, at, np.nan, axis=0)


def contoured_heatmap(values: np.ndarray, low: float, high: float,
                      levels: np.ndarray) -> np.ndarray:
    """(rows, cols, 4) uint8: viridis colours of ``values`` (rows = y) with a one-pixel line
    wherever the field crosses one of ``levels`` between neighbouring pixels."""
    # contours traced on a ≈ 640² bilinear refinement (about the view's size in pixels): thin,
    # solid lines without grid staircases
    factor = max(1, int(np.round(640 / max(values.shape))))
    if factor > 1:
        from scipy.ndimage import zoom
        values = zoom(values, factor, order=1)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(high - low):
            scaled = (values - low) / max(high - low, 1e-300)
        else:  # values near ±1.8e308: halve first so the span is finite
            scaled = (0.5 * values - 0.5 * low) / (0.5 * high - 0.5 * low)
    rgb = pg.colormap.get("viridis").map(np.clip(scaled, 0.0, 1.0).ravel(), mode="float")
    rgb = rgb.reshape(values.shape + (-1,))[..., :3] * 255.0
    band = np.searchsorted(levels, values)            # which pair of levels each pixel is between
    edge = np.zeros(values.shape, dtype=bool)
    edge[:, 1:] |= band[:, 1:] != band[:, :-1]
    edge[1:, :] |= band[1:, :] != band[:-1, :]
    rgb[edge] = (1 - CONTOUR_ALPHA) * rgb[edge] + CONTOUR_ALPHA * CONTOUR_RGB
    out = np.empty(values.shape + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    out[..., 3] = 255
    return out


class LandscapeView(QWidget):
    start_requested = pyqtSignal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.plot = pg.PlotWidget()
        self.plot.setAspectLocked(False)
        self.plot.setLabel("bottom", "w₁ (x)")
        self.plot.setLabel("left", "w₂ (y)")
        self.plot.showGrid(x=False, y=False)
        self.heat = pg.ImageItem()
        self.heat.setZValue(-20)
        self.heat.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.plot.addItem(self.heat)
        self.density = pg.ImageItem()
        self.density.setZValue(5)
        cmap = pg.ColorMap([0.0, 0.3, 1.0], [(255, 255, 255, 0), (255, 140, 0, 180),
                                             (255, 40, 0, 255)])
        self.density.setColorMap(cmap)
        self.plot.addItem(self.density)
        self.scatter = PointCloudItem(size=3, colour=(255, 90, 30, 200))
        self.scatter.setZValue(6)
        self.plot.addItem(self.scatter)
        # all trails in one path (NaN-separated) on a plain Qt item: its paint runs in C++,
        # where pyqtgraph's curve item spent ≈ 1.9 ms of Python per frame
        self.trails = QGraphicsPathItem()
        self.trails.setPen(pg.mkPen((220, 240, 255, 150), width=1))
        self.trails.setZValue(7)
        self.plot.addItem(self.trails)
        self.minima = StaticMarkers(symbol="o", size=11, pen=pg.mkPen("w", width=2),
                                    brush=None, name="minima")
        self.saddles = StaticMarkers(symbol="x", size=12, pen=pg.mkPen("r", width=2),
                                     brush=pg.mkBrush("r"), name="saddles")
        # the followed particle: its path, where it started and where it is
        self.probe_path = QGraphicsPathItem()  # the whole path, faint
        self.probe_path.setPen(pg.mkPen(*PROBE_COLOUR, 70, width=1))
        self.probe_path.setZValue(11)
        self.plot.addItem(self.probe_path)
        self.probe_recent = QGraphicsPathItem()  # its latest points, bright
        self.probe_recent.setPen(pg.mkPen(*PROBE_COLOUR, 255, width=2))
        self.probe_recent.setZValue(11)
        self.plot.addItem(self.probe_recent)
        self.probe_start = pg.ScatterPlotItem(symbol="+", size=14, pen=pg.mkPen("w", width=2),
                                              brush=None)
        self.probe_dot = pg.ScatterPlotItem(symbol="o", size=11, pen=pg.mkPen("k", width=1.5),
                                            brush=pg.mkBrush(*PROBE_COLOUR))
        for item in (self.probe_start, self.probe_dot):
            item.setZValue(12)
            self.plot.addItem(item)
        self.probe: dict | None = None
        for item in (self.minima, self.saddles):
            item.setZValue(10)
            # static markers over a moving cloud: painted from a pixmap, not re-drawn per frame
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self.plot.addItem(item)
        # on a dark plate: the heatmap under it ranges from dark blue to bright yellow
        legend = self.plot.addLegend(offset=(5, 5), brush=pg.mkBrush(0, 0, 0, 170),
                                     labelTextColor=(235, 235, 235))
        legend.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        legend.addItem(self.minima, "minimum")
        legend.addItem(self.saddles, "index-1 saddle")
        self.readout = QLabel("x = –, y = –, f = –")
        # a marker's description is long: it wraps within the view's width (never widening the
        # view) in a fixed two-line band (the plot does not jump as the cursor moves)
        self.readout.setWordWrap(True)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.readout.setFixedHeight(2 * self.readout.fontMetrics().lineSpacing() + 4)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self._grid = None
        self._bounds = None
        self._structure = None
        self._dynamics = None
        self.presets = None  # the window's app.preset_controller.PresetController
        self._trail = np.zeros((0, TRAIL_PARTICLES, 2))
        self._trail_steps = np.zeros(0, dtype=np.int64)
        self._generation = -1
        self._last_scene_pos = None
        self._proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.setToolTip("click to follow one particle from there")

    def _clicked(self, event) -> None:
        """A plain left click inside the landscape's box asks for a followed particle."""
        if (event.button() != Qt.MouseButton.LeftButton or event.double()
                or event.modifiers() != Qt.KeyboardModifier.NoModifier):
            return
        view = self.plot.plotItem.vb
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        point = view.mapSceneToView(event.scenePos())
        x, y = point.x(), point.y()
        if self._bounds is not None:
            x0, x1, y0, y1 = self._bounds
            if not (x0 <= x <= x1 and y0 <= y <= y1):
                return
        event.accept()
        self.start_requested.emit(float(x), float(y))

    def set_probe(self, probe: dict | None) -> None:
        """Draw the followed particle (``FrameBundle.probe``) or remove it (None)."""
        self.probe = probe
        if probe is None or not len(probe["positions"]):
            self.probe_path.setPath(QPainterPath())
            self.probe_recent.setPath(QPainterPath())
            self.probe_start.setData([], [])
            self.probe_dot.setData([], [])
            return
        for item, points in ((self.probe_path, probe["positions"]),
                             (self.probe_recent, probe["positions"][-PROBE_RECENT:])):
            path = broken_at_jumps(points, self._bounds)
            item.setPath(pg.arrayToQPath(path[:, 0], path[:, 1], connect="finite"))
        self.probe_start.setData([probe["start"][0]], [probe["start"][1]])
        here = probe["positions"][-1]
        self.probe_dot.setData([here[0]], [here[1]])

    def set_structure(self, structure, bounds: np.ndarray) -> None:
        """Draw the heatmap and contours from the engine's grid analysis; markers always, the
        (costly) heatmap and contours only when the landscape grid itself changed."""
        self._bounds = np.asarray(bounds)
        self._structure = structure
        try:
            self._draw_structure(structure)
        finally:
            if self._last_scene_pos is not None:  # the readout describes what is shown now
                self.readout.setText(self.readout_text(self._last_scene_pos))

    def _draw_structure(self, structure) -> None:
        if structure is None:
            return
        self.minima.setData([m.x for m in structure.minima], [m.y for m in structure.minima])
        self.saddles.setData([s.x for s, _ in structure.saddles],
                             [s.y for s, _ in structure.saddles])
        values = structure.values
        if self._grid is not None and (self._grid[2] is values or (
                self._grid[2].shape == values.shape
                and np.array_equal(self._grid[2], values, equal_nan=True))):
            return  # the same landscape (equal values: e.g. from a restarted engine process)
        self._grid = (structure.grid_x, structure.grid_y, values)
        finite = values[np.isfinite(values)]
        low, high = np.percentile(finite, [0.0, 97.0])
        shown = np.clip(np.where(np.isfinite(values), values, high), low, high)
        levels = np.quantile(finite[finite <= high], np.linspace(0.04, 0.96, CONTOURS))
        x0, x1, y0, y1 = self._bounds
        # heatmap and contour lines baked into one static RGBA image, painted from a pixmap
        # cache: twelve isocurve items were re-stroked on every frame
        self.heat.setImage(contoured_heatmap(shown, low, high, levels).transpose(1, 0, 2),
                           autoLevels=False)
        self.heat.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0.02)
        self.plot.disableAutoRange()  # fixed axes: no axis repaint per frame

    def show_frame(self, bundle: FrameBundle) -> None:
        frame = bundle.frame
        if self.presets is not None:  # the markers' step limits follow the run's dynamics
            self._dynamics = self.presets.preset.dynamics
        positions = frame.positions
        if bundle.state.generation != self._generation or (
                self._trail_steps.size and frame.step < self._trail_steps[-1]):  # new run, reset
            self._generation = bundle.state.generation
            self._trail = np.zeros((0, min(TRAIL_PARTICLES, len(positions)), 2))
            self._trail_steps = np.zeros(0, dtype=np.int64)
        n = positions.shape[0]
        if bundle.density is not None:  # large N: the worker binned the cloud
            counts = bundle.density
            if len(self.scatter):
                self.scatter.setData(np.zeros((0, 2)))
            occupied = counts[counts > 0]
            top = max(1.0, float(np.percentile(occupied, 99))) if occupied.size else 1.0
            self.density.setImage(counts.T, autoLevels=False, levels=(0.0, top))
            x0, x1, y0, y1 = bundle.bounds
            self.density.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self.density.setVisible(True)
        else:
            self.density.setVisible(False)
            self.scatter.setData(positions)   # the frame's own read-only snapshot
        k = min(TRAIL_PARTICLES, n)
        recent = np.flatnonzero(self._trail_steps > frame.step - TRAIL_STEPS)[-TRAIL_LENGTH + 1:]
        self._trail = np.concatenate([self._trail[recent], positions[None, :k]])
        self._trail_steps = np.append(self._trail_steps[recent], frame.step)
        if k:
            pieces = [broken_at_jumps(self._trail[:, j], bundle.bounds) for j in range(k)]
            joined = np.concatenate([np.vstack([piece, [[np.nan, np.nan]]])
                                     for piece in pieces])
            self.trails.setPath(pg.arrayToQPath(joined[:, 0], joined[:, 1], connect="finite"))
        else:
            self.trails.setPath(QPainterPath())

    def _mouse_moved(self, event) -> None:
        self._last_scene_pos = event[0]
        self.readout.setText(self.readout_text(event[0]))

    def readout_text(self, scene_pos) -> str:
        """x, y and f under the cursor; over a minimum's or saddle's marker, what the engine
        knows of that critical point."""
        point = self.plot.plotItem.vb.mapSceneToView(scene_pos)
        x, y = point.x(), point.y()
        text = f"x = {x:.4g}, y = {y:.4g}"
        if self._grid is not None:
            gx, gy, values = self._grid
            if gx[0] <= x <= gx[-1] and gy[0] <= y <= gy[-1]:
                ix = int(np.clip(np.rint((x - gx[0]) / (gx[1] - gx[0])), 0, gx.size - 1))
                iy = int(np.clip(np.rint((y - gy[0]) / (gy[1] - gy[0])), 0, gy.size - 1))
                text += f", f ≈ {values[iy, ix]:.5g}"
        marker = self._marker_at(scene_pos)
        return text if marker is None else f"{text}  ·  {marker}"

    def _marker_at(self, scene_pos, radius: float = MARKER_PICK_PIXELS) -> str | None:
        structure = self._structure
        if structure is None:
            return None
        view = self.plot.plotItem.vb
        points = [(c, k, True) for k, c in enumerate(structure.minima)]
        points += [(c, pair, False) for c, pair in structure.saddles]
        best = None
        for crit, label, is_minimum in points:
            at = view.mapViewToScene(QPointF(crit.x, crit.y))
            distance = float(np.hypot(at.x() - scene_pos.x(), at.y() - scene_pos.y()))
            if distance <= radius and (best is None or distance < best[0]):
                best = (distance, crit, label, is_minimum)
        if best is None:
            return None
        _, crit, label, is_minimum = best
        eig = np.linalg.eigvalsh(crit.hessian)
        curvature = f"Hessian eigenvalues {eig[0]:.4g}, {eig[1]:.4g}"
        if not is_minimum:
            return (f"saddle between minima {label[0]} and {label[1]}: f = {crit.f:.5g}, "
                    f"{curvature}")
        text = f"minimum {label}: f = {crit.f:.5g}, {curvature}"
        limit = crit.gd_step_limit()
        if limit is not None:
            text += f", GD converges to it for η < 2/λ_max = {limit:.4g}"
            beta = 0.0 if self._dynamics is None or self._dynamics.kind == "gd" else \
                self._dynamics.momentum
            if beta > 0:
                text += (f" (with β = {beta:.3g}: η < 2(1 + β)/λ_max = "
                         f"{crit.gd_step_limit(beta):.4g})")
        if structure.temperature > 0:
            text += (f", Laplace weight {structure.weights[label]:.3g} at "
                     f"T = {structure.temperature:.3g}")
        return text
