"""Step kernels for ensembles on 2D landscapes (DESIGN §4), with the diagnostics fused in.

The step kernel of a landscape covers every method; the method is chosen by runtime flags, so
changing a knob never recompiles a compiled copy (a change that needs another copy compiles it
once).  The particle loop exists in three compiled copies that take
bitwise the same steps — general; lean with diagnostics (no minibatches or walls); plain (no
diagnostics, escape tracking, minibatches or walls, stepping ``LANES`` particles together, one
variant per momentum × folding boundary) — the lean ones only for speed; each copy is compiled
the first time a run needs it.  Fixed blocks of particles run on plain threads (the
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
  noise follows the local Hessian (001, Theorem 5).  Here ``f`` is approximately the mean of the
  ``f_i`` (exact for quadratics, up to the constant ``½ tr(H Σ)``).

Temperature convention (DESIGN §13): the SDE limit of SGD has ``T = η σ² / (2B)``; the engine
reports ``T_eff = η tr Cov(g) / (2 d) + T`` (divided by ``1 − β`` with momentum).

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
from .rng import (finish_draw, finish_pair, next_u64, normal_candidate,
                  sample_without_replacement)

KINDS = ("gd", "sgd", "langevin", "momentum", "ghost")
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
    """Runtime knobs of the kernel, derived from the dynamics parameters."""

    lr: float
    temperature: float
    momentum: float
    minibatch: bool
    curvature_noise: bool
    batch_size: int


def step_config(kind: str, lr: float, temperature: float, momentum: float, batch_size: int,
                noise: str) -> StepConfig:
    """Map a dynamics kind to kernel flags: gd ignores T and β; sgd draws minibatches."""
    if kind == "gd":
        return StepConfig(lr, 0.0, 0.0, False, False, batch_size)
    return StepConfig(lr, temperature, momentum, kind in ("sgd", "ghost"),
                      noise == "curvature", batch_size)


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
        hit = (landscape, _build(landscape.func))
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
def _write_plain_sums(acc, i, done):
    """The accumulator updates of a particle's diagnostics-free chunk of ``done`` steps, with the
    scalar loop's exact operations (its sums and product untouched)."""
    acc[i, ACC_COUNT] += done


