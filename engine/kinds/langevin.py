"""Overdamped Langevin: ``w ← w − η ∇f(w) + √(2ηT) ξ``; stationary law ∝ exp(−f/T) as η → 0.
With ``momentum`` β > 0 the same noise drives a heavy ball (see :mod:`engine.kinds.momentum`)."""
from __future__ import annotations

from .base import Kind, register


class Langevin(Kind):
    name = "langevin"
    summary = "gradient step plus Gaussian noise at temperature T"
    uses = frozenset({"lr", "temperature", "momentum"})


register(Langevin())
