"""Hessian extremes by batched Lanczos on Hessian-vector products, and the gradient-noise norm
σ(θ) from per-sample gradients (Zhang et al. (2022), eq. 1), for many models at once.

Every model's Hessian is a diagonal block of the Hessian of the summed objective, so one
double-backward product serves all models; vectors are (M, P), one row per model.

Tolerance.  After ``k`` Lanczos steps (full re-orthogonalisation) each Ritz value θ has an exact
eigenvalue of the model's Hessian within its residual ``β_k |s_k|`` (the last component of its
Ritz vector times the last off-diagonal), which is returned next to λ_max and λ_min.  Extreme
Ritz values are also inner bounds: ``θ_max ≤ λ_max`` and ``θ_min ≥ λ_min``.  A model whose Krylov
space becomes invariant earlier (β ≈ 0) stops there with residual 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .model import PARAM_NAMES, Params, flatten, unflatten


@dataclass(frozen=True)
class Extremes:
    """Per-model Ritz estimates (each a (M,) float64 array)."""

    lam_max: np.ndarray
    lam_min: np.ndarray
    res_max: np.ndarray
    res_min: np.ndarray


def hvp_operator(total_loss: torch.Tensor, params: Params) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v (M, P) ↦ H v (M, P)`` for the objective whose graph ``total_loss`` holds.

    The first derivative graph is built once and reused by every product (retain_graph).
    """
    leaves = [params[name] for name in PARAM_NAMES]
    grads = torch.autograd.grad(total_loss, leaves, create_graph=True)

    def apply(vectors: torch.Tensor) -> torch.Tensor:
        parts = unflatten(vectors, params)
        dot = sum((g * parts[name]).sum() for g, name in zip(grads, PARAM_NAMES))
        products = torch.autograd.grad(dot, leaves, retain_graph=True)
        return flatten(dict(zip(PARAM_NAMES, products))).detach()

    return apply


def lanczos_extremes(hvp: Callable[[torch.Tensor], torch.Tensor], models: int, dim: int,
                     steps: int, seed: int, *, dtype=torch.float32,
                     device: torch.device | str = "cpu") -> Extremes:
    """λ_max and λ_min of each model's Hessian by ``steps`` Lanczos iterations."""
    steps = max(1, min(steps, dim))
    gen = torch.Generator().manual_seed(int(seed))
    q = torch.randn((models, dim), generator=gen, dtype=torch.float64).to(device, dtype)
    q = q / q.norm(dim=1, keepdim=True)
    basis = torch.zeros((steps, models, dim), dtype=dtype, device=device)
    alpha = torch.zeros((models, steps), dtype=torch.float64)
    beta = torch.zeros((models, steps), dtype=torch.float64)
    length = np.full(models, steps)
    q_prev = torch.zeros_like(q)
    b_prev = torch.zeros(models, dtype=dtype, device=device)
    for j in range(steps):
        basis[j] = q
        w = hvp(q)
        a = (w * q).sum(1)
        w = w - a[:, None] * q - b_prev[:, None] * q_prev
        for _ in range(2):   # full re-orthogonalisation, twice is enough (Kahan–Parlett)
            coef = torch.einsum("jmp,mp->jm", basis[:j + 1], w)
            w = w - torch.einsum("jm,jmp->mp", coef, basis[:j + 1])
        b = w.norm(dim=1)
        alpha[:, j] = a.double().cpu()
        beta[:, j] = b.double().cpu()
        scale = alpha[:, :j + 1].abs().max(1).values.numpy() + 1e-30
        broke = (beta[:, j].numpy() <= 1e-6 * scale) & (length == steps)
        length[broke] = j + 1
        alive = torch.as_tensor(length == steps, device=device)
        q_prev, q = q, torch.where(alive[:, None], w / torch.clamp(b, min=1e-30)[:, None],
                                   torch.zeros_like(w))
        b_prev = torch.where(alive, b, torch.zeros_like(b))
    out = np.zeros((4, models))
    for m in range(models):
        k = int(length[m])
        tri = np.diag(alpha[m, :k].numpy())
        off = beta[m, :k - 1].numpy()
        tri += np.diag(off, 1) + np.diag(off, -1)
        theta, vecs = np.linalg.eigh(tri)
        last = beta[m, k - 1].item() if k == steps and length[m] == steps else 0.0
        residual = np.abs(last * vecs[-1])
        out[:, m] = theta[-1], theta[0], residual[-1], residual[0]
    return Extremes(*out)


def noise_norm(loss_of_sample: Callable, params: Params, images: torch.Tensor,
               labels: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """σ(θ) = √(mean_i ‖∇ℓ_i − ∇L‖²) per model, (M,) — Zhang et al. (2022), eq. 1 — from exact
    per-sample gradients.

    ``loss_of_sample(params, image (M, H, W), label (M,))`` is the summed-over-models loss of one
    sample index; ``images`` is (n, M, H, W) and ``labels`` (M, n).
    """
    from torch.func import grad, vmap
    detached = {k: v.detach() for k, v in params.items()}
    per_sample = vmap(grad(loss_of_sample), in_dims=(None, 0, 1), chunk_size=chunk)(
        detached, images, labels)                     # each (n, M, …)
    n = images.shape[0]
    total = torch.zeros(images.shape[1], dtype=images.dtype, device=images.device)
    for name in PARAM_NAMES:
        g = per_sample[name]
        deviation = g - g.mean(0, keepdim=True)
        total = total + deviation.pow(2).reshape(n, g.shape[1], -1).sum(2).sum(0)
    return (total / n).sqrt()
