"""Ghost-extended SGD on 2D classifier landscapes (Park & Yun (2025), §5; docs/science.md § 7).

The classifier ``M ⊗ S``: a *sine classifier* on a synthetic dataset.  Samples ``x_i`` are
uniform in [−1, 1]²; the teacher labels them ``y_i = argmax_k cos(w*·x_i − 2πk/c)`` and a fraction
``label_noise`` of labels is replaced by a uniformly drawn other class (seeded).  The student has
the two plotted weights ``w`` and logits

    z_k(x; w) = α cos(w·x − 2πk/c),  k = 0 … c−1,

so ``f_orig(w) = (1/n) Σ_i CE(z(x_i; w), y_i)`` has the teacher's basin and poorer basins at
aliased frequencies, separated by barriers.  Per-sample losses make minibatch noise genuine.

The model reads the shared representation ``h(x; w) = (cos w·x, sin w·x)``: the real head is the
fixed linear map ``z_k = α (cos a_k, sin a_k)·h`` with ``a_k = 2πk/c``.  The extension
``M ⊗ (S ⊕ S^gh)`` adds ``e`` ghost logits on the same representation,
``z_{c+j} = γ_j · (h(x; w), 1)``, with their own weights ``γ ∈ R^{e×3}`` (trainable, not plotted):
ghost gradients flow back into w through h, which is what can open a corridor in w.  Per sample
(Park & Yun (2025), eq. 5.2)

    L_ext = −z_y + log(Σ_{k<c} e^{z_k} + Σ_{j<e} e^{z_{c+j}}),
    L_ghost = L_ext − L_orig = log(1 + Σ_j e^{z_{c+j}} / Σ_k e^{z_k}) ≥ 0,

ghosts never carry a label; predictions use the c real logits.  ``∂L_ext/∂z_{c+j} = ŷ_{c+j}``
(eq. 5.4) and the ghost mass is ``Σ_j ŷ_{c+j}`` averaged over data.

Kind ``ghost`` runs SGD (optionally with Langevin noise on every coordinate) on ``(w, γ)`` for every
particle in one numba kernel; ``e = 0`` is plain per-sample minibatch SGD on the same model and
shares the code path.  ``γ`` is clipped to ``[−GAMMA_MAX, GAMMA_MAX]`` (the compact set B of
Park & Yun (2025), §5).
The running Lyapunov estimate uses the full minibatch Hessian of ``f_ext`` in ``(w, γ)`` — a
``(2 + 3e)²`` matrix — and ``‖I − ηH‖₂`` from its eigenvalues (Householder + implicit QL); with
``e = 0`` this is the 2×2 closed form.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .dynamics import _fold_into_bounds, accumulate_log_norm, step_norm_2x2, track_core
from .landscapes.base import Landscape
from .rng import next_normal, sample_without_replacement
from .vector_math import vexp, vsincos

GAMMA_MAX = 50.0
# alpha is a runtime parameter; the others define the dataset and apply when it is (re)built
CLASSIFIER_PARAMS = ("alpha", "classes", "teacher_x", "teacher_y", "label_noise")
CLASSIFIER_DEFAULTS = (3.0, 3.0, 3.0, 1.0, 0.1)
MAX_CLASSES = 16
MAX_GHOSTS = 16
TWO_PI = 2.0 * math.pi
# cos and sin of 2πk/c for every class count: compile-time constant tables
_SHIFTS = np.array([[TWO_PI * k / max(c, 1) for k in range(MAX_CLASSES)]
                    for c in range(MAX_CLASSES + 1)])
PHASE_COS, PHASE_SIN = np.cos(_SHIFTS), np.sin(_SHIFTS)


@dataclass(frozen=True)
class ClassifierTask:
    """Dataset and teacher of a sine classifier (see module docstring)."""

    x: np.ndarray  # (n, 2) float64
    y: np.ndarray  # (n,) int64
    classes: int
    teacher: tuple[float, float]
    label_noise: float
    seed: int


def make_task(n: int, classes: int, teacher: tuple[float, float], label_noise: float,
              seed: int) -> ClassifierTask:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 17])))
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    phases = x @ np.asarray(teacher) - TWO_PI * np.arange(classes)[:, None] / classes
    y = np.argmax(np.cos(phases), axis=0).astype(np.int64)
    flip = rng.random(n) < label_noise
    shift = rng.integers(1, classes, size=n)
    y = np.where(flip, (y + shift) % classes, y)
    return ClassifierTask(np.ascontiguousarray(x), y, classes, tuple(teacher), label_noise, seed)


@njit(nogil=True, cache=True)
def symmetric_spectral_norm(a, n):
    """Largest |eigenvalue| of the symmetric ``a[:n, :n]`` (``a`` is overwritten).

    Householder reduction to tridiagonal form, then implicit QL with Wilkinson shifts on the
    eigenvalues only (the classic tred2/tqli pair, Press et al. (2007), §11.3–11.4): ≈ 10× fewer
    operations than cyclic Jacobi at n = 8, and backward stable.
    """
    d = np.empty(n)
    e = np.zeros(n)
    for i in range(n - 1, 0, -1):
        last = i - 1
        h = 0.0
        scale = 0.0
        if last > 0:
            for k in range(last + 1):
                scale += abs(a[i, k])
            if scale == 0.0:
                e[i] = a[i, last]
            else:
                for k in range(last + 1):
                    a[i, k] /= scale
                    h += a[i, k] * a[i, k]
                f = a[i, last]
                g = -math.sqrt(h) if f >= 0.0 else math.sqrt(h)
                e[i] = scale * g
                h -= f * g
                a[i, last] = f - g
                f = 0.0
                for j in range(last + 1):
                    g = 0.0
                    for k in range(j + 1):
                        g += a[j, k] * a[i, k]
                    for k in range(j + 1, last + 1):
                        g += a[k, j] * a[i, k]
                    e[j] = g / h
                    f += e[j] * a[i, j]
                hh = f / (h + h)
                for j in range(last + 1):
                    f = a[i, j]
                    g = e[j] - hh * f
                    e[j] = g
                    for k in range(j + 1):
                        a[j, k] -= f * e[k] + g * a[i, k]
        else:
            e[i] = a[i, last]
    for i in range(n):
        d[i] = a[i, i]
    for i in range(1, n):
        e[i - 1] = e[i]
    if n > 0:
        e[n - 1] = 0.0
    for low in range(n):
        for _ in range(60):
            m = low
            while m < n - 1:
                dd = abs(d[m]) + abs(d[m + 1])
                if abs(e[m]) <= 2.2e-16 * dd:
                    break
                m += 1
            if m == low:
                break
            g = (d[low + 1] - d[low]) / (2.0 * e[low])
            r = math.hypot(g, 1.0)
            g = d[m] - d[low] + e[low] / (g + (r if g >= 0.0 else -r))
            s = 1.0
            c = 1.0
            p = 0.0
            underflow = False
            for i in range(m - 1, low - 1, -1):
                f = s * e[i]
                b = c * e[i]
                r = math.hypot(f, g)
                e[i + 1] = r
                if r == 0.0:
                    d[i + 1] -= p
                    e[m] = 0.0
                    underflow = True
                    break
                s = f / r
                c = g / r
                g = d[i + 1] - p
                r = (d[i] - g) * s + 2.0 * c * b
                p = s * r
                d[i + 1] = g + p
                g = c * r - b
            if underflow:
                continue
            d[low] -= p
            e[low] = g
            e[m] = 0.0
    top = 0.0
    for i in range(n):
        top = max(top, abs(d[i]))
    return top


@njit(nogil=True, inline="always", fastmath={"contract", "arcp", "nsz"})
def _real_logits(w0, w1, x0, x1, count, alpha, classes, cos_out, sin_out, z, dz, top):
    """For samples ``q < count``: cos and sin of θ = w·x, the real logits
    ``z[k, q] = α cos(θ − 2πk/c)``, their θ-derivatives ``dz[k, q]`` and ``top[q] = max_k z``.
    Elementwise passes over the samples, which LLVM vectorises (engine.vector_math)."""
    for q in range(count):
        cos_t, sin_t = vsincos(w0 * x0[q] + w1 * x1[q])
        cos_out[q] = cos_t
        sin_out[q] = sin_t
        top[q] = -1e300
    for k in range(classes):
        ck = PHASE_COS[classes, k]
        sk = PHASE_SIN[classes, k]
        for q in range(count):
            zk = alpha * (cos_out[q] * ck + sin_out[q] * sk)
            z[k, q] = zk
            dz[k, q] = -alpha * (sin_out[q] * ck - cos_out[q] * sk)
            top[q] = max(top[q], zk)


_TASKS: dict[tuple, Landscape] = {}


@njit(nogil=True, cache=True, inline="always", fastmath={"contract", "arcp", "nsz"})
def classifier_value(w0, w1, p, x0s, x1s, label_cos, label_sin, classes):
    """``(f, fx, fy, fxx, fxy, fyy)`` of the classifier's mean cross-entropy at ``(w0, w1)``
    (``p[0]`` = α) on the samples ``x0s, x1s`` with their labels' phases."""
    # Passes over all samples (vectorised sin/cos and exp, as in the ghost kernel).  With
    # θ = w·x, z_k = α cos(θ − 2πk/c), dz_k = dz_k/dθ and p_k the softmax, per sample:
    # L = log Σ e^{z_k} − z_y, ∇L = (Σ p_k dz_k − dz_y) x and
    # ∇²L = [Σ_k (p_k − δ_ky)(−z_k) + Σ_k p_k dz_k² − (Σ_k p_k dz_k)²] x xᵀ.
    a = p[0]
    n = x0s.shape[0]
    cos_s = np.empty(n)
    sin_s = np.empty(n)
    top = np.empty(n)
    total = np.zeros(n)
    first = np.zeros(n)      # Σ e_k dz_k
    second = np.zeros(n)     # Σ e_k dz_k²
    level = np.zeros(n)      # Σ e_k z_k
    z = np.empty((classes, n))
    dz = np.empty((classes, n))
    _real_logits(w0, w1, x0s, x1s, n, a, classes, cos_s, sin_s, z, dz, top)
    for k in range(classes):
        for s in range(n):
            e = vexp(z[k, s] - top[s])
            total[s] += e
            first[s] += e * dz[k, s]
            second[s] += e * dz[k, s] * dz[k, s]
            level[s] += e * z[k, s]
    f = fx = fy = hxx = hxy = hyy = 0.0
    product = 1.0
    for s in range(n):
        z_y = a * (cos_s[s] * label_cos[s] + sin_s[s] * label_sin[s])
        dz_y = -a * (sin_s[s] * label_cos[s] - cos_s[s] * label_sin[s])
        inv = 1.0 / total[s]
        m = first[s] * inv
        drive = m - dz_y
        curvature = (z_y - level[s] * inv) + second[s] * inv - m * m
        f += top[s] - z_y
        product *= total[s]           # 1 ≤ total ≤ c: one log per 64 samples
        if s % 64 == 63:
            f += math.log(product)
            product = 1.0
        x0, x1 = x0s[s], x1s[s]
        fx += drive * x0
        fy += drive * x1
        hxx += curvature * x0 * x0
        hxy += curvature * x0 * x1
        hyy += curvature * x1 * x1
    f += math.log(product)
    return f / n, fx / n, fy / n, hxx / n, hxy / n, hyy / n


