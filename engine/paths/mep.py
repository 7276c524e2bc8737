"""Minimum-energy paths: the simplified string method and a climbing image.

String (E, Ren & Vanden-Eijnden 2007, "simplified and improved string method"): ``M`` images
between two minima take a gradient step ``φ ← φ − Δt ∇f(φ)`` and are then redistributed at equal
arc length along the piecewise-linear curve through them.  The fixed point is a curve along
which ``∇f`` is tangent: a minimum-energy path (it passes through intermediate minima and every
saddle it crosses).

Climbing image (Henkelman, Uberuaga & Jónsson 2000): the highest image then moves along the
reflected gradient ``−(I − 2ττᵀ)∇f``, ascending along the unstable direction ``τ`` and descending
across it, until ``∇f = 0``: the highest point of the path *is* the saddle, to the tolerance of
the iteration.  ``τ`` is the string's tangent at that image, and the Hessian's softest eigenvector
once that has a negative eigenvalue (min-mode following), which keeps the iteration convergent
near the saddle however curved the path.  No Newton step is used, so the test that this point
equals the saddle Newton finds in :mod:`engine.diagnostics.structure` compares two independent
computations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Evaluate = Callable[[np.ndarray], np.ndarray]  # (M, 2) → (M, 6): f, fx, fy, fxx, fxy, fyy


@dataclass
class Path:
    points: np.ndarray      # (M, 2), from the first minimum to the second
    profile: np.ndarray     # (M,) f along the path
    arc: np.ndarray         # (M,) arc length from the first point
    highest: int            # index of the climbing image in ``points``
    gradient_norm: float    # |∇f| at the climbing image
    string_iterations: int
    climb_iterations: int
    string_residual: float  # max |∇f⊥| / max |∇f| over the interior images at the end

    def to_json(self) -> dict:
        h = self.points[self.highest]
        return {"path": self.points.tolist(), "profile": self.profile.tolist(),
                "arc_length": self.arc.tolist(),
                "highest": {"x": float(h[0]), "y": float(h[1]),
                            "f": float(self.profile[self.highest]), "index": self.highest,
                            "gradient_norm": self.gradient_norm},
                "string_iterations": self.string_iterations,
                "climb_iterations": self.climb_iterations,
                "string_residual": self.string_residual}


def _redistribute(points: np.ndarray) -> np.ndarray:
    """The same curve (piecewise linear through ``points``) sampled at equal arc length."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] == 0.0:
        return points.copy()
    target = np.linspace(0.0, arc[-1], len(points))
    return np.column_stack([np.interp(target, arc, points[:, 0]),
                            np.interp(target, arc, points[:, 1])])


def _tangents(points: np.ndarray) -> np.ndarray:
    t = np.empty_like(points)
    t[1:-1] = points[2:] - points[:-2]
    t[0], t[-1] = points[1] - points[0], points[-1] - points[-2]
    norm = np.hypot(*t.T)
    return t / np.where(norm > 0, norm, 1.0)[:, None]


def _stable_step(rows: np.ndarray) -> float:
    """``0.5 / max |λ|`` over the images' Hessians: the gradient step is stable everywhere."""
    h = rows[:, [3, 4, 4, 5]].reshape(-1, 2, 2)
    top = np.max(np.abs(np.linalg.eigvalsh(h)))
    return 0.5 / top if top > 0 else 1.0


def string_method(evaluate: Evaluate, start, end, images: int = 65, tol: float = 1e-7,
                  max_iter: int = 20000) -> tuple[np.ndarray, int, float]:
    """Images of the minimum-energy path from ``start`` to ``end`` (both minima), from the
    straight line.  Stops when the images' velocity (their move per unit of the step, ≈ |∇f⊥|
    after redistribution) is below ``tol`` × the largest |∇f| on the string, or after
    ``max_iter`` steps.

    Returns ``(points (images, 2), iterations, residual)`` with ``residual`` = max |∇f⊥| /
    max |∇f| over the interior images."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    s = np.linspace(0.0, 1.0, images)[:, None]
    phi = (1 - s) * start + s * end
    it = 0
    for it in range(1, max_iter + 1):
        rows = evaluate(phi)
        dt = _stable_step(rows)
        moved = phi.copy()
        moved[1:-1] -= dt * rows[1:-1, 1:3]
        moved = _redistribute(moved)
        change = np.max(np.hypot(*(moved - phi).T)) / dt
        phi = moved
        if change <= tol * np.max(np.hypot(*rows[:, 1:3].T)):
            break
    rows = evaluate(phi)
    g = rows[1:-1, 1:3]
    t = _tangents(phi)[1:-1]
    perp = g - np.sum(g * t, axis=1)[:, None] * t
    scale = np.max(np.hypot(*g.T)) if len(g) else 0.0
    residual = float(np.max(np.hypot(*perp.T)) / scale) if scale > 0 else 0.0
    return phi, it, residual


def climb(evaluate: Evaluate, point, tangent, tol: float = 1e-13,
          max_iter: int = 100000) -> tuple[np.ndarray, int, float]:
    """Climbing-image iteration ``x ← x − Δt (I − 2ττᵀ)∇f`` from ``point`` (see module docstring).
    Stops when a step moves less than ``tol`` × (1 + |x|).  Returns ``(x, iterations, |∇f|)``."""
    x = np.asarray(point, float).copy()
    tau = np.asarray(tangent, float) / np.hypot(*tangent)
    it = 0
    for it in range(1, max_iter + 1):
        row = evaluate(x[None])[0]
        g = row[1:3]
        h = np.array([[row[3], row[4]], [row[4], row[5]]])
        lam, vec = np.linalg.eigh(h)
        if lam[0] < 0:  # min mode, oriented like the path
            tau = vec[:, 0] if vec[:, 0] @ tau >= 0 else -vec[:, 0]
        dt = 0.5 / max(np.max(np.abs(lam)), 1e-300)
        step = dt * (g - 2.0 * (g @ tau) * tau)
        x = x - step
        if np.hypot(*step) < tol * (1.0 + np.hypot(*x)):
            break
    row = evaluate(x[None])[0]
    return x, it, float(np.hypot(row[1], row[2]))


def minimum_energy_path(evaluate: Evaluate, start, end, images: int = 65,
                        tol: float = 1e-7) -> Path:
    """String from ``start`` to ``end``, then its highest interior image climbs to the saddle
    and replaces that image (see module docstring)."""
    phi, iters, residual = string_method(evaluate, start, end, images, tol)
    f = evaluate(phi)[:, 0]
    k = int(np.argmax(f[1:-1])) + 1 if images > 2 else 0
    climbs, gnorm = 0, 0.0
    if images > 2:
        top, climbs, gnorm = climb(evaluate, phi[k], _tangents(phi)[k])
        phi = phi.copy()
        phi[k] = top
        f = evaluate(phi)[:, 0]
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(phi, axis=0).T))])
    return Path(phi, f, arc, k, gnorm, iters, climbs, residual)