def _build(func) -> Kernels:
    @njit(nogil=True, inline="always")
    def full(x, y, p, bounds, wall, stiffness):
        f, fx, fy, fxx, fxy, fyy = func(x, y, p)
        if wall:  # stiffness·d³ outside the bounds (C², steep, smooth)
            d = x - bounds[1]
            if d > 0:
                f += stiffness * d * d * d
                fx += 3.0 * stiffness * d * d
                fxx += 6.0 * stiffness * d
            d = bounds[0] - x
            if d > 0:
                f += stiffness * d * d * d
                fx -= 3.0 * stiffness * d * d
                fxx += 6.0 * stiffness * d
            d = y - bounds[3]
            if d > 0:
                f += stiffness * d * d * d
                fy += 3.0 * stiffness * d * d
                fyy += 6.0 * stiffness * d
            d = bounds[2] - y
            if d > 0:
                f += stiffness * d * d * d
                fy -= 3.0 * stiffness * d * d
                fyy += 6.0 * stiffness * d
        return f, fx, fy, fxx, fxy, fyy

    @njit(nogil=True)
    def evaluate(points, p, bounds, boundary, stiffness, out):
        """``out[i] = (f, fx, fy, fxx, fxy, fyy)`` at ``points[i]``; out shape ``(N, 6)``."""
        for i in range(points.shape[0]):
            r = full(points[i, 0], points[i, 1], p, bounds, boundary == 2, stiffness)
            for k in range(6):
                out[i, k] = r[k]

    @njit(nogil=True)
    def loss_blocks(first, last, points, p, bounds, boundary, stiffness, out):
        """``out[i] = (f, ‖∇f‖)`` for the points of blocks ``first … last − 1``."""
        for i in range(first * BLOCK, min(points.shape[0], last * BLOCK)):
            r = full(points[i, 0], points[i, 1], p, bounds, boundary == 2, stiffness)
            out[i, 0] = r[0]
            out[i, 1] = math.sqrt(r[1] * r[1] + r[2] * r[2])

    def loss_and_grad_norm(points, p, bounds, boundary, stiffness, out):
        """(N, 2) loss and gradient norm at ``points`` into ``out``, on all threads."""
        n_blocks = (points.shape[0] + BLOCK - 1) // BLOCK
        run_blocks(loss_blocks, n_blocks, 100 * points.shape[0],
                   (points, p, bounds, boundary, stiffness, out))

    def make_range(lean: bool, with_diagnostics: bool):
        """The particle loop.  ``lean`` compiles a copy without minibatches or walls and with
        diagnostics fixed on or off (off: no escape tracking either): untaken branches alone
        made the plain step ~1.6× slower (register pressure in the step loop)."""

        @njit(nogil=True)
        def particles_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                            temperature, beta, minibatch, curvature, batch, data, noise_scale,
                            bounds, boundary, wall, stiffness, diagnostics, zx, zf, escapes, cores,
                            core_geom, last_core, events, event_count, block, step0):
            if lean:  # compile-time constants: these branches vanish from this copy
                minibatch = curvature = wall = False
                diagnostics = with_diagnostics
                if not with_diagnostics:
                    escapes = False
            # Particle loop outside, step loop inside: the particle's whole state lives in
            # registers for the chunk.  Each particle reads only its own stream, so chunking, block
            # size and thread count do not change any number.
            n_data = data.shape[0]
            sigma = math.sqrt(2.0 * lr * temperature)
            use_noise = temperature > 0.0
            use_momentum = beta != 0.0
            picks = np.empty(max(batch, 1), dtype=np.int64)
            picked = np.zeros((n_data + 63) // 64 + 1, dtype=np.uint64)
            grid_ny, grid_nx = cores.shape
            capacity = events.shape[1]
            for i in range(start, stop):
                if not alive[i]:
                    continue
                core = last_core[i]
                x, y = pos[i, 0], pos[i, 1]
                vx, vy = vel[i, 0], vel[i, 1]
                tx, ty, tvx, tvy = tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3]
                s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
                # the sums go on from the accumulators, step by step: the same additions in
                # the same order however the steps are cut into chunks (bitwise chunk-proof)
                lyap = acc[i, ACC_LYAP]
                lyap_prod = acc[i, ACC_LYAP_PRODUCT]
                tlog = acc[i, ACC_TANGENT]
                loss_sum = acc[i, ACC_LOSS]
                grad_sum = acc[i, ACC_GRAD]
                done = 0
                for k in range(n_steps):
                    f, fx, fy, fxx, fxy, fyy = full(x, y, p, bounds, wall, stiffness)
                    gx, gy, hxx, hxy, hyy = fx, fy, fxx, fxy, fyy
                    if minibatch:
                        s0, s1, s2, s3 = sample_without_replacement(picks, picked, n_data,
                                                                    batch,
                                                                    s0, s1, s2, s3)
                        if curvature:
                            gx = gy = hxx = hxy = hyy = 0.0
                            for q in range(batch):
                                r = full(x + noise_scale * data[picks[q], 0],
                                         y + noise_scale * data[picks[q], 1],
                                         p, bounds, wall, stiffness)
                                gx += r[1]
                                gy += r[2]
                                hxx += r[3]
                                hxy += r[4]
                                hyy += r[5]
                            gx /= batch
                            gy /= batch
                            hxx /= batch
                            hxy /= batch
                            hyy /= batch
                        else:
                            ax = 0.0
                            ay = 0.0
                            for q in range(batch):
                                ax += data[picks[q], 0]
                                ay += data[picks[q], 1]
                            gx += noise_scale * ax / batch
                            gy += noise_scale * ay / batch
                    if diagnostics:
                        loss_sum += f
                        grad_sum += math.sqrt(fx * fx + fy * fy)
                        # running Lyapunov term ‖I − ηH‖₂ of the symmetric 2×2 H in closed
                        # form; logs are costly, so norms are multiplied, the log taken near
                        # under/overflow
                        mid = 1.0 - 0.5 * lr * (hxx + hyy)
                        half = 0.5 * lr * (hyy - hxx)
                        off = lr * hxy
                        norm = abs(mid) + math.sqrt(half * half + off * off)
                        if norm > TINY_NORM:
                            prod = lyap_prod * norm
                            if 1e-250 < prod < 1e250:
                                lyap_prod = prod
                            else:  # logs of the factors: the product itself may have overflowed
                                lyap += math.log(lyap_prod) + math.log(norm)
                                lyap_prod = 1.0
                        else:
                            lyap += LOG_TINY_NORM
                        # tangent map J_t (I − ηH, or its momentum block form), unnormalised
                        # until it nears under/overflow: the same exponent without a per-step log
                        hx = hxx * tx + hxy * ty
                        hy = hxy * tx + hyy * ty
                        if use_momentum:
                            tvx = beta * tvx - lr * hx
                            tvy = beta * tvy - lr * hy
                            tx += tvx
                            ty += tvy
                        else:
                            tx -= lr * hx
                            ty -= lr * hy
                        # flush to zero what would turn subnormal (as the FPU's FTZ mode
                        # would): on a separable landscape one component decays geometrically
                        # relative to the other, and subnormal arithmetic made the whole step
                        # 2.3× slower after ~10⁴ steps; such a component is ≥ 10⁸⁰ times
                        # smaller than the norm, which rescaling keeps above 10⁻²⁰⁰
                        if (step0 + k) & (FLUSH_EVERY - 1) == 0:  # global step: chunk-proof
                            tx = tx if abs(tx) >= TANGENT_FLUSH else 0.0
                            ty = ty if abs(ty) >= TANGENT_FLUSH else 0.0
                            tvx = tvx if abs(tvx) >= TANGENT_FLUSH else 0.0
                            tvy = tvy if abs(tvy) >= TANGENT_FLUSH else 0.0
                        tn = abs(tx) + abs(ty) + abs(tvx) + abs(tvy)
                        if not 1e-200 <= tn <= 1e200:  # rescale by 2^±600: exact, no call
                            if 1e200 < tn < math.inf:
                                tx, ty = tx * RESCALE, ty * RESCALE
                                tvx, tvy = tvx * RESCALE, tvy * RESCALE
                                tlog += LOG_RESCALE
                            elif 0.0 < tn < 1e-200:
                                tx, ty = tx / RESCALE, ty / RESCALE
                                tvx, tvy = tvx / RESCALE, tvy / RESCALE
                                tlog -= LOG_RESCALE
                            else:  # annihilated or non-finite: count log(TINY_NORM), restart
                                tx, ty, tvx, tvy = 1.0, 0.0, 0.0, 0.0
                                tlog += LOG_TINY_NORM
                    nx = 0.0
                    ny = 0.0
                    if use_noise:  # a pair draw, slow paths out of line (engine.rng.finish_pair)
                        b1, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                        b2, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                        z1, ok1 = normal_candidate(b1)
                        z2, ok2 = normal_candidate(b2)
                        if not (ok1 and ok2):
                            z1, z2, s0, s1, s2, s3 = finish_pair(b1, b2, z1, z2, s0, s1, s2,
                                                                 s3, zx, zf)
                        nx = sigma * z1
                        ny = sigma * z2
                    if use_momentum:
                        vx = beta * vx - lr * gx + nx
                        vy = beta * vy - lr * gy + ny
                        new_x = x + vx
                        new_y = y + vy
                    else:
                        new_x = x - lr * gx + nx
                        new_y = y - lr * gy + ny
                    if (boundary == 1 or boundary == 3) and not (
                            bounds[0] <= new_x < bounds[1] and bounds[2] <= new_y < bounds[3]):
                        new_x, new_y, vx, vy = _fold_into_bounds(new_x, new_y, vx, vy, bounds,
                                                                 boundary)
                    done += 1
                    if not (math.isfinite(new_x + new_y) and math.isfinite(vx + vy)):
                        alive[i] = 0  # frozen at its last finite position
                        break
                    x, y = new_x, new_y
                    if escapes:
                        # core-set bookkeeping: an event is an entry into a core set other than the
                        # last one visited, so ridge recrossings are not counted
                        ix = min(max(int((x - core_geom[0]) * core_geom[2] + 0.5), 0), grid_nx - 1)
                        iy = min(max(int((y - core_geom[1]) * core_geom[3] + 0.5), 0), grid_ny - 1)
                        here = cores[iy, ix]
                        if here >= 0 and here != core:
                            if core >= 0:
                                slot = event_count[block]
                                if slot < capacity:
                                    events[block, slot, 0] = step0 + k + 1
                                    events[block, slot, 1] = i
                                    events[block, slot, 2] = core
                                    events[block, slot, 3] = here
                                event_count[block] = slot + 1
                            core = here
                pos[i, 0], pos[i, 1] = x, y
                vel[i, 0], vel[i, 1] = vx, vy
                tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3] = tx, ty, tvx, tvy
                rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
                last_core[i] = core
                acc[i, ACC_LYAP] = lyap
                acc[i, ACC_LYAP_PRODUCT] = lyap_prod
                acc[i, ACC_TANGENT] = tlog
                acc[i, ACC_LOSS] = loss_sum
                acc[i, ACC_GRAD] = grad_sum
                acc[i, ACC_COUNT] += done

        return particles_range

    def make_grouped(particles_range, momentum: bool, folds: bool):
        """The plain copy (Langevin and momentum without diagnostics, minibatches or walls) on
        groups of ``LANES`` particles stepped together.  One particle's step is a chain of
        dependent operations (gradient, update, next gradient…) that leaves the core mostly
        waiting; the steps of ``LANES`` particles are independent, so the core overlaps them.
        Each particle consumes its own stream exactly as the one-particle loop does, ziggurat
        rejections included (finished out of line with scalar arguments only: inlined, the slow
        path cost the hot loop its registers), so every copy takes bitwise the same steps.

        The one-particle loop freezes a particle at its first non-finite step.  Non-finite
        states persist (a NaN or infinite coordinate propagates through every later update; a
        fold can only clamp an infinite coordinate, which that loop keeps alive too; an infinite
        velocity stays infinite), so the group checks once per chunk and, if a particle turned
        non-finite, redoes the chunk from its start with the one-particle loop.  (The one case
        this misses: coordinates near ±10³⁰⁸ whose sum overflows for some steps and then no
        longer does.)  Groups with a frozen particle, the last ``< LANES`` particles and
        noiseless runs use that loop too.

        ``momentum`` and ``folds`` (reflect or periodic boundary) are compile-time constants:
        a runtime branch on either in the step loop cost it ≈ 20 %; each case is its own
        copy, compiled when first used.
        """

        @njit(nogil=True, inline="always")
        def lane_steps(n_steps, x, y, vx, vy, s0, s1, s2, s3, p, bounds, stiffness, lr, sigma,
                       beta, boundary):
            for k in range(n_steps):
                for lane in range(LANES):
                    px, py = x[lane], y[lane]
                    f, fx, fy, fxx, fxy, fyy = full(px, py, p, bounds, False, stiffness)
                    b1, a0, a1, a2, a3 = next_u64(s0[lane], s1[lane], s2[lane], s3[lane])
                    b2, a0, a1, a2, a3 = next_u64(a0, a1, a2, a3)
                    z1, ok1 = normal_candidate(b1)
                    z2, ok2 = normal_candidate(b2)
                    if not (ok1 and ok2):  # finish_pair's order: first, then second
                        if not ok1:
                            z1, a0, a1, a2, a3 = finish_draw(b1, a0, a1, a2, a3)
                        if not ok2:
                            z2, a0, a1, a2, a3 = finish_draw(b2, a0, a1, a2, a3)
                    s0[lane], s1[lane], s2[lane], s3[lane] = a0, a1, a2, a3
                    if momentum:
                        wx = beta * vx[lane] - lr * fx + sigma * z1
                        wy = beta * vy[lane] - lr * fy + sigma * z2
                        new_x = px + wx
                        new_y = py + wy
                        vx[lane], vy[lane] = wx, wy
                    else:
                        new_x = px - lr * fx + sigma * z1
                        new_y = py - lr * fy + sigma * z2
                    if folds and not (bounds[0] <= new_x < bounds[1]
                                      and bounds[2] <= new_y < bounds[3]):
                        new_x, new_y, vx[lane], vy[lane] = _fold_into_bounds(
                            new_x, new_y, vx[lane], vy[lane], bounds, boundary)
                    x[lane], y[lane] = new_x, new_y

        @njit(nogil=True)
        def grouped_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                          temperature, beta, minibatch, curvature, batch, data, noise_scale,
                          bounds, boundary, wall, stiffness, diagnostics, zx, zf, escapes,
                          cores, core_geom, last_core, events, event_count, block, step0):
            sigma = math.sqrt(2.0 * lr * temperature)
            x, y = np.empty(LANES), np.empty(LANES)
            vx, vy = np.empty(LANES), np.empty(LANES)
            s0, s1 = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
            s2, s3 = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
            grouped_end = start + (stop - start) // LANES * LANES
            if temperature <= 0.0:
                grouped_end = start
            for g in range(start, grouped_end, LANES):
                whole = True
                for lane in range(LANES):
                    whole = whole and alive[g + lane] != 0
                if whole:
                    for lane in range(LANES):
                        i = g + lane
                        x[lane], y[lane] = pos[i, 0], pos[i, 1]
                        vx[lane], vy[lane] = vel[i, 0], vel[i, 1]
                        s0[lane], s1[lane] = rng[i, 0], rng[i, 1]
                        s2[lane], s3[lane] = rng[i, 2], rng[i, 3]
                    lane_steps(n_steps, x, y, vx, vy, s0, s1, s2, s3, p, bounds, stiffness, lr,
                               sigma, beta, boundary)
                    for lane in range(LANES):
                        whole = whole and math.isfinite(x[lane] + y[lane]) and math.isfinite(
                            vx[lane] + vy[lane])
                if not whole:  # from the state the group started the chunk with
                    particles_range(g, g + LANES, pos, vel, alive, rng, tangent, acc, n_steps,
                                    p, lr, temperature, beta, minibatch, curvature, batch, data,
                                    noise_scale, bounds, boundary, wall, stiffness, diagnostics,
                                    zx, zf, escapes, cores, core_geom, last_core, events,
                                    event_count, block, step0)
                    continue
                for lane in range(LANES):
                    i = g + lane
                    pos[i, 0], pos[i, 1] = x[lane], y[lane]
                    vel[i, 0], vel[i, 1] = vx[lane], vy[lane]
                    rng[i, 0], rng[i, 1] = s0[lane], s1[lane]
                    rng[i, 2], rng[i, 3] = s2[lane], s3[lane]
                    _write_plain_sums(acc, i, n_steps)
            if grouped_end < stop:
                particles_range(grouped_end, stop, pos, vel, alive, rng, tangent, acc, n_steps,
                                p, lr, temperature, beta, minibatch, curvature, batch, data,
                                noise_scale, bounds, boundary, wall, stiffness, diagnostics, zx,
                                zf, escapes, cores, core_geom, last_core, events, event_count,
                                block, step0)

        return grouped_range

    # one-particle loops by (lean, with_diagnostics), shared by the grouped copies that fall back
    # on them, so each is compiled once
    ranges: dict[tuple[bool, bool], Callable] = {}

    def make_blocks(lean: bool, with_diagnostics: bool, lanes: tuple[bool, bool] | None):
        if (lean, with_diagnostics) not in ranges:
            ranges[lean, with_diagnostics] = make_range(lean, with_diagnostics)
        particles_range = ranges[lean, with_diagnostics]
        if lanes is not None:
            particles_range = make_grouped(particles_range, *lanes)

        @njit(nogil=True)
        def advance_blocks(first, last, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                           temperature, beta, minibatch, curvature, batch, data, noise_scale,
                           bounds, boundary, stiffness, diagnostics, zx, zf, escapes, cores,
                           core_geom, last_core, events, event_count, step0):
            n = pos.shape[0]
            for block in range(first, last):
                start = block * BLOCK
                particles_range(start, min(n, start + BLOCK), pos, vel, alive, rng, tangent,
                                acc, n_steps, p, lr, temperature, beta, minibatch, curvature,
                                batch, data, noise_scale, bounds, boundary, boundary == 2,
                                stiffness, diagnostics, zx, zf, escapes, cores, core_geom,
                                last_core, events, event_count, block, step0)

        return advance_blocks

    # The copies are compiled when first used, not all at once: a window running Langevin with
    # diagnostics compiles one copy (≈ 6 s here) instead of all of them.
    copies: dict[tuple, Callable] = {}
    copies_lock = threading.Lock()

    def copy_key(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
                 momentum: bool) -> tuple[bool, bool, tuple[bool, bool] | None]:
        """(lean, with diagnostics, grouped variant): the general copy, the lean one with
        diagnostics, or the plain one — grouped, one variant per momentum × folding boundary."""
        lean = not (minibatch or boundary == 2)
        if lean and diagnostics:
            return True, True, None
        if lean and not escapes:
            return (True, False, (momentum, boundary in (1, 3)) if LANES > 1 else None)
        return False, True, None

    def ready(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
              momentum: bool) -> bool:
        kernel = copies.get(copy_key(minibatch, boundary, diagnostics, escapes, momentum))
        return kernel is not None and bool(kernel.signatures)

    def copy_for(minibatch: bool, boundary: int, diagnostics: bool, escapes: bool,
                 momentum: bool) -> Callable:
        key = copy_key(minibatch, boundary, diagnostics, escapes, momentum)
        with copies_lock:
            if key not in copies:
                copies[key] = make_blocks(*key)
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

    return Kernels(advance=advance, evaluate=evaluate, ready=ready,
                   loss_and_grad_norm=loss_and_grad_norm)

