"""Built-in analytic landscapes, each with hand-derived exact gradient and Hessian.

Every function has the signature of :class:`engine.landscapes.base.Landscape.func`.  The tests
check all derivatives against central differences.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .base import Landscape


@njit(cache=True, nogil=True)
def quadratic(x, y, p):
    """``½ (a x² + 2 b x y + c y²)``: Hessian ``[[a, b], [b, c]]`` (PD or indefinite)."""
    a, b, c = p[0], p[1], p[2]
    return (0.5 * (a * x * x + 2.0 * b * x * y + c * y * y), a * x + b * y, b * x + c * y, a, b, c)


@njit(cache=True, nogil=True)
def double_well(x, y, p):
    """``(x² − 1)² + κ y² + tilt·x``."""
    kappa, tilt = p[0], p[1]
    u = x * x - 1.0
    return (u * u + kappa * y * y + tilt * x, 4.0 * x * u + tilt, 2.0 * kappa * y,
            12.0 * x * x - 4.0, 0.0, 2.0 * kappa)


@njit(cache=True, nogil=True)
def zhang_sin(x, y, p):
    """``A sin x sin y`` (Zhang et al. (2022), §3.4, with A = 100)."""
    amp = p[0]
    sx, cx, sy, cy = math.sin(x), math.cos(x), math.sin(y), math.cos(y)
    f = amp * sx * sy
    return f, amp * cx * sy, amp * sx * cy, -f, amp * cx * cy, -f


@njit(cache=True, nogil=True)
def saddle(x, y, p):
    """``x² − y² + q y⁴``: an index-1 saddle at the origin, confined by the quartic."""
    q = p[0]
    return (x * x - y * y + q * y ** 4, 2.0 * x, -2.0 * y + 4.0 * q * y ** 3,
            2.0, 0.0, -2.0 + 12.0 * q * y * y)


_MB_A = np.array([-200.0, -100.0, -170.0, 15.0])
_MB_a = np.array([-1.0, -1.0, -6.5, 0.7])
_MB_b = np.array([0.0, 0.0, 11.0, 0.6])
_MB_c = np.array([-10.0, -10.0, -6.5, 0.7])
_MB_X = np.array([1.0, 0.0, -0.5, -1.0])
_MB_Y = np.array([0.0, 0.5, 1.5, 1.0])


@njit(cache=True, nogil=True)
def muller_brown(x, y, p):
    """Müller–Brown potential (Müller & Brown 1979) times ``scale``."""
    scale = p[0]
    f = fx = fy = fxx = fxy = fyy = 0.0
    for k in range(4):
        dx = x - _MB_X[k]
        dy = y - _MB_Y[k]
        a, b, c = _MB_a[k], _MB_b[k], _MB_c[k]
        e = _MB_A[k] * math.exp(a * dx * dx + b * dx * dy + c * dy * dy)
        px = 2.0 * a * dx + b * dy
        py = b * dx + 2.0 * c * dy
        f += e
        fx += e * px
        fy += e * py
        fxx += e * (px * px + 2.0 * a)
        fxy += e * (px * py + b)
        fyy += e * (py * py + 2.0 * c)
    return scale * f, scale * fx, scale * fy, scale * fxx, scale * fxy, scale * fyy


_GM_MU = np.array([[-1.2, -0.8], [1.3, -1.0], [0.0, 1.3], [1.6, 1.4]])


@njit(cache=True, nogil=True, inline="always")
def _gm_logit(x, y, p, k):
    dx = x - _GM_MU[k, 0]
    dy = y - _GM_MU[k, 1]
    return math.log(p[k]) - 0.5 * (dx * dx + dy * dy) / (p[4 + k] * p[4 + k])


@njit(cache=True, nogil=True)
def gaussian_mixture(x, y, p):
    """``−log Σ_k w_k exp(−|r − μ_k|² / (2 s_k²))`` over four fixed centres.

    ``p = (w1..w4, s1..s4)``.  The defaults give one wide shallow well and sharp deep ones, so the
    Gibbs measure at T = 1 is exactly the (unnormalised) mixture.  Evaluated with a
    log-sum-exp shift so it stays finite far from all centres.
    """
    top = -math.inf
    for k in range(4):
        top = max(top, _gm_logit(x, y, p, k))
    total = sx = sy = sxx = sxy = syy = 0.0
    for k in range(4):
        dx = x - _GM_MU[k, 0]
        dy = y - _GM_MU[k, 1]
        inv = 1.0 / (p[4 + k] * p[4 + k])
        e = math.exp(_gm_logit(x, y, p, k) - top)
        gx = -dx * inv
        gy = -dy * inv
        total += e
        sx += e * gx
        sy += e * gy
        sxx += e * (gx * gx - inv)
        sxy += e * gx * gy
        syy += e * (gy * gy - inv)
    fx = -sx / total
    fy = -sy / total
    return (-(top + math.log(total)), fx, fy, -sxx / total + fx * fx, -sxy / total + fx * fy,
            -syy / total + fy * fy)


@njit(cache=True, nogil=True)
def rastrigin(x, y, p):
    """``x² + y² + A (2 − cos 2πx − cos 2πy)``: a rugged bowl with many shallow minima."""
    amp = p[0]
    w = 2.0 * math.pi
    cx, cy = math.cos(w * x), math.cos(w * y)
    return (x * x + y * y + amp * (2.0 - cx - cy), 2.0 * x + amp * w * math.sin(w * x),
            2.0 * y + amp * w * math.sin(w * y), 2.0 + amp * w * w * cx, 0.0,
            2.0 + amp * w * w * cy)


BUILTINS: dict[str, Landscape] = {
    "quadratic": Landscape("quadratic", quadratic, ("a", "b", "c"), (1.0, 0.0, 1.0),
                           ((-3.0, 3.0), (-3.0, 3.0)), "½(a x² + 2b xy + c y²)"),
    "double_well": Landscape("double_well", double_well, ("kappa", "tilt"), (1.0, 0.0),
                             ((-2.0, 2.0), (-1.5, 1.5)), "(x² − 1)² + κ y² + tilt·x"),
    "zhang_sin": Landscape("zhang_sin", zhang_sin, ("amplitude",), (100.0,),
                           ((-math.pi, math.pi), (-math.pi, math.pi)), "A sin x sin y",
                           notes="Zhang et al. (2022), §3.4; L = A, GD converges iff η < 2/A."),
    "saddle": Landscape("saddle", saddle, ("q",), (0.25,), ((-2.0, 2.0), (-2.5, 2.5)),
                        "x² − y² + q y⁴"),
    "muller_brown": Landscape("muller_brown", muller_brown, ("scale",), (1.0,),
                              ((-1.5, 1.2), (-0.5, 2.0)), "Müller–Brown (1979)"),
    "gaussian_mixture": Landscape(
        "gaussian_mixture", gaussian_mixture,
        ("w1", "w2", "w3", "w4", "s1", "s2", "s3", "s4"),
        (1.0, 0.6, 0.5, 0.3, 0.7, 0.25, 0.4, 0.2), ((-3.0, 3.0), (-3.0, 3.0)),
        "−log Σ w_k N(μ_k, s_k²)"),
    "rastrigin": Landscape("rastrigin", rastrigin, ("amplitude",), (1.0,),
                           ((-3.0, 3.0), (-3.0, 3.0)), "x² + y² + A(2 − cos 2πx − cos 2πy)"),
}
