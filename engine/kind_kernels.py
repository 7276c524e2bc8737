"""Step kernels of the kinds with state of their own: underdamped Langevin (BAOAB) and the
adaptive methods (Adam, RMSprop, AdamW).  A template module, like :mod:`engine.step_kernels`.

:mod:`engine.kernel_cache` writes one copy of this file per landscape into the kernel cache
folder, with the block between the ``binding`` markers replaced by that landscape's function,
and imports it: every kernel is a module-level ``@njit(cache=True)`` function, so numba keeps
its machine code and a new process loads it instead of compiling.  The landscape is called
inside the step loop (fused), as in the other kinds' kernels: handing precomputed gradients in
instead would need one pass over every particle per step (``benchmarks/engine_step.py``).

**BAOAB** (Leimkuhler & Matthews 2013), unit mass, friction γ, step h = ``lr``::

    B: v ← v − (h/2) ∇f(x)     A: x ← x + (h/2) v     O: v ← c v + √((1 − c²) T) ξ,  c = e^{−γh}
    A: x ← x + (h/2) v         B: v ← v − (h/2) ∇f(x)

one landscape evaluation per step (the last B's force is the next step's first; a chunk
re-evaluates it at its start, the same number).  Its stationary law in x is exactly Gibbs on a
quadratic at any stable h.  The tangent vector ``(δx, δv)`` goes through the same five stages
with the Hessians at the two positions.

**Adaptive** (per-coordinate second moments; ``g`` the minibatch gradient of the σ-noise model,
exactly SGD's, plus ``λ x`` for Adam's and RMSprop's coupled weight decay)::

    Adam/AdamW:  m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,  p1 ← β1 p1,  p2 ← β2 p2
                 x ← x − η m̂/(√v̂ + ε)  [− η λ x, AdamW],  m̂ = m/(1 − p1), v̂ = v/(1 − p2)
    RMSprop:     v ← β2 v + (1 − β2) g²,  x ← x − η g/(√v + ε)

then ``+ √(2ηT) ξ`` at temperature T (as SGD).  ``p1, p2`` are the running products of the β's
(exact bias correction, also when β changes mid-run).  The tangent vector ``(δx, δm, δv)`` is
propagated through the whole update (δg = H δx).

Without diagnostics, escape tracking, walls (or curvature noise), both kinds step several
particles together (``*_grouped_range``) with the same operations in the same order, so the
same numbers: BAOAB ``LANES`` at a time, their dependent chains interleaved (a scalar step is
bound by its latency, not its throughput); the adaptive kinds a whole block per step, in a pass
of draws and a pass of updates that LLVM vectorises (their square roots and divisions).
"""
import math

import numpy as np
from numba import njit

from engine.dynamics import (ACC_COUNT, ACC_GRAD, ACC_LOSS, ACC_TANGENT, BLOCK, FLUSH_EVERY,
                             LANES, LOG_RESCALE, LOG_TINY_NORM, RESCALE, TANGENT_FLUSH,
                             _fold_into_bounds, _write_plain_sums, add_walls, load_group,
                             store_group, track_core, whole_group)
from engine.rng import (finish_pair, lane_normal_pair, masked_row_sums, minibatch_sum,
                        next_u64, normal_candidate, sample_without_replacement, subset_mask)

# --- binding: replaced in every generated copy ---------------------------------------------
from engine.landscapes.builtins import quadratic as func  # noqa: E402
# --- end of binding -------------------------------------------------------------------------

RULE_ADAM, RULE_RMSPROP, RULE_ADAMW = 0, 1, 2


@njit(nogil=True, inline="always")
def full(x, y, p, bounds, wall, stiffness):
    """The landscape's value, gradient and Hessian, with the walls where the boundary has them."""
    f, fx, fy, fxx, fxy, fyy = func(x, y, p)
    if wall:
        f, fx, fy, fxx, fyy = add_walls(x, y, bounds, stiffness, f, fx, fy, fxx, fyy)
    return f, fx, fy, fxx, fxy, fyy


