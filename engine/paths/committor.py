"""The committor PDE and transition path theory on a grid.

Overdamped Langevin dynamics ``dX = −∇f dt + √(2T) dW`` has the generator
``L = T Δ − ∇f·∇``, reversible with respect to ``π ∝ e^{−f/T}``.  On a cell-centred grid with
spacings ``hx, hy`` it is discretised by the square-root approximation of
Lie, Fackeldey & Weber (2013), a finite-volume Scharfetter–Gummel-type scheme: the jump rate
from a cell to each of its four neighbours is

    k_ij = (T / h²) exp(−(f_j − f_i) / 2T),      h = hx or hy by direction,

and no jump leaves the domain (a reflecting outer boundary).  This is a Markov jump process with
``π_i k_ij = (T/h²) e^{−(f_i + f_j)/2T}`` symmetric — detailed balance with the discrete Gibbs
weights, exactly — and a Taylor expansion of ``Σ_j k_ij (q_j − q_i)`` gives ``T q'' − f' q'``
with an ``O(h²)`` error (the odd terms cancel between opposite neighbours).  In one dimension its
committor is exactly ``q_i = Σ_{k<i} e^{(f_k+f_{k+1})/2T} / Σ e^{(f_k+f_{k+1})/2T}`` — the
quadrature of ``∫ e^{f/T}`` with the geometric mean of the end points on each interval — so the
grid committor of a separable landscape converges to ``∫_a^x e^{f/T} / ∫_a^b e^{f/T}`` at second
order (``tests/test_paths.py`` measures the order).

Transition path theory of this jump process, after E & Vanden-Eijnden (2006) and
Metzner, Schütte & Vanden-Eijnden (2009), with ``q`` the committor (``q = 0`` on A, 1 on B)
and, by reversibility, ``1 − q`` the backward committor:

* reactive density ``m_i = π_i q_i (1 − q_i)`` (probability of being on a reactive A→B path),
* reactive current across an edge ``F_ij = π_i k_ij (q_j − q_i)``,
* reactive flux ``ν_AB = Σ_edges π_i k_ij (q_j − q_i)²`` (= the current out of A, = through any
  dividing surface), in transitions per unit time,
* the rate of the A → B transitions ``k_{A→B} = ν_AB / ρ_A`` with ``ρ_A = Σ π_i (1 − q_i)`` the
  probability of having last visited A: ``1/k_{A→B}`` is the mean time from A to B that
  ``run``'s escape log measures (time attributed to A per A → B event).

Time is in the time units of the Langevin dynamics (``η·steps`` at the equivalent step).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

_CLIP = 700.0  # exponents beyond this are clipped (rates of e^{±700} are 0 or ∞ in practice)


@dataclass
class Grid:
    """A cell-centred grid over ``[x0, x1] × [y0, y1]`` with ``f`` at the cell centres."""

    x: np.ndarray          # (nx,) cell centres
    y: np.ndarray          # (ny,)
    values: np.ndarray     # (ny, nx) f at the centres; non-finite cells are left out
    temperature: float
    periodic: bool = False

    @property
    def hx(self) -> float:
        return float(self.x[1] - self.x[0])

    @property
    def hy(self) -> float:
        return float(self.y[1] - self.y[0])

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def finite(self) -> np.ndarray:
        return np.isfinite(self.values)

    def points(self) -> np.ndarray:
        X, Y = np.meshgrid(self.x, self.y)
        return np.column_stack([X.ravel(), Y.ravel()])

    def gibbs(self) -> np.ndarray:
        """Cell probabilities ``π_i ∝ e^{−f_i/T}`` (sum 1 over the finite cells), ``(ny, nx)``."""
        f = np.where(self.finite, self.values, np.inf)
        w = np.exp(-(f - np.min(f)) / self.temperature)
        return w / w.sum()

    def cell_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(iy, ix)`` of the cell containing each point (clipped to the grid)."""
        points = np.asarray(points, float).reshape(-1, 2)
        ix = np.clip(np.floor((points[:, 0] - self.x[0]) / self.hx + 0.5), 0, self.x.size - 1)
        iy = np.clip(np.floor((points[:, 1] - self.y[0]) / self.hy + 0.5), 0, self.y.size - 1)
        return iy.astype(np.int64), ix.astype(np.int64)

    def interpolate(self, field: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of a cell-centred ``field (ny, nx)`` at ``points``."""
        points = np.asarray(points, float).reshape(-1, 2)
        fx = np.clip((points[:, 0] - self.x[0]) / self.hx, 0, self.x.size - 1)
        fy = np.clip((points[:, 1] - self.y[0]) / self.hy, 0, self.y.size - 1)
        ix = np.minimum(fx.astype(np.int64), self.x.size - 2)
        iy = np.minimum(fy.astype(np.int64), self.y.size - 2)
        tx, ty = fx - ix, fy - iy
        return ((1 - ty) * ((1 - tx) * field[iy, ix] + tx * field[iy, ix + 1])
                + ty * ((1 - tx) * field[iy + 1, ix] + tx * field[iy + 1, ix + 1]))


def make_grid(evaluate, bounds, nx: int, ny: int | None = None, temperature: float = 1.0,
              periodic: bool = False) -> Grid:
    """``f`` at the centres of ``nx × ny`` cells tiling ``bounds = (x0, x1, y0, y1)``."""
    ny = nx if ny is None else ny
    x0, x1, y0, y1 = (float(b) for b in bounds)
    hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
    x = x0 + hx * (np.arange(nx) + 0.5)
    y = y0 + hy * (np.arange(ny) + 0.5)
    X, Y = np.meshgrid(x, y)
    values = evaluate(np.column_stack([X.ravel(), Y.ravel()]))[:, 0].reshape(ny, nx)
    if not temperature > 0:
        raise ValueError(f"the committor needs a temperature > 0 (got T = {temperature:g}: "
                         "gradient descent has no noise)")
    return Grid(x, y, values, float(temperature), periodic)


def _edges(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unordered neighbour pairs ``(i, j)`` (flat indices, both cells finite, ``j`` the +x or
    +y neighbour of ``i``), their ``1/h²`` and axis (0: x, 1: y)."""
    ny, nx = grid.shape
    index = np.arange(ny * nx).reshape(ny, nx)
    pairs = [(index[:, :-1], index[:, 1:], 0), (index[:-1, :], index[1:, :], 1)]
    if grid.periodic:
        pairs += [(index[:, -1], index[:, 0], 0), (index[-1, :], index[0, :], 1)]
    finite = grid.finite.ravel()
    i = np.concatenate([a.ravel() for a, _, _ in pairs])
    j = np.concatenate([b.ravel() for _, b, _ in pairs])
    axis = np.concatenate([np.full(a.size, d) for a, _, d in pairs])
    w = np.where(axis == 0, 1.0 / grid.hx ** 2, 1.0 / grid.hy ** 2)
    keep = finite[i] & finite[j]
    return i[keep], j[keep], w[keep], axis[keep]


def generator(grid: Grid) -> sp.csr_matrix:
    """The rate matrix ``L`` (rows sum to 0) of the jump process in the module docstring."""
    n = grid.values.size
    f = np.where(grid.finite, grid.values, 0.0).ravel()
    i, j, w, _ = _edges(grid)
    t = grid.temperature
    k_ij = t * w * np.exp(np.clip(-(f[j] - f[i]) / (2 * t), -_CLIP, _CLIP))
    k_ji = t * w * np.exp(np.clip(-(f[i] - f[j]) / (2 * t), -_CLIP, _CLIP))
    rows = np.concatenate([i, j])
    cols = np.concatenate([j, i])
    vals = np.concatenate([k_ij, k_ji])
    off = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocsr()


def committor(grid: Grid, A: np.ndarray, B: np.ndarray, L: sp.csr_matrix | None = None
              ) -> np.ndarray:
    """Solve ``L q = 0`` off A ∪ B with ``q = 0`` on A and 1 on B; ``(ny, nx)``.  Cells that
    are not finite, or not connected to A ∪ B, are NaN."""
    A = np.asarray(A, bool) & grid.finite
    B = np.asarray(B, bool) & grid.finite
    if not A.any() or not B.any():
        raise ValueError("the committor needs non-empty sets A and B on finite cells")
    if (A & B).any():
        raise ValueError("the sets A and B overlap")
    L = generator(grid) if L is None else L
    n = grid.values.size
    q = np.full(n, np.nan)
    q[A.ravel()] = 0.0
    q[B.ravel()] = 1.0
    finite = grid.finite.ravel()
    _, label = connected_components(L, directed=False)
    reach = np.zeros(label.max() + 1, dtype=bool)
    reach[label[(A | B).ravel()]] = True
    free = finite & ~A.ravel() & ~B.ravel() & reach[label]
    idx = np.flatnonzero(free)
    if idx.size:
        Lf = L[idx][:, idx]
        rhs = -np.asarray(L[idx][:, np.flatnonzero(B.ravel())].sum(axis=1)).ravel()
        scale = 1.0 / -Lf.diagonal()  # rows as exit probabilities: well conditioned
        Lf = sp.diags(scale) @ Lf
        q[idx] = spla.spsolve(Lf.tocsc(), rhs * scale)
    return np.clip(q, 0.0, 1.0).reshape(grid.shape)


@dataclass
class TPT:
    committor: np.ndarray         # (ny, nx)
    reactive_density: np.ndarray  # (ny, nx) per unit area: π q (1 − q) / (hx hy)
    current: np.ndarray           # (ny, nx, 2) reactive current per unit length, at centres
    flux: float                   # ν_AB: reactive A→B transitions per unit time
    flux_out_of_A: float          # the same, as the current leaving A (a consistency check)
    rho_A: float                  # probability of having last visited A
    rho_B: float
    reactive_probability: float   # Σ π q (1 − q): probability of being reactive (A→B)

    @property
    def rate_AB(self) -> float:
        """``k_{A→B} = ν_AB / ρ_A``: 1 / (mean time from A to B)."""
        return self.flux / self.rho_A

    @property
    def rate_BA(self) -> float:
        return self.flux / self.rho_B

    @property
    def mean_reactive_duration(self) -> float:
        """Mean duration of a reactive trajectory, ``Σ π q (1 − q) / ν_AB``."""
        return self.reactive_probability / self.flux

    def to_json(self) -> dict:
        return {"flux_AB": self.flux, "flux_out_of_A": self.flux_out_of_A,
                "rho_A": self.rho_A, "rho_B": self.rho_B,
                "rate_AB": self.rate_AB, "rate_BA": self.rate_BA,
                "mfpt_AB_time": 1.0 / self.rate_AB, "mfpt_BA_time": 1.0 / self.rate_BA,
                "reactive_probability": self.reactive_probability,
                "mean_reactive_duration_time": self.mean_reactive_duration}


def transition_path_theory(grid: Grid, A: np.ndarray, B: np.ndarray) -> TPT:
    """Committor, reactive density, current, flux and rates (module docstring)."""
    L = generator(grid)
    q = committor(grid, A, B, L)
    pi = grid.gibbs()
    qf = np.nan_to_num(q.ravel(), nan=0.0)
    pf = pi.ravel() * np.isfinite(q.ravel())
    i, j, w, axis = _edges(grid)
    f = np.where(grid.finite, grid.values, 0.0).ravel()
    t = grid.temperature
    fmin = np.min(f[grid.finite.ravel()])
    # π_i k_ij = (T/h²) e^{-(f_i + f_j)/2T} / Z, computed symmetrically (no overflow)
    z = np.exp(-(grid.values[grid.finite] - fmin) / t).sum()
    conductance = t * w * np.exp(-((f[i] + f[j]) / 2 - fmin) / t) / z
    conductance *= np.isfinite(q.ravel()[i]) & np.isfinite(q.ravel()[j])
    edge_flux = conductance * (qf[j] - qf[i])            # i → j
    flux = float(np.sum(edge_flux * (qf[j] - qf[i])))
    a = (np.asarray(A, bool) & grid.finite).ravel()
    out_a = float(np.sum(np.where(a[i] & ~a[j], edge_flux, 0.0))
                  - np.sum(np.where(a[j] & ~a[i], edge_flux, 0.0)))
    ny, nx = grid.shape
    # current per unit length at the centres: the mean of each cell's two edges per direction
    current = np.zeros((ny * nx, 2))
    for d, length in ((0, grid.hy), (1, grid.hx)):
        mask = axis == d
        np.add.at(current[:, d], i[mask], 0.5 * edge_flux[mask] / length)
        np.add.at(current[:, d], j[mask], 0.5 * edge_flux[mask] / length)
    m = pf * qf * (1 - qf)
    return TPT(q, (m / (grid.hx * grid.hy)).reshape(ny, nx), current.reshape(ny, nx, 2), flux,
               out_a, float(np.sum(pf * (1 - qf))), float(np.sum(pf * qf)), float(np.sum(m)))


def spectral_gap(grid: Grid, count: int = 2) -> np.ndarray:
    """The ``count`` smallest eigenvalues ``0 = μ_0 < μ_1 ≤ …`` of ``−L`` (decay rates; the
    relaxation time of the slowest process is ``1/μ_1``).  ``L`` is symmetrised with ``π``:
    ``π^{1/2} L π^{−1/2}`` has off-diagonal ``T/h²`` and the same spectrum, so the
    shift-invert Lanczos solve is well conditioned."""
    n = grid.values.size
    i, j, w, _ = _edges(grid)
    t = grid.temperature
    diagonal = generator(grid).diagonal()
    S = sp.csr_matrix((np.concatenate([t * w, t * w]), (np.concatenate([i, j]),
                                                         np.concatenate([j, i]))), shape=(n, n))
    S = S + sp.diags(diagonal)
    keep = np.flatnonzero(grid.finite.ravel())
    S = S[keep][:, keep]
    shift = 1e-8 * t / min(grid.hx, grid.hy) ** 2
    vals = spla.eigsh(-S, k=count + 1, sigma=-shift, which="LM", return_eigenvectors=False)
    return np.sort(vals)[:count + 1]


@dataclass
class CoreRates:
    """Rates between several core sets, as ``run``'s escape log defines them (a transition
    i → j: the particle last visited core i and now enters core j; its time is attributed to the
    core it last visited)."""

    labels: np.ndarray       # (K,) the core labels
    hitting: np.ndarray      # (K, ny, nx): h_i = P(next core entered is i), 1 on core i
    occupation: np.ndarray   # (K,) ρ_i = Σ π h_i: probability of having last visited core i
    flux: np.ndarray         # (K, K) F_ij = ⟨h_i, L h_j⟩_π: i → j transitions per unit time

    @property
    def rates(self) -> np.ndarray:
        """``k_ij = F_ij / ρ_i`` (off-diagonal), per unit time."""
        with np.errstate(invalid="ignore", divide="ignore"):
            k = self.flux / self.occupation[:, None]
        np.fill_diagonal(k, 0.0)
        return k

    def rate(self, source: int, target: int) -> float:
        i = int(np.flatnonzero(self.labels == source)[0])
        j = int(np.flatnonzero(self.labels == target)[0])
        return float(self.rates[i, j])


def core_set_rates(grid: Grid, cores: np.ndarray) -> CoreRates:
    """Transition rates between all the core sets of ``cores`` (label ≥ 0 per cell, −1 outside).

    With two sets this is TPT's ``k_{A→B} = ν_AB / ρ_A``.  With more, a transition A → B must
    not visit another core set on the way, and the time after entering a third set is that set's:
    the hitting probabilities ``h_i`` (the committor of core i against all the others, one sparse
    LU for all of them) give ``ρ_i = Σ π h_i`` (by reversibility ``h_i`` is also the probability
    of having last visited i) and the flux ``F_ij = Σ_{x ∈ C_i} π_x (L h_j)(x)`` — the
    multi-set generalisation of the reactive flux (core-set Markov models of
    Schütte et al. (2011))."""
    cores = np.where(grid.finite, np.asarray(cores), -1)
    labels = np.unique(cores[cores >= 0])
    L = generator(grid)
    n = grid.values.size
    flat = cores.ravel()
    _, component = connected_components(L, directed=False)
    reach = np.zeros(component.max() + 1, dtype=bool)
    reach[component[flat >= 0]] = True
    free = grid.finite.ravel() & (flat < 0) & reach[component]
    idx = np.flatnonzero(free)
    h = np.zeros((labels.size, n))
    for k, lab in enumerate(labels):
        h[k, flat == lab] = 1.0
    h[:, ~grid.finite.ravel()] = np.nan
    if idx.size:
        Lf = L[idx][:, idx]
        scale = 1.0 / -Lf.diagonal()
        lu = spla.splu((sp.diags(scale) @ Lf).tocsc())
        for k, lab in enumerate(labels):
            rhs = -np.asarray(L[idx][:, np.flatnonzero(flat == lab)].sum(axis=1)).ravel()
            h[k, idx] = lu.solve(rhs * scale)
    h = np.clip(h, 0.0, 1.0)
    pi = grid.gibbs().ravel()
    hz = np.nan_to_num(h, nan=0.0)
    occupation = hz @ pi
    Lh = (L @ hz.T).T                                   # (K, n): (L h_j)(x)
    flux = np.array([[float(np.sum((pi * Lh[j])[flat == lab_i])) for j in range(labels.size)]
                     for lab_i in labels])
    return CoreRates(labels, h.reshape(labels.size, *grid.shape), occupation, flux)