def classifier_for(params: dict[str, float], n: int, seed: int) -> Landscape:
    """The (cached) classifier landscape for preset parameters, dataset size and seed."""
    values = dict(zip(CLASSIFIER_PARAMS, CLASSIFIER_DEFAULTS))
    values.update(params)
    classes = int(round(values["classes"]))
    if not 2 <= classes <= MAX_CLASSES or not 0 <= values["label_noise"] < 1:
        raise ValueError(f"classes must be 2…{MAX_CLASSES} and 0 ≤ label_noise < 1")
    key = (n, classes, values["teacher_x"], values["teacher_y"], values["label_noise"], seed)
    if key not in _TASKS:
        task = make_task(n, classes, (values["teacher_x"], values["teacher_y"]),
                         values["label_noise"], seed)
        _TASKS[key] = classifier_landscape(task, values["alpha"])
    return _TASKS[key]


def classifier_landscape(task: ClassifierTask, alpha: float = 3.0) -> Landscape:
    """``f_orig(w)`` of the task with exact gradient and Hessian, as a :class:`Landscape`."""
    xs, ys, classes = task.x, task.y, task.classes
    x0s, x1s = np.ascontiguousarray(xs[:, 0]), np.ascontiguousarray(xs[:, 1])
    # the label's phase per sample: z_y and dz_y without a gather over classes
    label_cos = np.ascontiguousarray(PHASE_COS[classes, ys])
    label_sin = np.ascontiguousarray(PHASE_SIN[classes, ys])

    @njit(nogil=True, fastmath={"contract", "arcp", "nsz"})
    def func(w0, w1, p):
        return classifier_value(w0, w1, p, x0s, x1s, label_cos, label_sin, classes)

    landscape = Landscape(
        "sine_classifier", func, CLASSIFIER_PARAMS,
        (float(alpha), float(task.classes), task.teacher[0], task.teacher[1], task.label_noise),
        ((-5.0, 5.0), (-5.0, 5.0)),
        f"CE of z_k = α cos(w·x − 2πk/{classes}) on n = {len(ys)} samples",
        notes="Teacher–student sine classifier (engine.ghost).",
        extras={"task": task, "structural": CLASSIFIER_PARAMS[1:],
                "binding": _classifier_binding(x0s, x1s, label_cos, label_sin, classes)})
    return landscape


