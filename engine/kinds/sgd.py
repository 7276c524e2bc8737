"""Minibatch SGD: the gradient of a mean over ``B`` of ``n`` samples drawn without replacement.

On an analytic landscape the samples come from a finite-sum noise model (``additive``:
state-independent covariance ``σ²Σ (n − B)/(B(n − 1))``; ``curvature``: shifts that follow the
local Hessian); on a data-defined landscape (the classifier) they are its real data, and the run
is the ghost kernel's with no ghosts (:mod:`engine.kinds.ghost`)."""
from __future__ import annotations

import numpy as np

from ..dynamics import StepConfig
from .base import Kind, register
from .data_minibatches import check_data_minibatches


def minibatch_factor(d) -> float:
    """``(n − B)/(B (n − 1))``: the variance of a mean of ``B`` of ``n`` whitened samples drawn
    without replacement, per unit of their population variance."""
    return (d.dataset_size - d.batch_size) / (d.batch_size * (d.dataset_size - 1))


class MinibatchSGD(Kind):
    name = "sgd"
    summary = "minibatch SGD (batch size B of n samples; noise model or real data)"
    uses = frozenset({"lr", "temperature", "batch_size", "dataset_size", "noise", "noise_scale",
                      "noise_cov", "momentum"})

    def validate(self, dynamics, landscape_builtin, boundary, fail):
        if landscape_builtin == "sine_classifier":
            check_data_minibatches(dynamics, boundary, fail)

    def controls(self, data_defined):
        if data_defined:  # real minibatches: no noise model, and the data kernel has no β
            return self.uses - {"noise", "noise_scale", "noise_cov", "momentum"}
        return self.uses

    def step_config(self, d) -> StepConfig:
        return StepConfig(d.lr, d.temperature, d.momentum, True, d.noise == "curvature",
                          d.batch_size)

    def equivalent_langevin(self, d, data_defined):
        """Additive noise ``σ²Σ`` adds ``η σ² tr Σ (n − B)/(4B(n − 1))`` (2D) to T, so the batch
        size acts as a temperature and η/B fixed keeps it (the linear scaling rule).
        Curvature noise and real data are state dependent: no Gibbs measure, no prediction."""
        scale = 1.0 - d.momentum
        if data_defined or (d.noise == "curvature" and d.noise_scale != 0.0):
            return 0.0, d.lr / scale
        trace = float(np.trace(np.asarray(d.noise_cov, dtype=np.float64))) * d.noise_scale ** 2
        temperature = d.temperature + d.lr * trace * minibatch_factor(d) / 4.0
        return temperature / scale, d.lr / scale

    def simulation_class(self, preset):
        if preset.landscape.builtin == "sine_classifier":
            from ..ghost_simulation import GhostSimulation
            return GhostSimulation
        return super().simulation_class(preset)


register(MinibatchSGD())
