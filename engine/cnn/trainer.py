"""R runs × arms of the ghost-CNN experiment, trained together (docs/science.md § 7).

Models are ordered arm-major: model ``m = a·R + r`` is run ``r`` of arm ``a`` (arm 0 the
baseline with e = 0, arm 1 the ghost arm with e = ``model.ghosts``).  The two arms of a run share
its training subset, its minibatch order and the initial weights of every shared layer (the
convolutions and the real-class head rows); only the ghost rows differ.  Runs are seeded by
index, so training run ``r`` alone (``runs=[r]``) gives the same numbers as training it inside a
batch.

Metrics are indexed by epoch ``t = 0 … E``: row ``t`` is measured at the weights *before* the
``t``-th epoch's update (row 0 at initialisation, row ``E`` after the last epoch).  For
full-batch GD the training loss and gradient come from the very pass that makes the step.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from . import data as cnn_data
from .config import CnnPreset
from .inference import padded_images, shared_logits
from .memory import keep_freed_memory
from .schedule import live_ghosts
from .curvature import hvp_operator, lanczos_extremes, noise_norm
from .model import (PARAM_NAMES, Architecture, forward, ghost_mask, init_params, loss_parts,
                    model_major, per_sample_loss, shared_vector)

EVERY_EPOCH = ("train_loss", "train_loss_orig", "train_acc", "f_ghost", "ghost_mass",
               "grad_norm", "test_loss", "test_loss_ext", "test_acc", "live_ghosts")
TEST_CHUNK_BYTES = 256 * 2 ** 20   # first-convolution output per chunk of test images
SOMETIMES = ("noise_norm", "lambda_max", "lambda_min", "lambda_max_res", "lambda_min_res",
             "lyapunov_term", "gradient_gap")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8     # Kingma & Ba (2015)'s defaults


def top_principal_axes(centred: np.ndarray, k: int, oversample: int = 8,
                       power: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` right singular vectors (k, P) of a centred (rows, P) matrix and their
    squared singular values (k,), by a seeded randomized range finder with ``power`` subspace
    iterations (Halko, Martinsson & Tropp 2011): milliseconds where a full SVD of thousands of
    snapshot rows takes seconds, and deterministic."""
    rows, cols = centred.shape
    width = min(k + oversample, rows, cols)
    if width == 0:
        return np.zeros((k, cols)), np.zeros(k)
    omega = np.random.default_rng(0).standard_normal((cols, width))
    basis, _ = np.linalg.qr(centred @ omega)
    for _ in range(power):
        basis, _ = np.linalg.qr(centred.T @ basis)
        basis, _ = np.linalg.qr(centred @ basis)
    _, sing, vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
    axes, variance = np.zeros((k, cols)), np.zeros(k)
    axes[:min(k, vt.shape[0])] = vt[:k]
    variance[:min(k, sing.size)] = sing[:k] ** 2
    # a fixed sign per axis, so that live updates do not flip the picture
    signs = np.sign(axes[np.arange(k), np.argmax(np.abs(axes), axis=1)])
    return axes * np.where(signs == 0, 1.0, signs)[:, None], variance


def resolve_device(name: str | None = None) -> torch.device:
    """``auto``/None → CUDA when available, else CPU; ``cpu`` and ``cuda`` as given."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available here")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected cpu, cuda or auto")
    return torch.device(name)


def deterministic_cuda() -> None:
    """Make CUDA training reproducible bit for bit from the preset and seed, as on the CPU.

    Measured on an H100: with cuDNN free to choose, two identical float32 runs differed in the
    8th digit of the gradient norm after three epochs (some backward kernels accumulate with
    atomics, in varying order).  Deterministic mode picks order-fixed kernels; cuBLAS needs its
    workspace pinned for that, read when its first handle is made.  ``warn_only``: an operation
    without a deterministic kernel warns instead of stopping a run."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


@lru_cache(maxsize=4)
def _split(source: str, path: str, test_per_class: int) -> cnn_data.Split:
    return cnn_data.split(source, path, test_per_class)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


@dataclass
class CnnFrame:
    """What the GUI shows after an epoch: metric rows 0…epoch (each (epoch+1, M)), the arms'
    ghost counts, run count and the PCA coordinates of the kept snapshots."""

    epoch: int
    epochs: int
    runs: int
    arms: tuple[int, ...]
    metrics: dict[str, np.ndarray]
    pca_epochs: np.ndarray
    pca_coords: np.ndarray        # (S, M, 2)