def _classifier_binding(x0s, x1s, label_cos, label_sin, classes: int) -> str:
    """Source defining ``func`` for this task's data, for the kernel cache
    (:mod:`engine.kernel_cache`): the samples as module constants, so the compiled kernels
    can be cached under the data they were compiled for."""
    def array(name, values):
        return f"{name} = np.array([{', '.join(repr(float(v)) for v in values)}])"
    return "\n".join([
        "from engine.ghost import classifier_value  # noqa: E402",
        array("x0s", x0s), array("x1s", x1s), array("label_cos", label_cos),
        array("label_sin", label_sin), f"classes = {int(classes)}",
        "",
        "",
        '@njit(nogil=True, cache=True, fastmath={"contract", "arcp", "nsz"})',
        "def func(w0, w1, p):",
        "    return classifier_value(w0, w1, p, x0s, x1s, label_cos, label_sin, classes)",
    ]) + "\n"


@njit(nogil=True, cache=True)
def _accumulate_ghost_hessian(ez, inv_total, grads, classes, ghosts, cos_t, sin_t, x0, x1, mx,
                              my, p_ghost, h_wg, h_gg):
    """Add one sample's w–γ and γ–γ Hessian blocks of L_ext.

    With φ = (cos w·x, sin w·x, 1), ψ = dφ/d(w·x) = (−sin, cos, 0) and m = Σ_k p_k ∇_w z_k:
    ∂²L/∂w_a∂γ_jd = p_j (∂_a z_{c+j} − m_a) φ_d + p_j x_a ψ_d and
    ∂²L/∂γ_jd∂γ_j'd' = (δ_jj' p_j − p_j p_j') φ_d φ_d' (ghost logits are linear in γ).
    """
    phi0, phi1 = cos_t, sin_t
    for j in range(ghosts):
        p_ghost[j] = ez[classes + j] * inv_total
    for j in range(ghosts):
        pj = p_ghost[j]
        k = classes + j
        for a in range(2):
            xa = x0 if a == 0 else x1
            ma = mx if a == 0 else my
            lead = pj * (grads[k, a] - ma)
            h_wg[a, j, 0] += lead * phi0 - pj * xa * sin_t
            h_wg[a, j, 1] += lead * phi1 + pj * xa * cos_t
            h_wg[a, j, 2] += lead
        for j2 in range(ghosts):
            weight = (pj if j == j2 else 0.0) - pj * p_ghost[j2]
            for d in range(3):
                fd = phi0 if d == 0 else (phi1 if d == 1 else 1.0)
                for d2 in range(3):
                    fd2 = phi0 if d2 == 0 else (phi1 if d2 == 1 else 1.0)
                    h_gg[j, d, j2, d2] += weight * fd * fd2


