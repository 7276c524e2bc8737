"""Fast 2D binning of particle positions (numba), for density images and empirical measures."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _bin(positions, x0, x1, y0, y1, bins, out):
    sx = bins / (x1 - x0)
    sy = bins / (y1 - y0)
    for i in range(positions.shape[0]):
        x = positions[i, 0]
        y = positions[i, 1]
        if x0 <= x <= x1 and y0 <= y <= y1:
            ix = min(int((x - x0) * sx), bins - 1)
            iy = min(int((y - y0) * sy), bins - 1)
            out[iy, ix] += 1.0


def histogram2d(positions: np.ndarray, bounds: np.ndarray, bins: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """Counts per cell over ``bounds = [x0, x1, y0, y1]``, shape ``(bins, bins)``, rows = y.

    Adds into ``out`` when given (accumulating an empirical measure).
    """
    if out is None:
        out = np.zeros((bins, bins))
    _bin(np.ascontiguousarray(positions, dtype=np.float64), float(bounds[0]), float(bounds[1]),
         float(bounds[2]), float(bounds[3]), int(bins), out)
    return out