class CnnExperiment:
    """Train ``runs`` (indices, default all) of both arms together.

    Parameters
    ----------
    preset : CnnPreset
    device : "auto", "cpu", "cuda" or a torch.device
    dtype : torch dtype of parameters and data (float32; tests use float64)
    runs : which run indices to train (default ``range(training.runs)``)
    arms : which ghost counts to train (default ``(0, model.ghosts)``); one arm alone gives the
        same numbers as that arm inside the pair
    """

    def __init__(self, preset: CnnPreset, device: str | torch.device | None = None,
                 dtype: torch.dtype = torch.float32, runs: list[int] | None = None,
                 arms: tuple[int, ...] | None = None):
        keep_freed_memory()
        self.preset = preset
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        if self.device.type == "cuda":
            deterministic_cuda()
        self.dtype = dtype
        tr, spec = preset.training, preset.model
        self.run_ids = list(range(tr.runs)) if runs is None else [int(r) for r in runs]
        self.arms = tuple(arms) if arms else ((0, spec.ghosts) if spec.ghosts > 0 else (0,))
        R = len(self.run_ids)
        self.models = R * len(self.arms)
        split = _split(preset.data.source, preset.data.path, preset.data.test_per_class)
        self.classes = split.pool.classes
        height, width = split.pool.images.shape[1:]
        self.arch = Architecture(height, width, self.classes, spec.channels, max(self.arms))
        subsets = cnn_data.run_subsets(split.pool, preset.data.per_class, tr.seed,
                                       max(self.run_ids) + 1)[self.run_ids]
        subsets = np.tile(subsets, (len(self.arms), 1))                   # (M, n)
        self.n_train = subsets.shape[1]
        put = dict(device=self.device, dtype=dtype)
        # images in forward's (n, M, H, W) layout; labels (M, n)
        self.train_x = model_major(torch.as_tensor(split.pool.images[subsets]).to(**put))
        self.train_y = torch.as_tensor(split.pool.labels[subsets]).to(self.device)
        # one shared copy of the test images: forward convolves it once for all models
        self.test_x = torch.as_tensor(split.test.images).to(**put)[:, None]
        self.test_y = torch.as_tensor(split.test.labels).to(self.device)[None].expand(
            self.models, -1)
        # each model's test images among the shared ones (``test_per_class = 0``: all but its
        # run's training subset), as weights summing to 1; None = all of them
        self.test_weights = None
        self.n_test = np.full(self.models, split.test.labels.size)
        if split.exclude_train:
            keep = cnn_data.run_test_mask(split, subsets)                  # (M, n_test)
            self.n_test = keep.sum(1)
            self.test_weights = torch.as_tensor(keep / self.n_test[:, None]).to(**put)
        # test logits in chunks of images: at 28×28 the first convolution of thousands of
        # images for every model at once would take gigabytes
        per_image = self.models * spec.channels[0] * height * width * 4
        self.test_chunk = max(1, int(TEST_CHUNK_BYTES // per_image))
        # on the CPU the fused inference kernels evaluate the test set (engine.cnn.inference);
        # None selects the autograd path's forward, as on CUDA
        self.test_padded = (padded_images(self.test_x[:, 0]) if self.device.type == "cpu"
                            else None)
        self.ghosts = [e for e in self.arms for _ in self.run_ids]
        self.live = list(self.ghosts)       # ghost logits live now (model.ghost_schedule)
        self.mask = ghost_mask(self.arch, self.ghosts, self.device, dtype)
        seeds = [_seed(tr.seed, r, 2) for _ in self.arms for r in self.run_ids]
        ghost_seeds = [_seed(tr.seed, r, 3, e) for e in self.arms for r in self.run_ids]
        params = init_params(self.arch, seeds, ghost_seeds=ghost_seeds,
                             ghost_scale=spec.ghost_init_scale, dtype=torch.float64)
        params["head_w"][self.mask.cpu() == float("-inf")] = 0.0   # unused ghost rows
        params["head_b"][self.mask.cpu() == float("-inf")] = 0.0
        self.params = {k: v.to(**put).requires_grad_(True) for k, v in params.items()}
        self.epochs = tr.epochs
        self.epoch = 0
        self._adam_state: list[torch.Tensor] | None = None
        self._adam_steps = 0
        shape = (self.epochs + 1, self.models)
        self._rows = {name: np.full(shape, np.nan) for name in EVERY_EPOCH + SOMETIMES}
        every = preset.diagnostics.every
        self.diag_epochs = (np.arange(0, self.epochs + 1, every) if every
                            else np.zeros(0, dtype=np.int64))
        self.snap_every = max(1, math.ceil(self.epochs / (preset.diagnostics.snapshots - 1)))
        self._snap_epochs: list[int] = []
        self._snaps: list[np.ndarray] = []

    # --- one epoch -------------------------------------------------------------------------
    def _objective(self, images=None, labels=None):
        images = self.train_x if images is None else images
        labels = self.train_y if labels is None else labels
        logits = forward(self.params, images)
        return logits, loss_parts(logits, labels, self.mask, self.classes)

    def _test_parts(self):
        if self.test_padded is not None:
            logits = shared_logits(self.params, self.test_padded)
            return loss_parts(logits, self.test_y, self.mask, self.classes, self.test_weights)
        chunks = [forward(self.params, self.test_x[s:s + self.test_chunk])
                  for s in range(0, self.test_x.shape[0], self.test_chunk)]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=1)
        return loss_parts(logits, self.test_y, self.mask, self.classes, self.test_weights)

    def _leaves(self):
        return [self.params[name] for name in PARAM_NAMES]

    def _apply_schedule(self, t: int) -> None:
        """Mask the ghost logits that ``model.ghost_schedule`` has dropped by epoch ``t``."""
        spec = self.preset.model
        live = [live_ghosts(e, spec.ghost_schedule, spec.ghost_off_epoch, t) for e in self.ghosts]
        if live != self.live:
            self.live = live
            self.mask = ghost_mask(self.arch, live, self.device, self.dtype)

    def _gradient_gap(self, parts) -> torch.Tensor:
        """(M,) ‖∇_w f_ext − ∇_w f_orig‖ = ‖∇_w f_ghost‖ over the shared weights w (convolutions,
        real-class head rows), the quantity Park & Yun (2025) show vanishing with the ghost mass
        (their Result 5.3); the ghost rows γ are left out."""
        grads = torch.autograd.grad(parts.ghost.sum(), self._leaves(), retain_graph=True,
                                    allow_unused=True)
        total = torch.zeros(self.models, device=self.device, dtype=self.dtype)
        for name, g in zip(PARAM_NAMES, grads):
            if g is None:
                continue
            if name.startswith("head"):
                g = g[:, :self.classes]
            total = total + g.pow(2).reshape(self.models, -1).sum(1)
        return torch.sqrt(total)

    def _measure(self, t: int) -> list[torch.Tensor]:
        """Record row ``t`` at the current weights; returns the full-data gradient."""
        logits, parts = self._objective()
        gap_every = self.preset.diagnostics.gradient_gap_every
        if gap_every and t % gap_every == 0:
            self._rows["gradient_gap"][t] = self._gradient_gap(parts).double().cpu().numpy()
        grads = torch.autograd.grad(parts.ext.sum(), self._leaves())
        gnorm = torch.sqrt(sum(g.pow(2).reshape(self.models, -1).sum(1) for g in grads))
        with torch.no_grad():
            test = self._test_parts()
        rows = {"train_loss": parts.ext, "train_loss_orig": parts.orig,
                "train_acc": parts.accuracy, "f_ghost": parts.ghost,
                "ghost_mass": parts.ghost_mass, "grad_norm": gnorm,
                "test_loss": test.orig, "test_loss_ext": test.ext, "test_acc": test.accuracy,
                "live_ghosts": torch.tensor(self.live)}
        for name, value in rows.items():
            self._rows[name][t] = value.detach().double().cpu().numpy()
        if self.diag_epochs.size and t % self.preset.diagnostics.every == 0:
            self._diagnose(t)
        if t % self.snap_every == 0 or t == self.epochs:
            self._snap_epochs.append(t)
            self._snaps.append(shared_vector(self.params, self.classes))
        return list(grads)

    def _diagnose(self, t: int) -> None:
        sample_loss = per_sample_loss(self.mask, self.classes)
        self._rows["noise_norm"][t] = noise_norm(sample_loss, self.params, self.train_x,
                                                 self.train_y).double().cpu().numpy()
        _, parts = self._objective()
        hvp = hvp_operator(parts.ext.sum(), self.params)
        dim = sum(self.params[n][0].numel() for n in PARAM_NAMES)
        ext = lanczos_extremes(hvp, self.models, dim, self.preset.diagnostics.lanczos_steps,
                               _seed(self.preset.training.seed, t, 4), dtype=self.dtype,
                               device=self.device)
        lr = self.preset.training.lr
        norm = np.maximum(np.abs(1 - lr * ext.lam_max), np.abs(1 - lr * ext.lam_min))
        self._rows["lambda_max"][t], self._rows["lambda_min"][t] = ext.lam_max, ext.lam_min
        self._rows["lambda_max_res"][t], self._rows["lambda_min_res"][t] = ext.res_max, ext.res_min
        self._rows["lyapunov_term"][t] = np.log(np.maximum(norm, 1e-300))

    def _batches(self, t: int) -> list[torch.Tensor]:
        """Minibatch index tensors (M, B) for epoch t: each run's own permutation, shared by
        its arms; the last batch is smaller when B does not divide n."""
        n, B = self.n_train, self.preset.training.batch_size
        perms = np.stack([np.random.default_rng(
            np.random.SeedSequence([self.preset.training.seed, r, 5, t])).permutation(n)
            for r in self.run_ids])
        perms = np.tile(perms, (len(self.arms), 1))
        return [torch.as_tensor(perms[:, s:s + B], device=self.device) for s in range(0, n, B)]

    def _step(self, grads: list[torch.Tensor]) -> None:
        lr = self.preset.training.lr
        with torch.no_grad():
            if self.preset.training.optimizer != "adam":
                for p, g in zip(self._leaves(), grads):
                    p.sub_(lr * g)
                return
            # Adam is elementwise, so stacking the models changes nothing in any one of them
            (b1, b2), self._adam_steps = ADAM_BETAS, self._adam_steps + 1
            if self._adam_state is None:
                self._adam_state = [torch.zeros_like(g) for g in grads for _ in range(2)]
            scale = lr * math.sqrt(1 - b2 ** self._adam_steps) / (1 - b1 ** self._adam_steps)
            for i, (p, g) in enumerate(zip(self._leaves(), grads)):
                first, second = self._adam_state[2 * i], self._adam_state[2 * i + 1]
                first.mul_(b1).add_(g, alpha=1 - b1)
                second.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(first, second.sqrt().add_(ADAM_EPS * math.sqrt(
                    1 - b2 ** self._adam_steps)), value=-scale)

    def advance(self, epochs: int = 1, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> None:
        """Train ``epochs`` more epochs (clipped at the preset's total)."""
        stop = min(self.epoch + int(epochs), self.epochs)
        minibatch = self.preset.training.optimizer in ("sgd", "adam")
        rows = torch.arange(self.models, device=self.device)[:, None]
        channels_last = torch.channels_last
        while self.epoch < stop:
            if cancelled is not None and cancelled():
                return
            self._apply_schedule(self.epoch)
            grads = self._measure(self.epoch)
            if not minibatch:
                self._step(grads)
            else:
                for index in self._batches(self.epoch):
                    images = self.train_x[index.T, rows.T].contiguous(
                        memory_format=channels_last)
                    _, parts = self._objective(images, self.train_y[rows, index])
                    self._step(torch.autograd.grad(parts.ext.sum(), self._leaves()))
            self.epoch += 1
            if self.epoch == self.epochs:
                self._apply_schedule(self.epoch)
                self._measure(self.epoch)
            if progress is not None:
                progress(self.epoch, self.epochs)

    def run(self, progress=None, cancelled=None) -> "CnnExperiment":
        self.advance(self.epochs - self.epoch, progress, cancelled)
        return self

    # --- results ---------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def metrics(self) -> dict[str, np.ndarray]:
        """Rows 0…last measured epoch of every metric, plus running averages (each (T, M))."""
        last = self.epoch + 1 if self.done else self.epoch
        out = {name: rows[:last].copy() for name, rows in self._rows.items()}
        count = np.arange(1, last + 1)[:, None]
        out["train_loss_time_avg"] = np.cumsum(out["train_loss"], 0) / count
        out["test_loss_time_avg"] = np.cumsum(out["test_loss"], 0) / count
        terms = out["lyapunov_term"]
        seen = np.cumsum(np.isfinite(terms), 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["lyapunov"] = np.where(seen > 0, np.cumsum(np.nan_to_num(terms), 0) / seen,
                                       np.nan)
        return out

    def pca(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(epochs (S,), coords (S, M, 2), explained variance ratio (2,)) of the kept snapshots,
        projected on the top two principal axes of all runs' trajectories together."""
        if not self._snaps:
            return np.zeros(0, np.int64), np.zeros((0, self.models, 2)), np.zeros(2)
        stack = np.stack(self._snaps)                         # (S, M, P)
        flat = stack.reshape(-1, stack.shape[-1]).astype(np.float64)
        centred = flat - flat.mean(0)
        axes, variance = top_principal_axes(centred, 2)
        coords = (centred @ axes.T).reshape(stack.shape[0], stack.shape[1], -1)
        total = float((centred ** 2).sum()) or 1.0
        ratio = variance / total
        return np.asarray(self._snap_epochs), coords, ratio

    def frame(self) -> CnnFrame:
        epochs, coords, _ = self.pca()
        return CnnFrame(self.epoch, self.epochs, len(self.run_ids), self.arms, self.metrics(),
                        epochs, coords)

    def arm_slice(self, arm_index: int) -> slice:
        R = len(self.run_ids)
        return slice(arm_index * R, (arm_index + 1) * R)