@njit(nogil=True, cache=True)
def baoab_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, h, temperature,
                friction, bounds, boundary, stiffness, diagnostics, zx, zf, escapes, cores,
                core_geom, last_core, events, event_count, block, step0):
    wall = boundary == 2
    c = math.exp(-friction * h)
    kick = math.sqrt((1.0 - c * c) * temperature)
    half = 0.5 * h
    use_noise = temperature > 0.0
    for i in range(start, stop):
        if not alive[i]:
            continue
        core = last_core[i]
        x, y = pos[i, 0], pos[i, 1]
        vx, vy = vel[i, 0], vel[i, 1]
        tx, ty, tvx, tvy = tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3]
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        tlog = acc[i, ACC_TANGENT]
        loss_sum = acc[i, ACC_LOSS]
        grad_sum = acc[i, ACC_GRAD]
        f, fx, fy, hxx, hxy, hyy = full(x, y, p, bounds, wall, stiffness)
        done = 0
        for k in range(n_steps):
            if diagnostics:
                loss_sum += f
                grad_sum += math.sqrt(fx * fx + fy * fy)
            wx = vx - half * fx  # B
            wy = vy - half * fy
            nx = x + half * wx  # A
            ny = y + half * wy
            z1 = 0.0
            z2 = 0.0
            if use_noise:  # O: a pair draw, slow paths out of line
                b1, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                b2, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                z1, ok1 = normal_candidate(b1)
                z2, ok2 = normal_candidate(b2)
                if not (ok1 and ok2):
                    z1, z2, s0, s1, s2, s3 = finish_pair(b1, b2, z1, z2, s0, s1, s2, s3,
                                                         zx, zf)
            wx = c * wx + kick * z1
            wy = c * wy + kick * z2
            nx += half * wx  # A
            ny += half * wy
            if (boundary == 1 or boundary == 3) and not (
                    bounds[0] <= nx < bounds[1] and bounds[2] <= ny < bounds[3]):
                nx, ny, wx, wy = _fold_into_bounds(nx, ny, wx, wy, bounds, boundary)
            nf, nfx, nfy, nhxx, nhxy, nhyy = full(nx, ny, p, bounds, wall, stiffness)
            wx -= half * nfx  # B
            wy -= half * nfy
            done += 1
            if not (math.isfinite(nx + ny) and math.isfinite(wx + wy)
                    and math.isfinite(nfx + nfy)):
                alive[i] = 0  # frozen at its last finite state
                break
            if diagnostics:  # the tangent map of the five stages
                tvx -= half * (hxx * tx + hxy * ty)
                tvy -= half * (hxy * tx + hyy * ty)
                tx += half * tvx
                ty += half * tvy
                tvx *= c
                tvy *= c
                tx += half * tvx
                ty += half * tvy
                tvx -= half * (nhxx * tx + nhxy * ty)
                tvy -= half * (nhxy * tx + nhyy * ty)
                if (step0 + k) & (FLUSH_EVERY - 1) == 0:  # global step: chunk-proof
                    tx = tx if abs(tx) >= TANGENT_FLUSH else 0.0
                    ty = ty if abs(ty) >= TANGENT_FLUSH else 0.0
                    tvx = tvx if abs(tvx) >= TANGENT_FLUSH else 0.0
                    tvy = tvy if abs(tvy) >= TANGENT_FLUSH else 0.0
                tn = abs(tx) + abs(ty) + abs(tvx) + abs(tvy)
                if not 1e-200 <= tn <= 1e200:  # rescale by 2^±600: exact
                    if 1e200 < tn < math.inf:
                        tx, ty, tvx, tvy = tx * RESCALE, ty * RESCALE, tvx * RESCALE, \
                            tvy * RESCALE
                        tlog += LOG_RESCALE
                    elif 0.0 < tn < 1e-200:
                        tx, ty, tvx, tvy = tx / RESCALE, ty / RESCALE, tvx / RESCALE, \
                            tvy / RESCALE
                        tlog -= LOG_RESCALE
                    else:
                        tx, ty, tvx, tvy = 1.0, 0.0, 0.0, 0.0
                        tlog += LOG_TINY_NORM
            x, y, vx, vy = nx, ny, wx, wy
            f, fx, fy, hxx, hxy, hyy = nf, nfx, nfy, nhxx, nhxy, nhyy
            if escapes:
                core = track_core(x, y, core, i, step0 + k + 1, cores, core_geom, events,
                                  event_count, block)
        pos[i, 0], pos[i, 1] = x, y
        vel[i, 0], vel[i, 1] = vx, vy
        tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3] = tx, ty, tvx, tvy
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        last_core[i] = core
        acc[i, ACC_TANGENT] = tlog
        acc[i, ACC_LOSS] = loss_sum
        acc[i, ACC_GRAD] = grad_sum
        acc[i, ACC_COUNT] += done


