"""Many small ghost-head CNNs evaluated at once (Park & Yun (2025), §5; docs/science.md § 7).

The architecture is the paper's: two blocks conv 3×3 → ReLU → max-pool 2×2, then a linear head to
``c + e`` logits.  Convolutions use padding 1 ("same") so that 8×8 digits survive two poolings
(8 → 4 → 2); 28×28 MNIST gives 7×7 feature maps.

``M`` models (runs × arms) are stacked along a leading axis of every parameter and evaluated as
*grouped* convolutions: model ``m`` sees its own images in input channel group ``m``.  The total
objective is the sum of the per-model mean losses, so one backward pass yields every model's own
gradient (the models share no parameter) and the Hessian of the total is block diagonal.

Ghost logits: every model has a head with ``c + e_max`` rows; a model with ``e < e_max`` ghosts
has its unused rows masked to ``-inf`` before the softmax, which makes them exactly invisible
(probability 0, gradient 0).  A model with ``e = 0`` therefore trains on the ordinary
cross-entropy.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]
PARAM_NAMES = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "head_w", "head_b")


@dataclass(frozen=True)
class Architecture:
    """Shapes of one model: image side ``height × width``, ``classes`` real logits."""

    height: int
    width: int
    classes: int
    channels: tuple[int, int] = (8, 16)
    max_ghosts: int = 0

    @property
    def feature_size(self) -> int:
        h, w = self.height // 2 // 2, self.width // 2 // 2
        return self.channels[1] * h * w

    @property
    def logits(self) -> int:
        return self.classes + self.max_ghosts

    def shapes(self) -> dict[str, tuple[int, ...]]:
        c1, c2 = self.channels
        return {"conv1_w": (c1, 1, 3, 3), "conv1_b": (c1,),
                "conv2_w": (c2, c1, 3, 3), "conv2_b": (c2,),
                "head_w": (self.logits, self.feature_size), "head_b": (self.logits,)}

    def fan_in(self, name: str) -> int:
        c1, _ = self.channels
        return {"conv1": 9, "conv2": c1 * 9, "head": self.feature_size}[name.split("_")[0]]


def init_params(arch: Architecture, seeds: list[int], *, ghost_seeds: list[int] | None = None,
                ghost_scale: float = 1.0, dtype=torch.float32) -> Params:
    """PyTorch's default initialisation (uniform ±1/√fan_in) for each model, on the CPU.

    ``seeds[m]`` fixes model ``m``'s shared layers (convolutions and the real-class head rows);
    ``ghost_seeds[m]`` its ghost rows, scaled by ``ghost_scale``.  Two models with the same seed
    therefore start from identical shared weights.  Generated on the CPU so that CUDA runs start
    from exactly the same numbers.
    """
    ghost_seeds = seeds if ghost_seeds is None else ghost_seeds
    shapes = arch.shapes()
    out = {name: torch.empty((len(seeds),) + shape, dtype=torch.float64)
           for name, shape in shapes.items()}
    for m, (seed, gseed) in enumerate(zip(seeds, ghost_seeds)):
        gen = torch.Generator().manual_seed(int(seed))
        for name, shape in shapes.items():
            bound = 1.0 / math.sqrt(arch.fan_in(name))
            if name.startswith("head"):
                real = (arch.classes,) + shape[1:]
                out[name][m, :arch.classes] = _uniform(real, bound, gen)
                ghost = (arch.max_ghosts,) + shape[1:]
                if arch.max_ghosts:
                    ggen = torch.Generator().manual_seed(int(gseed) + 7_919)
                    out[name][m, arch.classes:] = ghost_scale * _uniform(ghost, bound, ggen)
            else:
                out[name][m] = _uniform(shape, bound, gen)
    return {name: t.to(dtype) for name, t in out.items()}


def _uniform(shape, bound: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound


def ghost_mask(arch: Architecture, ghosts: list[int], device, dtype) -> torch.Tensor:
    """(M, c + e_max) additive mask: 0 for a model's live logits, −inf for unused ghost rows."""
    mask = torch.zeros((len(ghosts), arch.logits), dtype=dtype)
    for m, e in enumerate(ghosts):
        mask[m, arch.classes + e:] = float("-inf")
    return mask.to(device)


def model_major(images: torch.Tensor) -> torch.Tensor:
    """(M, n, H, W) → the (n, M, H, W) channels-last layout :func:`forward` takes (one copy)."""
    return images.permute(1, 0, 2, 3).contiguous(memory_format=torch.channels_last)


