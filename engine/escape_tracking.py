"""The simulation's face of escape tracking (a mixin of :class:`engine.simulation.Simulation`):
attaching core sets, the events and basins, and stepping so that the kernels' core-set entries
reach the :class:`~engine.reporters.escapes.EscapeReporter` that owns them.

The reporter's fields keep their names among the simulation's declared state (``escape_log``,
``_cores`` …, see :attr:`engine.simulation.Simulation.RUN_FIELDS`): checkpoints, restores and
code that reads them see one state, held in one place."""
from __future__ import annotations

import numpy as np

from . import dynamics as dyn
from .reporters.base import Delegated
from .reporters.escapes import EscapeReporter

__all__ = ["EscapeTracking"]


class EscapeTracking:
    """Core sets, basins and escape events of a run (held by ``self.escapes``, an
    :class:`~engine.reporters.escapes.EscapeReporter`)."""

    escapes: EscapeReporter
    structure = Delegated("escapes", "structure")
    escape_log = Delegated("escapes", "log")
    events_dropped = Delegated("escapes", "dropped")
    _cores = Delegated("escapes", "cores")
    _basin_grid = Delegated("escapes", "basin_grid")
    _grid_x = Delegated("escapes", "grid_x")
    _grid_y = Delegated("escapes", "grid_y")
    _core_geom = Delegated("escapes", "core_geom")

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
        self.recorder.drop_pending()  # the history restarts below
        self.escapes.attach(cores, grid_x, grid_y, structure)
        self.last_core = self._starting_states(self.positions)
        self.restart_escapes()
        self.history.clear()
        self._record()

    def restart_escapes(self) -> None:
        """Start escape statistics afresh from the current state (e.g. after T changed)."""
        self.escapes.restart(self.last_core, self.step)

    @property
    def initial_core(self) -> np.ndarray:
        """Each particle's state when escape statistics (re)started."""
        return self.escape_log.initial

    @property
    def escape_start(self) -> int:
        """The step escape statistics (re)started at."""
        return self.escape_log.start

    def _grid_lookup(self, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Label of the grid cell nearest to each point (:meth:`EscapeReporter.lookup`)."""
        return self.escapes.lookup(grid, points)

    def basin_of(self, points: np.ndarray) -> np.ndarray:
        """Basin (or user core label) of each point, −1 where none; int64 ``(M,)``."""
        return self.escapes.basin_of(points)

    def _starting_states(self, points: np.ndarray) -> np.ndarray:
        """A particle's state starts as the core it is in, else the basin it is in."""
        return self.escapes.starting_states(points)

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
        escape event: in the pieces :meth:`EscapeReporter.pieces` cuts the chunk into, each
        with buffers that cannot overflow, handed to the reporter after each piece.  The
        pieces take the same steps as the whole chunk, since every particle draws from its own
        stream and the kernels are chunk-proof."""
        escapes = self.escapes
        tracking = escapes.tracking
        for first, piece in escapes.pieces(chunk, self.positions.shape[0]):
            capacity = self.EVENT_BLOCK * piece if tracking else 0
            # the kernels number steps globally (event steps, the tangent's flush cadence)
            event_buffer, event_count = self._kernel_chunk(piece, capacity, self.step + first)
            if tracking:
                escapes.collect(event_buffer, event_count, capacity)

    def _collect_events(self, event_buffer: np.ndarray, event_count: np.ndarray,
                        capacity: int) -> None:
        """Hand a kernel call's per-block event rows to the reporter."""
        self.escapes.collect(event_buffer, event_count, capacity)