@njit(nogil=True, inline="always")
def baoab_lane_steps(n_steps, x, y, vx, vy, fx, fy, s0, s1, s2, s3, p, h, temperature,
                     friction, bounds, boundary, stiffness):
    """:func:`baoab_range`'s steps without diagnostics, ``LANES`` particles at a time (their
    chains of dependent operations interleave), with the same operations in the same order
    (written out again: through an inlined helper shared with the scalar loop, returning the
    new state, this loop ran ≈ 1.6× slower)."""
    c = math.exp(-friction * h)
    kick = math.sqrt((1.0 - c * c) * temperature)
    half = 0.5 * h
    for k in range(n_steps):
        for lane in range(LANES):
            wx = vx[lane] - half * fx[lane]  # B
            wy = vy[lane] - half * fy[lane]
            nx = x[lane] + half * wx  # A
            ny = y[lane] + half * wy
            z1, z2, a0, a1, a2, a3 = lane_normal_pair(  # O
                s0[lane], s1[lane], s2[lane], s3[lane])
            s0[lane], s1[lane], s2[lane], s3[lane] = a0, a1, a2, a3
            wx = c * wx + kick * z1
            wy = c * wy + kick * z2
            nx += half * wx  # A
            ny += half * wy
            if (boundary == 1 or boundary == 3) and not (
                    bounds[0] <= nx < bounds[1] and bounds[2] <= ny < bounds[3]):
                nx, ny, wx, wy = _fold_into_bounds(nx, ny, wx, wy, bounds, boundary)
            nf, nfx, nfy, nhxx, nhxy, nhyy = full(nx, ny, p, bounds, False, stiffness)
            x[lane], y[lane] = nx, ny
            vx[lane], vy[lane] = wx - half * nfx, wy - half * nfy  # B
            fx[lane], fy[lane] = nfx, nfy


@njit(nogil=True, cache=True)
def baoab_grouped_range(start, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, h,
                        temperature, friction, bounds, boundary, stiffness, zx, zf, cores,
                        core_geom, last_core, events, event_count, block, step0):
    """:func:`baoab_range` without diagnostics, escape tracking or walls, at T > 0: whole
    groups of ``LANES`` live particles step together; a group that turns non-finite, and the
    particles after the last whole group, take the scalar loop (from the chunk's start)."""
    x, y = np.empty(LANES), np.empty(LANES)
    vx, vy = np.empty(LANES), np.empty(LANES)
    fx, fy = np.empty(LANES), np.empty(LANES)
    s0, s1 = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
    s2, s3 = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
    grouped_end = start + (stop - start) // LANES * LANES
    for g in range(start, grouped_end, LANES):
        whole = whole_group(alive, g)
        if whole:
            load_group(g, pos, vel, rng, x, y, vx, vy, s0, s1, s2, s3)
            for lane in range(LANES):
                r = full(x[lane], y[lane], p, bounds, False, stiffness)
                fx[lane], fy[lane] = r[1], r[2]
            baoab_lane_steps(n_steps, x, y, vx, vy, fx, fy, s0, s1, s2, s3, p, h,
                             temperature, friction, bounds, boundary, stiffness)
            for lane in range(LANES):
                whole = (whole and math.isfinite(x[lane] + y[lane])
                         and math.isfinite(vx[lane] + vy[lane])
                         and math.isfinite(fx[lane] + fy[lane]))
        if not whole:  # from the state the group started the chunk with
            baoab_range(g, g + LANES, pos, vel, alive, rng, tangent, acc, n_steps, p, h,
                        temperature, friction, bounds, boundary, stiffness, False, zx, zf,
                        False, cores, core_geom, last_core, events, event_count, block, step0)
            continue
        store_group(g, x, y, vx, vy, s0, s1, s2, s3, pos, vel, rng, acc, n_steps)
    if grouped_end < stop:
        baoab_range(grouped_end, stop, pos, vel, alive, rng, tangent, acc, n_steps, p, h,
                    temperature, friction, bounds, boundary, stiffness, False, zx, zf, False,
                    cores, core_geom, last_core, events, event_count, block, step0)


