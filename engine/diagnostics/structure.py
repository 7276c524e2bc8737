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


def _newton(sim: Simulation, x: float, y: float, max_move: float, iters: int = 50):
    """Newton on ∇f = 0 from (x, y); returns the point or None if it wanders off."""
    x0, y0 = x, y
    for _ in range(iters):
        row = sim.evaluate(np.array([[x, y]]))[0]
        grad = row[1:3]
        hess = _hessian(row)
        if np.hypot(*grad) < 1e-11 * (1.0 + abs(row[0])):
            break
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        x, y = x - step[0], y - step[1]
        if not (np.isfinite(x) and np.isfinite(y)) or math.hypot(x - x0, y - y0) > max_move:
            return None
    row = sim.evaluate(np.array([[x, y]]))[0]
    if np.hypot(row[1], row[2]) > 1e-6 * (1.0 + abs(row[0])):
        return None
    return Critical(float(x), float(y), float(row[0]), _hessian(row))


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


def analyse(preset: Preset, resolution: int = 512, sim: Simulation | None = None) -> Structure:
    """Minima, basins, saddles, barriers and Kramers times of the preset's landscape."""
    if sim is None:
        sim = Simulation(preset.with_changes(ensemble={"particles": 1}))
    x0, x1, y0, y1 = sim.bounds
    gx = np.linspace(x0, x1, resolution)
    gy = np.linspace(y0, y1, resolution)
    X, Y = np.meshgrid(gx, gy)
    values = sim.evaluate(np.column_stack([X.ravel(), Y.ravel()]))[:, 0].reshape(X.shape)
    spacing = max(gx[1] - gx[0], gy[1] - gy[0])
    sinks = _sinks(values)
    sink_ids, cell_sink = np.unique(sinks, return_inverse=True)

    # refine sinks to minima; sinks converging to one minimum share its index
    minima: list[Critical] = []
    sink_to_min = np.full(sink_ids.size, -1, dtype=np.int64)
    for k, flat in enumerate(sink_ids):
        iy, ix = divmod(int(flat), resolution)
        crit = _newton(sim, gx[ix], gy[iy], max_move=4 * spacing)
        if crit is None or np.any(np.linalg.eigvalsh(crit.hessian) <= 0):
            crit = Critical(float(gx[ix]), float(gy[iy]), float(values[iy, ix]),
                            _hessian(sim.evaluate(np.array([[gx[ix], gy[iy]]]))[0]), False)
            on_edge = ix in (0, resolution - 1) or iy in (0, resolution - 1)
            if on_edge:  # a sink on the domain edge is the boundary, not a minimum
                continue
        for j, m in enumerate(minima):
            if math.hypot(m.x - crit.x, m.y - crit.y) < 2 * spacing:
                sink_to_min[k] = j
                break
        else:
            sink_to_min[k] = len(minima)
            minima.append(crit)
    basins = sink_to_min[cell_sink].reshape(values.shape)

    # lowest pass between each pair of adjacent basins
    passes: dict[tuple[int, int], tuple[float, int, int]] = {}
    for (sy, sx) in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = basins[:values.shape[0] - sy, max(0, -sx):values.shape[1] - max(0, sx)]
        b = basins[sy:, max(0, sx):values.shape[1] + min(0, sx) or None]
        fa = values[:values.shape[0] - sy, max(0, -sx):values.shape[1] - max(0, sx)]
        fb = values[sy:, max(0, sx):values.shape[1] + min(0, sx) or None]
        mask = (a != b) & (a >= 0) & (b >= 0)
        if not mask.any():
            continue
        level = np.maximum(fa, fb)[mask]
        la, lb = a[mask], b[mask]
        rows, cols = np.nonzero(mask)
        order = np.argsort(level)
        for k in order:
            key = (int(min(la[k], lb[k])), int(max(la[k], lb[k])))
            if key not in passes or level[k] < passes[key][0]:
                iy = rows[k] + (sy if fb[rows[k], cols[k]] >= fa[rows[k], cols[k]] else 0)
                ix = cols[k] + max(0, -sx) + (sx if fb[rows[k], cols[k]] >= fa[rows[k], cols[k]]
                                              else 0)
                passes[key] = (float(level[k]), int(iy), int(ix))
    saddles: list[tuple[Critical, tuple[int, int]]] = []
    for (i, j), (level, iy, ix) in sorted(passes.items()):
        crit = _newton(sim, gx[ix], gy[iy], max_move=6 * spacing)
        if crit is None:
            crit = Critical(float(gx[ix]), float(gy[iy]), level,
                            _hessian(sim.evaluate(np.array([[gx[ix], gy[iy]]]))[0]), False)
        eig = np.linalg.eigvalsh(crit.hessian)
        if crit.refined and not (eig[0] < 0 < eig[1]):
            crit.refined = False  # Newton found a critical point of the wrong index
        saddles.append((crit, (i, j)))

    structure = Structure(minima, saddles, np.zeros(len(minima)), [], gx, gy, values, basins,
                          0.0, preset.dynamics.lr)
    return structure.at(*equivalent_langevin(preset.dynamics))

