"""The step kernels of one landscape and one compiled copy, as a module numba can cache.

This file is a template: :mod:`engine.kernel_cache` writes one copy of it per landscape and
copy variant into the kernel cache folder, with the block between the ``binding`` markers
replaced by that landscape's function and the copy's compile-time constants, and imports it.
Every kernel is a module-level ``@njit(cache=True)`` function calling other module-level jitted
functions — no closures — so numba keeps the machine code in the cache folder and a new process
loads it instead of compiling (see :mod:`engine.dynamics` for what the kernels compute).

The constants select the copy (branches on them vanish at compile time):

* ``LEAN``: no walls; minibatches fixed to ``MINIBATCH``, diagnostics to ``WITH_DIAGNOSTICS``
  (without them, no escape tracking either) — untaken branches alone made the plain step
  ≈ 1.6× slower;
* ``MOMENTUM``, ``FOLDS`` (reflect or periodic boundary): the grouped plain copy's variants.
"""
import math

import numpy as np
from numba import njit

from engine.dynamics import (ACC_COUNT, ACC_GRAD, ACC_LOSS, ACC_LYAP, ACC_LYAP_PRODUCT,
                             ACC_TANGENT, BLOCK, FLUSH_EVERY, LANES, LOG_RESCALE, LOG_TINY_NORM,
                             PLAIN_LANES, RESCALE, TANGENT_FLUSH, _fold_into_bounds,
                             accumulate_log_norm, add_walls, load_group, step_norm_2x2,
                             store_group, track_core, whole_group)
from engine.rng import (finish_pair, lane_minibatch_sums, lane_normal_pair, minibatch_sum,
                        next_u64, normal_candidate, sample_without_replacement)

# --- binding: replaced in every generated copy ---------------------------------------------
LEAN = False
WITH_DIAGNOSTICS = True
MOMENTUM = False
FOLDS = False
MINIBATCH = False
from engine.landscapes.builtins import quadratic as func  # noqa: E402
# --- end of binding -------------------------------------------------------------------------
GROUP = LANES if MINIBATCH else PLAIN_LANES  # particles the grouped loop steps together


@njit(nogil=True, inline="always")
def full(x, y, p, bounds, wall, stiffness):
    """The landscape's value, gradient and Hessian, with the walls where the boundary has them."""
    f, fx, fy, fxx, fxy, fyy = func(x, y, p)
    if wall:
        f, fx, fy, fxx, fyy = add_walls(x, y, bounds, stiffness, f, fx, fy, fxx, fyy)
    return f, fx, fy, fxx, fxy, fyy


@njit(nogil=True, cache=True)
def evaluate(points, p, bounds, boundary, stiffness, out):
    """``out[i] = (f, fx, fy, fxx, fxy, fyy)`` at ``points[i]``; out shape ``(N, 6)``."""
    for i in range(points.shape[0]):
        r = full(points[i, 0], points[i, 1], p, bounds, boundary == 2, stiffness)
        for k in range(6):
            out[i, k] = r[k]

@njit(nogil=True, cache=True)
def loss_blocks(first, last, points, p, bounds, boundary, stiffness, out):
    """``out[i] = (f, ‖∇f‖)`` for the points of blocks ``first … last − 1``."""
    for i in range(first * BLOCK, min(points.shape[0], last * BLOCK)):
        r = full(points[i, 0], points[i, 1], p, bounds, boundary == 2, stiffness)
        out[i, 0] = r[0]
        out[i, 1] = math.sqrt(r[1] * r[1] + r[2] * r[2])

@njit(nogil=True, inline="always")
def minibatch_gradient(x, y, p, bounds, wall, stiffness, picks, batch, data, noise_scale,
                       curvature, gx, gy, hxx, hxy, hyy):
    """Gradient and Hessian of the minibatch ``picks[:batch]`` of the finite-sum noise model
    (engine.dynamics): curvature noise averages ``f`` at the shifted points, additive noise
    adds the mean of the picked ``σ a_i`` to the full gradient ``(gx, gy)``."""
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
        return gx / batch, gy / batch, hxx / batch, hxy / batch, hyy / batch
    ax = 0.0
    ay = 0.0
    for q in range(batch):
        ax += data[picks[q], 0]
        ay += data[picks[q], 1]
    return gx + noise_scale * ax / batch, gy + noise_scale * ay / batch, hxx, hxy, hyy


