"""Phase diagrams of a sweep dataset: a heatmap of one variable over two grid keys, averaged
over the seeds (and the other dimensions held at their first value), rendered headless (Agg).

    from engine.sweep.plot import phase_diagram
    phase_diagram("out/zhang.nc", x="dynamics.lr", y="dynamics.temperature",
                  var="converged_fraction", out="out/zhang_converged.png")
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .grid import SEED_DIM


def reduce_to(ds, x: str, y: str | None, var: str, transition: int = 0):
    """``var`` as an array over (y, x) — or over x alone — averaged over the seeds; a
    per-transition variable takes its ``transition``-th pair, other dims their first value."""
    data = ds[var]
    if SEED_DIM in data.dims:
        data = data.mean(SEED_DIM, skipna=True)
    if "transition" in data.dims:
        data = data.isel(transition=transition)
    keep = {x} | ({y} if y else set())
    for dim in data.dims:
        if dim not in keep:
            data = data.isel({dim: 0})
    return data.transpose(*([y] if y else []), x)


def phase_diagram(dataset, x: str, y: str | None, var: str, out: str | Path,
                  transition: int = 0, log_color: bool = False, marks: dict | None = None,
                  title: str | None = None) -> Path:
    """Write the heatmap (or, without ``y``, the curve) of ``var`` to ``out`` (PNG).
    ``dataset`` is a Dataset or a path (.nc/.zarr); ``marks`` maps a label to an x value drawn
    as a vertical line (e.g. the critical step 2/λ_max)."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..export import prepare_output
    from .store import open_dataset

    ds = open_dataset(dataset) if isinstance(dataset, (str, Path)) else dataset
    data = reduce_to(ds, x, y, var, transition)
    out = prepare_output(out)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    xs = np.asarray(ds[x].values, dtype=float)
    seeds = ds.sizes.get(SEED_DIM, 1)
    label = var + (f" ({int(ds.transition_from[transition])}→"
                   f"{int(ds.transition_to[transition])})" if "transition" in ds[var].dims else "")
    if y is None:
        ax.plot(xs, data.values, "o-")
        ax.set_ylabel(f"{label}, mean of {seeds} seed{'s' if seeds > 1 else ''}")
        if log_color:
            ax.set_yscale("log")
    else:
        ys = np.asarray(ds[y].values, dtype=float)
        values = np.asarray(data.values, dtype=float)
        norm = None
        if log_color:
            from matplotlib.colors import LogNorm
            finite = values[np.isfinite(values) & (values > 0)]
            norm = LogNorm(finite.min(), finite.max()) if finite.size else None
        mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5,
                             np.ma.masked_invalid(values), shading="flat", norm=norm,
                             cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=f"{label}\nmean of {seeds} seed"
                                        f"{'s' if seeds > 1 else ''}")
        ax.set_xticks(np.arange(len(xs)), [f"{v:.4g}" for v in xs],
                      rotation=45 if len(xs) > 6 else 0)
        ax.set_yticks(np.arange(len(ys)), [f"{v:.4g}" for v in ys])
        ax.set_ylabel(y)
        for name, value in (marks or {}).items():
            position = np.interp(value, xs, np.arange(len(xs)))  # grid is monotone in x
            ax.axvline(position, color="white", linestyle="--", linewidth=1.5)
            ax.text(position, len(ys) - 0.55, f" {name}", color="white", va="top")
    ax.set_xlabel(x)
    ax.set_title(title or f"{ds.attrs.get('title', 'sweep')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
