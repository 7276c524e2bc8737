"""Simulations of the kinds whose step kernel is :mod:`engine.kind_kernels`: underdamped
Langevin (BAOAB) and the adaptive methods (Adam, RMSprop, AdamW).

Same surface as :class:`engine.simulation.Simulation` (advance, snapshot, history, export,
escape tracking, checkpoints; chunking never changes a number).  :class:`AdaptiveSimulation`
adds the per-particle moment state ``moments (N, 6)`` = ``(m_x, m_y, v_x, v_y, Πβ1, Πβ2)`` and
a 6-wide tangent vector ``(δx, δm, δv)``; :class:`UnderdampedSimulation` keeps the velocities
the other kinds have (zero unless heavy ball), drawn from the Maxwell law N(0, T) at the start.
Both report the tangent-vector exponent of their full map as the Lyapunov estimate; the
gradient-map estimate γ̂ (Park & Yun (2025), eq. 4.1) is NaN for them.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from . import dynamics as dyn
from .rng import ZIGGURAT_F, ZIGGURAT_X, draw_normals, particle_states
from .simulation import Simulation

PURPOSE_VELOCITY = 4  # the stream of the initial velocities (engine.simulation's are 0–2)
RULES = {"adam": 0, "rmsprop": 1, "adamw": 2}  # engine.kind_kernels.RULE_*
_TEMPLATE = Path(__file__).with_name("kind_kernels.py")
_MODULES: dict[int, tuple[object, object]] = {}
_LOCK = threading.Lock()


def kind_kernels(landscape):
    """The :mod:`engine.kind_kernels` copy of ``landscape`` (compiled once per machine where
    the landscape allows, see :mod:`engine.kernel_cache`)."""
    key = id(landscape.func)
    with _LOCK:
        hit = _MODULES.get(key)
        if hit is None:
            from .kernel_cache import template_module
            hit = (landscape, template_module(landscape, _TEMPLATE, {}))
            _MODULES[key] = hit
    return hit[1]


class _OwnKernel(Simulation):
    """The parts the two classes share: the kernel module and escape buffers."""

    def _derive_from_preset(self) -> None:
        super()._derive_from_preset()
        self.kind_kernels = kind_kernels(self.landscape)

    def _kernel(self):
        raise NotImplementedError

    def _kernel_args(self, chunk: int) -> tuple:
        raise NotImplementedError

    def _kernel_chunk(self, chunk: int, capacity: int,
                      step0: int) -> tuple[np.ndarray, np.ndarray]:
        n_blocks = -(-self.positions.shape[0] // dyn.BLOCK)
        tracking = self.escapes.tracking
        event_buffer, event_count = self.escapes.buffers(n_blocks, capacity)
        dyn.run_blocks(self._kernel(), n_blocks, self.positions.shape[0] * chunk,
                       self._kernel_args(chunk) + (
                           self.bounds, self.boundary_code,
                           self.preset.landscape.wall_stiffness, self.diagnostics,
                           ZIGGURAT_X, ZIGGURAT_F, tracking, self._cores, self._core_geom,
                           self.last_core, event_buffer, event_count, step0))
        return event_buffer, event_count

    def kernel_ready(self) -> bool:
        return bool(self._kernel().signatures)

    def compile(self, escapes: bool | None = None) -> None:
        """Compile the step kernel now on an empty ensemble (one copy serves every setting)."""
        saved = {name: getattr(self, name) for name in self.PARTICLE_FIELDS}
        try:
            for name, value in saved.items():
                setattr(self, name, value[:0])
            self._step_chunk(0)
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    def running_lyapunov(self, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """γ̂ is NaN (not defined for these maps); the tangent exponent is of the full state."""
        acc, tangent = self.acc[rows], self.tangent[rows]
        out = np.empty(len(acc))
        dyn.run_blocks(self.kind_kernels.tangent_log_norms, -(-len(acc) // dyn.BLOCK),
                       30 * len(acc), (acc, tangent, out))
        return np.full(len(acc), np.nan), out


class UnderdampedSimulation(_OwnKernel):
    """Kind ``underdamped``: BAOAB with friction ``dynamics.friction`` (see
    :mod:`engine.kinds.underdamped`).  Exports ``velocities (F, N, 2)`` beside positions."""

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        rows = super()._new_particles(first, count)
        states = particle_states(self.preset.ensemble.seed, first, count, PURPOSE_VELOCITY)
        z = draw_normals(states, 2, ZIGGURAT_X, ZIGGURAT_F) if count else np.zeros((0, 2))
        rows["velocities"] = math.sqrt(self.preset.dynamics.temperature) * z
        return rows

    def _kernel(self):
        return self.kind_kernels.baoab_blocks

    def _kernel_args(self, chunk: int) -> tuple:
        d = self.scheduled_dynamics()
        return (self.positions, self.velocities, self.alive, self.rng, self.tangent, self.acc,
                chunk, self.params, d.lr, d.temperature, d.friction)

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        if per_particle is not None:
            per_particle["velocities"] = self.velocities
        alive = self.alive.astype(bool)
        if alive.any():  # ½⟨|v|²⟩ = T at equilibrium (BAOAB: close to it, O(h²))
            scalars["kinetic_temperature"] = float(
                np.mean(self.velocities[alive] ** 2))


class AdaptiveSimulation(_OwnKernel):
    """Kinds ``adam``, ``rmsprop`` and ``adamw`` (see :mod:`engine.kinds.adaptive`); switching
    between them live keeps the moments."""

    PARTICLE_FIELDS = Simulation.PARTICLE_FIELDS + ("moments",)

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        rows = super()._new_particles(first, count)
        tangent = np.zeros((count, 6))
        tangent[:, :2] = rows["tangent"][:, :2]
        rows["tangent"] = tangent
        moments = np.zeros((count, 6))
        moments[:, 4:] = 1.0  # the running products of β1 and β2
        rows["moments"] = moments
        return rows

    def _kernel(self):
        return self.kind_kernels.adaptive_blocks

    def _kernel_args(self, chunk: int) -> tuple:
        d = self.scheduled_dynamics()
        return (self.positions, self.moments, self.alive, self.rng, self.tangent, self.acc,
                chunk, self.params, d.lr, d.temperature, RULES[d.kind], d.beta1, d.beta2,
                d.eps, d.weight_decay, d.noise == "curvature", d.batch_size, self.data,
                d.noise_scale)

    def effective_temperature(self) -> float:
        return 0.0  # preconditioned noise: no Gibbs law, no equivalent temperature
