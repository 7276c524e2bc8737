"""A small Markov state model from discrete trajectories (Prinz et al. 2011).

Transition counts at lag ``τ`` over every particle's sequence of cells (sliding window), the
largest strongly connected set, the reversible maximum-likelihood transition matrix by the
fixed-point iteration given by Prinz et al. (2011)

    x_ij ← (c_ij + c_ji) / (c_i / x_i + c_j / x_j),     T_ij = x_ij / x_i,

and its implied time scales ``t_k = −τ / ln λ_k``.  Particles are independent trajectories, so
:func:`bootstrap_timescales` resamples particles for standard errors.

Written in NumPy rather than taken from deeptime: the model needed is these few lines, the
engine gains no compiled dependency, and the tests check it against deeptime's estimator where
deeptime is installed (``tests/test_paths.py``).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components


def count_matrix(dtraj: np.ndarray, lag: int, n_states: int) -> np.ndarray:
    """``C_ij`` = number of (record t, particle) with state i at t and j at t + lag;
    ``dtraj`` is ``(S, N)`` (records × particles)."""
    a = dtraj[:-lag].ravel().astype(np.int64)
    b = dtraj[lag:].ravel().astype(np.int64)
    return np.bincount(a * n_states + b, minlength=n_states * n_states).reshape(
        n_states, n_states).astype(float)


def largest_connected_set(C: np.ndarray) -> np.ndarray:
    """Indices of the largest strongly connected set of the count graph."""
    n, labels = connected_components(C > 0, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=n)
    return np.flatnonzero(labels == np.argmax(sizes))


def reversible_mle(C: np.ndarray, tol: float = 1e-12, max_iter: int = 100000
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Reversible maximum-likelihood ``T`` and its stationary vector for counts ``C`` (one
    strongly connected set)."""
    C = np.asarray(C, float)
    sym = C + C.T
    c_row = C.sum(axis=1)
    x = sym / sym.sum()
    for _ in range(max_iter):
        xi = x.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            denom = c_row[:, None] / xi[:, None] + c_row[None, :] / xi[None, :]
            new = np.where(sym > 0, sym / denom, 0.0)
        new /= new.sum()
        if np.max(np.abs(new - x)) < tol * np.max(new):
            x = new
            break
        x = new
    xi = x.sum(axis=1)
    return x / xi[:, None], xi / xi.sum()


def eigenvalues(T: np.ndarray, mu: np.ndarray, k: int) -> np.ndarray:
    """The ``k + 1`` largest eigenvalues of a reversible ``T`` (symmetrised with ``μ``)."""
    s = np.sqrt(mu)
    S = s[:, None] * T / s[None, :]
    vals = np.linalg.eigvalsh(0.5 * (S + S.T))
    return vals[::-1][:k + 1]


def implied_timescales(dtraj: np.ndarray, lag: int, n_states: int, k: int = 1,
                       dt: float = 1.0) -> np.ndarray:
    """The ``k`` slowest implied time scales ``−lag·dt / ln λ`` (``dt`` = time per record)."""
    return timescales_of_counts(count_matrix(dtraj, lag, n_states), lag, k, dt)


def timescales_of_counts(C: np.ndarray, lag: int, k: int = 1, dt: float = 1.0) -> np.ndarray:
    """The ``k`` slowest implied time scales of the reversible MLE of counts ``C`` at ``lag``."""
    keep = largest_connected_set(C)
    T, mu = reversible_mle(C[np.ix_(keep, keep)])
    lam = eigenvalues(T, mu, k)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lam > 0, -lag * dt / np.log(lam), np.nan)


def bootstrap_timescales(dtraj: np.ndarray, lag: int, n_states: int, k: int = 1,
                         dt: float = 1.0, samples: int = 50, seed: int = 0) -> np.ndarray:
    """Implied time scales of ``samples`` resamplings of the particles (with replacement),
    ``(samples, k)``; each particle's counts are computed once."""
    rng = np.random.default_rng(seed)
    n = dtraj.shape[1]
    a = dtraj[:-lag].astype(np.int64)
    b = dtraj[lag:].astype(np.int64)
    particle = np.broadcast_to(np.arange(n), a.shape)
    per_particle = np.bincount(((particle * n_states + a) * n_states + b).ravel(),
                               minlength=n * n_states * n_states).reshape(n, -1).astype(float)
    out = np.empty((samples, k))
    for s in range(samples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        C = (weights @ per_particle).reshape(n_states, n_states)
        out[s] = timescales_of_counts(C, lag, k, dt)
    return out
