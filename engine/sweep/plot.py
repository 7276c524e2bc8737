"""Phase diagrams of a sweep dataset, rendered headless (Agg).

* :func:`phase_diagram` — a variable over two grid keys (heatmap, mean over the seeds, optional
  contour lines of a function of the two keys and vertical marks such as 2/λ_max), or over one
  key (mean over the seeds with its 95 % interval, Student t, as error bars);
* :func:`arrhenius_plot` — log MFPT against 1/T with its intervals beside the Eyring–Kramers
  line (the Arrhenius law: log τ grows like ΔU/T);
* :func:`check_names` — the clear error for a key or variable the dataset does not have.

    from engine.sweep.plot import phase_diagram
    phase_diagram("out/zhang.nc", x="dynamics.lr", y="dynamics.temperature",
                  var="converged_fraction", out="out/zhang_converged.png")

Grid dimensions other than ``x`` and ``y`` are held at their first value (named in the title).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..presets import PresetError
from .grid import SEED_DIM

TRANSITION_DIM = "transition"
STATE_DIM = "state"
_INNER_DIMS = (SEED_DIM, TRANSITION_DIM, STATE_DIM)


def grid_dims(ds) -> list[str]:
    """The sweep's grid dimensions (its keys), in order."""
    return [d for d in ds["completed"].dims if d != SEED_DIM]


def plottable(ds) -> list[str]:
    """The numeric variables that carry the grid dimensions."""
    dims = set(grid_dims(ds))
    return [name for name, v in ds.data_vars.items()
            if dims <= set(v.dims) and np.issubdtype(v.dtype, np.number)
            and name not in ("point_index", "point_seed")]


def check_names(ds, x: str, y: str | None, var: str, source: str = "the dataset") -> None:
    """Raise :class:`PresetError` naming what exists when ``x``, ``y`` or ``var`` does not."""
    if "completed" not in ds.data_vars:
        raise PresetError(source, "", "is not a sweep dataset (engine sweep --out FILE.nc)")
    keys = grid_dims(ds)
    for option, key in (("--x", x), ("--y", y)):
        if key is not None and key not in keys:
            raise PresetError(option, key, f"is not a grid key of {source} (grid keys: "
                                           f"{', '.join(keys) or 'none'})")
    if x == y:
        raise PresetError("--y", str(y), "is the same key as --x")
    if var not in ds.data_vars:
        raise PresetError("--var", var, f"is not a variable of {source} (variables: "
                                        f"{', '.join(plottable(ds))})")
    if var not in plottable(ds):
        raise PresetError("--var", var, f"is not a numeric variable over the grid (variables: "
                                        f"{', '.join(plottable(ds))})")


def _select(ds, var: str, keep: set[str], transition: int):
    """``var`` with its transition picked and every grid dim outside ``keep`` at its first
    value; returns the array and a note naming what was held."""
    data = ds[var]
    if TRANSITION_DIM in data.dims:
        count = data.sizes[TRANSITION_DIM]
        if not 0 <= transition < count:
            raise PresetError("--transition", str(transition),
                              f"the dataset has {count} transitions (0…{count - 1})")
        data = data.isel({TRANSITION_DIM: transition})
    if STATE_DIM in data.dims:
        data = data.isel({STATE_DIM: 0})
    held = []
    for dim in data.dims:
        if dim not in keep and dim != SEED_DIM:
            held.append(f"{dim} = {_tick(ds[dim].values[0])}")
            data = data.isel({dim: 0})
    return data, ", ".join(held)


def reduce_to(ds, x: str, y: str | None, var: str, transition: int = 0):
    """``var`` as an array over (y, x) — or over x alone — averaged over the seeds; a
    per-transition variable takes its ``transition``-th pair, other dims their first value."""
    data, _ = _select(ds, var, {x} | ({y} if y else set()), transition)
    if SEED_DIM in data.dims:
        data = data.mean(SEED_DIM, skipna=True)
    return data.transpose(*([y] if y else []), x)


