"""Ghost-extended SGD (Park & Yun): the classifier's logits extended by ``e`` ghost outputs with
weights γ trained alongside; minibatches of the classifier's own data (:mod:`engine.ghost`)."""
from __future__ import annotations

from ..dynamics import StepConfig
from .base import Kind, register
from .data_minibatches import check_data_minibatches


class GhostSGD(Kind):
    name = "ghost"
    summary = "ghost-extended minibatch SGD on the classifier (e ghost outputs)"
    uses = frozenset({"lr", "temperature", "batch_size", "dataset_size", "ghosts",
                      "ghost_init"})

    def validate(self, dynamics, landscape_builtin, boundary, fail):
        if landscape_builtin != "sine_classifier":
            raise fail("dynamics.kind", "= 'ghost' needs a classifier landscape "
                       "(landscape.builtin = 'sine_classifier')")
        check_data_minibatches(dynamics, boundary, fail)

    def step_config(self, d) -> StepConfig:
        return StepConfig(d.lr, d.temperature, 0.0, True, False, d.batch_size)

    def equivalent_langevin(self, d, data_defined):
        return d.temperature, d.lr  # the data's minibatch noise has no closed form

    def simulation_class(self, preset):
        from ..ghost_simulation import GhostSimulation
        return GhostSimulation


register(GhostSGD())
