"""Test-set logits of every model on one shared image set, by fused CPU kernels.

Every epoch of the ghost-CNN experiment evaluates all M models (runs × arms) on the same test
images — at 28×28 with 5,000 images and 60 models that is ~85 % of an epoch's arithmetic.  The
autograd path (:func:`engine.cnn.model.forward`) writes each convolution's full-resolution output
to memory, pools it with argmax indices and applies the ReLU in separate passes.  Here each block
ends in one numba pass that keeps the maximum under each 2×2 pooling window, adds the bias and
applies the ReLU (bias and ReLU commute with the maximum, so the result is the same function).
The first block's kernel also computes the four convolutions under the window itself, so only
the pooled maps reach memory; the second block's grouped convolution is oneDNN's (channels-last
was 1.9× faster than NCHW and 5× faster than torch without oneDNN here).  Inner loops run over
channels, contiguous in memory, so they vectorise.

Layouts are channels-last and model-major inside a pixel: block outputs are
``(n, h, w, M, channels)``.  Used for inference only (no gradients), on the CPU; CUDA keeps the
torch path.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit, prange

from .model import Params

FASTMATH = {"contract", "nsz", "arcp"}


@njit(nogil=True, parallel=True, cache=True, fastmath=FASTMATH)
def _first_block(padded: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                 out: np.ndarray) -> None:
    """padded (n, H+2, W+2) zero-bordered images; weight (9, C) taps row-major (ky, kx);
    bias (C,); out (n, H/2, W/2, C) = ReLU(max-pool 2×2(conv 3×3) + bias)."""
    n, h2, w2, channels = out.shape
    for i in prange(n):
        acc = np.empty(channels, dtype=out.dtype)
        best = np.empty(channels, dtype=out.dtype)
        for py in range(h2):
            for px in range(w2):
                best[:] = -np.inf
                for oy in range(2):
                    for ox in range(2):
                        acc[:] = 0.0
                        for ky in range(3):
                            for kx in range(3):
                                v = padded[i, 2 * py + oy + ky, 2 * px + ox + kx]
                                for c in range(channels):
                                    acc[c] += v * weight[3 * ky + kx, c]
                        for c in range(channels):
                            best[c] = max(best[c], acc[c])
                for c in range(channels):
                    value = best[c] + bias[c]
                    out[i, py, px, c] = value if value > 0.0 else 0.0


@njit(nogil=True, parallel=True, cache=True, fastmath=FASTMATH)
def _pool_bias_relu(maps: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """maps (n, H, W, C) channels-last → out (n, H/2, W/2, C) = ReLU(2×2 max-pool + bias), in
    one pass over the maps (torch's elementwise maxima, bias and ReLU took five)."""
    n, h2, w2, channels = out.shape
    for i in prange(n):
        for py in range(h2):
            for px in range(w2):
                for c in range(channels):
                    value = max(max(maps[i, 2 * py, 2 * px, c], maps[i, 2 * py, 2 * px + 1, c]),
                                max(maps[i, 2 * py + 1, 2 * px, c],
                                    maps[i, 2 * py + 1, 2 * px + 1, c])) + bias[c]
                    out[i, py, px, c] = value if value > 0.0 else 0.0


def padded_images(images: torch.Tensor) -> np.ndarray:
    """(n, H, W) images → the zero-bordered (n, H+2, W+2) array :func:`shared_logits` takes."""
    return np.ascontiguousarray(F.pad(images, (1, 1, 1, 1)).cpu().numpy())


def shared_logits(params: Params, padded: np.ndarray, chunk: int = 256) -> torch.Tensor:
    """(M, n, c + e_max) logits of every model on the same images, equal to
    :func:`engine.cnn.model.forward` up to float rounding (CPU only).

    ``padded`` comes from :func:`padded_images`, in the parameters' float type; ``chunk`` images
    go through both blocks at a time so that the intermediate maps stay in cache.
    """
    p = {name: value.detach() for name, value in params.items()}
    models, c1 = p["conv1_w"].shape[:2]
    c2, logits = p["conv2_w"].shape[1], p["head_w"].shape[1]
    n, height, width = padded.shape[0], padded.shape[1] - 2, padded.shape[2] - 2
    h2, w2 = height // 4, width // 4
    weight1 = np.ascontiguousarray(p["conv1_w"].reshape(models * c1, 9).T.numpy())
    bias1 = np.ascontiguousarray(p["conv1_b"].reshape(-1).numpy())
    weight2 = p["conv2_w"].reshape(models * c2, c1, 3, 3)
    bias2 = np.ascontiguousarray(p["conv2_b"].reshape(-1).numpy())
    # the head reads features in the blocks' (h, w, c2) order, not the autograd path's (c2, h, w)
    head = (p["head_w"].reshape(models, logits, c2, h2, w2).permute(0, 3, 4, 2, 1)
            .reshape(models, h2 * w2 * c2, logits))
    first = np.empty((min(chunk, n), height // 2, width // 2, models * c1), padded.dtype)
    second = np.empty((min(chunk, n), h2, w2, models * c2), padded.dtype)
    out = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        _first_block(padded[start:start + size], weight1, bias1, first[:size])
        maps = torch.from_numpy(first[:size]).permute(0, 3, 1, 2)    # channels-last strides
        maps = F.conv2d(maps, weight2, None, padding=1, groups=models).permute(0, 2, 3, 1)
        _pool_bias_relu(maps.contiguous().numpy(), bias2, second[:size])
        features = torch.from_numpy(second[:size]).reshape(size, h2 * w2, models, c2)
        out.append(torch.bmm(features.permute(2, 0, 1, 3).reshape(models, size, -1), head))
    return torch.cat(out, dim=1) + p["head_b"][:, None, :]
