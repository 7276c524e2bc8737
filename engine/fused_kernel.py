"""The calls of the fused step kernel (:mod:`engine.step_kernels`) that runs the kinds gd, sgd,
langevin and momentum: one compiled call per chunk (or piece of one) for every particle, its
compilation ahead of the first step, and whether it is compiled (a mixin of
:class:`engine.simulation.Simulation`; kinds with kernels of their own override these)."""
from __future__ import annotations

import numpy as np

from . import dynamics as dyn
from .kinds import kind_named
from .rng import ZIGGURAT_F, ZIGGURAT_X


class FusedKernel:
    """Stepping through ``self.kernels`` (:func:`engine.dynamics.kernels_for` the landscape)."""

    def _kernel_chunk(self, chunk: int, capacity: int,
                      step0: int) -> tuple[np.ndarray, np.ndarray]:
        """One compiled call of ``chunk`` steps for every particle; returns the per-block event
        rows (``capacity`` each) and counts (see :meth:`EscapeTracking._step_chunk`)."""
        d = self.preset.dynamics
        cfg = self._step_config()
        n_blocks = (self.positions.shape[0] + dyn.BLOCK - 1) // dyn.BLOCK
        escapes = self.escapes
        event_buffer, event_count = escapes.buffers(n_blocks, capacity)
        self.kernels.advance(
            self.positions, self.velocities, self.alive, self.rng, self.tangent, self.acc,
            chunk, self.params, cfg.lr, cfg.temperature, cfg.momentum,
            cfg.minibatch, cfg.curvature_noise, cfg.batch_size, self.data, d.noise_scale,
            self.bounds, self.boundary_code, self.preset.landscape.wall_stiffness,
            self.diagnostics, ZIGGURAT_X, ZIGGURAT_F, escapes.tracking, escapes.cores,
            escapes.core_geom, self.last_core, event_buffer, event_count, step0)
        return event_buffer, event_count

    def _step_config(self) -> dyn.StepConfig:
        d = self.scheduled_dynamics()
        return kind_named(d.kind).step_config(d)

    def kernel_ready(self) -> bool:
        """Whether the next ``advance`` runs compiled code at once (False: it compiles the copy
        of the step loop the current settings need first, a few seconds)."""
        cfg = self._step_config()
        return self.kernels.ready(cfg.minibatch, self.boundary_code, self.diagnostics,
                                  self.escapes.tracking, cfg.momentum != 0.0)

    def compile(self, escapes: bool | None = None) -> None:
        """Compile the step kernel now (on empty arrays), so the first ``advance`` is fast.

        Compiles the copy of the particle loop that the current settings use; ``escapes``
        (default: whether escape tracking is on now) says whether escape tracking will be.
        """
        d = self.preset.dynamics
        cfg = self._step_config()
        tracking = self.escapes.tracking if escapes is None else escapes
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
