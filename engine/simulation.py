"""An ensemble of N particles on a 2D landscape: the object the GUI, the CLI and tests drive.

``Simulation(preset)`` owns every array of the run, one random stream per particle and a bounded
:class:`~engine.history.History`.  ``advance(n)`` integrates in compiled chunks that stop at the
recording points; ``update_params`` changes η, T, B, β, N (and more) between chunks without a
restart; ``snapshot()`` returns a :class:`Frame` of read-only copies.  A run is a pure function of
its preset, seed and sequence of parameter changes: ``advance(a); advance(b)`` ≡ ``advance(a+b)``,
bitwise, whatever the thread count.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from numba import njit

from . import dynamics as dyn
from .diagnostics.escapes import EVENT_LOG_CAPACITY, EscapeLog
from .history import History
from .kinds import kind_named
from .kinds.sgd import minibatch_factor
from .landscapes import BUILTINS, Landscape, compile_expression
from .presets import DynamicsSpec, Preset, PresetError
from .rng import ZIGGURAT_F, ZIGGURAT_X, draw_normals, draw_uniforms, particle_states
from .schedules import scheduled

PURPOSE_STEPS, PURPOSE_INIT, PURPOSE_DATA = 0, 1, 2
EVENT_CAPACITY = 1024  # initial events per block and chunk; grows if ever exceeded
QUANTILE_SAMPLE = 2**17  # particles behind the recorded γ̂ quantiles (standard error ≈ 0.005 σ)
RECORD_SLICE = 2**17  # particles per record piece (flush_record(seconds)); a multiple of dyn.BLOCK
LIVE_PARAMS = ("kind", "lr", "temperature", "batch_size", "momentum", "noise", "noise_scale",
               "particles", "landscape_params", "friction", "beta1", "beta2", "eps",
               "weight_decay")
# live parameters that only steer the steps to come: a record left pending by
# ``advance(defer_record=True)`` is still taken after they change (with the values of its step)
STEP_ONLY_PARAMS = frozenset({"kind", "lr", "temperature", "batch_size", "momentum", "noise",
                              "noise_scale", "friction", "beta1", "beta2", "eps",
                              "weight_decay"})
_LANDSCAPES: dict[tuple, Landscape] = {}


def simulation_class(preset: Preset) -> type:
    """The class that runs ``preset``, as its kind says (:meth:`engine.kinds.Kind.
    simulation_class`): e.g. :class:`engine.ghost_simulation.GhostSimulation` for kind ghost
    and for minibatch SGD on the classifier's data."""
    return kind_named(preset.dynamics.kind).simulation_class(preset)


def _copied(value):
    """A copy of a state field that later steps cannot change: arrays and objects with a
    ``copy`` method (the escape log, the history) are copied, immutable values shared."""
    if isinstance(value, np.ndarray) or hasattr(value, "copy"):
        return value.copy()
    return value


CHECKPOINT_VERSION = 2  # bumped whenever the declared state fields change meaning


def landscape_for(preset: Preset) -> Landscape:
    """The compiled landscape of a preset (expressions compiled once per text and parameter set)."""
    spec = preset.landscape
    if spec.builtin == "sine_classifier":
        from .ghost import classifier_for
        try:
            return classifier_for(spec.params, preset.dynamics.dataset_size, preset.ensemble.seed)
        except ValueError as exc:
            raise PresetError(preset.source, "landscape.params", str(exc)) from None
    if spec.builtin is not None:
        return BUILTINS[spec.builtin]
    key = (spec.expr, tuple(spec.params), spec.max_operations)
    if key not in _LANDSCAPES:
        from .landscapes import ExpressionError
        from .landscapes.expression import MAX_OPERATIONS
        try:
            _LANDSCAPES[key] = compile_expression(spec.expr, spec.params,
                                                  max_operations=spec.max_operations
                                                  or MAX_OPERATIONS)
        except ExpressionError as exc:
            raise PresetError(preset.source, "landscape.expr", str(exc)) from None
    return _LANDSCAPES[key]


def bounds_of(preset: Preset, landscape: Landscape) -> np.ndarray:
    """``[x_lo, x_hi, y_lo, y_hi]`` of the preset, or the landscape's defaults."""
    b = preset.landscape.bounds or landscape.default_bounds
    return np.array([b[0][0], b[0][1], b[1][0], b[1][1]], dtype=np.float64)


