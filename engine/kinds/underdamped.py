"""Underdamped Langevin by BAOAB (Leimkuhler & Matthews 2013): positions and velocities, unit
mass, friction γ (``dynamics.friction``), step h (``dynamics.lr``)::

    dx = v dt,   dv = −∇f(x) dt − γ v dt + √(2γT) dW

Its stationary law in x is the Gibbs density ∝ exp(−f/T), on a quadratic exactly so at any
stable step (x-variance T/k), and velocities start from the Maxwell law N(0, T).  The kernel is
:func:`engine.kind_kernels.baoab_range`; the state adds nothing to the other kinds' (velocities
and a 4-wide tangent ``(δx, δv)``), so the running Lyapunov estimate is the tangent exponent of
the full map (the gradient-map estimate γ̂ of Park & Yun (2025) is not defined for it: NaN).
"""
from __future__ import annotations

from ..dynamics import StepConfig
from .base import Kind, register


class Underdamped(Kind):
    name = "underdamped"
    summary = "underdamped Langevin (BAOAB): velocities, friction γ, temperature T"
    uses = frozenset({"lr", "temperature", "friction"})
    replica_exchange = True  # [ensemble] replicas runs it on a temperature ladder

    def validate(self, dynamics, landscape_builtin, boundary, fail):
        if landscape_builtin == "sine_classifier":
            raise fail("dynamics.kind", "= 'underdamped' runs on analytic landscapes (the "
                       "classifier's runs are minibatch SGD: kind sgd or ghost)")

    def step_config(self, d) -> StepConfig:
        return StepConfig(d.lr, d.temperature, 0.0, False, False, d.batch_size)

    def equivalent_langevin(self, d, data_defined):
        """The same Gibbs law at T (Laplace weights exact); at high friction x follows the
        overdamped dynamics with mobility 1/γ, so a step of h is an overdamped step h/γ (the
        Kramers times predicted are those of the high-friction limit, Kramers (1940))."""
        return d.temperature, d.lr / d.friction

    def stable_step(self, lambda_max, d):
        """BAOAB (as velocity Verlet) is stable for h < 2/√λ_max."""
        return 2.0 / lambda_max ** 0.5 if lambda_max > 0 else None

    def simulation_class(self, preset):
        if preset.ensemble.replicas is not None:
            from ..replica_exchange import UnderdampedReplicaExchange
            return UnderdampedReplicaExchange
        from ..kind_simulations import UnderdampedSimulation
        return UnderdampedSimulation


register(Underdamped())
