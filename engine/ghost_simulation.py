"""Ensembles of minibatch SGD runs on a classifier landscape: kind ``ghost``, and kind ``sgd`` on
the classifier (its ghost-free case, ``e = 0``).

Same surface as :class:`engine.simulation.Simulation` (advance, snapshot, history, export,
escape tracking, checkpoints); the state adds the ghost weights ``γ`` of every particle, shape
``(N, e, 3)``, initialised ``N(0, ghost_init²)`` from each particle's own stream.  Recorded per
particle: ``f_orig(w)`` (as ``loss``), ``f_ghost``, ``ghost_mass`` and the running Lyapunov
estimate of the w-block.  Time averages are of the minibatch extended loss and minibatch
w-gradient norm of each step.

Kind ``sgd`` on a classifier is plain SGD on the classifier's data: real minibatches of the same
samples, drawn by the same kernel as kind ``ghost`` with ``e = 0`` (the ``ghosts`` setting is
kind ``ghost``'s), so ``kind = "sgd"`` and ``kind = "ghost", ghosts = 0`` are the same run bit
for bit.  The kernel honours the ``reflect``, ``periodic`` and ``none`` boundaries; settings it
cannot honour (momentum, walls, the analytic noise models) are refused when the preset loads.
"""
from __future__ import annotations

import numpy as np

from .ghost import GHOST_BLOCK, METRIC_COLUMNS, full_data_metrics, ghost_advance
from .presets import PresetError
from .rng import ZIGGURAT_F, ZIGGURAT_X, draw_normals, particle_states
from .simulation import Simulation

PURPOSE_GHOST_INIT = 3


