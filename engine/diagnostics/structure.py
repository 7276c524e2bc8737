"""Grid structure analysis of a 2D landscape: minima, basins, index-1 saddles, Kramers times.

1. ``f`` on an ``n × n`` grid over the bounds.
2. Basins of attraction: each cell points to its lowest 8-neighbour (or itself at a local minimum);
   pointer jumping gives every cell its sink.  Sinks are refined by Newton and merged when they
   converge to the same minimum.
3. For every pair of adjacent basins the lowest pass is the boundary edge minimising
   ``max(f(a), f(b))`` — the level at which the two basins' sublevel sets join across their
   common boundary.  It is refined by Newton on ``∇f = 0`` to a true critical point and accepted
   as a saddle when its Hessian has exactly one negative eigenvalue.
4. Eyring–Kramers: ``τ_{i→j} = (2π/|λ⁻_s|) √(|det H_s| / det H_i) exp((f_s − f_i)/T)`` and the
   Laplace weights ``∝ exp(−f_i/T)/√det H_i``.

Periodic boundaries are not wrapped here (basins touching the edge are treated as cut).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..presets import Preset
from ..simulation import Simulation, equivalent_langevin


@dataclass
class Critical:
    x: float
    y: float
    f: float
    hessian: np.ndarray
    refined: bool = True

    def to_json(self) -> dict:
        return {"x": self.x, "y": self.y, "f": self.f, "hessian": self.hessian.tolist()}

    def gd_step_limit(self, momentum: float = 0.0) -> float | None:
        """The largest η at which GD (heavy ball with ``momentum`` β) converges to this minimum
        from nearby: ``2(1 + β)/λ_max`` (the edge of stability); None without curvature."""
        top = float(np.linalg.eigvalsh(self.hessian)[-1])
        return 2.0 * (1.0 + momentum) / top if top > 0 else None


@dataclass
class Structure:
    """Result of :func:`analyse`; indices of ``saddles[k].connects`` refer to ``minima``."""

    minima: list[Critical]
    saddles: list[tuple[Critical, tuple[int, int]]]
    weights: np.ndarray
    kramers: list[dict]
    grid_x: np.ndarray
    grid_y: np.ndarray
    values: np.ndarray
    basins: np.ndarray  # (ny, nx) int: index into minima, -1 where unassigned
    temperature: float
    lr: float
    extra: dict = field(default_factory=dict)

    def basin_of(self, points: np.ndarray) -> np.ndarray:
        """Basin index of each point (nearest grid cell), shape ``(N,)`` int64."""
        points = np.asarray(points)
        gx, gy = self.grid_x, self.grid_y
        ix = np.clip(np.rint((points[:, 0] - gx[0]) / (gx[1] - gx[0])), 0, gx.size - 1)
        iy = np.clip(np.rint((points[:, 1] - gy[0]) / (gy[1] - gy[0])), 0, gy.size - 1)
        return self.basins[iy.astype(np.int64), ix.astype(np.int64)].astype(np.int64)

    def at(self, temperature: float, lr: float) -> "Structure":
        """The same landscape structure with Laplace weights and Kramers times at ``T``, ``η``
        (those of the equivalent Langevin dynamics, :func:`engine.simulation.equivalent_langevin`).

        Times that overflow a float (ΔU/T ≳ 700) are reported as ``None`` with their log10.
        """
        minima, saddles = self.minima, self.saddles
        weights = np.zeros(len(minima))
        if minima and temperature > 0:
            logs = np.array([-m.f / temperature
                             - 0.5 * math.log(max(np.linalg.det(m.hessian), 1e-300))
                             for m in minima])
            weights = np.exp(logs - logs.max())
            weights /= weights.sum()
        kramers = []
        for crit, (i, j) in saddles:
            lam_minus = float(np.linalg.eigvalsh(crit.hessian)[0])
            for src, dst in ((i, j), (j, i)):
                barrier = crit.f - minima[src].f
                entry = {"from": src, "to": dst, "barrier": barrier,
                         "saddle_refined": crit.refined}
                det_m = float(np.linalg.det(minima[src].hessian))
                if temperature > 0 and lam_minus < 0 and det_m > 0:
                    log_tau = (math.log(2 * math.pi / abs(lam_minus))
                               + 0.5 * math.log(abs(np.linalg.det(crit.hessian)) / det_m)
                               + barrier / temperature)
                    tau = math.exp(log_tau) if log_tau < 700 else None
                    entry["mfpt_time"] = tau
                    entry["mfpt_steps"] = tau / lr if tau is not None else None
                    entry["log10_mfpt_time"] = log_tau / math.log(10)
                    entry["barrier_over_T"] = barrier / temperature
                kramers.append(entry)
        return Structure(minima, saddles, weights, kramers, self.grid_x, self.grid_y,
                         self.values, self.basins, temperature, lr, self.extra)

    def to_json(self) -> dict:
        minima = []
        for m, w in zip(self.minima, self.weights):
            item = m.to_json()
            item["weight"] = float(w)
            item["gd_stable_below_lr"] = m.gd_step_limit()
            minima.append(item)
        saddles = []
        for s, (a, b) in self.saddles:
            item = s.to_json()
            item["connects"] = [a, b]
            saddles.append(item)
        return {"minima": minima, "saddles": saddles, "kramers": self.kramers,
                "temperature": self.temperature, "lr": self.lr}


def _hessian(row: np.ndarray) -> np.ndarray:
    return np.array([[row[3], row[4]], [row[4], row[5]]])


def _newton(sim: Simulation, points: np.ndarray, max_move: float,
            iters: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton on ∇f = 0 from every row of ``points`` at once.

    Returns the points reached, their ``(f, fx, fy, fxx, fxy, fyy)`` rows and a mask of those
    that converged without leaving ``max_move`` of their start (the others keep their start)."""
    start = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = start.copy()
    ok = np.ones(len(pts), dtype=bool)
    active = ok.copy()
    with np.errstate(all="ignore"):
        for _ in range(iters):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            rows = sim.evaluate(pts[idx])
            f, gx, gy, hxx, hxy, hyy = rows.T
            done = np.hypot(gx, gy) < 1e-11 * (1.0 + np.abs(f))
            det = hxx * hyy - hxy * hxy
            bad = ~done & ((det == 0) | ~np.isfinite(det))
            step = np.column_stack([(hyy * gx - hxy * gy) / det, (hxx * gy - hxy * gx) / det])
            moving = ~done & ~bad
            new = pts[idx] - np.where(moving[:, None], step, 0.0)
            far = ~np.all(np.isfinite(new), axis=1) | (
                np.hypot(*(new - start[idx]).T) > max_move)
            bad |= moving & far
            pts[idx[moving & ~far]] = new[moving & ~far]
            ok[idx[bad]] = False
            active[idx[done | bad]] = False
        rows = sim.evaluate(pts)
        converged = np.hypot(rows[:, 1], rows[:, 2]) <= 1e-6 * (1.0 + np.abs(rows[:, 0]))
    ok &= converged & np.all(np.isfinite(rows), axis=1)
    pts[~ok] = start[~ok]
    rows[~ok] = sim.evaluate(start[~ok])
    return pts, rows, ok