@njit(nogil=True, cache=True)
def _extended_step_norm(jac, dim, scale, hxx, hxy, hyy, h_wg, h_gg, ghosts):
    """‖I − scale·H‖₂ of the assembled extended minibatch Hessian (scale = η/B)."""
    jac[0, 0] = 1.0 - scale * hxx
    jac[1, 1] = 1.0 - scale * hyy
    jac[0, 1] = jac[1, 0] = -scale * hxy
    for j in range(ghosts):
        for d in range(3):
            col = 2 + 3 * j + d
            for a in range(2):
                jac[a, col] = jac[col, a] = -scale * h_wg[a, j, d]
            for j2 in range(ghosts):
                for d2 in range(3):
                    jac[col, 2 + 3 * j2 + d2] = ((1.0 if (j == j2 and d == d2) else 0.0)
                                                 - scale * h_gg[j, d, j2, d2])
    return symmetric_spectral_norm(jac, dim)


_FAST = {"contract", "arcp", "nsz"}


@njit(nogil=True, inline="always")
def _gather_minibatch(picks, batch, xs, ys, bx0, bx1, by):
    """Copy the drawn samples ``picks[:batch]`` into contiguous columns."""
    for q in range(batch):
        idx = picks[q]
        bx0[q] = xs[idx, 0]
        bx1[q] = xs[idx, 1]
        by[q] = ys[idx]


