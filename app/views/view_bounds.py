"""Bounding rectangles reused while the view stands still.

Qt asks every item for its bounding rectangle several times per repaint of the landscape view,
which repaints for every frame.  pyqtgraph items pad their data rectangle by a few device
pixels, mapped to data units through ``pixelVectors()``: ≈ 0.1 ms of Python per call, 1.2 ms
per frame for the particle cloud and the minimum and saddle markers together at 10⁴
particles.  The padded rectangle depends only on the item's data and the view's scale, so it
is computed once for each of those.
"""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import QRectF


class ViewCachedBounds:
    """Mixin (before the pyqtgraph item class): ``boundingRect()`` is recomputed only when the
    view's scale changed or the subclass called :meth:`bounds_changed` (new data)."""

    _bounds_revision = 0
    _bounds_key: tuple | None = None
    _bounds = QRectF()

    def bounds_changed(self) -> None:
        self._bounds_revision += 1

    def uncached_bounding_rect(self) -> QRectF:
        """The rectangle itself (by default the item class's own ``boundingRect``)."""
        return super().boundingRect()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        box = self.getViewBox()
        if box is None:
            return self.uncached_bounding_rect()
        # the view's data → pixel scale (the padding depends on nothing else); its range
        # state can run ahead of this transform, which pyqtgraph updates before painting
        view = box.childGroup.transform()
        key = (self._bounds_revision, view.m11(), view.m12(), view.m21(), view.m22())
        if key != self._bounds_key:
            self._bounds = QRectF(self.uncached_bounding_rect())
            self._bounds_key = key
        return QRectF(self._bounds)


class StaticMarkers(ViewCachedBounds, pg.ScatterPlotItem):
    """A few fixed markers (minima, saddles) drawn over a moving cloud."""

    def setData(self, *args, **kwargs) -> None:  # noqa: N802 - pyqtgraph's name
        self.bounds_changed()
        super().setData(*args, **kwargs)