def _sinks(values: np.ndarray) -> np.ndarray:
    """Flat index of the steepest-descent sink of every cell (8-neighbour pointer jumping)."""
    ny, nx = values.shape
    padded = np.pad(values, 1, constant_values=np.inf)
    index = np.arange(ny * nx).reshape(ny, nx)
    padded_index = np.pad(index, 1, constant_values=-1)
    best = values.copy()
    target = index.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx == dy == 0:
                continue
            neighbour = padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
            lower = neighbour < best
            best = np.where(lower, neighbour, best)
            target = np.where(lower, padded_index[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx],
                              target)
    pointer = target.ravel()
    while True:
        jumped = pointer[pointer]
        if np.array_equal(jumped, pointer):
            return pointer
        pointer = jumped


MAX_MINIMA = 1024  # sinks refined and reported (the lowest ones): bounds the analysis time


def _near_non_finite(finite: np.ndarray) -> np.ndarray:
    """Cells with a non-finite cell among their 8 neighbours (or non-finite themselves)."""
    bad = np.pad(~finite, 1, constant_values=False)
    ny, nx = finite.shape
    out = np.zeros_like(finite)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out |= bad[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
    return out


def _refine_minima(sim: Simulation, values: np.ndarray, finite: np.ndarray, gx: np.ndarray,
                   gy: np.ndarray, sinks: np.ndarray) -> tuple[list[Critical], np.ndarray, int]:
    """The minima behind the sink cells and, per distinct sink, the index of its minimum (−1:
    none: a sink on the domain edge or beside a non-finite region is the boundary, not a
    minimum; sinks beyond the :data:`MAX_MINIMA` lowest are dropped and counted)."""
    ny, nx = values.shape
    spacing = max(gx[1] - gx[0], gy[1] - gy[0])
    sink_ids = np.unique(sinks)
    iy, ix = np.divmod(sink_ids, nx)
    usable = finite[iy, ix]
    dropped = 0
    if usable.sum() > MAX_MINIMA:
        keep = np.flatnonzero(usable)
        lowest = keep[np.argsort(values[iy[keep], ix[keep]], kind="stable")[:MAX_MINIMA]]
        dropped = int(usable.sum()) - MAX_MINIMA
        usable = np.zeros_like(usable)
        usable[lowest] = True
    candidates = np.flatnonzero(usable)
    cells = np.column_stack([gx[ix[candidates]], gy[iy[candidates]]])
    pts, rows, ok = _newton(sim, cells, max_move=4 * spacing)
    cell_rows = sim.evaluate(cells)
    hessians = rows[:, [3, 4, 4, 5]].reshape(-1, 2, 2)
    positive = np.all(np.linalg.eigvalsh(hessians) > 0, axis=1)
    padded = np.pad(np.where(finite, values, np.inf), 1, constant_values=np.inf)
    strict = np.ones(values.shape, dtype=bool)  # below all 8 neighbours: not a plateau cell
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dx or dy:
                strict &= values < padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
    edge = _near_non_finite(finite)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    minima: list[Critical] = []
    sink_to_min = np.full(sink_ids.size, -1, dtype=np.int64)
    buckets: dict[tuple[int, int], list[int]] = {}  # minima by 2-spacing cell: merging is O(1)
    for c, k in enumerate(candidates):
        if ok[c] and positive[c]:
            crit = Critical(float(pts[c, 0]), float(pts[c, 1]), float(rows[c, 0]),
                            _hessian(rows[c]))
        elif edge[iy[k], ix[k]] or not strict[iy[k], ix[k]]:
            continue  # the boundary of the domain or of the finite region, or a plateau
        else:
            crit = Critical(float(cells[c, 0]), float(cells[c, 1]), float(values[iy[k], ix[k]]),
                            _hessian(cell_rows[c]), False)
        cell = (int(crit.x // (2 * spacing)), int(crit.y // (2 * spacing)))
        near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                for j in buckets.get((cell[0] + dx, cell[1] + dy), ())
                if math.hypot(minima[j].x - crit.x, minima[j].y - crit.y) < 2 * spacing]
        if near:
            sink_to_min[k] = min(near)
            continue
        sink_to_min[k] = len(minima)
        buckets.setdefault(cell, []).append(len(minima))
        minima.append(crit)
    return minima, sink_to_min, dropped


def _lowest_passes(values: np.ndarray, basins: np.ndarray) -> list[tuple[int, int, float, int,
                                                                       int]]:
    """For every pair ``i < j`` of adjacent basins the boundary edge minimising
    ``max(f(a), f(b))``: ``(i, j, level, iy, ix)`` with the higher cell of that edge."""
    ny, nx = values.shape
    found = []
    for (sy, sx) in ((0, 1), (1, 0), (1, 1), (1, -1)):
        lo_x, hi_x = max(0, -sx), nx - max(0, sx)
        a, fa = basins[:ny - sy, lo_x:hi_x], values[:ny - sy, lo_x:hi_x]
        b, fb = basins[sy:, lo_x + sx:hi_x + sx], values[sy:, lo_x + sx:hi_x + sx]
        mask = (a != b) & (a >= 0) & (b >= 0)
        if not mask.any():
            continue
        rows, cols = np.nonzero(mask)
        higher_b = fb[mask] >= fa[mask]
        found.append((np.minimum(a[mask], b[mask]), np.maximum(a[mask], b[mask]),
                      np.maximum(fa[mask], fb[mask]), rows + np.where(higher_b, sy, 0),
                      cols + lo_x + np.where(higher_b, sx, 0)))
    if not found:
        return []
    i, j, level, iy, ix = (np.concatenate(column) for column in zip(*found))
    order = np.lexsort((level, j, i))  # stable: ties keep the first direction's edge
    first = np.ones(order.size, dtype=bool)
    first[1:] = (i[order][1:] != i[order][:-1]) | (j[order][1:] != j[order][:-1])
    pick = order[first]
    return [(int(i[k]), int(j[k]), float(level[k]), int(iy[k]), int(ix[k])) for k in pick]


class StructureError(ValueError):
    """The landscape cannot be analysed over its bounds (e.g. it is nowhere finite there)."""


def analyse(preset: Preset, resolution: int = 512, sim: Simulation | None = None) -> Structure:
    """Minima, basins, saddles, barriers and Kramers times of the preset's landscape.

    Cells where ``f`` is not finite belong to no basin and hold no minimum; the work is
    vectorised and at most :data:`MAX_MINIMA` minima are refined, so any landscape is analysed
    in bounded time.  Raises :class:`StructureError` when ``f`` is finite on no cell."""
    if sim is None:
        sim = Simulation(preset.with_changes(ensemble={"particles": 1}))
    x0, x1, y0, y1 = sim.bounds
    gx = np.linspace(x0, x1, resolution)
    gy = np.linspace(y0, y1, resolution)
    X, Y = np.meshgrid(gx, gy)
    values = sim.evaluate(np.column_stack([X.ravel(), Y.ravel()]))[:, 0].reshape(X.shape)
    finite = np.isfinite(values)
    if not finite.any():
        raise StructureError(
            f"f is not finite anywhere on a {resolution}×{resolution} grid over the bounds "
            f"x ∈ [{x0:g}, {x1:g}], y ∈ [{y0:g}, {y1:g}] (e.g. f({gx[0]:g}, {gy[0]:g}) = "
            f"{values[0, 0]})")
    spacing = max(gx[1] - gx[0], gy[1] - gy[0])
    sinks = _sinks(np.where(finite, values, np.inf))
    minima, sink_to_min, dropped = _refine_minima(sim, values, finite, gx, gy, sinks)
    basins = sink_to_min[np.searchsorted(np.unique(sinks), sinks)].reshape(values.shape)
    basins[~finite] = -1

    saddles: list[tuple[Critical, tuple[int, int]]] = []
    passes = _lowest_passes(values, basins)
    if passes:
        starts = np.array([[gx[ix], gy[iy]] for _, _, _, iy, ix in passes])
        pts, rows, ok = _newton(sim, starts, max_move=6 * spacing)
        eig = np.linalg.eigvalsh(rows[:, [3, 4, 4, 5]].reshape(-1, 2, 2))
        for k, (i, j, level, _, _) in enumerate(passes):
            if ok[k]:
                crit = Critical(float(pts[k, 0]), float(pts[k, 1]), float(rows[k, 0]),
                                _hessian(rows[k]), bool(eig[k, 0] < 0 < eig[k, 1]))
            else:  # Newton failed, or found a critical point of the wrong index
                crit = Critical(float(pts[k, 0]), float(pts[k, 1]), level, _hessian(rows[k]),
                                False)
            saddles.append((crit, (i, j)))

    extra = {"minima_dropped": dropped} if dropped else {}
    if not finite.all():
        extra["non_finite_cells"] = int((~finite).sum())
    structure = Structure(minima, saddles, np.zeros(len(minima)), [], gx, gy, values, basins,
                          0.0, preset.dynamics.lr, extra)
    return structure.at(*equivalent_langevin(preset))
