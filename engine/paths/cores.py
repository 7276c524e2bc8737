"""The core sets A and B of ``run``'s escape tracking, on any grid.

``Simulation.attach_structure`` labels, on the structure analysis's grid, the cells of basin ``i``
with ``f < f_i + core_fraction·ΔU_i`` (``ΔU_i`` its lowest barrier) as core set ``i``, and looks
particles up at the nearest cell of that grid.  :func:`core_grid` builds the same labels (the
tests compare them with the simulation's) and :func:`core_labels` looks points up the same way, so
the committor's A and B are exactly the sets whose entries ``run`` logs as escape events.
"""
from __future__ import annotations

import numpy as np


def core_grid(structure, core_fraction: float = 0.5) -> np.ndarray:
    """Core label per cell of ``structure``'s grid (−1 outside every core), ``(ny, nx)``."""
    basins, values = structure.basins, structure.values
    cores = np.full(basins.shape, -1, dtype=np.int32)
    for i, minimum in enumerate(structure.minima):
        barriers = [s.f - minimum.f for s, pair in structure.saddles if i in pair]
        depth = min(barriers) if barriers else float(np.nanmax(values) - minimum.f)
        cores[(basins == i) & (values < minimum.f + core_fraction * depth)] = i
    return cores


def core_labels(structure, points: np.ndarray, core_fraction: float = 0.5,
                cores: np.ndarray | None = None) -> np.ndarray:
    """Core label of each point: that of the nearest node of the structure grid (points off the
    grid take the edge node, as the step kernel does), int64 ``(M,)``."""
    cores = core_grid(structure, core_fraction) if cores is None else cores
    points = np.asarray(points, float).reshape(-1, 2)
    gx, gy = structure.grid_x, structure.grid_y
    ix = np.clip(np.rint((points[:, 0] - gx[0]) / (gx[1] - gx[0])), 0, gx.size - 1)
    iy = np.clip(np.rint((points[:, 1] - gy[0]) / (gy[1] - gy[0])), 0, gy.size - 1)
    return cores[iy.astype(np.int64), ix.astype(np.int64)].astype(np.int64)


# −ζ(1/2)/√(2π): a Gaussian random walk monitored at discrete steps crosses a level as a
# continuous path would cross that level moved outward by β step standard deviations
# (Siegmund 1979; Broadie, Glasserman & Kou 1997, the "continuity correction").
SIEGMUND_BETA = 0.5825971579390106


def discrete_monitoring_shift(temperature: float, lr: float) -> float:
    """How far inside a core set's boundary a Langevin chain ``x ← x − η∇f + √(2ηT)ξ`` whose
    core membership is checked once a step effectively enters it: ``β √(2ηT)``."""
    return SIEGMUND_BETA * (2.0 * lr * temperature) ** 0.5


def erode(mask: np.ndarray, hx: float, hy: float, distance: float) -> np.ndarray:
    """The cells of ``mask`` (a cell-centred grid of spacings ``hx``, ``hy``) farther than
    ``distance`` inside its boundary (taken halfway between a cell and its outside neighbour)."""
    from scipy.ndimage import distance_transform_edt
    mask = np.asarray(mask, bool)
    if distance <= 0 or not mask.any():
        return mask.copy()
    inside = distance_transform_edt(mask, sampling=(hy, hx))
    return mask & (inside - 0.5 * min(hx, hy) > distance)