@njit(nogil=True, inline="always", fastmath=_FAST)
def _extended_softmax(w0, w1, g_i, bx0, bx1, batch, alpha, classes, ghosts, cos_b, sin_b, z,
                      dz, ez, top, total, drive):
    """Real and ghost logits of every sample, ``ez = e^{z − max z}``, their sum ``total`` and
    ``drive = Σ_k e^{z_k} dz_k`` (all logits depend on w through θ = w·x)."""
    _real_logits(w0, w1, bx0, bx1, batch, alpha, classes, cos_b, sin_b, z, dz, top)
    for q in range(batch):
        total[q] = 0.0
        drive[q] = 0.0
    for j in range(ghosts):
        a0, a1, a2 = g_i[j, 0], g_i[j, 1], g_i[j, 2]
        for q in range(batch):
            zk = a0 * cos_b[q] + a1 * sin_b[q] + a2
            z[classes + j, q] = zk
            dz[classes + j, q] = -a0 * sin_b[q] + a1 * cos_b[q]
            top[q] = max(top[q], zk)
    for k in range(classes + ghosts):
        for q in range(batch):
            e = vexp(z[k, q] - top[q])
            ez[k, q] = e
            total[q] += e
            drive[q] += e * dz[k, q]


@njit(nogil=True, inline="always", fastmath=_FAST)
def _minibatch_gradient(batch, classes, ghosts, bx0, bx1, by, cos_b, sin_b, z, dz, ez, top,
                        total, drive, grad_gamma):
    """Sums over the minibatch of ∇_w L_ext, of ``top − z_y`` and the product of ``total``
    (L = top + log(total) − z_y: one log per step for the whole batch, total ≤ c + e), and
    ∇_γ L_ext into ``grad_gamma``; returns ``(gw0, gw1, margin, total_prod)``."""
    gw0 = gw1 = 0.0
    margin = 0.0
    total_prod = 1.0
    for q in range(batch):
        label = by[q]
        # ∂L/∂(w·x) = Σ_k p_k dz_k − dz_y: ghosts never carry the label
        g = drive[q] / total[q] - dz[label, q]
        gw0 += g * bx0[q]
        gw1 += g * bx1[q]
        margin += top[q] - z[label, q]
        total_prod *= total[q]
    for j in range(ghosts):
        g0 = g1 = g2 = 0.0
        for q in range(batch):
            pg = ez[classes + j, q] / total[q]  # eq. 5.4: ∂L/∂z_{c+j} = ŷ_{c+j}
            g0 += pg * cos_b[q]
            g1 += pg * sin_b[q]
            g2 += pg
        grad_gamma[j, 0] = g0
        grad_gamma[j, 1] = g1
        grad_gamma[j, 2] = g2
    return gw0, gw1, margin, total_prod


@njit(nogil=True, inline="always", fastmath=_FAST)
def _minibatch_hessian(batch, classes, ghosts, g_i, bx0, bx1, by, cos_b, sin_b, z, dz, ez, total,
                       ez_col, grads_col, p_ghost, h_wg, h_gg, full_hessian):
    """The w–w block ``(hxx, hxy, hyy)`` of the minibatch Hessian of L_ext (summed over the
    samples), and with ``full_hessian`` its w–γ and γ–γ blocks into ``h_wg``, ``h_gg``."""
    hxx = hxy = hyy = 0.0
    if full_hessian:
        h_wg[:] = 0.0
        h_gg[:] = 0.0
    for q in range(batch):
        x0, x1, label = bx0[q], bx1[q], by[q]
        inv_total = 1.0 / total[q]
        mx = 0.0
        my = 0.0
        for k in range(classes + ghosts):
            pk = ez[k, q] * inv_total
            g = pk - (1.0 if k == label else 0.0)
            # ∇²_w z_k = curv·x xᵀ: −z_k for real logits, −(γ₀cos + γ₁sin) for ghosts
            curv = -z[k, q] if k < classes else -(z[k, q] - g_i[k - classes, 2])
            d0 = dz[k, q] * x0
            d1 = dz[k, q] * x1
            hxx += g * curv * x0 * x0 + pk * d0 * d0
            hxy += g * curv * x0 * x1 + pk * d0 * d1
            hyy += g * curv * x1 * x1 + pk * d1 * d1
            mx += pk * d0
            my += pk * d1
            ez_col[k] = ez[k, q]
            grads_col[k, 0] = d0
            grads_col[k, 1] = d1
        hxx -= mx * mx
        hxy -= mx * my
        hyy -= my * my
        if full_hessian:
            _accumulate_ghost_hessian(ez_col, inv_total, grads_col, classes, ghosts, cos_b[q],
                                      sin_b[q], x0, x1, mx, my, p_ghost, h_wg, h_gg)
    return hxx, hxy, hyy