def forward(params: Params, images: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """Logits of every model on its own images.

    Parameters
    ----------
    params : dict of tensors with leading axis M (see :meth:`Architecture.shapes`)
    images : (n, M, H, W) float tensor, channel ``m`` holding model ``m``'s images (see
        :func:`model_major`); channels-last memory is fastest (pooling 5–10× faster here).
        (n, 1, H, W) means every model sees the same images (a shared test set).
    channels_last : pool in channels-last memory.  Off inside ``torch.func`` transforms: a
        memory-format copy of a batched tensor is not implemented there on every torch build
        (torch 2.11 with CUDA raised "NYI" for the per-sample gradients), and one sample gains
        nothing from it.

    Returns
    -------
    (M, n, c + e_max) logits (ghost rows unmasked).
    """
    n = images.shape[0]
    models = params["conv1_w"].shape[0]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    w1 = params["conv1_w"].reshape((-1,) + params["conv1_w"].shape[2:])
    if images.shape[1] == 1 and models > 1:
        x = _shared_first_conv(images[:, 0], w1, params["conv1_b"].reshape(-1))
    else:
        x = F.conv2d(images, w1, params["conv1_b"].reshape(-1), padding=1, groups=models)
    # max-pool and ReLU commute; pooling first halves the ReLU work
    x = F.relu(F.max_pool2d(x.contiguous(memory_format=layout), 2))
    w2 = params["conv2_w"].reshape((-1,) + params["conv2_w"].shape[2:])
    x = F.conv2d(x, w2, params["conv2_b"].reshape(-1), padding=1, groups=models)
    x = F.relu(F.max_pool2d(x.contiguous(memory_format=layout), 2))
    features = x.reshape(n, models, -1)                     # per model: (c2, h, w) flattened
    logits = torch.einsum("nmf,mkf->mnk", features, params["head_w"])
    return logits + params["head_b"][:, None, :]


def per_sample_loss(mask: torch.Tensor, classes: int) -> Callable:
    """``loss(params, image (M, H, W), label (M,))``: the ghost loss (Park & Yun (2025), eq. 5.2)
    of one sample index summed over models, in the form ``torch.func.vmap(grad(·))`` takes for per-sample
    gradients (:func:`engine.cnn.curvature.noise_norm`)."""

    def loss(params: Params, image: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        logits = forward(params, image[None], channels_last=False)
        ext, _ = ghost_losses(logits, label[:, None], mask, classes)
        return ext.sum()

    return loss


def _shared_first_conv(images: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor) -> torch.Tensor:
    """All models' first convolution of one shared image batch (n, H, W) as a single matrix
    product of its 3×3 patches (2.5× faster here than a grouped convolution of copies); the
    result (n, M·c1, H, W) comes out channels-last."""
    n, height, width = images.shape
    padded = F.pad(images, (1, 1, 1, 1))
    patches = torch.stack([padded[:, i:i + height, j:j + width]
                           for i in range(3) for j in range(3)], dim=-1)
    out = torch.addmm(bias, patches.reshape(n * height * width, 9),
                      weight.reshape(weight.shape[0], 9).T)
    return out.reshape(n, height, width, -1).permute(0, 3, 1, 2)


@dataclass
class LossParts:
    """Per-model means over the data (each a (M,) tensor)."""

    ext: torch.Tensor        # trained objective, Park & Yun (2025), eq. 5.2
    orig: torch.Tensor       # cross-entropy over the c real logits
    ghost: torch.Tensor      # f_ghost = ext − orig ≥ 0
    ghost_mass: torch.Tensor  # mean Σ_k ŷ_{c+k}
    accuracy: torch.Tensor   # argmax over the real logits


def ghost_losses(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                 classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample extended and original losses, each (M, n).

    ``L_ext = log(Σ_{j≤c} e^{z_j} + Σ_k e^{z_{c+k}}) − z_y`` (ghosts in the denominator only,
    never a label); ``L_orig`` is the same with the real logits alone.
    """
    true_logit = logits.gather(2, labels[..., None])[..., 0]
    log_all = torch.logsumexp(logits + mask[:, None, :], dim=2)
    log_real = torch.logsumexp(logits[..., :classes], dim=2)
    return log_all - true_logit, log_real - true_logit


def loss_parts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
               classes: int, weights: torch.Tensor | None = None) -> LossParts:
    """Per-model means over the samples; with ``weights`` (M, n), rows summing to 1, weighted
    means instead (a run's own test images among shared ones, the others weighted 0)."""
    ext, orig = ghost_losses(logits, labels, mask, classes)
    ghost = ext - orig
    # Σ_k ŷ_{c+k} = 1 − Σ_real e^z / Σ_all e^z = 1 − exp(−f_ghost) per sample
    mass = -torch.expm1(-ghost)
    correct = (logits[..., :classes].argmax(dim=2) == labels).to(logits.dtype)
    if weights is None:
        return LossParts(ext.mean(1), orig.mean(1), ghost.mean(1), mass.mean(1),
                         correct.mean(1))
    return LossParts(*((x * weights).sum(1) for x in (ext, orig, ghost, mass, correct)))


def flatten(tensors: Params) -> torch.Tensor:
    """(M, P) view of a parameter-shaped dict (one row per model)."""
    return torch.cat([tensors[name].reshape(tensors[name].shape[0], -1) for name in PARAM_NAMES],
                     dim=1)


def unflatten(flat: torch.Tensor, like: Params) -> Params:
    out, start = {}, 0
    for name in PARAM_NAMES:
        size = like[name][0].numel()
        out[name] = flat[:, start:start + size].reshape(like[name].shape)
        start += size
    return out


def shared_vector(params: Params, classes: int) -> np.ndarray:
    """(M, P_shared) float32: the convolutions and the real-class head rows — the coordinates
    both arms have, so that runs with and without ghosts live in one space for the PCA view."""
    parts = [params[name].reshape(params[name].shape[0], -1)
             for name in ("conv1_w", "conv1_b", "conv2_w", "conv2_b")]
    parts.append(params["head_w"][:, :classes].reshape(params["head_w"].shape[0], -1))
    parts.append(params["head_b"][:, :classes])
    return torch.cat(parts, dim=1).detach().to("cpu", torch.float32).numpy()
