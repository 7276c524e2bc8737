"""Overdamped Langevin: ``w ← w − η ∇f(w) + √(2ηT) ξ``; stationary law ∝ exp(−f/T) as η → 0.
With ``momentum`` β > 0 the same noise drives a heavy ball (see :mod:`engine.kinds.momentum`)."""
from __future__ import annotations

from .base import Kind, register


class Langevin(Kind):
    name = "langevin"
    summary = "gradient step plus Gaussian noise at temperature T"
    uses = frozenset({"lr", "temperature", "momentum"})
    replica_exchange = True  # [ensemble] replicas runs it on a temperature ladder

    def simulation_class(self, preset):
        if preset.ensemble.replicas is not None:
            from ..replica_exchange import LangevinReplicaExchange
            return LangevinReplicaExchange
        return super().simulation_class(preset)


register(Langevin())
