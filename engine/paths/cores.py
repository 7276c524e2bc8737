"""The core sets A and B of ``run``'s escape tracking, on any grid.

``Simulation.attach_structure`` labels, on the structure analysis's grid, the cells of basin ``i``
with ``f < f_i + core_fraction·ΔU_i`` (``ΔU_i`` its lowest barrier) as core set ``i``, and looks
particles up at the nearest cell of that grid.  :func:`core_grid` builds the same labels (the
tests compare them with the simulation's) and :func:`core_labels` looks points up the same way, so
the committor's A and B are exactly the sets whose entries ``run`` logs as escape events.
"""
from __future__ import annotations

import numpy as np


def core_levels(structure, core_fraction: float = 0.5) -> np.ndarray:
    """Per minimum the level ``f_i + core_fraction·ΔU_i`` below which its basin is core."""
    levels = []
    for i, minimum in enumerate(structure.minima):
        barriers = [s.f - minimum.f for s, pair in structure.saddles if i in pair]
        depth = min(barriers) if barriers else float(np.nanmax(structure.values) - minimum.f)
        levels.append(minimum.f + core_fraction * depth)
    return np.array(levels)


def core_grid(structure, core_fraction: float = 0.5) -> np.ndarray:
    """Core label per cell of ``structure``'s grid (−1 outside every core), ``(ny, nx)``."""
    basins, values = structure.basins, structure.values
    cores = np.full(basins.shape, -1, dtype=np.int32)
    for i, level in enumerate(core_levels(structure, core_fraction)):
        cores[(basins == i) & (values < level)] = i
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


def monitored_core_labels(structure, points: np.ndarray, evaluate, shift: float,
                          core_fraction: float = 0.5) -> np.ndarray:
    """The core sets as a chain checked once a step sees them: :func:`core_labels` without the
    points closer than ``shift`` to the edge of their core, an edge being the level set
    ``f = level`` — to first order, ``f(x) + |∇f(x)|·shift ≥ level``.  Sub-cell accurate on any
    grid (eroding whole cells would move the edge by up to half a cell)."""
    labels = core_labels(structure, points, core_fraction)
    if shift <= 0:
        return labels
    rows = evaluate(np.asarray(points, float).reshape(-1, 2))
    levels = core_levels(structure, core_fraction)
    inside = labels >= 0
    reach = rows[:, 0] + np.hypot(rows[:, 1], rows[:, 2]) * shift
    keep = np.ones(labels.shape, bool)
    keep[inside] = reach[inside] < levels[labels[inside]]
    return np.where(keep, labels, -1)