@njit(nogil=True, inline="always", fastmath=_FAST)
def _noisy_update(w0, w1, gw0, gw1, g_i, grad_gamma, ghosts, lr, inv, temperature, sigma, s0, s1,
                  s2, s3, zx, zf):
    """One SGD step on (w, γ) with Langevin noise ``sigma·ξ`` on every coordinate when
    ``temperature > 0`` (γ updated in place and clipped to ±GAMMA_MAX); returns the new w and
    the particle's stream state."""
    n0 = 0.0
    n1 = 0.0
    if temperature > 0.0:
        zz, s0, s1, s2, s3 = next_normal(s0, s1, s2, s3, zx, zf)
        n0 = sigma * zz
        zz, s0, s1, s2, s3 = next_normal(s0, s1, s2, s3, zx, zf)
        n1 = sigma * zz
    new0 = w0 - lr * gw0 * inv + n0
    new1 = w1 - lr * gw1 * inv + n1
    for j in range(ghosts):
        for d in range(3):
            noise = 0.0
            if temperature > 0.0:
                zz, s0, s1, s2, s3 = next_normal(s0, s1, s2, s3, zx, zf)
                noise = sigma * zz
            value = g_i[j, d] - lr * grad_gamma[j, d] * inv + noise
            g_i[j, d] = min(max(value, -GAMMA_MAX), GAMMA_MAX)
    return new0, new1, s0, s1, s2, s3


@njit(nogil=True, inline="always")
def _into_bounds(new0, new1, bounds, boundary):
    """w after the boundary: reflected into the box (1), folded into it (3) or as is (0)."""
    if boundary == 1:
        for _ in range(4):
            if new0 > bounds[1]:
                new0 = 2.0 * bounds[1] - new0
            elif new0 < bounds[0]:
                new0 = 2.0 * bounds[0] - new0
            if new1 > bounds[3]:
                new1 = 2.0 * bounds[3] - new1
            elif new1 < bounds[2]:
                new1 = 2.0 * bounds[2] - new1
        new0 = min(max(new0, bounds[0]), bounds[1])
        new1 = min(max(new1, bounds[2]), bounds[3])
    elif boundary == 3 and not (bounds[0] <= new0 < bounds[1]
                                and bounds[2] <= new1 < bounds[3]):
        new0, new1, _, _ = _fold_into_bounds(new0, new1, 0.0, 0.0, bounds, boundary)
    return new0, new1


@njit(nogil=True, inline="always", fastmath=_FAST)
def _ghost_range(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts, alpha,
                 n_steps, lr, temperature, batch, bounds, boundary, diagnostics, zx, zf, escapes,
                 cores, core_geom, last_core, events, event_count, block, step0):
    # Each step works on the whole minibatch in passes over its samples (the inner loops over
    # q): the sine/cosine and the c + e exponentials per sample are elementwise loops that LLVM
    # vectorises with engine.vector_math; reductions stay in sample order, so the result does
    # not depend on the SIMD width.
    n_data = xs.shape[0]
    width = max(batch, 1)
    logits = classes + ghosts
    picks = np.empty(width, dtype=np.int64)
    picked = np.zeros((n_data + 63) // 64 + 1, dtype=np.uint64)
    bx0 = np.empty(width)
    bx1 = np.empty(width)
    by = np.empty(width, dtype=np.int64)
    cos_b = np.empty(width)
    sin_b = np.empty(width)
    top = np.empty(width)
    total = np.empty(width)
    drive = np.empty(width)
    z = np.empty((logits, width))       # logits z_k of each sample
    dz = np.empty((logits, width))      # dz_k/d(w·x): ∇_w z_k = dz_k x
    ez = np.empty((logits, width))      # e^{z_k − max z}
    grad_gamma = np.empty((max(ghosts, 1), 3))
    # per-sample columns for the extended-Hessian blocks (diagnostics with ghosts)
    ez_col = np.empty(logits)
    grads_col = np.empty((logits, 2))
    dim = 2 + 3 * ghosts
    h_wg = np.zeros((2, max(ghosts, 1), 3))
    h_gg = np.zeros((max(ghosts, 1), 3, max(ghosts, 1), 3))
    p_ghost = np.empty(max(ghosts, 1))
    jac = np.empty((dim, dim))
    full_hessian = diagnostics and ghosts > 0
    sigma = math.sqrt(2.0 * lr * temperature)
    for i in range(start, stop):
        if not alive[i]:
            continue
        s0, s1, s2, s3 = rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3]
        w0, w1 = w[i, 0], w[i, 1]
        g_i = gamma[i]
        core = last_core[i]
        # the sums go on from the accumulators (columns as engine.dynamics.ACC_*), step by
        # step: the same additions however the steps are cut into chunks
        lyap = acc[i, 0]
        lyap_prod = acc[i, 5]
        loss_sum = acc[i, 2]
        grad_sum = acc[i, 3]
        for t in range(n_steps):
            s0, s1, s2, s3 = sample_without_replacement(picks, picked, n_data, batch, s0, s1,
                                                        s2, s3)
            _gather_minibatch(picks, batch, xs, ys, bx0, bx1, by)
            _extended_softmax(w0, w1, g_i, bx0, bx1, batch, alpha, classes, ghosts, cos_b, sin_b,
                              z, dz, ez, top, total, drive)
            gw0, gw1, margin, total_prod = _minibatch_gradient(
                batch, classes, ghosts, bx0, bx1, by, cos_b, sin_b, z, dz, ez, top, total, drive,
                grad_gamma)
            inv = 1.0 / batch
            loss_sum += (margin + math.log(total_prod)) * inv
            grad_sum += math.sqrt(gw0 * gw0 + gw1 * gw1) * inv
            if diagnostics:
                hxx, hxy, hyy = _minibatch_hessian(
                    batch, classes, ghosts, g_i, bx0, bx1, by, cos_b, sin_b, z, dz, ez, total,
                    ez_col, grads_col, p_ghost, h_wg, h_gg, full_hessian)
                if full_hessian:
                    norm = _extended_step_norm(jac, dim, lr * inv, hxx, hxy, hyy, h_wg, h_gg,
                                               ghosts)
                else:
                    norm = step_norm_2x2(0.5 * lr * inv, lr * inv, hxx, hxy, hyy)
                lyap, lyap_prod = accumulate_log_norm(norm, lyap, lyap_prod)
            new0, new1, s0, s1, s2, s3 = _noisy_update(w0, w1, gw0, gw1, g_i, grad_gamma, ghosts,
                                                       lr, inv, temperature, sigma, s0, s1, s2,
                                                       s3, zx, zf)
            new0, new1 = _into_bounds(new0, new1, bounds, boundary)
            if not math.isfinite(new0 + new1):
                alive[i] = 0
                break
            w0, w1 = new0, new1
            acc[i, 4] += 1.0
            if escapes:
                core = track_core(w0, w1, core, i, step0 + t + 1, cores, core_geom, events,
                                  event_count, block)
        w[i, 0], w[i, 1] = w0, w1
        rng[i, 0], rng[i, 1], rng[i, 2], rng[i, 3] = s0, s1, s2, s3
        last_core[i] = core
        acc[i, 0] = lyap
        acc[i, 5] = lyap_prod
        acc[i, 2] = loss_sum
        acc[i, 3] = grad_sum