@njit(nogil=True, cache=True)
def baoab_blocks(first, last, pos, vel, alive, rng, tangent, acc, n_steps, p, h, temperature,
                 friction, bounds, boundary, stiffness, diagnostics, zx, zf, escapes, cores,
                 core_geom, last_core, events, event_count, step0):
    n = pos.shape[0]
    grouped = LANES > 1 and not (diagnostics or escapes) and boundary != 2 and temperature > 0.0
    for block in range(first, last):
        start = block * BLOCK
        if grouped:
            baoab_grouped_range(start, min(n, start + BLOCK), pos, vel, alive, rng, tangent,
                                acc, n_steps, p, h, temperature, friction, bounds, boundary,
                                stiffness, zx, zf, cores, core_geom, last_core, events,
                                event_count, block, step0)
        else:
            baoab_range(start, min(n, start + BLOCK), pos, vel, alive, rng, tangent, acc,
                        n_steps, p, h, temperature, friction, bounds, boundary, stiffness,
                        diagnostics, zx, zf, escapes, cores, core_geom, last_core, events,
                        event_count, block, step0)


@njit(nogil=True, inline="always")
def curvature_minibatch(x, y, p, bounds, wall, stiffness, picks, picked, data, n_data, batch,
                        noise_scale, s0, s1, s2, s3):
    """The gradient and Hessian averaged over a minibatch of SGD's σ-noise model at shifted
    points (the curvature noise: the same draws as engine.step_kernels)."""
    s0, s1, s2, s3 = sample_without_replacement(picks, picked, n_data, batch, s0, s1, s2, s3)
    gx = gy = hxx = hxy = hyy = 0.0
    for q in range(batch):
        r = full(x + noise_scale * data[picks[q], 0],
                 y + noise_scale * data[picks[q], 1], p, bounds, wall, stiffness)
        gx += r[1]
        gy += r[2]
        hxx += r[3]
        hxy += r[4]
        hyy += r[5]
    return gx / batch, gy / batch, hxx / batch, hxy / batch, hyy / batch, s0, s1, s2, s3


@njit(nogil=True, inline="always")
def adaptive_tangent_step(t0, t1, t2, t3, t4, t5, gx, gy, hxx, hxy, hyy, rule, lr, beta1,
                          beta2, decay, c1, c2, rx, ry, dx, dy, num_x, num_y):
    """The tangent vector ``(δx, δm, δv)`` through one adaptive update: the update's Jacobian
    at the step's gradient ``g``, Hessian ``H``, bias corrections ``c1, c2``, root ``r =
    √(v c2)``, denominator ``d = r + ε`` and numerator ``m c1`` (or ``g``)."""
    dgx = hxx * t0 + hxy * t1
    dgy = hxy * t0 + hyy * t1
    n4 = beta2 * t4 + 2.0 * (1.0 - beta2) * gx * dgx
    n5 = beta2 * t5 + 2.0 * (1.0 - beta2) * gy * dgy
    if rule == RULE_RMSPROP:
        dnx, dny = dgx, dgy
        n2t, n3t = t2, t3
    else:
        n2t = beta1 * t2 + (1.0 - beta1) * dgx
        n3t = beta1 * t3 + (1.0 - beta1) * dgy
        dnx, dny = n2t * c1, n3t * c1
    # d√(v c2) = c2 δv / (2√(v c2)); 0 where v = 0 (then the numerator is 0 too)
    drx = 0.5 * c2 * n4 / rx if rx > 0.0 else 0.0
    dry = 0.5 * c2 * n5 / ry if ry > 0.0 else 0.0
    n0 = t0 - lr * (dnx / dx - num_x * drx / (dx * dx))
    n1t = t1 - lr * (dny / dy - num_y * dry / (dy * dy))
    if rule == RULE_ADAMW:
        n0 -= lr * decay * t0
        n1t -= lr * decay * t1
    return n0, n1t, n2t, n3t, n4, n5