def equivalent_langevin(spec: Preset | DynamicsSpec) -> tuple[float, float]:
    """``(T, η)`` of the overdamped Langevin dynamics ``x ← x − η∇f + √(2ηT)ξ`` whose position
    steps have the same drift and noise covariance as the preset's dynamics: the temperature and
    time step at which the Laplace weights and Eyring–Kramers times of its escapes are predicted
    (each kind's :meth:`engine.kinds.Kind.equivalent_langevin`; ``T = 0``: no prediction).  A
    bare :class:`DynamicsSpec` is taken to run on an analytic landscape."""
    if isinstance(spec, Preset):
        data_defined = spec.landscape.builtin == "sine_classifier"
        spec = spec.dynamics
    else:
        data_defined = False
    return kind_named(spec.kind).equivalent_langevin(spec, data_defined)


def make_dataset(spec: DynamicsSpec, seed: int) -> np.ndarray:
    """The ``n`` noise vectors ``a_i`` (or shifts ``s_i``), shape ``(n, 2)``.

    Centred exactly, and whitened so their population covariance (1/n) equals ``noise_cov``
    exactly; the minibatch noise covariance is then exactly ``σ² Σ (n − B)/(B (n − 1))``.
    """
    n = spec.dataset_size
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, PURPOSE_DATA])))
    data = rng.standard_normal((n, 2))
    data -= data.mean(axis=0)
    cov = data.T @ data / n
    target = np.array(spec.noise_cov, dtype=np.float64)
    if n >= 3 and np.linalg.det(cov) > 1e-12:
        data = data @ np.linalg.inv(np.linalg.cholesky(cov)).T
        evals, evecs = np.linalg.eigh(target)
        root = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
        data = data @ root
    return np.ascontiguousarray(data)


@dataclass(frozen=True)
class Frame:
    """Read-only snapshot of the ensemble.

    Arrays have shape ``(N, 2)`` (positions, velocities) or ``(N,)``; all are float64 except
    ``alive`` (bool).  ``lyapunov`` is the running estimate γ̂ of Park & Yun (2025), eq. 4.1,
    per particle, and ``tangent_lyapunov`` the tangent-vector estimate of the top exponent
    (γ̂ bounds it above).
    """

    step: int
    time: float
    positions: np.ndarray
    velocities: np.ndarray | None
    loss: np.ndarray | None
    grad_norm: np.ndarray | None
    lyapunov: np.ndarray | None
    tangent_lyapunov: np.ndarray | None
    time_avg_loss: np.ndarray | None
    time_avg_grad_norm: np.ndarray | None
    alive: np.ndarray
    n_frozen: int
    effective_temperature: float
    preset: Preset


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


# columns of the per-block partial sums of a record (see _record_sums)
(SUM_ALIVE, SUM_LOSS, SUM_TIME_AVG_LOSS, SUM_GRAD, SUM_TIME_AVG_GRAD, SUM_VANISHING,
 SUM_TANGENT, SUM_TANGENT_BAD, SUM_GAMMA_COUNT, SUM_GAMMA, SUM_GAMMA_NEGATIVE) = range(11)
N_SUMS = 11


@njit(cache=True, nogil=True)
def _record_sums(first, last, alive, out, acc, loss_start, lyap, tangent, partial):
    """Per block of dyn.BLOCK particles, ``partial[block]`` = the record's sums over its living
    particles (one pass instead of a dozen N-sized NumPy temporaries: ≈ 50 ms at 1e6)."""
    n = alive.shape[0]
    for block in range(first, last):
        sums = partial[block]
        sums[:] = 0.0
        for i in range(block * dyn.BLOCK, min(n, (block + 1) * dyn.BLOCK)):
            if not alive[i]:
                continue
            steps = acc[i, dyn.ACC_COUNT]
            per_step = max(steps, 1.0)
            sums[SUM_ALIVE] += 1.0
            sums[SUM_LOSS] += out[i, 0]
            sums[SUM_GRAD] += out[i, 1]
            sums[SUM_TIME_AVG_LOSS] += acc[i, dyn.ACC_LOSS] / per_step
            sums[SUM_TIME_AVG_GRAD] += acc[i, dyn.ACC_GRAD] / per_step
            if steps > 0:
                sums[SUM_VANISHING] += (loss_start[i] - out[i, 0]) / per_step
            if math.isfinite(tangent[i]):
                sums[SUM_TANGENT] += tangent[i]
            else:
                sums[SUM_TANGENT_BAD] += 1.0
            if math.isfinite(lyap[i]):
                sums[SUM_GAMMA_COUNT] += 1.0
                sums[SUM_GAMMA] += lyap[i]
                if lyap[i] < 0.0:
                    sums[SUM_GAMMA_NEGATIVE] += 1.0


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