@njit(nogil=True, cache=True, fastmath={"contract", "arcp", "nsz"})
def _ghost_range_plain(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts, alpha,
                       n_steps, lr, temperature, batch, bounds, boundary, zx, zf, escapes, cores,
                       core_geom, last_core, events, event_count, block, step0):
    # diagnostics as a constant: their untaken branches cost ~10 % of the plain step
    _ghost_range(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts, alpha, n_steps,
                 lr, temperature, batch, bounds, boundary, False, zx, zf, escapes, cores,
                 core_geom, last_core, events, event_count, block, step0)


@njit(nogil=True, cache=True, fastmath={"contract", "arcp", "nsz"})
def _ghost_range_diagnostics(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts,
                             alpha, n_steps, lr, temperature, batch, bounds, boundary, zx, zf,
                             escapes, cores, core_geom, last_core, events, event_count, block,
                             step0):
    _ghost_range(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts, alpha, n_steps,
                 lr, temperature, batch, bounds, boundary, True, zx, zf, escapes, cores,
                 core_geom, last_core, events, event_count, block, step0)


GHOST_BLOCK = 64  # particles per parallel work item of ghost_advance (and per event buffer row)


@njit(nogil=True, parallel=True, cache=True)
def ghost_advance(w, gamma, alive, rng, acc, xs, ys, classes, ghosts, alpha, n_steps, lr,
                  temperature, batch, bounds, boundary, diagnostics, zx, zf, escapes, cores,
                  core_geom, last_core, events, event_count, step0):
    """Ghost-extended minibatch SGD for every particle, in place; blocks of 64 in parallel.

    ``boundary`` is an index of :data:`engine.dynamics.BOUNDARIES` other than ``wall``
    (0 none, 1 reflect, 3 periodic).  With ``escapes``, core-set entries are logged per block
    of 64 particles into ``events[block]`` rows (step, particle, from, to) and counted in
    ``event_count[block]``, as :func:`engine.dynamics` kernels do; ``last_core`` is each
    particle's last core set, updated in place."""
    n = w.shape[0]
    n_blocks = (n + GHOST_BLOCK - 1) // GHOST_BLOCK
    for block in prange(n_blocks):
        start, stop = block * GHOST_BLOCK, min(n, block * GHOST_BLOCK + GHOST_BLOCK)
        if diagnostics:
            _ghost_range_diagnostics(start, stop, w, gamma, alive, rng, acc, xs, ys, classes,
                                     ghosts, alpha, n_steps, lr, temperature, batch, bounds,
                                     boundary, zx, zf, escapes, cores, core_geom, last_core,
                                     events, event_count, block, step0)
        else:
            _ghost_range_plain(start, stop, w, gamma, alive, rng, acc, xs, ys, classes, ghosts,
                               alpha, n_steps, lr, temperature, batch, bounds, boundary, zx, zf,
                               escapes, cores, core_geom, last_core, events, event_count, block,
                               step0)


