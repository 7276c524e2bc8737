"""A PNG of a ``paths`` report: the committor with its q = 0.1 … 0.9 isolines and the q = ½
transition-state line, the reactive current as arrows, the minimum-energy path, and its energy
profile beside it.  Rendered headless with matplotlib's Agg backend (no Qt)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_report(report: dict, arrays: dict, out: str | Path, title: str | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = arrays["x"], arrays["y"]
    q = arrays["committor"]
    current = arrays["current"]
    path = np.asarray(report["path"])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.6),
                                 gridspec_kw={"width_ratios": [1.35, 1]})
    mesh = ax.pcolormesh(x, y, q, cmap="coolwarm", vmin=0, vmax=1, shading="nearest")
    fig.colorbar(mesh, ax=ax, label="committor q (0 on A, 1 on B)")
    ax.contour(x, y, q, levels=np.linspace(0.1, 0.9, 9), colors="k", linewidths=0.5,
               alpha=0.6)
    ax.contour(x, y, q, levels=[0.5], colors="k", linewidths=2.0)
    core = arrays.get("core")
    if core is not None:
        ax.contour(x, y, (core >= 0).astype(float), levels=[0.5], colors="w", linewidths=1.2)
    step = max(1, len(x) // 24)
    jx, jy = current[::step, ::step, 0], current[::step, ::step, 1]
    norm = np.hypot(jx, jy)
    big = norm > 0.02 * norm.max() if norm.size and norm.max() > 0 else norm > 0
    X, Y = np.meshgrid(x[::step], y[::step])
    ax.quiver(X[big], Y[big], jx[big], jy[big], color="k", alpha=0.8, width=0.003)
    ax.plot(path[:, 0], path[:, 1], "-", color="gold", lw=2, label="minimum-energy path")
    top = report["highest"]
    ax.plot(top["x"], top["y"], "*", color="gold", ms=14, mec="k", label="highest point (saddle)")
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(y[0], y[-1])
    ax.set_aspect("equal")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or f"{report['preset']}: {report['from']} → {report['to']}, "
                          f"T = {report['temperature']:g}", fontsize=10)
    arc = np.asarray(report["arc_length"])
    bx.plot(arc, report["profile"], "-o", ms=2)
    bx.plot(arc[top["index"]], top["f"], "*", color="gold", ms=14, mec="k")
    bx.set_xlabel("arc length along the path")
    bx.set_ylabel("f")
    rates = report["rates"]

    def time_(entry):
        return "–" if not entry or entry.get("mfpt_time") is None else f"{entry['mfpt_time']:.4g}"

    bx.set_title(f"mean time {report['from']} → {report['to']}: TPT {time_(rates['tpt'])} "
                 f"(checked once a step {time_(rates['tpt'].get('at_step'))}),\n"
                 f"Eyring–Kramers {time_(rates['kramers'])}, measured "
                 f"{time_(rates['measured'])}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