class Simulation:
    """See module docstring.  ``Simulation(preset)`` with ``dynamics.kind = "ghost"`` returns a
    :class:`engine.ghost_simulation.GhostSimulation`.

    Parameters
    ----------
    preset : Preset
        Landscape, dynamics, ensemble and run settings.
    diagnostics : bool
        Accumulate the running Lyapunov sums, tangent vectors and time averages in the step
        kernel (default).  ``False`` runs the plain step (benchmarks, pure sampling).
    history_budget_bytes : int
        Memory for per-particle history (decimated when exceeded).
    event_log_capacity : int
        Escape events kept as rows (the latest; the escape statistics cover all events).
    """

    # The state of a run, declared once: ``_resize``, ``checkpoint`` and ``restore`` walk these
    # lists, so none of them can forget a field.  PARTICLE_FIELDS are arrays with a row per
    # particle (resized with N); RUN_FIELDS everything else a run carries from step to step —
    # clock, parameters, accumulator caches, escape tracking and history.  Everything else on
    # the object is derived from the preset (_derive_from_preset) or recomputed on demand.
    PARTICLE_FIELDS = ("positions", "velocities", "alive", "rng", "tangent", "acc",
                       "loss_start", "last_core")
    RUN_FIELDS = ("step", "time", "_clock_time", "_clock_step", "_clock_lr", "params",
                  "diagnostics", "_noise_trace", "_event_capacity", "escape_log",
                  "events_dropped", "history", "structure", "_cores", "_core_geom",
                  "_basin_grid", "_grid_x", "_grid_y")

    def __new__(cls, preset: Preset, *args, **kwargs):
        if cls is Simulation:
            cls = simulation_class(preset)
        return super().__new__(cls)

    def __init__(self, preset: Preset, history_budget_bytes: int = 256 * 2**20,
                 diagnostics: bool = True, event_log_capacity: int = EVENT_LOG_CAPACITY):
        self.preset = preset
        self.diagnostics = bool(diagnostics)
        self._event_capacity = EVENT_CAPACITY
        self._event_log_capacity = event_log_capacity
        self.history = History(preset.run.record_every, history_budget_bytes)
        self._deferred: dict | None = None  # the parameters of a record left pending
        self._record_work = None  # the record in progress (a generator), see flush_record
        self.structure = None
        self._cores = np.full((1, 1), -1, dtype=np.int32)
        self._basin_grid = self._cores
        self._grid_x = self._grid_y = np.zeros(2)
        self._core_geom = np.zeros(4)
        # watchers of the run (engine.reporters), handed the simulation at due recording steps
        self.reporters: list = []
        self._derive_from_preset()
        self._init_state()

    # -- state -----------------------------------------------------------------------------------
    def _derive_from_preset(self) -> None:
        """What follows from the preset alone: the compiled landscape, bounds, noise data."""
        p = self.preset
        self.landscape = landscape_for(p)
        self.kernels = dyn.kernels_for(self.landscape)
        self.bounds = bounds_of(p, self.landscape)
        self.boundary_code = dyn.BOUNDARIES.index(p.landscape.boundary)
        self.data = make_dataset(p.dynamics, p.ensemble.seed)

    def _init_state(self) -> None:
        p = self.preset
        self.params = self.landscape.param_vector(p.landscape.params)
        self.step = 0
        self.time = 0.0
        # the clock: time at _clock_step, and the η in effect since then
        self._clock_time, self._clock_step = 0.0, 0
        self._clock_lr = self.scheduled_dynamics().lr
        self.out = None
        for name, rows in self._new_particles(0, 0).items():
            setattr(self, name, rows)
        self._deferred = self._record_work = None
        # (step, value) of T_eff's state-dependent noise factor, see _state_noise_trace
        self._noise_trace: tuple[int, float] | None = None
        self._resize(p.ensemble.particles)
        self.restart_escapes()
        self.history.clear()
        self._record()

    def _initial_positions(self, first: int, count: int) -> np.ndarray:
        e = self.preset.ensemble
        states = particle_states(e.seed, first, count, PURPOSE_INIT)
        if e.init_uniform:
            u = draw_uniforms(states, 2)
            lo = self.bounds[[0, 2]]
            hi = self.bounds[[1, 3]]
            return lo + u * (hi - lo)
        z = draw_normals(states, 2, ZIGGURAT_X, ZIGGURAT_F)
        pos = np.asarray(e.init_mean) + z * np.asarray(e.init_std)
        lo = self.bounds[[0, 2]]
        hi = self.bounds[[1, 3]]
        if self.preset.landscape.boundary != "none":
            pos = np.clip(pos, lo, hi)
        return pos

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        """The rows of :attr:`PARTICLE_FIELDS` for particles ``first … first + count − 1`` as
        they start (each from its own streams, so N changes never move other particles)."""
        positions = self._initial_positions(first, count)
        tangent = np.zeros((count, 4))
        tangent[:, 0] = tangent[:, 1] = math.sqrt(0.5)
        return {"positions": positions, "velocities": np.zeros((count, 2)),
                "alive": np.ones(count, dtype=np.uint8),
                "rng": particle_states(self.preset.ensemble.seed, first, count, PURPOSE_STEPS),
                "tangent": tangent, "acc": dyn.new_accumulators(count),
                "loss_start": self._loss_and_grad(positions)[:, 0],
                "last_core": self._starting_states(positions)}

    def _resize(self, n: int) -> None:
        old = self.positions.shape[0]
        if n < old:
            for name in self.PARTICLE_FIELDS:
                setattr(self, name, np.ascontiguousarray(getattr(self, name)[:n]))
        else:
            rows = self._new_particles(old, n - old)
            if set(rows) != set(self.PARTICLE_FIELDS):
                raise RuntimeError(f"{type(self).__name__}._new_particles gives {sorted(rows)}, "
                                   f"not the declared {sorted(self.PARTICLE_FIELDS)}")
            for name in self.PARTICLE_FIELDS:
                setattr(self, name, np.ascontiguousarray(
                    np.concatenate([getattr(self, name), rows[name]])))
        self.out = None

    # -- basins and escapes --------------------------------------------------------------------
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

    # -- parameters ------------------------------------------------------------------------------
    def preset_with(self, **changes) -> Preset:
        """The validated preset with live parameter ``changes`` (keys in :data:`LIVE_PARAMS`;
        ``landscape_params`` a dict) applied; raises ``PresetError`` for invalid values."""
        from .presets import preset_from_dict, to_dict
        unknown = set(changes) - set(LIVE_PARAMS)
        if unknown:
            raise PresetError("update_params", ", ".join(sorted(unknown)), "not a live parameter")
        data = to_dict(self.preset)
        for key, value in changes.items():
            if key == "particles":
                data["ensemble"]["particles"] = value
            elif key == "landscape_params":
                data["landscape"]["params"] = {**data["landscape"].get("params", {}), **value}
            else:
                data["dynamics"][key] = value
        return replace(preset_from_dict(data, "live parameters"), source=self.preset.source)

    def update_params(self, **changes) -> None:
        """Change live parameters between chunks (keys in :data:`LIVE_PARAMS`).

        ``landscape_params`` is a dict of landscape parameter values.  Raises ``PresetError``
        for invalid values, and for a kind another class runs (:func:`simulation_class`: load
        the preset with that kind instead); on error nothing changes.
        """
        new = self.preset_with(**changes)
        if simulation_class(new) is not type(self):
            raise PresetError("update_params", "kind",
                              f"= {new.dynamics.kind!r}: a {self.preset.dynamics.kind!r} run on "
                              "this landscape cannot switch to it live (another step kernel "
                              "and state); load the preset with this kind instead")
        if not set(changes) <= STEP_ONLY_PARAMS:  # N or f changes what a pending record reads
            self.flush_record()
        old = self.preset
        self.preset = new
        if set(changes) & {"landscape_params", "particles", "noise"}:
            self._noise_trace = None  # f's curvature, the ensemble or the noise model changed
        if "landscape_params" in changes:
            self.params = self.landscape.param_vector(new.landscape.params)
            self.out = None
        if new.ensemble.particles != old.ensemble.particles:
            self._resize(new.ensemble.particles)
            if self._cores.shape != (1, 1):  # escape statistics restart with the new ensemble
                self.attach_cores(self._cores, self._grid_x, self._grid_y, self.structure)

    # -- stepping --------------------------------------------------------------------------------
    def advance(self, n_steps: int, progress: Callable[[int, int], None] | None = None,
                defer_record: bool = False) -> None:
        """Integrate ``n_steps`` steps in compiled chunks, recording at the due steps.

        With ``defer_record``, a record due at the last step is left pending (its step's
        parameters kept) until :meth:`flush_record`, the next ``advance`` or any change that
        would alter it: the window applies input between a step and its record, which at 10⁶
        particles takes longer than the step.
        """
        self.flush_record()
        remaining = int(n_steps)
        done = 0
        while remaining > 0:
            to_record = self.history.stride - self.step % self.history.stride
            chunk = min(remaining, to_record)
            schedule = self.preset.dynamics.schedule
            if schedule is not None:  # scheduled values change at multiples of `every` only
                chunk = min(chunk, schedule.every - self.step % schedule.every)
            lr = self.scheduled_dynamics().lr
            if lr != self._clock_lr:  # the clock restarts its product where η changes
                self._clock_time += (self.step - self._clock_step) * self._clock_lr
                self._clock_step, self._clock_lr = self.step, lr
            self._step_chunk(chunk)
            self.out = None
            self.step += chunk
            # t = t₀ + (steps since η last changed)·η: the same number however the steps
            # are cut into chunks (a running sum of chunk·η is not)
            self.time = self._clock_time + (self.step - self._clock_step) * lr
            remaining -= chunk
            done += chunk
            if self.history.due(self.step):
                if defer_record and remaining == 0:
                    self._deferred = self._record_parameters()
                else:
                    self._record()
                for reporter in self.reporters:
                    if reporter.due(self.step):
                        reporter.report(self)
            if progress is not None:
                progress(done, int(n_steps))

    def _step_chunk(self, chunk: int) -> None:
        """One compiled call of ``chunk`` steps for every particle (events collected)."""
        d = self.preset.dynamics
        cfg = self._step_config()
        n_blocks = (self.positions.shape[0] + dyn.BLOCK - 1) // dyn.BLOCK
        tracking = self._cores.shape != (1, 1)
        # a particle enters at most one core set per step: a short chunk needs a small buffer
        # (10⁶ particles, one step: 1 MB instead of 128 MB to map and unmap every chunk)
        capacity = min(self._event_capacity, dyn.BLOCK * chunk) if tracking else 0
        event_buffer = np.empty((n_blocks, capacity, 4), dtype=np.int64)
        event_count = np.zeros(n_blocks, dtype=np.int64)
        self.kernels.advance(
            self.positions, self.velocities, self.alive, self.rng, self.tangent, self.acc,
            chunk, self.params, cfg.lr, cfg.temperature, cfg.momentum,
            cfg.minibatch, cfg.curvature_noise, cfg.batch_size, self.data, d.noise_scale,
            self.bounds, self.boundary_code, self.preset.landscape.wall_stiffness,
            self.diagnostics, ZIGGURAT_X, ZIGGURAT_F, tracking, self._cores,
            self._core_geom, self.last_core, event_buffer, event_count, self.step)
        if tracking:
            self._collect_events(event_buffer, event_count, capacity)

    def _collect_events(self, event_buffer: np.ndarray, event_count: np.ndarray,
                        capacity: int) -> None:
        """Hand a chunk's per-block event rows to the escape log (rows past a block's
        ``capacity`` were counted, not kept: they are counted as dropped, and the buffers of
        the next chunks are larger)."""
        if not event_count.any():
            return
        kept = np.minimum(event_count, capacity)
        self.escape_log.add(np.concatenate(
            [event_buffer[b, :kept[b]] for b in range(len(event_count)) if kept[b]]))
        dropped = int((event_count - kept).sum())
        if dropped:
            self.events_dropped += dropped
            self._event_capacity *= 4  # larger buffers from the next chunk on

    def scheduled_dynamics(self) -> DynamicsSpec:
        """The dynamics of the current step: the preset's, with η and T of its schedule
        (:mod:`engine.schedules`) where it has one."""
        return scheduled(self.preset.dynamics, self.step)

    def _step_config(self) -> dyn.StepConfig:
        d = self.scheduled_dynamics()
        return kind_named(d.kind).step_config(d)

    def kernel_ready(self) -> bool:
        """Whether the next ``advance`` runs compiled code at once (False: it compiles the copy
        of the step loop the current settings need first, a few seconds)."""
        cfg = self._step_config()
        return self.kernels.ready(cfg.minibatch, self.boundary_code, self.diagnostics,
                                  self._cores.shape != (1, 1), cfg.momentum != 0.0)

    def compile(self, escapes: bool | None = None) -> None:
        """Compile the step kernel now (on empty arrays), so the first ``advance`` is fast.

        Compiles the copy of the particle loop that the current settings use; ``escapes``
        (default: whether escape tracking is on now) says whether escape tracking will be.
        """
        d = self.preset.dynamics
        cfg = self._step_config()
        tracking = self._cores.shape != (1, 1) if escapes is None else escapes
        empty2 = np.empty((0, 2))
        self.kernels.advance(
            empty2, empty2.copy(), np.empty(0, dtype=np.uint8), np.empty((0, 4), dtype=np.uint64),
            np.empty((0, 4)), np.empty((0, dyn.N_ACC)), 0, self.params, d.lr,
            d.temperature, d.momentum, cfg.minibatch, cfg.curvature_noise, d.batch_size,
            self.data, d.noise_scale, self.bounds, self.boundary_code,
            self.preset.landscape.wall_stiffness, self.diagnostics, ZIGGURAT_X, ZIGGURAT_F,
            tracking, self._cores, self._core_geom,
            np.empty(0, dtype=np.int32), np.empty((0, 0, 4), dtype=np.int64),
            np.zeros(0, dtype=np.int64), self.step)

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """``(f, fx, fy, fxx, fxy, fyy)`` per point (wall term included), shape ``(M, 6)``."""
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
        out = np.empty((points.shape[0], 6))
        self.kernels.evaluate(points, self.params, self.bounds, self.boundary_code,
                              self.preset.landscape.wall_stiffness, out)
        return out

    @property
    def out(self) -> np.ndarray:
        """(N, 2): loss and gradient norm of every particle at its current position, evaluated
        when first asked for after a step (a live view that shows positions never pays it)."""
        if self._out is None:
            self._out = self._current_out()
        return self._out

    @out.setter
    def out(self, value: np.ndarray | None) -> None:
        self._out = value

    def _current_out(self) -> np.ndarray:
        return self._loss_and_grad(self.positions)

    def _loss_and_grad(self, points: np.ndarray) -> np.ndarray:
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 2)
        out = np.empty((points.shape[0], 2))
        self.kernels.loss_and_grad_norm(points, self.params, self.bounds, self.boundary_code,
                                        self.preset.landscape.wall_stiffness, out)
        return out

    def effective_temperature(self) -> float:
        """``T_eff = η tr Cov(g) / (2d) + T``, divided by ``1 − β`` with momentum
        (docs/science.md § 3).  State-dependent (curvature) minibatch noise is measured at the
        particles.  With a schedule, of the current step's η and T."""
        d = self.scheduled_dynamics()
        if d.kind == "sgd" and d.noise == "curvature":
            # Cov(g) ≈ H Σ H at the particles, averaged over the ensemble
            trace = self._state_noise_trace() * d.noise_scale ** 2 * minibatch_factor(d)
            return (d.temperature + d.lr * trace / 4.0) / (1.0 - d.momentum)
        preset = self.preset if d is self.preset.dynamics else replace(self.preset, dynamics=d)
        return equivalent_langevin(preset)[0]

    def _state_noise_trace(self) -> float:
        """The state-dependent factor of T_eff's noise term, an ensemble mean over the live
        particles (:meth:`_measure_noise_trace`).  It is measured at most once per record
        interval: the window asks every frame, and at 10⁶ particles a measurement costs about
        as much as a step.  Changes of f, N or the noise model, resets and restores measure
        afresh; η, T, B and σ scale it where it is used, so a slider drag costs no measurement."""
        cached = self._noise_trace
        if cached is None or not 0 <= self.step - cached[0] < self.history.stride:
            self._noise_trace = (self.step, self._measure_noise_trace())
        return self._noise_trace[1]

    def _measure_noise_trace(self) -> float:
        """Mean over live particles of ``tr(H Σ₀ H) = tr(Σ₀ H²)`` (``Σ₀`` the preset's
        ``noise_cov``, unscaled): with ``H = [[a, b], [b, c]]``, ``H² = [[a² + b², b(a + c)],
        [b(a + c), b² + c²]]`` — a closed form, 36 ms against 213 for a batched einsum at 10⁶."""
        v = self.evaluate(self.positions[self.alive.astype(bool)])
        if v.shape[0] == 0:
            return float("nan")
        a, b, c = v[:, 3], v[:, 4], v[:, 5]
        (s00, s01), (_, s11) = np.asarray(self.preset.dynamics.noise_cov, dtype=float)
        return float(np.mean(s00 * (a * a + b * b) + 2.0 * s01 * b * (a + c)
                             + s11 * (b * b + c * c)))

    # -- outputs ---------------------------------------------------------------------------------
    def running_lyapunov(self, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Per-particle running estimate γ̂ and tangent-vector exponent (0 before any step), of
        the particles ``rows``."""
        return dyn.lyapunov_sums(self.acc[rows], self.tangent[rows], per_step=True)

    def vanishing_change(self) -> np.ndarray:
        """Per particle ``(1/n) Σ_{t<n} [f(θ_t) − f(θ_{t+1})] = (f(θ_0) − f(θ_n))/n``
        (Zhang et al. (2022), §4): the expected one-step change of f under the empirical measure,
        which vanishes as ``n → ∞`` whether or not the iterates converge."""
        count = self.acc[:, dyn.ACC_COUNT]
        return np.where(count > 0, (self.loss_start - self.out[:, 0]) / np.maximum(count, 1),
                        0.0)

    def snapshot(self, positions_only: bool = False, first: int | None = None) -> Frame:
        """A :class:`Frame` of read-only copies of the current state.

        ``positions_only`` copies just positions and ``alive`` (the other per-particle fields
        are ``None``): what a live view needs at a fraction of the cost for large N.  With
        ``first`` it copies only the first ``first`` particles (the trails of a view that shows
        the cloud as a density image); ``n_frozen`` still counts the whole ensemble.
        """
        if first is not None and not positions_only:
            raise ValueError("first applies to positions-only snapshots")
        count = self.positions.shape[0] if first is None else min(int(first), len(self.alive))
        alive = self.alive[:count].astype(bool)
        common = dict(step=self.step, time=self.time,
                      positions=_readonly(self.positions[:count]), alive=_readonly(alive),
                      n_frozen=len(self.alive) - int(np.count_nonzero(self.alive)),
                      effective_temperature=self.effective_temperature(), preset=self.preset)
        if positions_only:
            return Frame(velocities=None, loss=None, grad_norm=None, lyapunov=None,
                         tangent_lyapunov=None, time_avg_loss=None, time_avg_grad_norm=None,
                         **common)
        count = np.maximum(self.acc[:, dyn.ACC_COUNT], 1.0)
        lyap, tangent = self.running_lyapunov()
        started = self.acc[:, dyn.ACC_COUNT] > 0
        return Frame(
            velocities=_readonly(self.velocities),
            loss=_readonly(self.out[:, 0]), grad_norm=_readonly(self.out[:, 1]),
            lyapunov=_readonly(lyap), tangent_lyapunov=_readonly(tangent),
            time_avg_loss=_readonly(np.where(started, self.acc[:, dyn.ACC_LOSS] / count,
                                             self.out[:, 0])),
            time_avg_grad_norm=_readonly(np.where(started, self.acc[:, dyn.ACC_GRAD] / count,
                                                  self.out[:, 1])),
            **common)

    @property
    def record_pending(self) -> bool:
        """Whether ``advance(defer_record=True)`` left a record to take."""
        return self._deferred is not None

    def flush_record(self, seconds: float | None = None) -> bool:
        """Take the record that ``advance(defer_record=True)`` left pending, if any; returns
        whether none is pending any more.

        With ``seconds``, stop after the first piece (:data:`RECORD_SLICE` particles) that ends
        past that budget; the next call goes on.  At 10⁶ particles a record takes 35–80 ms, and
        the window reads input between its pieces.  Live changes of :data:`STEP_ONLY_PARAMS`
        leave a record in progress as it is; everything that would change what it reads
        finishes it first.
        """
        if self._deferred is None:
            return True
        if self._record_work is None:
            self._record_work = self._record_pieces(self._deferred)
        end = math.inf if seconds is None else time.perf_counter() + seconds
        try:
            for _ in self._record_work:
                if time.perf_counter() >= end:
                    return False
        except BaseException:
            self._record_work = None  # retried from the start by the next flush
            raise
        self._deferred = self._record_work = None
        return True

    def _record_parameters(self) -> dict[str, float]:
        """The recorded scalars that depend on parameters rather than on the particles (η and
        T as scheduled for the steps from here)."""
        d = self.scheduled_dynamics()
        return {"time": self.time, "effective_temperature": self.effective_temperature(),
                "lr": d.lr, "temperature": d.temperature, "batch_size": d.batch_size,
                "momentum": d.momentum}

    def _record(self, parameters: dict[str, float] | None = None) -> None:
        for _ in self._record_pieces(parameters):
            pass

    def _record_pieces(self, parameters: dict[str, float] | None):
        """The record as a generator that yields after each slice of particles (the sums are
        exactly those of one pass: per-block partials, added in block order at the end)."""
        alive = self.alive.astype(bool)
        n = len(alive)
        n_blocks = -(-n // dyn.BLOCK)
        partial = np.empty((n_blocks, N_SUMS))
        lyap, tangent = np.empty(n), np.empty(n)
        out = self.out
        yield
        for first in range(0, n, RECORD_SLICE):
            rows = slice(first, min(n, first + RECORD_SLICE))
            lyap[rows], tangent[rows] = self.running_lyapunov(rows)
            blocks = -(-(rows.stop - first) // dyn.BLOCK)
            dyn.run_blocks(_record_sums, blocks, 10 * (rows.stop - first),
                           (alive[rows], out[rows], self.acc[rows], self.loss_start[rows],
                            lyap[rows], tangent[rows],
                            partial[first // dyn.BLOCK:first // dyn.BLOCK + blocks]))
            yield
        sums = partial.sum(axis=0)
        living = sums[SUM_ALIVE]

        def mean(column: int) -> float:
            return float(sums[column] / living) if living else math.nan

        # γ̂ over living particles with a finite estimate: a view when that is all of them
        finite_gamma = int(sums[SUM_GAMMA_COUNT])
        gam = lyap if finite_gamma == n else lyap[alive & np.isfinite(lyap)]
        # the band's quantiles from at most QUANTILE_SAMPLE evenly spaced particles (they are
        # exchangeable): an exact quantile of 10⁶ values was a third of a record
        gam = gam[::-(-gam.size // QUANTILE_SAMPLE)] if gam.size else gam
        q10, q90 = (np.quantile(gam, [0.1, 0.9]).tolist() if gam.size > 1
                    else (math.nan, math.nan))
        scalars = {
            "loss_mean": mean(SUM_LOSS),
            "time_avg_loss": mean(SUM_TIME_AVG_LOSS if self.step else SUM_LOSS),
            "grad_norm_mean": mean(SUM_GRAD),
            # Zhang et al. (2022), §4: E_{μ_n}[f(θ) − f(F(θ))] = (f(θ_0) − f(θ_n))/n → 0
            "vanishing_change": mean(SUM_VANISHING),
            "time_avg_grad_norm": mean(SUM_TIME_AVG_GRAD if self.step else SUM_GRAD),
            "lyapunov_mean": float(sums[SUM_GAMMA] / finite_gamma) if finite_gamma else math.nan,
            "lyapunov_q10": q10,
            "lyapunov_q90": q90,
            "lyapunov_negative_fraction": float(sums[SUM_GAMMA_NEGATIVE] / finite_gamma)
            if finite_gamma else 0.0,
            "tangent_lyapunov_mean": mean(SUM_TANGENT) if not sums[SUM_TANGENT_BAD]
            else math.nan,
            "n_frozen": float(n - living),
            **(parameters if parameters is not None else self._record_parameters()),
        }
        per_particle = None
        if self.history.frame_due(self.step):
            per_particle = {"positions": self.positions, "loss": self.out[:, 0],
                            "lyapunov": lyap}
            if self._cores.shape != (1, 1):
                per_particle["basin"] = self.basin_of(self.positions)
        if self._cores.shape != (1, 1):
            n_states = int(self._basin_grid.max()) + 1
            counts = np.bincount(self.last_core[alive & (self.last_core >= 0)],
                                 minlength=n_states)
            for state, count in enumerate(counts[:n_states]):
                scalars[f"occupation_{state}"] = count / max(living, 1.0)
        self._extend_record(per_particle, scalars)
        self.history.record(self.step, per_particle, scalars)

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        """Hook for subclasses to add recorded fields (``per_particle`` is None when no
        per-particle frame is due)."""

    def trajectory_arrays(self) -> dict[str, np.ndarray]:
        """The export fields (README, "Headless use") the history holds, plus ensemble series."""
        self.flush_record()
        from .presets import dumps
        arrays = self.history.particle_arrays()
        arrays["preset"] = np.array(dumps(self.preset))
        arrays["events"] = self.events()
        # events beyond the log's capacity are counted here though no longer listed
        arrays["events_total"] = np.array(self.event_count(), dtype=np.int64)
        for key, value in self.history.scalar_series().items():
            if key != "steps":
                arrays[f"series_{key}"] = value
        arrays["series_steps"] = self.history.scalar_series()["steps"]
        return arrays

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self) -> dict:
        """Everything needed to resume bitwise: copies of every declared state field
        (:attr:`PARTICLE_FIELDS`, :attr:`RUN_FIELDS`, history and escape tracking included) and
        the preset.  ``restore`` of it into any simulation of the same class — a fresh one
        included — continues as this one would."""
        self.flush_record()
        state = {"version": CHECKPOINT_VERSION, "class": type(self).__name__,
                 "preset": self.preset}
        for name in self.PARTICLE_FIELDS + self.RUN_FIELDS:
            state[name] = _copied(getattr(self, name))
        return state

    def restore(self, state: dict) -> None:
        """Continue from ``checkpoint()``'s state (this object's own earlier state or another
        simulation's of the same class).  Raises ``ValueError`` for a checkpoint of another
        class or version, or one that lacks a declared field."""
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')!r} is not this "
                             f"engine's ({CHECKPOINT_VERSION})")
        if state.get("class") != type(self).__name__:
            raise ValueError(f"a {state.get('class')} checkpoint cannot be restored into a "
                             f"{type(self).__name__} (load its preset instead)")
        missing = [name for name in self.PARTICLE_FIELDS + self.RUN_FIELDS if name not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        self.flush_record()
        self.preset = state["preset"]
        self._derive_from_preset()
        for name in self.PARTICLE_FIELDS + self.RUN_FIELDS:
            setattr(self, name, _copied(state[name]))
        self.out = None
        self._deferred = self._record_work = None

    def reset(self) -> None:
        """Restart from the initial cloud with the current parameters."""
        self._init_state()
        if self._cores.shape != (1, 1):
            self.attach_cores(self._cores, self._grid_x, self._grid_y, self.structure)