METRIC_COLUMNS = ("f_orig", "f_ghost", "f_ext", "ghost_mass", "accuracy", "grad_norm",
                  "grad_cov_trace")


@njit(nogil=True, parallel=True, cache=True, fastmath={"contract", "arcp", "nsz"})
def full_data_metrics(w, gamma, xs, ys, classes, ghosts, alpha, out):
    """Per particle over all data, ``out[i]`` = :data:`METRIC_COLUMNS`: ``f_orig, f_ghost,
    f_ext, ghost_mass, accuracy, ‖∇_w f_orig‖, tr Cov_s ∇_w L_ext`` (out shape ``(N, 7)``).  The
    last is the trace of the covariance over samples ``s`` of the per-sample gradients in ``w``
    of the loss the step descends (the extended one): the minibatch noise of the plotted
    coordinates.  Per particle, passes over the samples as in the step kernel (vectorised
    sin/cos and exp)."""
    n = xs.shape[0]
    x0s = np.ascontiguousarray(xs[:, 0])
    x1s = np.ascontiguousarray(xs[:, 1])
    for i in prange(w.shape[0]):
        cos_s = np.empty(n)
        sin_s = np.empty(n)
        top = np.empty(n)
        real = np.zeros(n)
        ghost = np.zeros(n)
        first = np.zeros(n)      # Σ_real e_k dz_k
        ghost_drive = np.zeros(n)  # Σ_ghost e_k dz_k
        z = np.empty((classes + ghosts, n))
        dz = np.empty((classes, n))
        _real_logits(w[i, 0], w[i, 1], x0s, x1s, n, alpha, classes, cos_s, sin_s, z, dz, top)
        for j in range(ghosts):
            a0, a1, a2 = gamma[i, j, 0], gamma[i, j, 1], gamma[i, j, 2]
            for s in range(n):
                zg = a0 * cos_s[s] + a1 * sin_s[s] + a2
                z[classes + j, s] = zg
                top[s] = max(top[s], zg)
        for k in range(classes):
            for s in range(n):
                e = vexp(z[k, s] - top[s])
                real[s] += e
                first[s] += e * dz[k, s]
        for j in range(ghosts):
            a0, a1 = gamma[i, j, 0], gamma[i, j, 1]
            for s in range(n):
                e = vexp(z[classes + j, s] - top[s])
                ghost[s] += e
                ghost_drive[s] += e * (a1 * cos_s[s] - a0 * sin_s[s])
        f_ext = f_orig = mass = correct = gx = gy = 0.0
        ex = ey = exx = eyy = 0.0  # moments of the per-sample ∇_w L_ext
        for s in range(n):
            label = ys[s]
            margin = top[s] - z[label, s]
            total = real[s] + ghost[s]
            f_orig += margin + math.log(real[s])
            f_ext += margin + math.log(total)
            mass += ghost[s] / total
            # ∇_w f_orig: softmax over the c real logits only
            g = first[s] / real[s] - dz[label, s]
            gx += g * x0s[s]
            gy += g * x1s[s]
            # ∇_w L_ext: the softmax over real and ghost logits (ghost logits move with w too)
            g_ext = (first[s] + ghost_drive[s]) / total - dz[label, s]
            ex += g_ext * x0s[s]
            ey += g_ext * x1s[s]
            exx += (g_ext * x0s[s]) ** 2
            eyy += (g_ext * x1s[s]) ** 2
            best = 0
            for k in range(1, classes):  # predictions use the real logits (first maximum)
                if z[k, s] > z[best, s]:
                    best = k
            correct += 1.0 if best == label else 0.0
        out[i, 0] = f_orig / n
        out[i, 1] = (f_ext - f_orig) / n
        out[i, 2] = f_ext / n
        out[i, 3] = mass / n
        out[i, 4] = correct / n
        out[i, 5] = math.sqrt(gx * gx + gy * gy) / n
        out[i, 6] = max(exx / n - (ex / n) ** 2, 0.0) + max(eyy / n - (ey / n) ** 2, 0.0)