def seed_interval(data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the seeds (last axis) and the half-width of its 95 % interval (Student t with
    n − 1 degrees of freedom; NaN with a single seed), ignoring NaN seeds; also the counts."""
    from scipy import stats

    values = np.asarray(data, dtype=float)
    count = np.sum(np.isfinite(values), axis=-1)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(values, axis=-1)
            spread = np.nanstd(values, axis=-1, ddof=1)
        half = stats.t.ppf(0.975, np.maximum(count - 1, 1)) * spread / np.sqrt(count)
    half = np.where(count > 1, half, np.nan)
    return mean, half, count


def _tick(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _numeric(values) -> np.ndarray | None:
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return out if np.all(np.isfinite(out)) else None


def _label(ds, var: str, transition: int) -> str:
    if TRANSITION_DIM in ds[var].dims:
        return (f"{var} ({int(ds.transition_from[transition])}→"
                f"{int(ds.transition_to[transition])})")
    return var


def _figure():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    return plt, fig, ax


def _finish(plt, fig, ax, title: str, out: Path) -> Path:
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def as_dataset(dataset):
    """``dataset`` itself, or the sweep dataset read from its path (.nc/.zarr)."""
    from .store import open_dataset
    return open_dataset(dataset) if isinstance(dataset, (str, Path)) else dataset


def phase_diagram(dataset, x: str, y: str | None, var: str, out: str | Path,
                  transition: int = 0, log_color: bool = False, marks: dict | None = None,
                  title: str | None = None,
                  contours: tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]
                  | None = None) -> Path:
    """Write the heatmap (or, without ``y``, the curve with error bars over the seeds) of
    ``var`` to ``out`` (PNG).  ``dataset`` is a Dataset or a path (.nc/.zarr); ``marks`` maps
    a label to an x value drawn as a vertical line (e.g. the critical step 2/λ_max);
    ``contours = (label, g)`` draws labelled contour lines of ``g(x, y)`` over the heatmap
    (e.g. η/B for the linear scaling rule)."""
    from ..export import prepare_output

    source = str(dataset) if isinstance(dataset, (str, Path)) else "the dataset"
    ds = as_dataset(dataset)
    check_names(ds, x, y, var, source)
    data, held = _select(ds, var, {x} | ({y} if y else set()), transition)
    out = prepare_output(out)
    plt, fig, ax = _figure()
    seeds = ds.sizes.get(SEED_DIM, 1)
    seeds_text = f"{seeds} seed{'s' if seeds > 1 else ''}"
    label = _label(ds, var, transition)
    x_values = ds[x].values
    xs = _numeric(x_values)
    if y is None:
        ordered = data.transpose(x, *([SEED_DIM] if SEED_DIM in data.dims else []))
        values = np.asarray(ordered.values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        mean, half, _ = seed_interval(values)
        where = xs if xs is not None else np.arange(len(x_values))
        ax.errorbar(where, mean, yerr=np.where(np.isfinite(half), half, 0.0), fmt="o-",
                    capsize=3)
        if xs is None:
            ax.set_xticks(where, [_tick(v) for v in x_values])
        ax.set_ylabel(f"{label}\nmean of {seeds_text}"
                      + (", 95 % interval" if seeds > 1 else ""))
        if log_color:
            ax.set_yscale("log")
        for name, value in (marks or {}).items():
            ax.axvline(value, color="tab:red", linestyle="--", linewidth=1.2)
            ax.text(value, ax.get_ylim()[1], f" {name}", color="tab:red", va="top")
    else:
        if SEED_DIM in data.dims:
            data = data.mean(SEED_DIM, skipna=True)
        values = np.asarray(data.transpose(y, x).values, dtype=float)
        y_values = ds[y].values
        norm = None
        if log_color:
            from matplotlib.colors import LogNorm
            finite = values[np.isfinite(values) & (values > 0)]
            norm = LogNorm(finite.min(), finite.max()) if finite.size else None
        mesh = ax.pcolormesh(np.arange(len(x_values) + 1) - 0.5,
                             np.arange(len(y_values) + 1) - 0.5,
                             np.ma.masked_invalid(values), shading="flat", norm=norm,
                             cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=f"{label}\nmean of {seeds_text}")
        ax.set_xticks(np.arange(len(x_values)), [_tick(v) for v in x_values],
                      rotation=45 if len(x_values) > 6 else 0)
        ax.set_yticks(np.arange(len(y_values)), [_tick(v) for v in y_values])
        ax.set_ylabel(y)
        for name, value in (marks or {}).items():
            if xs is None:
                raise PresetError("marks", name, f"{x} has values that are not numbers")
            position = np.interp(value, xs, np.arange(len(xs)))  # grid is monotone in x
            ax.axvline(position, color="white", linestyle="--", linewidth=1.5)
            ax.text(position, len(y_values) - 0.55, f" {name}", color="white", va="top")
        if contours is not None:
            ys = _numeric(y_values)
            if xs is None or ys is None:
                raise PresetError("contours", contours[0], "need numeric grid keys")
            grid_x, grid_y = np.meshgrid(np.arange(len(xs)), np.arange(len(ys)))
            level = contours[1](*np.meshgrid(xs, ys))
            lines = ax.contour(grid_x, grid_y, level, colors="white", linewidths=1.0,
                               levels=_geometric_levels(level))
            ax.clabel(lines, fmt=lambda v: f"{contours[0]} = {v:.3g}", fontsize=7)
    ax.set_xlabel(x)
    heading = title or f"{ds.attrs.get('title', 'sweep')}"
    return _finish(plt, fig, ax, heading + (f"\n({held})" if held else ""), out)


def _geometric_levels(level: np.ndarray) -> np.ndarray:
    """Contour levels √2 apart through the value at the middle cell (a ratio such as η/B:
    the middle cell's contour runs through the grid's diagonal), inside the grid's range."""
    centre = float(level[level.shape[0] // 2, level.shape[1] // 2])
    low, high = float(np.nanmin(level)), float(np.nanmax(level))
    if not (centre > 0 and low > 0 and high > low):
        return np.linspace(low, high, 7)[1:-1] if high > low else np.array([centre])
    steps = np.arange(-40, 41)
    levels = centre * np.sqrt(2.0) ** steps
    return levels[(levels > low * (1 + 1e-9)) & (levels < high * (1 - 1e-9))]


def arrhenius_plot(dataset, temperature: str, out: str | Path, transition: int = 0,
                   time_unit: float = 1.0, title: str | None = None) -> Path:
    """log MFPT of transition ``transition`` against 1/T (T the grid key ``temperature``):
    the measured mean over the seeds with its 95 % interval (the seeds' per-point means,
    Student t) beside the Eyring–Kramers prediction, both in time units η·steps when
    ``time_unit`` = η.  The Arrhenius law is the straight line of slope ΔU."""
    from ..export import prepare_output

    source = str(dataset) if isinstance(dataset, (str, Path)) else "the dataset"
    ds = as_dataset(dataset)
    check_names(ds, temperature, None, "mfpt_steps", source)
    measured, held = _select(ds, "mfpt_steps", {temperature}, transition)
    kramers, _ = _select(ds, "kramers_mfpt_steps", {temperature}, transition)
    barrier, _ = _select(ds, "barrier", {temperature}, transition)
    temps = _numeric(ds[temperature].values)
    if temps is None or np.any(temps <= 0):
        raise PresetError("--x", temperature, "needs temperatures > 0")
    order = [temperature] + ([SEED_DIM] if SEED_DIM in measured.dims else [])
    mean, half, _ = seed_interval(np.asarray(measured.transpose(*order).values, float)
                                  .reshape(len(temps), -1) * time_unit)
    theory = np.nanmean(np.asarray(kramers.transpose(*order).values, float)
                        .reshape(len(temps), -1), axis=1) * time_unit
    out = prepare_output(out)
    plt, fig, ax = _figure()
    inverse = 1.0 / temps
    low = np.where(np.isfinite(half), mean - half, mean)
    high = np.where(np.isfinite(half), mean + half, mean)
    ax.errorbar(inverse, mean, yerr=[mean - np.maximum(low, mean * 1e-3), high - mean],
                fmt="o", capsize=3, label="measured MFPT, 95 % interval over seeds")
    ax.plot(inverse, theory, "-", color="tab:red", label="Eyring–Kramers")
    ax.set_yscale("log")
    unit = "η·steps" if time_unit != 1.0 else "steps"
    ax.set_xlabel(f"1 / {temperature}")
    ax.set_ylabel(f"mean first-passage time ({unit})")
    delta = float(np.nanmean(np.asarray(barrier.values, float)))
    ok = np.isfinite(mean) & (mean > 0)
    if ok.sum() >= 2:
        slope = np.polyfit(inverse[ok], np.log(mean[ok]), 1)[0]
        ax.text(0.03, 0.95, f"fitted slope of ln τ: {slope:.3g}  (barrier ΔU = {delta:.3g})",
                transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    pair = f"{int(ds.transition_from[transition])}→{int(ds.transition_to[transition])}"
    heading = title or f"Arrhenius: escape {pair} against 1/T"
    return _finish(plt, fig, ax, heading + (f"\n({held})" if held else ""), out)
