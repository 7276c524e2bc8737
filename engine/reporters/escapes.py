"""Escape tracking as a reporter: core sets around the minima, the basin of every particle and
the log of core-set entries (docs/science.md § 4).

Entering a core set is detected inside the step kernels, where the particle is (a separate pass
over the ensemble would cost as much as a step, and would miss entries between its visits):
:func:`engine.dynamics.track_core` writes ``(step, particle, from, to)`` rows into per-block
event buffers.  :class:`EscapeReporter` owns the core-set grids the kernels read, allocates those
buffers for each piece of a chunk (:meth:`pieces`, :meth:`buffers`) and takes their rows into its
:class:`~engine.diagnostics.escapes.EscapeLog` after every piece (:meth:`collect`), so no event is
lost and the kernels do no bookkeeping of their own.  At recording steps it adds the basin of
every particle to a recorded frame and the occupation of every state to the series
(:meth:`extend_record`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..diagnostics.escapes import EVENT_LOG_CAPACITY, EscapeLog

# the largest event buffer of one kernel call (worst case: a row per particle and step)
EVENT_BUFFER_BYTES = 256 * 2**20


@njit(cache=True, nogil=True)
def _nearest_cell_labels(points, grid, x0, x1, dx, y0, y1, dy, out):
    """``out[i] = grid[iy, ix]`` of the grid node nearest to ``points[i]`` (clipped first, so
    far-flung points take the edge node and nothing overflows)."""
    ny, nx = grid.shape
    for i in range(points.shape[0]):
        x = min(max(points[i, 0], x0), x1)
        y = min(max(points[i, 1], y0), y1)
        ix = min(int(np.rint((x - x0) / dx)), nx - 1)
        iy = min(int(np.rint((y - y0) / dy)), ny - 1)
        out[i] = grid[iy, ix]


class EscapeReporter:
    """Core sets and escape events of one run (none until :meth:`attach`).

    ``cores[iy, ix]`` ≥ 0 labels a core cell of the grid ``grid_x × grid_y``, −1 elsewhere;
    ``basin_grid`` labels every cell with its basin (the cores themselves without a structure
    analysis); ``core_geom`` is ``(x₀, y₀, 1/dx, 1/dy)`` as the kernels read it."""

    def __init__(self, log_capacity: int = EVENT_LOG_CAPACITY):
        self.log_capacity = log_capacity
        self.structure = None
        self.cores = np.full((1, 1), -1, dtype=np.int32)
        self.basin_grid = self.cores
        self.grid_x = self.grid_y = np.zeros(2)
        self.core_geom = np.zeros(4)
        self.log: EscapeLog | None = None
        self.dropped = 0  # events past a buffer's capacity (ruled out by pieces())

    @property
    def tracking(self) -> bool:
        """Whether core sets are attached (the kernels log entries)."""
        return self.cores.shape != (1, 1)

    def attach(self, cores: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray,
               structure=None) -> None:
        """Track entries into ``cores`` (see the class docstring); ``structure`` (a
        :class:`~engine.diagnostics.structure.Structure`) gives the basins."""
        self.structure = structure
        self.basin_grid = structure.basins if structure is not None else cores
        self.grid_x, self.grid_y = np.asarray(grid_x), np.asarray(grid_y)
        self.cores = np.ascontiguousarray(cores, dtype=np.int32)
        self.core_geom = np.array([grid_x[0], grid_y[0], 1.0 / (grid_x[1] - grid_x[0]),
                                   1.0 / (grid_y[1] - grid_y[0])])

    def restart(self, states: np.ndarray, step: int) -> None:
        """Start the statistics afresh at ``step`` from the particles' ``states``."""
        labels = max(int(self.cores.max()), int(self.basin_grid.max())) if self.tracking else 0
        self.log = EscapeLog(states, step, labels + 1, self.log_capacity)
        self.dropped = 0

    # -- labels ----------------------------------------------------------------------------------
    def lookup(self, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Label of the grid cell nearest to each point; points off the grid take the edge
        cell (as in the step kernel), far-flung finite ones included."""
        gx, gy = self.grid_x, self.grid_y
        out = np.empty(len(points), dtype=grid.dtype)
        _nearest_cell_labels(np.ascontiguousarray(points, dtype=np.float64), grid,
                             float(gx[0]), float(gx[-1]), float(gx[1] - gx[0]),
                             float(gy[0]), float(gy[-1]), float(gy[1] - gy[0]), out)
        return out

    def basin_of(self, points: np.ndarray) -> np.ndarray:
        """Basin (or user core label) of each point, −1 where none; int64 ``(M,)``."""
        if self.structure is None and not self.tracking:
            return np.full(len(points), -1, dtype=np.int64)
        return self.lookup(self.basin_grid, points).astype(np.int64)

    def starting_states(self, points: np.ndarray) -> np.ndarray:
        """A particle's state starts as the core it is in, else the basin it is in."""
        if not self.tracking:
            return np.full(len(points), -1, dtype=np.int32)
        core = self.lookup(self.cores, points)
        return np.where(core >= 0, core, self.lookup(self.basin_grid, points)).astype(np.int32)

    # -- the kernels' events ---------------------------------------------------------------------
    def pieces(self, chunk: int, particles: int):
        """``(first, length)`` of the pieces a chunk of ``chunk`` steps is cut into, so that
        buffers of one row per particle and step — a particle enters at most one core set a
        step, so they cannot overflow — stay within :data:`EVENT_BUFFER_BYTES` (only the rows
        written are ever touched).  Untracked runs take the chunk whole."""
        if not self.tracking:
            return [(0, chunk)]
        longest = max(1, EVENT_BUFFER_BYTES // (32 * max(1, particles)))
        return [(first, min(chunk - first, longest)) for first in range(0, chunk, longest)]

    @staticmethod
    def buffers(n_blocks: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
        """Empty per-block event rows (``capacity`` each) and their counts, for one kernel
        call."""
        return (np.empty((n_blocks, capacity, 4), dtype=np.int64),
                np.zeros(n_blocks, dtype=np.int64))

    def collect(self, event_buffer: np.ndarray, event_count: np.ndarray, capacity: int) -> None:
        """Take a kernel call's per-block event rows into the log (rows past a block's
        ``capacity``, which :meth:`pieces` rules out, would be counted as dropped)."""
        if not event_count.any():
            return
        kept = np.minimum(event_count, capacity)
        self.log.add(np.concatenate(
            [event_buffer[b, :kept[b]] for b in range(len(event_count)) if kept[b]]))
        self.dropped += int((event_count - kept).sum())

    # -- records ---------------------------------------------------------------------------------
    def extend_record(self, per_particle: dict | None, scalars: dict, positions: np.ndarray,
                      states: np.ndarray, alive: np.ndarray, living: float) -> None:
        """Add each particle's basin to a recorded frame and the fraction of living particles
        whose last state is ``s`` to the series as ``occupation_s``."""
        if not self.tracking:
            return
        if per_particle is not None:
            per_particle["basin"] = self.basin_of(positions)
        n_states = int(self.basin_grid.max()) + 1
        counts = np.bincount(states[alive & (states >= 0)], minlength=n_states)
        for state, count in enumerate(counts[:n_states]):
            scalars[f"occupation_{state}"] = count / max(living, 1.0)