@njit(nogil=True, inline="always")
def bounded_tangent6(t0, t1, t2, t3, t4, t5, tlog, flush):
    """A 6-wide tangent vector kept in range: subnormal entries flushed to 0 when ``flush``
    (on global steps, so chunking never changes it), the vector rescaled by 2^±600 (exact,
    its log added to ``tlog``) near over/underflow, and restarted at ``e_1`` if it vanished."""
    if flush:
        t0 = t0 if abs(t0) >= TANGENT_FLUSH else 0.0
        t1 = t1 if abs(t1) >= TANGENT_FLUSH else 0.0
        t2 = t2 if abs(t2) >= TANGENT_FLUSH else 0.0
        t3 = t3 if abs(t3) >= TANGENT_FLUSH else 0.0
        t4 = t4 if abs(t4) >= TANGENT_FLUSH else 0.0
        t5 = t5 if abs(t5) >= TANGENT_FLUSH else 0.0
    tn = abs(t0) + abs(t1) + abs(t2) + abs(t3) + abs(t4) + abs(t5)
    if not 1e-200 <= tn <= 1e200:  # rescale by 2^±600: exact
        if 1e200 < tn < math.inf:
            t0, t1, t2, t3 = t0 * RESCALE, t1 * RESCALE, t2 * RESCALE, t3 * RESCALE
            t4, t5 = t4 * RESCALE, t5 * RESCALE
            tlog += LOG_RESCALE
        elif 0.0 < tn < 1e-200:
            t0, t1, t2, t3 = t0 / RESCALE, t1 / RESCALE, t2 / RESCALE, t3 / RESCALE
            t4, t5 = t4 / RESCALE, t5 / RESCALE
            tlog -= LOG_RESCALE
        else:
            t0, t1, t2, t3, t4, t5 = 1.0, 0.0, 0.0, 0.0, 0.0, 0.0
            tlog += LOG_TINY_NORM
    return t0, t1, t2, t3, t4, t5, tlog


