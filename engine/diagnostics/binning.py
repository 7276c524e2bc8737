"""Fast 2D binning of particle positions (numba), for density images and empirical measures."""
from __future__ import annotations

import numba
import numpy as np
from numba import njit

from ..dynamics import run_blocks

PARALLEL_POINTS = 200_000  # below this one thread bins faster than two plus the merge


@njit(cache=True, nogil=True)
def _bin(positions, x0, x1, y0, y1, bins, out):
    # Two passes: every point's cell first (branch-free, vectorised), then the counts.  One
    # loop that tests, converts and adds per point took twice as long here (12 against 7 ms
    # for 10⁶ points on one thread), sorted input included: not cache misses.
    sx = bins / (x1 - x0)
    sy = bins / (y1 - y0)
    n = positions.shape[0]
    cells = np.empty(n, dtype=np.int64)
    for i in range(n):
        x = positions[i, 0]
        y = positions[i, 1]
        inside = (x0 <= x) & (x <= x1) & (y0 <= y) & (y <= y1)  # NaN: outside
        ix = min(int((x - x0) * sx), bins - 1) if inside else 0
        iy = min(int((y - y0) * sy), bins - 1) if inside else 0
        cells[i] = iy * bins + ix if inside else -1
    flat = out.reshape(-1)
    for i in range(n):
        cell = cells[i]
        if cell >= 0:
            flat[cell] += 1.0


@njit(cache=True, nogil=True)
def _bin_parts(first, last, positions, x0, x1, y0, y1, bins, parts):
    """Bin the ``parts.shape[0]`` equal slices ``first … last − 1`` of ``positions``, each into
    its own histogram ``parts[k]`` (threads never add into the same cells)."""
    n, count = positions.shape[0], parts.shape[0]
    for part in range(first, last):
        _bin(positions[n * part // count:n * (part + 1) // count], x0, x1, y0, y1, bins,
             parts[part])


def histogram2d(positions: np.ndarray, bounds: np.ndarray, bins: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """Counts per cell over ``bounds = [x0, x1, y0, y1]``, shape ``(bins, bins)``, rows = y.

    Adds into ``out`` when given (accumulating an empirical measure).
    """
    if out is None:
        out = np.zeros((bins, bins))
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    box = (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]), int(bins))
    threads = numba.get_num_threads()
    if positions.shape[0] < PARALLEL_POINTS or threads < 2:
        _bin(positions, *box, out)
        return out
    # the window bins 10⁶ points a frame: one histogram per thread, then their (exact, integer)
    # sum
    parts = np.zeros((threads, bins, bins))
    run_blocks(_bin_parts, threads, positions.shape[0], (positions, *box, parts))
    out += parts.sum(axis=0)
    return out
