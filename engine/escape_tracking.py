"""Escape tracking: core sets around the minima, the basin of every particle and the log of
core-set entries (a mixin of :class:`engine.simulation.Simulation`; the step kernels write the
events, see :func:`engine.dynamics.track_core`)."""
from __future__ import annotations

import numpy as np
from numba import njit

from . import dynamics as dyn
from .diagnostics.escapes import EscapeLog

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


class EscapeTracking:
    """Core sets, basins and escape events of a run."""

    @property
    def escapes_enabled(self) -> bool:
        return self.structure is not None

    def attach_structure(self, structure, core_fraction: float = 0.5) -> None:
        """Track basins and core-set escape events using a structure analysis.

        The core set of basin ``i`` is ``{f < f_i + core_fraction·ΔU_i}`` within the basin, with
        ``ΔU_i`` its lowest barrier (docs/science.md § 4), so recrossings of a ridge are not events.
        """
        basins, values = structure.basins, structure.values
        cores = np.full(basins.shape, -1, dtype=np.int32)
        for i, minimum in enumerate(structure.minima):
            barriers = [s.f - minimum.f for s, pair in structure.saddles if i in pair]
            depth = min(barriers) if barriers else float(np.nanmax(values) - minimum.f)
            cores[(basins == i) & (values < minimum.f + core_fraction * depth)] = i
        self.attach_cores(cores, structure.grid_x, structure.grid_y, structure)

    def attach_cores(self, cores: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray,
                     structure=None) -> None:
        """Track escapes between user-given core sets: ``cores[iy, ix]`` ≥ 0 labels a core cell
        of the regular grid ``grid_x × grid_y`` (nearest cell), −1 elsewhere."""
        self._deferred = self._record_work = None  # the history restarts below
        self.structure = structure
        self._basin_grid = structure.basins if structure is not None else cores
        self._grid_x, self._grid_y = np.asarray(grid_x), np.asarray(grid_y)
        self._cores = np.ascontiguousarray(cores, dtype=np.int32)
        self._core_geom = np.array([grid_x[0], grid_y[0], 1.0 / (grid_x[1] - grid_x[0]),
                                    1.0 / (grid_y[1] - grid_y[0])])
        self.last_core = self._starting_states(self.positions)
        self.restart_escapes()
        self.history.clear()
        self._record()

    def restart_escapes(self) -> None:
        """Start escape statistics afresh from the current state (e.g. after T changed)."""
        labels = max(int(self._cores.max()), int(self._basin_grid.max())) \
            if self._cores.shape != (1, 1) else 0
        self.escape_log = EscapeLog(self.last_core, self.step, labels + 1,
                                    self._event_log_capacity)
        self.events_dropped = 0

    @property
    def initial_core(self) -> np.ndarray:
        """Each particle's state when escape statistics (re)started."""
        return self.escape_log.initial

    @property
    def escape_start(self) -> int:
        """The step escape statistics (re)started at."""
        return self.escape_log.start

    def _grid_lookup(self, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Label of the grid cell nearest to each point; points off the grid take the edge
        cell (as in the step kernel), far-flung finite ones included."""
        gx, gy = self._grid_x, self._grid_y
        out = np.empty(len(points), dtype=grid.dtype)
        _nearest_cell_labels(np.ascontiguousarray(points, dtype=np.float64), grid,
                             float(gx[0]), float(gx[-1]), float(gx[1] - gx[0]),
                             float(gy[0]), float(gy[-1]), float(gy[1] - gy[0]), out)
        return out

    def basin_of(self, points: np.ndarray) -> np.ndarray:
        """Basin (or user core label) of each point, −1 where none; int64 ``(M,)``."""
        if not self.escapes_enabled and self._cores.shape == (1, 1):
            return np.full(len(points), -1, dtype=np.int64)
        return self._grid_lookup(self._basin_grid, points).astype(np.int64)

    def _starting_states(self, points: np.ndarray) -> np.ndarray:
        """A particle's state starts as the core it is in, else the basin it is in."""
        if self._cores.shape == (1, 1):
            return np.full(len(points), -1, dtype=np.int32)
        core = self._grid_lookup(self._cores, points)
        return np.where(core >= 0, core, self._grid_lookup(self._basin_grid, points)).astype(
            np.int32)

    def event_count(self) -> int:
        """How many escape events so far (all of them, retained or not)."""
        return self.escape_log.total

    def recent_events(self, count: int) -> np.ndarray:
        """The latest ``count`` escape events (at most the retained ones), sorted like
        :meth:`events`."""
        return self.escape_log.recent(count)

    def events(self) -> np.ndarray:
        """Escape events so far, ``(E, 4)`` int64 rows (step, particle, from, to) sorted by step
        and particle: all of them, or the latest ``event_log_capacity`` on a longer run (the
        statistics of :func:`engine.api.escape_summary` still cover every event)."""
        return self.escape_log.events()

    EVENT_BLOCK = dyn.BLOCK  # particles per block of the kernel's event buffers

    def _step_chunk(self, chunk: int) -> None:
        """Advance every particle ``chunk`` steps (:meth:`_kernel_chunk`) without losing an
        escape event: a particle enters at most one core set per step, so buffers of one row
        per particle and step cannot overflow.  They are allocated for pieces of the chunk
        short enough that this worst case stays within :data:`EVENT_BUFFER_BYTES` (only the
        rows written are ever touched); the pieces take the same steps as the whole chunk,
        since every particle draws from its own stream and the kernels are chunk-proof."""
        if self._cores.shape == (1, 1):
            self._kernel_chunk(chunk, 0, self.step)
            return
        longest = max(1, EVENT_BUFFER_BYTES // (32 * max(1, self.positions.shape[0])))
        for first in range(0, chunk, longest):
            piece = min(chunk - first, longest)
            capacity = self.EVENT_BLOCK * piece
            # the kernels number steps globally (event steps, the tangent's flush cadence)
            event_buffer, event_count = self._kernel_chunk(piece, capacity, self.step + first)
            self._collect_events(event_buffer, event_count, capacity)

    def _collect_events(self, event_buffer: np.ndarray, event_count: np.ndarray,
                        capacity: int) -> None:
        """Hand a chunk's per-block event rows to the escape log (rows past a block's
        ``capacity``, which :meth:`_step_chunk` rules out, would be counted as dropped)."""
        if not event_count.any():
            return
        kept = np.minimum(event_count, capacity)
        self.escape_log.add(np.concatenate(
            [event_buffer[b, :kept[b]] for b in range(len(event_count)) if kept[b]]))
        dropped = int((event_count - kept).sum())
        self.events_dropped += dropped