@njit(nogil=True, cache=True)
def adaptive_range(start, stop, pos, moments, alive, rng, tangent, acc, n_steps, p, lr,
                   temperature, rule, beta1, beta2, eps, decay, curvature, batch, data,
                   noise_scale, bounds, boundary, stiffness, diagnostics, zx, zf, escapes,
                   cores, core_geom, last_core, events, event_count, block, step0):
    wall = boundary == 2
    n_data = data.shape[0]
    sigma = math.sqrt(2.0 * lr * temperature)
    use_noise = temperature > 0.0
    coupled = rule != RULE_ADAMW and decay != 0.0
    picks = np.empty(max(batch, 1), dtype=np.int64)
    picked = np.zeros((n_data + 63) // 64 + 1, dtype=np.uint64)
    for i in range(start, stop):
        if not alive[i]:
            continue
        core = last_core[i]
        x, y = pos[i, 0], pos[i, 1]
        mx, my, vx, vy = moments[i, 0], moments[i, 1], moments[i, 2], moments[i, 3]
        p1, p2 = moments[i, 4], moments[i, 5]
        t0, t1, t2, t3 = tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3]
        t4, t5 = tangent[i, 4], tangent[i, 5]
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        tlog = acc[i, ACC_TANGENT]
        loss_sum = acc[i, ACC_LOSS]
        grad_sum = acc[i, ACC_GRAD]
        done = 0
        for k in range(n_steps):
            f, fx, fy, hxx, hxy, hyy = full(x, y, p, bounds, wall, stiffness)
            gx, gy = fx, fy
            # the minibatch of SGD's σ-noise model (engine.step_kernels, the same draws)
            if curvature:
                gx, gy, hxx, hxy, hyy, s0, s1, s2, s3 = curvature_minibatch(
                    x, y, p, bounds, wall, stiffness, picks, picked, data, n_data, batch,
                    noise_scale, s0, s1, s2, s3)
            else:
                ax, ay, s0, s1, s2, s3 = minibatch_sum(picks, picked, data, n_data, batch,
                                                       s0, s1, s2, s3)
                gx += noise_scale * ax / batch
                gy += noise_scale * ay / batch
            if diagnostics:
                loss_sum += f
                grad_sum += math.sqrt(fx * fx + fy * fy)
            if coupled:  # L2 weight decay in the gradient (Adam's and RMSprop's)
                gx += decay * x
                gy += decay * y
                hxx += decay
                hyy += decay
            nvx = beta2 * vx + (1.0 - beta2) * gx * gx
            nvy = beta2 * vy + (1.0 - beta2) * gy * gy
            if rule == RULE_RMSPROP:
                nmx, nmy, n1, n2 = mx, my, p1, p2
                c1 = c2 = 1.0
                num_x, num_y = gx, gy
            else:
                nmx = beta1 * mx + (1.0 - beta1) * gx
                nmy = beta1 * my + (1.0 - beta1) * gy
                n1 = p1 * beta1
                n2 = p2 * beta2
                c1 = 1.0 / (1.0 - n1)
                c2 = 1.0 / (1.0 - n2)
                num_x, num_y = nmx * c1, nmy * c1
            rx = math.sqrt(nvx * c2)
            ry = math.sqrt(nvy * c2)
            dx = rx + eps
            dy = ry + eps
            step_x = lr * num_x / dx
            step_y = lr * num_y / dy
            if rule == RULE_ADAMW:
                step_x += lr * decay * x
                step_y += lr * decay * y
            if diagnostics:  # the tangent map of the whole update, (δx, δm, δv)
                t0, t1, t2, t3, t4, t5 = adaptive_tangent_step(
                    t0, t1, t2, t3, t4, t5, gx, gy, hxx, hxy, hyy, rule, lr, beta1, beta2,
                    decay, c1, c2, rx, ry, dx, dy, num_x, num_y)
                t0, t1, t2, t3, t4, t5, tlog = bounded_tangent6(
                    t0, t1, t2, t3, t4, t5, tlog, (step0 + k) & (FLUSH_EVERY - 1) == 0)
            zx1 = 0.0
            zy1 = 0.0
            if use_noise:
                b1, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                b2, s0, s1, s2, s3 = next_u64(s0, s1, s2, s3)
                z1, ok1 = normal_candidate(b1)
                z2, ok2 = normal_candidate(b2)
                if not (ok1 and ok2):
                    z1, z2, s0, s1, s2, s3 = finish_pair(b1, b2, z1, z2, s0, s1, s2, s3,
                                                         zx, zf)
                zx1 = sigma * z1
                zy1 = sigma * z2
            new_x = x - step_x + zx1
            new_y = y - step_y + zy1
            if (boundary == 1 or boundary == 3) and not (
                    bounds[0] <= new_x < bounds[1] and bounds[2] <= new_y < bounds[3]):
                new_x, new_y, _, _ = _fold_into_bounds(new_x, new_y, 0.0, 0.0, bounds,
                                                       boundary)
            done += 1
            if not (math.isfinite(new_x + new_y) and math.isfinite(nmx + nmy + nvx + nvy)):
                alive[i] = 0  # frozen at its last finite state
                break
            x, y, mx, my, vx, vy, p1, p2 = new_x, new_y, nmx, nmy, nvx, nvy, n1, n2
            if escapes:
                core = track_core(x, y, core, i, step0 + k + 1, cores, core_geom, events,
                                  event_count, block)
        pos[i, 0], pos[i, 1] = x, y
        moments[i, 0], moments[i, 1], moments[i, 2], moments[i, 3] = mx, my, vx, vy
        moments[i, 4], moments[i, 5] = p1, p2
        tangent[i, 0], tangent[i, 1], tangent[i, 2], tangent[i, 3] = t0, t1, t2, t3
        tangent[i, 4], tangent[i, 5] = t4, t5
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        last_core[i] = core
        acc[i, ACC_TANGENT] = tlog
        acc[i, ACC_LOSS] = loss_sum
        acc[i, ACC_GRAD] = grad_sum
        acc[i, ACC_COUNT] += done


# rows of the block scratch of adaptive_grouped_range: each particle's position and moments,
# then its step's gradient, minibatch sums and noise
_X, _Y, _MOMENTS, _STATE_ROWS = 0, 1, 2, 8
_GX, _GY, _AX, _AY, _ZX, _ZY, _DRAW_ROWS = 0, 1, 2, 3, 4, 5, 6


@njit(nogil=True, inline="always")
def adaptive_draws(count, state, draws, rng, p, sigma, batch, data, bounds, stiffness):
    """The landscape's gradient and the step's draws (the minibatch, then the normals at
    T > 0: the scalar loop's order) of the first ``count`` particles of the scratch."""
    for j in range(count):
        r = full(state[_X, j], state[_Y, j], p, bounds, False, stiffness)
        draws[_GX, j], draws[_GY, j] = r[1], r[2]
        a0, a1, a2, a3 = rng[j, 0], rng[j, 1], rng[j, 2], rng[j, 3]
        mask, a0, a1, a2, a3 = subset_mask(data.shape[0], batch, a0, a1, a2, a3)
        draws[_AX, j], draws[_AY, j] = masked_row_sums(data, mask)
        if sigma > 0.0:
            z1, z2, a0, a1, a2, a3 = lane_normal_pair(a0, a1, a2, a3)
            draws[_ZX, j], draws[_ZY, j] = sigma * z1, sigma * z2
        rng[j, 0], rng[j, 1], rng[j, 2], rng[j, 3] = a0, a1, a2, a3