@njit(nogil=True, inline="always")
def tangent_step(tx, ty, tvx, tvy, tlog, lr, beta, use_momentum, hxx, hxy, hyy, flush):
    """One step of the tangent map J_t (I − ηH, or its momentum block form) on the tangent
    vector, unnormalised until it nears under/overflow (the same exponent without a per-step
    log: rescaled by 2^±600, exact, counted in ``tlog``)."""
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
    # flush to zero what would turn subnormal (as the FPU's FTZ mode would): on a separable
    # landscape one component decays geometrically relative to the other, and subnormal
    # arithmetic made the whole step 2.3× slower after ~10⁴ steps; such a component is
    # ≥ 10⁸⁰ times smaller than the norm, which rescaling keeps above 10⁻²⁰⁰.  ``flush``
    # comes from the global step number, so it is chunk-proof.
    if flush:
        tx = tx if abs(tx) >= TANGENT_FLUSH else 0.0
        ty = ty if abs(ty) >= TANGENT_FLUSH else 0.0
        tvx = tvx if abs(tvx) >= TANGENT_FLUSH else 0.0
        tvy = tvy if abs(tvy) >= TANGENT_FLUSH else 0.0
    tn = abs(tx) + abs(ty) + abs(tvx) + abs(tvy)
    if not 1e-200 <= tn <= 1e200:
        if 1e200 < tn < math.inf:
            return tx * RESCALE, ty * RESCALE, tvx * RESCALE, tvy * RESCALE, tlog + LOG_RESCALE
        if 0.0 < tn < 1e-200:
            return tx / RESCALE, ty / RESCALE, tvx / RESCALE, tvy / RESCALE, tlog - LOG_RESCALE
        # annihilated or non-finite: count log(TINY_NORM), restart
        return 1.0, 0.0, 0.0, 0.0, tlog + LOG_TINY_NORM
    return tx, ty, tvx, tvy, tlog


@njit(nogil=True, cache=True)
def particles_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                    temperature, beta, minibatch, curvature, batch, data, noise_scale,
                    bounds, boundary, wall, stiffness, diagnostics, zx, zf, escapes, cores,
                    core_geom, last_core, events, event_count, block, step0):
    if LEAN:  # compile-time constants: these branches vanish from this copy
        wall = False
        minibatch = MINIBATCH
        if not MINIBATCH:
            curvature = False
        diagnostics = WITH_DIAGNOSTICS
        if not WITH_DIAGNOSTICS:
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
            if minibatch and curvature:
                s0, s1, s2, s3 = sample_without_replacement(picks, picked, n_data,
                                                            batch,
                                                            s0, s1, s2, s3)
                gx, gy, hxx, hxy, hyy = minibatch_gradient(
                    x, y, p, bounds, wall, stiffness, picks, batch, data, noise_scale,
                    curvature, gx, gy, hxx, hxy, hyy)
            elif minibatch:  # additive noise: the picked rows summed as they are drawn
                ax, ay, s0, s1, s2, s3 = minibatch_sum(picks, picked, data, n_data, batch,
                                                       s0, s1, s2, s3)
                gx += noise_scale * ax / batch
                gy += noise_scale * ay / batch
            if diagnostics:
                loss_sum += f
                grad_sum += math.sqrt(fx * fx + fy * fy)
                # running Lyapunov term ‖I − ηH‖₂ of the step's H
                lyap, lyap_prod = accumulate_log_norm(
                    step_norm_2x2(0.5 * lr, lr, hxx, hxy, hyy), lyap, lyap_prod)
                tx, ty, tvx, tvy, tlog = tangent_step(
                    tx, ty, tvx, tvy, tlog, lr, beta, use_momentum, hxx, hxy, hyy,
                    (step0 + k) & (FLUSH_EVERY - 1) == 0)
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
                core = track_core(x, y, core, i, step0 + k + 1, cores, core_geom, events,
                                  event_count, block)
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

@njit(nogil=True, inline="always")
def lane_steps(n_steps, x, y, vx, vy, s0, s1, s2, s3, p, bounds, stiffness, lr, sigma,
               beta, boundary, batch, data, noise_scale):
    sums_x, sums_y = np.empty(GROUP), np.empty(GROUP)
    for k in range(n_steps):
        if MINIBATCH:
            lane_minibatch_sums(data, data.shape[0], batch, s0, s1, s2, s3, sums_x, sums_y)
        for lane in range(GROUP):
            px, py = x[lane], y[lane]
            f, fx, fy, fxx, fxy, fyy = full(px, py, p, bounds, False, stiffness)
            a0, a1, a2, a3 = s0[lane], s1[lane], s2[lane], s3[lane]
            if MINIBATCH:  # additive noise, n ≤ 64 (otherwise the scalar loop)
                fx += noise_scale * sums_x[lane] / batch
                fy += noise_scale * sums_y[lane] / batch
            z1, z2, a0, a1, a2, a3 = lane_normal_pair(a0, a1, a2, a3)
            s0[lane], s1[lane], s2[lane], s3[lane] = a0, a1, a2, a3
            if MOMENTUM:
                wx = beta * vx[lane] - lr * fx + sigma * z1
                wy = beta * vy[lane] - lr * fy + sigma * z2
                new_x = px + wx
                new_y = py + wy
                vx[lane], vy[lane] = wx, wy
            else:
                new_x = px - lr * fx + sigma * z1
                new_y = py - lr * fy + sigma * z2
            if FOLDS and not (bounds[0] <= new_x < bounds[1]
                              and bounds[2] <= new_y < bounds[3]):
                new_x, new_y, vx[lane], vy[lane] = _fold_into_bounds(
                    new_x, new_y, vx[lane], vy[lane], bounds, boundary)
            x[lane], y[lane] = new_x, new_y

