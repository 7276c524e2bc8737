"""The peak rule for test-loss curves, and the classification of each peak.

**Rule.**  Let ``S`` be the curve smoothed by a centred moving average over ``2w+1`` epochs
(shrinking at the ends).  Epoch ``t`` is a peak of ``S`` when

1. ``S[t]`` is the maximum of ``S[t−w … t+w]`` (strictly above the values to its left, so a flat
   stretch counts once), with ``w ≤ t ≤ T−1−w``;
2. it *rose* into it: ``S[t] − min S[t−h … t] ≥ p·|S[t]|``; and
3. it *falls* after it: ``S[t] − min S[t … t+h] ≥ p·|S[t]|``,

with window ``w``, horizon ``h`` and relative prominence ``p`` (preset table ``[peaks]``).  The
reported epoch is the raw curve's maximum within ``t ± w``, so the rule's resolution is ``w``
epochs.  The first such epoch is "the epoch of the first local maximum" (Park & Yun (2025),
§5).  Smoothing makes it robust to noise (a wiggle must exceed ``p`` after averaging 2w+1 epochs), the prominence to
small bumps, the window to single-epoch jitter.

**Kinds.**  A test-loss peak at ``t`` is an *optimisation spike* when the training loss rose too,
by the same relative prominence, within ``±w`` epochs of ``t`` (the optimiser overshot: e.g.
full-batch GD at the edge of stability); otherwise it is an *overfitting bump* (the test loss
rises while the training loss keeps falling).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``2·window + 1`` points, shrinking at the ends."""
    L = np.asarray(curve, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(L)])
    index = np.arange(L.size)
    lo, hi = np.maximum(index - window, 0), np.minimum(index + window + 1, L.size)
    return (sums[hi] - sums[lo]) / (hi - lo)


def _window(L: np.ndarray, before: int, after: int, reduce, pad: float) -> np.ndarray:
    """``reduce`` of ``L[t − before … t + after]`` for every t, padded with ``pad`` at the ends."""
    padded = np.concatenate([np.full(before, pad), L, np.full(after, pad)])
    return reduce(sliding_window_view(padded, before + after + 1), axis=1)


def peaks(curve: np.ndarray, window: int = 3, prominence: float = 0.01,
          horizon: int = 20) -> list[int]:
    """All epochs of ``curve`` (T,) satisfying the rule, in increasing order."""
    raw = np.asarray(curve, dtype=np.float64)
    if not np.isfinite(raw).all():
        raw = np.where(np.isfinite(raw), raw, np.nanmax(raw[np.isfinite(raw)], initial=0.0))
    if raw.size < 2 * window + 1:
        return []
    L = smooth(raw, window)
    # max of the w values strictly before / after each epoch
    left = np.concatenate([[-np.inf], _window(L, window - 1, 0, np.max, -np.inf)[:-1]])
    right = np.concatenate([_window(L, 0, window - 1, np.max, -np.inf)[1:], [-np.inf]])
    need = prominence * np.abs(L)
    rise = L - _window(L, horizon, 0, np.min, np.inf)
    fall = L - _window(L, 0, horizon, np.min, np.inf)
    t = np.arange(L.size)
    candidate = ((L > left) & (L >= right) & (rise >= need) & (fall >= need) & (rise > 0)
                 & (fall > 0) & (t >= window) & (t < L.size - window))
    found: list[int] = []
    for top in np.flatnonzero(candidate):
        epoch = int(top - window + np.argmax(raw[top - window:top + window + 1]))
        if not found or epoch > found[-1]:
            found.append(epoch)
    return found


def rose(curve: np.ndarray, t: int, window: int, prominence: float, horizon: int) -> bool:
    """Whether ``curve`` climbs by ``prominence`` of its value somewhere within ``t ± window``
    relative to its minimum over the preceding ``horizon`` epochs."""
    L = np.asarray(curve, dtype=np.float64)
    lo, hi = max(0, t - window), min(L.size, t + window + 1)
    top = int(lo + np.argmax(L[lo:hi]))
    base = np.min(L[max(0, top - horizon):top + 1])
    return bool(L[top] - base >= prominence * abs(L[top]) and L[top] > base)


def classify(test: np.ndarray, train: np.ndarray, window: int = 3, prominence: float = 0.01,
             horizon: int = 20) -> dict[str, int]:
    """First test-loss peak, first optimisation spike and first overfitting bump (−1 = none)."""
    out = {"first_peak": -1, "first_spike": -1, "first_bump": -1}
    for t in peaks(test, window, prominence, horizon):
        if out["first_peak"] < 0:
            out["first_peak"] = t
        kind = "first_spike" if rose(train, t, window, prominence, horizon) else "first_bump"
        if out[kind] < 0:
            out[kind] = t
    return out
