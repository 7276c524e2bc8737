"""Step kernels for ensembles on 2D landscapes, with the diagnostics fused in (docs/science.md).

The step kernel of a landscape covers every method; the method is chosen by runtime flags, so
changing a knob never recompiles a compiled copy (a change that needs another copy compiles it
once).  The particle loop exists in three compiled copies that take
bitwise the same steps — general; lean with diagnostics (no walls; one variant with and one
without minibatches); plain (no diagnostics, escape tracking or walls, stepping
``PLAIN_LANES`` particles together, ``LANES`` with minibatches, one variant per minibatch ×
momentum × folding boundary) — the lean ones
only for speed; each copy is compiled the first time a run needs it.  Fixed blocks of particles run on plain threads (the
kernels release the GIL).

The update of particle ``w`` with velocity ``v`` is::

    g   = ∇f(w)                      full gradient   (gd, langevin, momentum)
        = (1/B) Σ_{i∈batch} ∇f_i(w)  minibatch       (sgd), batch drawn without replacement
    ξ   = √(2ηT) N(0, I)             Langevin noise  (every kind but gd; T = 0 switches it off)
    v  ← β v − η g + ξ ;  w ← w + v  (β = 0 gives w ← w − η g + ξ)

Finite-sum noise models for analytic landscapes (``f = (1/n) Σ f_i`` exactly):

* ``additive``:  ``f_i(w) = f(w) + σ a_iᵀ w`` with centred ``a_i`` of covariance ``Σ_a``; the
  minibatch noise is state independent with covariance ``σ² Σ_a (n − B) / (B (n − 1))``.
* ``curvature``: ``f_i(w) = f(w + s_i)`` with centred shifts ``s_i`` (covariance ``σ² Σ_a``); the
  noise follows the local Hessian (textbook chapter 19, Theorem 5).  Here ``f`` is approximately
  the mean of the ``f_i`` (exact for quadratics, up to the constant ``½ tr(H Σ)``).

Temperature convention (docs/science.md § 3): the SDE limit of SGD has ``T = η σ² / (2B)``; the
engine reports ``T_eff = η tr Cov(g) / (2 d) + T`` (divided by ``1 − β`` with momentum).

Fused per step and particle: the running Lyapunov sum ``log ‖I − η H_t‖₂`` with ``H_t`` the Hessian
of the step actually taken (minibatch Hessian for SGD), the tangent vector of the random map
(``δw ← J_t δw``; a 4-vector ``(δw, δv)`` with momentum; never normalised, rescaled by ``2^±600``
near under/overflow, its log-norm read off when asked for), and the running
sums of loss and gradient norm for time averages.  A singular ``I − ηH`` (norm 0, only when
``H = I/η``) contributes ``log(TINY_NORM)`` instead of ``−∞``.

Particles whose state becomes non-finite are frozen at their last finite position and flagged.
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import numba
from numba import njit

from .landscapes.base import Landscape

NOISE_MODELS = ("additive", "curvature")
BOUNDARIES = ("none", "reflect", "wall", "periodic")
TINY_NORM = 1e-300
LOG_TINY_NORM = math.log(TINY_NORM)
TANGENT_FLUSH = 1e-280  # tangent components below this are set to 0 (never subnormal)
FLUSH_EVERY = 16  # steps between those checks, a power of 2 (a slow decay cannot sink
# from 1e-280 below 2e-308 in 16 steps; a fast one passes through the subnormals at once)
RESCALE = 2.0 ** -600  # tangent rescaling factor near under/overflow, exact in binary
LOG_RESCALE = 600.0 * math.log(2.0)
BLOCK = 256  # particles per parallel work item (scratch allocation is per block)
LANES = 4  # particles the plain copy steps together (1: one at a time); read when compiled
PLAIN_LANES = 8  # the same for the plain copies without minibatches (Langevin, momentum)

# accumulator columns.  The running Lyapunov sum is the flushed logs ``acc[:, ACC_LYAP]`` plus
# ``log acc[:, ACC_LYAP_PRODUCT]`` (the running product of norms); the tangent exponent's is
# ``acc[:, ACC_TANGENT] + log ‖tangent‖``.  Both carry across calls: no per-call logs, and the
# same numbers whatever the chunking.
ACC_LYAP, ACC_TANGENT, ACC_LOSS, ACC_GRAD, ACC_COUNT, ACC_LYAP_PRODUCT = range(6)
N_ACC = 6


def new_accumulators(count: int) -> np.ndarray:
    """Fresh accumulator rows: sums 0, running product 1."""
    acc = np.zeros((count, N_ACC))
    acc[:, ACC_LYAP_PRODUCT] = 1.0
    return acc


@njit(nogil=True, cache=True)
def _lyapunov_sums(first, last, acc, tangent, per_step, lyap, tangent_log):
    for i in range(first * BLOCK, min(last * BLOCK, acc.shape[0])):
        steps = max(acc[i, ACC_COUNT], 1.0) if per_step else 1.0
        lyap[i] = (acc[i, ACC_LYAP] + math.log(acc[i, ACC_LYAP_PRODUCT])) / steps
        # components range over 1e±200: scale by the largest before squaring
        largest = max(abs(tangent[i, 0]), abs(tangent[i, 1]), abs(tangent[i, 2]),
                      abs(tangent[i, 3]))
        if largest > 0.0 and largest < math.inf:
            sq = 0.0
            for k in range(4):
                c = tangent[i, k] / largest
                sq += c * c
            tangent_log[i] = (acc[i, ACC_TANGENT] + math.log(largest)
                              + 0.5 * math.log(sq)) / steps
        else:
            tangent_log[i] = -math.inf if largest == 0.0 else math.nan


def lyapunov_sums(acc: np.ndarray, tangent: np.ndarray,
                  per_step: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per particle ``Σ_t log ‖I − ηH_t‖₂`` and ``log ‖J_{t−1}…J_0 δw_0‖`` so far; with
    ``per_step`` both divided by the particle's step count (at least 1): the running estimates."""
    lyap, tangent_log = np.empty(len(acc)), np.empty(len(acc))
    # two logs per particle: ≈ 30 ms of every record at 1e6 particles on one thread
    run_blocks(_lyapunov_sums, -(-len(acc) // BLOCK), 30 * len(acc),
               (acc, tangent, per_step, lyap, tangent_log))
    return lyap, tangent_log


@dataclass(frozen=True)
class StepConfig:
    """Runtime knobs of the kernel, derived from the dynamics parameters by each kind
    (:meth:`engine.kinds.Kind.step_config`)."""

    lr: float
    temperature: float
    momentum: float
    minibatch: bool
    curvature_noise: bool
    batch_size: int


@dataclass(frozen=True)
class Kernels:
    """Compiled functions for one landscape."""

    advance: Callable
    evaluate: Callable
    # ready(minibatch, boundary, diagnostics, escapes, momentum): is the copy those settings use
    # compiled?
    ready: Callable[[bool, int, bool, bool, bool], bool]
    loss_and_grad_norm: Callable


_CACHE: dict[int, tuple[Landscape, Kernels]] = {}


_POOL: ThreadPoolExecutor | None = None
PARALLEL_WORK = 20_000  # particle-steps below which one thread is faster than handing off
PIECES_PER_THREAD = 4  # work pieces per thread: balance against ≈ 20 µs of dispatch per piece


def run_blocks(kernel: Callable, n_blocks: int, work: int, args: tuple) -> None:
    """Run ``kernel(first, last, *args)`` over ``range(n_blocks)`` split across threads.

    The kernels release the GIL (``nogil``), so plain Python threads run them in parallel.
    This replaces numba's ``parallel=True``, whose parfor pipeline tripled the compile time of
    the (uncacheable, per-landscape) step kernels.  The blocks are cut into a few pieces per
    thread that the threads take in turn: when another thread of the process (the window's)
    holds a core, the other thread takes over its pieces instead of the whole call waiting for
    a fixed half.  Blocks are fixed particle ranges, so the split never changes a number.
    """
    global _POOL
    threads = min(numba.get_num_threads(), n_blocks) if work >= PARALLEL_WORK else 1
    if threads <= 1:
        kernel(0, n_blocks, *args)
        return
    if _POOL is None or _POOL._max_workers < threads - 1:
        _POOL = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="engine")
    pieces = min(n_blocks, PIECES_PER_THREAD * threads)
    edges = [n_blocks * t // pieces for t in range(pieces + 1)]
    # a list iterator's next() is atomic under the GIL: each piece is taken exactly once
    queue = iter(range(pieces))

    def take_pieces() -> None:
        for piece in queue:
            kernel(edges[piece], edges[piece + 1], *args)

    futures = [_POOL.submit(take_pieces) for _ in range(threads - 1)]
    take_pieces()
    for future in futures:
        future.result()


def kernels_for(landscape: Landscape) -> Kernels:
    """Compile (once per landscape object) the step and evaluation kernels."""
    key = id(landscape.func)
    hit = _CACHE.get(key)
    if hit is None:
        hit = (landscape, _build(landscape))
        _CACHE[key] = hit
    return hit[1]


@njit(nogil=True, inline="always")
def _reflect(v, velocity, lo, hi):
    """Mirror ``v`` into ``[lo, hi]`` (several folds if needed); flip the velocity per fold."""
    for _ in range(8):
        if v > hi:
            v = 2.0 * hi - v
            velocity = -velocity
        elif v < lo:
            v = 2.0 * lo - v
            velocity = -velocity
        else:
            return v, velocity
    return min(max(v, lo), hi), velocity


@njit(nogil=True, inline="always")
def _wrap(v, lo, hi):
    width = hi - lo
    return lo + (v - lo) - width * math.floor((v - lo) / width)


def _fold(x, y, vx, vy, bounds, boundary):
    """Map a point that left the box back in: mirror (``boundary`` 1, the velocity component
    flipped per fold) or wrap (3)."""
    if boundary == 1:
        if x > bounds[1] or x < bounds[0]:
            x, vx = _reflect(x, vx, bounds[0], bounds[1])
        if y > bounds[3] or y < bounds[2]:
            y, vy = _reflect(y, vy, bounds[2], bounds[3])
    else:  # the torus is the half-open box [x0, x1) × [y0, y1)
        if x >= bounds[1] or x < bounds[0]:
            x = _wrap(x, bounds[0], bounds[1])
        if y >= bounds[3] or y < bounds[2]:
            y = _wrap(y, bounds[2], bounds[3])
    return x, y, vx, vy


# Out of line: the step loops only test whether a point is outside, which keeps the rare
# branch's registers out of the hot loop.
_fold_into_bounds = njit(nogil=True, cache=True)(_fold)


@njit(nogil=True, inline="always")
def step_norm_2x2(half_scale, scale, hxx, hxy, hyy):
    """``‖I − scale·H‖₂`` of the symmetric 2×2 ``H`` in closed form (``half_scale`` =
    ``scale / 2``, passed in so that callers keep their rounding)."""
    mid = 1.0 - half_scale * (hxx + hyy)
    half = half_scale * (hyy - hxx)
    off = scale * hxy
    return abs(mid) + math.sqrt(half * half + off * off)


@njit(nogil=True, inline="always")
def accumulate_log_norm(norm, lyap, lyap_prod):
    """The running Lyapunov sum ``lyap + log lyap_prod`` after one more factor ``norm``: logs
    are costly, so norms are multiplied and the log taken only near under/overflow (a norm
    of 0 counts ``log(TINY_NORM)``)."""
    if norm > TINY_NORM:
        prod = lyap_prod * norm
        if 1e-250 < prod < 1e250:
            return lyap, prod
        # logs of the factors: the product itself may have overflowed
        return lyap + math.log(lyap_prod) + math.log(norm), 1.0
    return lyap + LOG_TINY_NORM, lyap_prod


@njit(nogil=True, inline="always")
def track_core(x, y, core, particle, step, cores, core_geom, events, event_count, block):
    """Core-set bookkeeping after a step to ``(x, y)``: an event is an entry into a core set
    other than the last one visited (so ridge recrossings are not counted), logged as
    ``(step, particle, from, to)`` in ``events[block]`` (counted even beyond its capacity,
    so the caller can enlarge it).  Returns the last core visited."""
    grid_ny, grid_nx = cores.shape
    ix = min(max(int((x - core_geom[0]) * core_geom[2] + 0.5), 0), grid_nx - 1)
    iy = min(max(int((y - core_geom[1]) * core_geom[3] + 0.5), 0), grid_ny - 1)
    here = cores[iy, ix]
    if here < 0 or here == core:
        return core
    if core >= 0:
        slot = event_count[block]
        if slot < events.shape[1]:
            events[block, slot, 0] = step
            events[block, slot, 1] = particle
            events[block, slot, 2] = core
            events[block, slot, 3] = here
        event_count[block] = slot + 1
    return here


@njit(nogil=True, inline="always")
def _cubic_wall(d, stiffness):
    """``stiffness·d³`` and its first two derivatives at depth ``d`` past one face of the box
    (zero inside: the wall is C², steep and smooth)."""
    if d > 0:
        return stiffness * d * d * d, 3.0 * stiffness * d * d, 6.0 * stiffness * d
    return 0.0, 0.0, 0.0


@njit(nogil=True, inline="always")
def add_walls(x, y, bounds, stiffness, f, fx, fy, fxx, fyy):
    """``(f, fx, fy, fxx, fyy)`` with the four faces' cubic walls added (``boundary = wall``;
    the walls have no mixed derivative)."""
    right, right_x, right_xx = _cubic_wall(x - bounds[1], stiffness)
    left, left_x, left_xx = _cubic_wall(bounds[0] - x, stiffness)
    top, top_y, top_yy = _cubic_wall(y - bounds[3], stiffness)
    bottom, bottom_y, bottom_yy = _cubic_wall(bounds[2] - y, stiffness)
    return (f + right + left + top + bottom, fx + right_x - left_x, fy + top_y - bottom_y,
            fxx + right_xx + left_xx, fyy + top_yy + bottom_yy)


@njit(nogil=True, inline="always")
def load_group(first, pos, vel, rng, x, y, vx, vy, s0, s1, s2, s3, lanes=LANES):
    """Read the particles from ``first`` on into a group's lanes (see :func:`store_group`)."""
    for lane in range(lanes):
        i = first + lane
        x[lane], y[lane] = pos[i, 0], pos[i, 1]
        vx[lane], vy[lane] = vel[i, 0], vel[i, 1]
        s0[lane], s1[lane] = rng[i, 0], rng[i, 1]
        s2[lane], s3[lane] = rng[i, 2], rng[i, 3]


@njit(nogil=True, inline="always")
def store_group(first, x, y, vx, vy, s0, s1, s2, s3, pos, vel, rng, acc, done, lanes=LANES):
    """Write a group's lanes back to the particles from ``first`` on, after a
    diagnostics-free chunk of ``done`` steps."""
    for lane in range(lanes):
        i = first + lane
        pos[i, 0], pos[i, 1] = x[lane], y[lane]
        vel[i, 0], vel[i, 1] = vx[lane], vy[lane]
        rng[i, 0], rng[i, 1] = s0[lane], s1[lane]
        rng[i, 2], rng[i, 3] = s2[lane], s3[lane]
        _write_plain_sums(acc, i, done)


@njit(nogil=True, inline="always")
def whole_group(alive, first, lanes=LANES):
    """Whether the ``lanes`` particles from ``first`` on are all alive (a group the plain
    copies step together)."""
    whole = True
    for lane in range(lanes):
        whole = whole and alive[first + lane] != 0
    return whole


@njit(nogil=True, inline="always")
def _write_plain_sums(acc, i, done):
    """The accumulator updates of a particle's diagnostics-free chunk of ``done`` steps, with the
    scalar loop's exact operations (its sums and product untouched)."""
    acc[i, ACC_COUNT] += done


def _build(landscape: Landscape) -> Kernels:
    """The kernels of ``landscape``: each copy variant is a module generated from
    :mod:`engine.step_kernels` (:func:`engine.kernel_cache.kernel_module`), imported when a run
    first needs it and compiled once per machine."""
    from .kernel_cache import kernel_module
    general = kernel_module(landscape, False, True, False, False)

    def loss_and_grad_norm(points, p, bounds, boundary, stiffness, out):
        """(N, 2) loss and gradient norm at ``points`` into ``out``, on all threads."""
        n_blocks = (points.shape[0] + BLOCK - 1) // BLOCK
        run_blocks(general.loss_blocks, n_blocks, 100 * points.shape[0],
                   (points, p, bounds, boundary, stiffness, out))

    copies: dict[tuple, Callable] = {}
    copies_lock = threading.Lock()

    def copy_key(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
                 momentum: bool) -> tuple[bool, bool, bool, tuple[bool, bool] | None]:
        """(lean, with diagnostics, minibatch, grouped variant): the general copy, a lean
        one with diagnostics, or a plain one — grouped, one variant per minibatch × momentum ×
        folding boundary."""
        if boundary == 2:
            return False, True, False, None
        if diagnostics:
            return True, True, minibatch, None
        if not escapes:
            grouped = (momentum, boundary in (1, 3)) if LANES > 1 else None
            return True, False, minibatch, grouped
        return False, True, False, None

    def ready(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
              momentum: bool) -> bool:
        kernel = copies.get(copy_key(minibatch, boundary, diagnostics, escapes, momentum))
        return kernel is not None and bool(kernel.signatures)

    def copy_for(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
                 momentum: bool) -> Callable:
        key = copy_key(minibatch, boundary, diagnostics, escapes, momentum)
        with copies_lock:
            if key not in copies:
                lean, with_diagnostics, minibatch, lanes = key
                module = kernel_module(landscape, lean, with_diagnostics,
                                       *(lanes or (False, False)), minibatch)
                copies[key] = (module.advance_grouped_blocks if lanes is not None
                               else module.advance_blocks)
            return copies[key]

    def advance(pos, vel, alive, rng, tangent, acc, n_steps, p, lr, temperature, beta,
                minibatch, curvature, batch, data, noise_scale, bounds, boundary, stiffness,
                diagnostics, zx, zf, escapes, cores, core_geom, last_core, events,
                event_count, step0):
        """Advance every live particle by ``n_steps`` steps, in place (see module docstring).

        With ``escapes``, core-set entries are logged per block into ``events[block]`` rows
        (step, particle, from, to); ``event_count[block]`` counts them (rows beyond the
        capacity are counted but dropped, and the caller enlarges the buffer).
        """
        n_blocks = (pos.shape[0] + BLOCK - 1) // BLOCK
        run_blocks(copy_for(minibatch, boundary, diagnostics, escapes, beta != 0.0), n_blocks,
                   pos.shape[0] * n_steps, (
                       pos, vel, alive, rng, tangent, acc, n_steps, p, lr, temperature, beta,
                       minibatch, curvature, batch, data, noise_scale, bounds, boundary,
                       stiffness, diagnostics, zx, zf, escapes, cores, core_geom, last_core,
                       events, event_count, step0))

    return Kernels(advance=advance, evaluate=general.evaluate, ready=ready,
                   loss_and_grad_norm=loss_and_grad_norm)