@njit(nogil=True, inline="always")
def adaptive_updates(count, state, draws, lr, rule, beta1, beta2, eps, decay, batch,
                     noise_scale):
    """:func:`adaptive_range`'s update of the first ``count`` particles of the scratch, with
    the same operations: branch-free (the rules are selects; RMSprop keeps m, p1, p2), so
    LLVM computes the square roots and divisions — most of a scalar Adam step — for several
    particles in each vector instruction."""
    coupled = rule != RULE_ADAMW and decay != 0.0
    rmsprop = rule == RULE_RMSPROP
    adamw = rule == RULE_ADAMW
    for j in range(count):
        px, py = state[_X, j], state[_Y, j]
        gx = draws[_GX, j] + noise_scale * draws[_AX, j] / batch
        gy = draws[_GY, j] + noise_scale * draws[_AY, j] / batch
        gx = gx + decay * px if coupled else gx
        gy = gy + decay * py if coupled else gy
        nvx = beta2 * state[_MOMENTS + 2, j] + (1.0 - beta2) * gx * gx
        nvy = beta2 * state[_MOMENTS + 3, j] + (1.0 - beta2) * gy * gy
        mx, my = state[_MOMENTS, j], state[_MOMENTS + 1, j]
        p1, p2 = state[_MOMENTS + 4, j], state[_MOMENTS + 5, j]
        nmx = mx if rmsprop else beta1 * mx + (1.0 - beta1) * gx
        nmy = my if rmsprop else beta1 * my + (1.0 - beta1) * gy
        n1 = p1 if rmsprop else p1 * beta1
        n2 = p2 if rmsprop else p2 * beta2
        c1 = 1.0 if rmsprop else 1.0 / (1.0 - n1)
        c2 = 1.0 if rmsprop else 1.0 / (1.0 - n2)
        num_x = gx if rmsprop else nmx * c1
        num_y = gy if rmsprop else nmy * c1
        step_x = lr * num_x / (math.sqrt(nvx * c2) + eps)
        step_y = lr * num_y / (math.sqrt(nvy * c2) + eps)
        step_x = step_x + lr * decay * px if adamw else step_x
        step_y = step_y + lr * decay * py if adamw else step_y
        state[_X, j] = px - step_x + draws[_ZX, j]
        state[_Y, j] = py - step_y + draws[_ZY, j]
        state[_MOMENTS, j], state[_MOMENTS + 1, j] = nmx, nmy
        state[_MOMENTS + 2, j], state[_MOMENTS + 3, j] = nvx, nvy
        state[_MOMENTS + 4, j], state[_MOMENTS + 5, j] = n1, n2


