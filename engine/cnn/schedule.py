"""How many of a model's ghost logits are live at each epoch (docs/science.md § 7).

Park & Yun (2025) describe ghost nodes that help early and are then "removed", and propose as
future work "adaptive ghost strategies that dynamically adjust the number … of ghost dimensions
throughout training".  Schedules, for a model with ``e`` ghosts and off epoch ``k``:

``fixed``   e at every epoch (the paper's experiment);
``remove``  e before epoch k, 0 from epoch k on: the ghost logits are dropped and the original
            model trains on from the weights the extended one reached;
``linear``  ⌈e·(k − t)/k⌉ at epoch t < k, 0 from k on: one ghost dropped at a time, the last
            ones first, at evenly spaced epochs.

A dropped ghost's logit is masked out of the softmax (probability 0, gradient 0), which is the
original model exactly; its weights stay, frozen and unused.
"""
from __future__ import annotations

import math

import numpy as np


def live_ghosts(ghosts: int, schedule: str, off_epoch: int, epoch: int) -> int:
    """Ghost logits live during epoch ``epoch`` (its measurement and its update)."""
    if schedule == "fixed" or ghosts == 0:
        return ghosts
    if epoch >= off_epoch:
        return 0
    if schedule == "remove":
        return ghosts
    if schedule == "linear":
        return math.ceil(ghosts * (off_epoch - epoch) / off_epoch)
    raise ValueError(f"ghost schedule {schedule!r}: expected fixed, remove or linear")


def ghost_counts(ghosts: int, schedule: str, off_epoch: int, epochs: int) -> np.ndarray:
    """(epochs + 1,) live ghost count at every epoch row 0 … epochs."""
    return np.array([live_ghosts(ghosts, schedule, off_epoch, t) for t in range(epochs + 1)])