class GhostSimulation(Simulation):
    PARTICLE_FIELDS = Simulation.PARTICLE_FIELDS + ("gamma",)

    def _derive_from_preset(self) -> None:
        super()._derive_from_preset()
        task = self.landscape.extras.get("task")
        if task is None:
            raise PresetError(self.preset.source, "dynamics.kind",
                              f"= {self.preset.dynamics.kind!r} runs minibatches of a "
                              "classifier's data: it needs landscape.builtin = "
                              "'sine_classifier'")
        self.task = task

    def _init_state(self) -> None:
        self._metrics = np.zeros((0, len(METRIC_COLUMNS)))
        super()._init_state()

    @property
    def metrics(self) -> np.ndarray:
        """(N, 7) :data:`engine.ghost.METRIC_COLUMNS` of every particle at its current
        position, from the full-data pass (made when first asked for after a step)."""
        self.out  # noqa: B018 - the pass, unless it ran since the last step
        return self._metrics

    @property
    def ghosts(self) -> int:
        """The ghost logits the steps train: ``dynamics.ghosts`` for kind ghost, 0 for sgd."""
        d = self.preset.dynamics
        return d.ghosts if d.kind == "ghost" else 0

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        rows = super()._new_particles(first, count)
        ghosts = self.preset.dynamics.ghosts
        states = particle_states(self.preset.ensemble.seed, first, count, PURPOSE_GHOST_INIT)
        init = draw_normals(states, 3 * ghosts, ZIGGURAT_X, ZIGGURAT_F) if ghosts and count \
            else np.zeros((count, 3 * ghosts))
        rows["gamma"] = self.preset.dynamics.ghost_init * init.reshape(count, ghosts, 3)
        return rows

    def _resize(self, n: int) -> None:
        super()._resize(n)
        self._update_metrics()

    def update_params(self, **changes) -> None:
        kind = self.preset.dynamics.kind
        if changes.get("kind", kind) != kind:
            self.flush_record()  # recorded with the ghosts of its own steps
        super().update_params(**changes)
        if self.preset.dynamics.kind != kind:
            self.out = None  # ghost ↔ sgd: the metrics count other ghost logits now

    EVENT_BLOCK = GHOST_BLOCK

    def _kernel_chunk(self, chunk: int, capacity: int,
                      step0: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.scheduled_dynamics()
        tracking = self.escapes.tracking
        n_blocks = -(-self.positions.shape[0] // GHOST_BLOCK)
        event_buffer, event_count = self.escapes.buffers(n_blocks, capacity)
        ghost_advance(self.positions, self.gamma, self.alive, self.rng, self.acc, self.task.x,
                      self.task.y, self.task.classes, self.ghosts, float(self.params[0]), chunk,
                      d.lr, d.temperature, d.batch_size, self.bounds, self.boundary_code,
                      self.diagnostics, ZIGGURAT_X, ZIGGURAT_F, tracking, self._cores,
                      self._core_geom, self.last_core, event_buffer, event_count, step0)
        return event_buffer, event_count

    def _update_metrics(self) -> None:
        metrics = np.empty((self.positions.shape[0], len(METRIC_COLUMNS)))
        full_data_metrics(self.positions, self.gamma, self.task.x, self.task.y,
                          self.task.classes, self.ghosts, float(self.params[0]), metrics)
        self._metrics = metrics
        # f_orig and its gradient norm come from the same pass over the data (the landscape's
        # own evaluation would also build the Hessian, serially)
        self.out = np.ascontiguousarray(metrics[:, [0, 5]])
        # the pass measures T_eff's noise factor for free: frames reuse it (_state_noise_trace)
        self._noise_trace = (self.step, self._metrics_noise_trace())

    def _metrics_noise_trace(self) -> float:
        trace = self._metrics[self.alive.astype(bool),
                              METRIC_COLUMNS.index("grad_cov_trace")]
        return float(trace.mean()) if trace.size else float("nan")

    def _measure_noise_trace(self) -> float:
        self.out  # the full-data pass at the current positions, unless it ran already
        return self._metrics_noise_trace()

    def _current_out(self) -> np.ndarray:
        self._update_metrics()
        return self.out

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        self.out  # the metrics of the current positions (one full-data pass per step)
        if per_particle is not None:
            per_particle["loss"] = self.out[:, 0]
            per_particle["ghost_mass"] = self.metrics[:, 3]
            per_particle["f_ghost"] = self.metrics[:, 1]
        alive = self.alive.astype(bool)
        if alive.any():
            scalars["loss_mean"] = float(self.out[alive, 0].mean())
            scalars["ghost_mass_mean"] = float(self.metrics[alive, 3].mean())
            scalars["f_ghost_mean"] = float(self.metrics[alive, 1].mean())
            scalars["f_ext_mean"] = float(self.metrics[alive, 2].mean())
            scalars["accuracy_mean"] = float(self.metrics[alive, 4].mean())

    def running_lyapunov(self, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """γ̂ on the full extended Hessian in (w, γ); the tangent-vector exponent is not computed
        for ghost runs (NaN)."""
        gamma_hat, _ = super().running_lyapunov(rows)
        return gamma_hat, np.full_like(gamma_hat, np.nan)

    def effective_temperature(self) -> float:
        """``T_eff = η tr Cov(g_B) / (2d) + T`` in the plotted coordinates w (d = 2), as for
        ``sgd``, but with the minibatch noise of the real data: ``g_B`` is the mean of ``B``
        per-sample gradients of ``L_ext`` drawn without replacement from ``n``, so
        ``Cov(g_B) = (n − B) / (B (n − 1)) · Cov_s`` with ``Cov_s`` the covariance over the
        samples at each particle, averaged over the live particles.

        ``Cov_s`` comes from the last full-data pass when that is at most one record interval
        old (a pass costs ≈ 3 steps); η, T and B apply at once.
        """
        d = self.scheduled_dynamics()
        n, batch = self.task.x.shape[0], min(d.batch_size, self.task.x.shape[0])
        per_sample_trace = self._state_noise_trace()
        finite = (n - batch) / (batch * (n - 1)) if n > 1 else 0.0
        return d.temperature + d.lr * finite * per_sample_trace / 4.0

    def kernel_ready(self) -> bool:
        return True  # the ghost kernels are compiled once for all classifiers (cached on disk)

    def compile(self, escapes: bool | None = None) -> None:
        self.advance(0)