@njit(nogil=True, cache=True, error_model="numpy")
def adaptive_grouped_range(start, stop, pos, moments, alive, rng, tangent, acc, n_steps, p, lr,
                           temperature, rule, beta1, beta2, eps, decay, batch, data,
                           noise_scale, bounds, boundary, stiffness, zx, zf, cores, core_geom,
                           last_core, events, event_count, block, step0):
    """:func:`adaptive_range` without diagnostics, escape tracking, walls, curvature noise
    or more than 64 samples, the live particles of ``start … stop − 1`` together: each step
    is a pass of draws (:func:`adaptive_draws`) and a vectorised pass of updates
    (:func:`adaptive_updates`) over them, on a copy of their state.  A particle that turns
    non-finite takes the scalar loop from the chunk's start (which freezes it where that
    loop does).  ``error_model="numpy"``: IEEE division, no zero test, so the selects of the
    update pass stay branch-free (the scalar loop, where a zero divisor would raise, redoes
    any particle whose state is not finite)."""
    size = stop - start
    state = np.empty((_STATE_ROWS, size))
    draws = np.zeros((_DRAW_ROWS, size))
    streams = np.empty((size, 4), np.uint64)
    index = np.empty(size, np.int64)
    count = 0
    for i in range(start, stop):
        if alive[i]:
            index[count] = i
            state[_X, count], state[_Y, count] = pos[i, 0], pos[i, 1]
            for c in range(6):
                state[_MOMENTS + c, count] = moments[i, c]
            for c in range(4):
                streams[count, c] = rng[i, c]
            count += 1
    sigma = math.sqrt(2.0 * lr * temperature)
    for k in range(n_steps):
        adaptive_draws(count, state, draws, streams, p, sigma, batch, data, bounds,
                       stiffness)
        adaptive_updates(count, state, draws, lr, rule, beta1, beta2, eps, decay, batch,
                         noise_scale)
        if boundary == 1 or boundary == 3:
            for j in range(count):
                nx, ny = state[_X, j], state[_Y, j]
                if not (bounds[0] <= nx < bounds[1] and bounds[2] <= ny < bounds[3]):
                    state[_X, j], state[_Y, j], _, _ = _fold_into_bounds(nx, ny, 0.0, 0.0,
                                                                         bounds, boundary)
    for j in range(count):
        i = index[j]
        if not (math.isfinite(state[_X, j] + state[_Y, j]) and math.isfinite(
                state[_MOMENTS, j] + state[_MOMENTS + 1, j] + state[_MOMENTS + 2, j]
                + state[_MOMENTS + 3, j])):
            adaptive_range(i, i + 1, pos, moments, alive, rng, tangent, acc, n_steps, p, lr,
                           temperature, rule, beta1, beta2, eps, decay, False, batch, data,
                           noise_scale, bounds, boundary, stiffness, False, zx, zf, False,
                           cores, core_geom, last_core, events, event_count, block, step0)
            continue
        pos[i, 0], pos[i, 1] = state[_X, j], state[_Y, j]
        for c in range(6):
            moments[i, c] = state[_MOMENTS + c, j]
        for c in range(4):
            rng[i, c] = streams[j, c]
        _write_plain_sums(acc, i, n_steps)


@njit(nogil=True, cache=True)
def adaptive_blocks(first, last, pos, moments, alive, rng, tangent, acc, n_steps, p, lr,
                    temperature, rule, beta1, beta2, eps, decay, curvature, batch, data,
                    noise_scale, bounds, boundary, stiffness, diagnostics, zx, zf, escapes,
                    cores, core_geom, last_core, events, event_count, step0):
    n = pos.shape[0]
    grouped = (LANES > 1 and not (diagnostics or escapes or curvature) and boundary != 2
               and data.shape[0] <= 64)  # (subset_mask draws batches of at most 64)
    for block in range(first, last):
        start = block * BLOCK
        if grouped:
            adaptive_grouped_range(start, min(n, start + BLOCK), pos, moments, alive, rng,
                                   tangent, acc, n_steps, p, lr, temperature, rule, beta1,
                                   beta2, eps, decay, batch, data, noise_scale, bounds,
                                   boundary, stiffness, zx, zf, cores, core_geom, last_core,
                                   events, event_count, block, step0)
        else:
            adaptive_range(start, min(n, start + BLOCK), pos, moments, alive, rng, tangent,
                           acc, n_steps, p, lr, temperature, rule, beta1, beta2, eps, decay,
                           curvature, batch, data, noise_scale, bounds, boundary, stiffness,
                           diagnostics, zx, zf, escapes, cores, core_geom, last_core, events,
                           event_count, block, step0)


@njit(nogil=True, cache=True)
def tangent_log_norms(first, last, acc, tangent, out):
    """``out[i] = (acc[i, ACC_TANGENT] + log ‖tangent[i]‖) / max(steps, 1)`` for a tangent of
    any width (the 4-wide one of the other kinds is :func:`engine.dynamics.lyapunov_sums`)."""
    width = tangent.shape[1]
    for i in range(first * BLOCK, min(last * BLOCK, acc.shape[0])):
        steps = max(acc[i, ACC_COUNT], 1.0)
        largest = 0.0
        for k in range(width):
            largest = max(largest, abs(tangent[i, k]))
        if largest > 0.0 and largest < math.inf:
            sq = 0.0
            for k in range(width):
                c = tangent[i, k] / largest
                sq += c * c
            out[i] = (acc[i, ACC_TANGENT] + math.log(largest) + 0.5 * math.log(sq)) / steps
        else:
            out[i] = -math.inf if largest == 0.0 else math.nan
