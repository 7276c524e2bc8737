"""Full-batch gradient descent: ``w ← w − η ∇f(w)``; no noise, so no Gibbs measure."""
from __future__ import annotations

from ..dynamics import StepConfig
from .base import Kind, register


class GradientDescent(Kind):
    name = "gd"
    summary = "full-batch gradient descent (no noise)"
    uses = frozenset({"lr"})

    def step_config(self, d) -> StepConfig:
        return StepConfig(d.lr, 0.0, 0.0, False, False, d.batch_size)

    def equivalent_langevin(self, d, data_defined):
        return 0.0, d.lr

    def stable_step(self, lambda_max, d):
        return 2.0 / lambda_max if lambda_max > 0 else None


register(GradientDescent())
