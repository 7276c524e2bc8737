"""Adaptive methods: Adam (Kingma & Ba 2015), AdamW (Loshchilov & Hutter 2019) and RMSprop
(Tieleman & Hinton 2012), with per-particle moments and the same noise sources as SGD (the
σ-noise model's minibatches, plus ``√(2ηT) ξ`` at temperature T).  Keys ``beta1``, ``beta2``,
``eps``, ``weight_decay``; the update is in :mod:`engine.kind_kernels`.

Edge of stability (Cohen et al. 2022): with the preconditioner ``P = diag(√v̂ + ε)`` frozen,
Adam near a minimum is a heavy ball on the preconditioned Hessian ``P⁻¹H``, stable while its
top eigenvalue — the *preconditioned sharpness* — stays below ``(2 + 2β1)/((1 − β1)η)``
(38/η at β1 = 0.9; RMSprop: β1 = 0, 2/η).  ``engine info`` reports both at every minimum, with
``v̂`` the second moment of the gradient noise there (:meth:`Adaptive.stability`)."""
from __future__ import annotations

import numpy as np

from ..dynamics import StepConfig
from .base import Kind, register
from .sgd import minibatch_factor


def sharpness_limit(beta1: float, lr: float) -> float:
    """``(2 + 2β1)/((1 − β1)η)``: the largest stable preconditioned sharpness (Cohen et al.
    2022, eq. 2 and § 3)."""
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)


class Adaptive(Kind):
    uses = frozenset({"lr", "temperature", "batch_size", "dataset_size", "noise", "noise_scale",
                      "noise_cov", "beta1", "beta2", "eps", "weight_decay"})
    momentum_beta = True  # RMSprop has no first moment

    def validate(self, dynamics, landscape_builtin, boundary, fail):
        if landscape_builtin == "sine_classifier":
            raise fail("dynamics.kind", f"= {self.name!r} runs the σ-noise model of analytic "
                       "landscapes (the classifier's runs are minibatch SGD: kind sgd or ghost)")

    def step_config(self, d) -> StepConfig:
        return StepConfig(d.lr, d.temperature, 0.0, True, d.noise == "curvature", d.batch_size)

    def equivalent_langevin(self, d, data_defined):
        return 0.0, d.lr  # preconditioned drift and noise: no Gibbs law to predict from

    def beta1(self, d) -> float:
        return d.beta1 if self.momentum_beta else 0.0

    def stable_step(self, lambda_max, d):
        """The largest η at which the map is stable at a minimum of preconditioned sharpness
        ``lambda_max`` (of ``P⁻¹H``, not of H)."""
        b1 = self.beta1(d)
        return (2.0 + 2.0 * b1) / ((1.0 - b1) * lambda_max) if lambda_max > 0 else None

    def preconditioner(self, hessian: np.ndarray, d) -> np.ndarray:
        """``diag(√v̂ + ε)`` at a minimum: ``v̂`` the per-coordinate second moment of the
        gradient noise of the σ-noise model there (additive: ``σ² Σ_ii (n − B)/(B (n − 1))``;
        curvature: the diagonal of ``σ² H Σ H`` times the same factor; 0 without noise)."""
        cov = np.asarray(d.noise_cov, dtype=np.float64) * d.noise_scale ** 2 * minibatch_factor(d)
        if d.noise == "curvature":
            cov = hessian @ cov @ hessian
        return np.sqrt(np.clip(np.diag(cov), 0.0, None)) + d.eps

    def stability(self, hessian, d) -> dict:
        hessian = np.asarray(hessian, dtype=np.float64)
        if self.name != "adamw":  # coupled weight decay: λ x is part of the gradient
            hessian = hessian + d.weight_decay * np.eye(2)
        p = self.preconditioner(hessian, d)
        scaled = hessian / np.sqrt(np.outer(p, p))  # P^-½ H P^-½: the eigenvalues of P⁻¹H
        sharpness = float(np.linalg.eigvalsh(0.5 * (scaled + scaled.T))[-1])
        limit = sharpness_limit(self.beta1(d), d.lr)
        return {"preconditioner": p.tolist(), "preconditioned_sharpness": sharpness,
                "preconditioned_sharpness_limit": limit, "stable": sharpness < limit,
                "stable_below_lr": self.stable_step(sharpness, d)}

    def simulation_class(self, preset):
        from ..kind_simulations import AdaptiveSimulation
        return AdaptiveSimulation


class Adam(Adaptive):
    name = "adam"
    summary = "Adam: moments β1, β2, ε; L2 weight decay in the gradient; σ-noise minibatches"


class AdamW(Adaptive):
    name = "adamw"
    summary = "AdamW: Adam with decoupled weight decay η λ x"


class RMSprop(Adaptive):
    name = "rmsprop"
    summary = "RMSprop: second moment β2, ε (no first moment); σ-noise minibatches"
    uses = Adaptive.uses - {"beta1"}
    momentum_beta = False


register(Adam())
register(RMSprop())
register(AdamW())