@njit(nogil=True, cache=True)
def grouped_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                  temperature, beta, minibatch, curvature, batch, data, noise_scale,
                  bounds, boundary, wall, stiffness, diagnostics, zx, zf, escapes,
                  cores, core_geom, last_core, events, event_count, block, step0):
    sigma = math.sqrt(2.0 * lr * temperature)
    # the lanes as rows of two arrays: two base pointers instead of eight, so that the lane
    # loop keeps its pointers in registers (≈ 6 % of the step)
    lanes = np.empty((4, GROUP))
    states = np.empty((4, GROUP), np.uint64)
    x, y, vx, vy = lanes[0], lanes[1], lanes[2], lanes[3]
    s0, s1, s2, s3 = states[0], states[1], states[2], states[3]
    grouped_end = start + (stop - start) // GROUP * GROUP
    if temperature <= 0.0 or (MINIBATCH and (curvature or data.shape[0] > 64)):
        grouped_end = start  # (the lanes' minibatch bitmap is one word)
    for g in range(start, grouped_end, GROUP):
        whole = whole_group(alive, g, GROUP)
        if whole:
            load_group(g, pos, vel, rng, x, y, vx, vy, s0, s1, s2, s3, GROUP)
            lane_steps(n_steps, x, y, vx, vy, s0, s1, s2, s3, p, bounds, stiffness, lr,
                       sigma, beta, boundary, batch, data, noise_scale)
            for lane in range(GROUP):
                whole = whole and math.isfinite(x[lane] + y[lane]) and math.isfinite(
                    vx[lane] + vy[lane])
        if not whole:  # from the state the group started the chunk with
            particles_range(g, g + GROUP, pos, vel, alive, rng, tangent, acc, n_steps,
                            p, lr, temperature, beta, minibatch, curvature, batch, data,
                            noise_scale, bounds, boundary, wall, stiffness, diagnostics,
                            zx, zf, escapes, cores, core_geom, last_core, events,
                            event_count, block, step0)
            continue
        store_group(g, x, y, vx, vy, s0, s1, s2, s3, pos, vel, rng, acc, n_steps, GROUP)
    if grouped_end < stop:
        particles_range(grouped_end, stop, pos, vel, alive, rng, tangent, acc, n_steps,
                        p, lr, temperature, beta, minibatch, curvature, batch, data,
                        noise_scale, bounds, boundary, wall, stiffness, diagnostics, zx,
                        zf, escapes, cores, core_geom, last_core, events, event_count,
                        block, step0)

@njit(nogil=True, cache=True)
def advance_blocks(first, last, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                   temperature, beta, minibatch, curvature, batch, data, noise_scale, bounds,
                   boundary, stiffness, diagnostics, zx, zf, escapes, cores, core_geom,
                   last_core, events, event_count, step0):
    """Advance the particles of blocks ``first … last − 1`` by ``n_steps`` steps, one at a
    time."""
    n = pos.shape[0]
    for block in range(first, last):
        start = block * BLOCK
        particles_range(start, min(n, start + BLOCK), pos, vel, alive, rng, tangent, acc,
                        n_steps, p, lr, temperature, beta, minibatch, curvature, batch, data,
                        noise_scale, bounds, boundary, boundary == 2, stiffness, diagnostics,
                        zx, zf, escapes, cores, core_geom, last_core, events, event_count,
                        block, step0)


@njit(nogil=True, cache=True)
def advance_grouped_blocks(first, last, pos, vel, alive, rng, tangent, acc, n_steps, p, lr,
                           temperature, beta, minibatch, curvature, batch, data, noise_scale,
                           bounds, boundary, stiffness, diagnostics, zx, zf, escapes, cores,
                           core_geom, last_core, events, event_count, step0):
    """Advance the particles of blocks ``first … last − 1`` by ``n_steps`` steps, ``GROUP``
    particles together."""
    n = pos.shape[0]
    for block in range(first, last):
        start = block * BLOCK
        grouped_range(start, min(n, start + BLOCK), pos, vel, alive, rng, tangent, acc,
                      n_steps, p, lr, temperature, beta, minibatch, curvature, batch, data,
                      noise_scale, bounds, boundary, boundary == 2, stiffness, diagnostics, zx,
                      zf, escapes, cores, core_geom, last_core, events, event_count, block,
                      step0)
