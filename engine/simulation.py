"""An ensemble of N particles on a 2D landscape: the object the GUI, the CLI and tests drive.

``Simulation(preset)`` owns every array of the run, one random stream per particle and a bounded
:class:`~engine.history.History`.  ``advance(n)`` integrates in compiled chunks that stop at the
recording points; ``update_params`` changes η, T, B, β, N (and more) between chunks without a
restart; ``snapshot()`` returns a :class:`~engine.frame.Frame` of read-only copies.  A run is a
pure function of its preset, seed and sequence of parameter changes: ``advance(a); advance(b)``
≡ ``advance(a+b)``, bitwise, whatever the thread count.

This module steps; each other job has a module of its own: the declared state and its
checkpoints (:mod:`engine.state`), recording (:mod:`engine.recording`), escape tracking
(:mod:`engine.escape_tracking`), ``T_eff`` (:mod:`engine.temperature`), live parameters
(:mod:`engine.live_params`), the initial cloud (:mod:`engine.initial_cloud`), snapshots
(:mod:`engine.frame`), the calls of the fused step kernel (:mod:`engine.fused_kernel`), the kinds
and their kernels (:mod:`engine.kinds`), and what watches a run (:mod:`engine.reporters`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import dynamics as dyn
from . import live_params
from .diagnostics.escapes import EVENT_LOG_CAPACITY
from .escape_tracking import EscapeTracking
from .frame import Frame, snapshot
from .fused_kernel import FusedKernel
from .initial_cloud import initial_positions
from .kinds import kind_named
from .live_params import LIVE_PARAMS, STEP_ONLY_PARAMS
from .preset_resources import PURPOSE_STEPS, bounds_of, landscape_for, make_dataset
from .presets import DynamicsSpec, Preset, PresetError
from .recording import Recording
from .reporters.escapes import EscapeReporter
from .reporters.recording import HistoryReporter
from .rng import particle_states
from .schedules import scheduled
from .state import DeclaredState
from .temperature import EffectiveTemperature, equivalent_langevin

__all__ = ["Frame", "LIVE_PARAMS", "STEP_ONLY_PARAMS", "Simulation", "equivalent_langevin",
           "simulation_class"]


def simulation_class(preset: Preset) -> type:
    """The class that runs ``preset``, as its kind says (:meth:`engine.kinds.Kind.
    simulation_class`): e.g. :class:`engine.ghost_simulation.GhostSimulation` for kind ghost
    and for minibatch SGD on the classifier's data."""
    return kind_named(preset.dynamics.kind).simulation_class(preset)


class Simulation(FusedKernel, EscapeTracking, Recording, EffectiveTemperature, DeclaredState):
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
    # clock, parameters, accumulator caches, escape tracking and history (the last two held by
    # the reporters self.escapes and self.recorder under these names).  Everything else on
    # the object is derived from the preset (_derive_from_preset) or recomputed on demand.
    PARTICLE_FIELDS = ("positions", "velocities", "alive", "rng", "tangent", "acc",
                       "loss_start", "last_core")
    RUN_FIELDS = ("step", "time", "_clock_time", "_clock_step", "_clock_lr", "params",
                  "diagnostics", "_noise_trace", "escape_log",
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
        self.escapes = EscapeReporter(event_log_capacity)  # core sets and the escape log
        self.recorder = HistoryReporter(preset.run.record_every, history_budget_bytes)
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
        self.recorder.drop_pending()
        # (step, value) of T_eff's state-dependent noise factor, see _state_noise_trace
        self._noise_trace: tuple[int, float] | None = None
        self._resize(p.ensemble.particles)
        self.restart_escapes()
        self.history.clear()
        self._record()

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        """The rows of :attr:`PARTICLE_FIELDS` for particles ``first … first + count − 1`` as
        they start (each from its own streams, so N changes never move other particles)."""
        positions = initial_positions(self.preset, self.bounds, first, count)
        tangent = np.zeros((count, 4))
        tangent[:, 0] = tangent[:, 1] = math.sqrt(0.5)
        return {"positions": positions, "velocities": np.zeros((count, 2)),
                "alive": np.ones(count, dtype=np.uint8),
                "rng": particle_states(self.preset.ensemble.seed, first, count, PURPOSE_STEPS),
                "tangent": tangent, "acc": dyn.new_accumulators(count),
                "loss_start": self._loss_and_grad(positions)[:, 0],
                "last_core": self._starting_states(positions)}

    # -- parameters ------------------------------------------------------------------------------
    def preset_with(self, **changes) -> Preset:
        """The validated preset with live parameter ``changes`` (keys in
        :data:`engine.live_params.LIVE_PARAMS`; ``landscape_params`` a dict) applied; raises
        ``PresetError`` for invalid values."""
        return live_params.preset_with(self.preset, **changes)

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
            if self.escapes.tracking:  # escape statistics restart with the new ensemble
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
        history = self.history
        remaining = int(n_steps)
        done = 0
        while remaining > 0:
            to_record = history.stride - self.step % history.stride
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
            if history.due(self.step):
                if defer_record and remaining == 0:
                    self.recorder.defer(self)
                else:
                    self._record()
                for reporter in self.reporters:
                    if reporter.due(self.step):
                        reporter.report(self)
            if progress is not None:
                progress(done, int(n_steps))

    def scheduled_dynamics(self) -> DynamicsSpec:
        """The dynamics of the current step: the preset's, with η and T of its schedule
        (:mod:`engine.schedules`) where it has one."""
        return scheduled(self.preset.dynamics, self.step)

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
        """A :class:`~engine.frame.Frame` of read-only copies of the current state.

        ``positions_only`` copies just positions and ``alive`` (the other per-particle fields
        are ``None``): what a live view needs at a fraction of the cost for large N.  With
        ``first`` it copies only the first ``first`` particles (the trails of a view that shows
        the cloud as a density image); ``n_frozen`` still counts the whole ensemble.
        """
        return snapshot(self, positions_only, first)

    def reset(self) -> None:
        """Restart from the initial cloud with the current parameters."""
        self._init_state()
        if self.escapes.tracking:
            self.attach_cores(self._cores, self._grid_x, self._grid_y, self.structure)
