"""The experiment report: per-arm bands, peak epochs of each kind, paired differences with
95 % intervals, and PNG figures (matplotlib's Agg backend; no Qt).

Paired differences are ghost − baseline per run (the arms of a run share data and shared-layer
initial weights), over the runs where both arms have the quantity; the interval is Student's t
on those differences.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import CnnPreset
from .peaks import classify

PAPER = {"dataset": "MNIST 28×28, 30 per class (RMNIST/30)", "runs": 30, "ghosts": 2,
         "optimizer": "full-batch GD, zero momentum",
         "first_peak_difference_epochs": -4.8}


def paired(baseline: np.ndarray, ghost: np.ndarray) -> dict:
    """Mean of ghost − baseline over runs where both are defined, with its 95 % t interval."""
    from scipy.stats import t as student
    base, gh = np.asarray(baseline, float), np.asarray(ghost, float)
    both = np.isfinite(base) & np.isfinite(gh)
    diff = gh[both] - base[both]
    n = int(diff.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95": [None, None]}
    mean = float(diff.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "sd": None, "ci95": [None, None]}
    sd = float(diff.std(ddof=1))
    half = float(student.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def _describe(values: np.ndarray) -> dict:
    v = np.asarray(values, float)
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return {"n": 0, "mean": None, "sd": None}
    return {"n": int(ok.size), "mean": float(ok.mean()),
            "sd": float(ok.std(ddof=1)) if ok.size > 1 else None}


def per_run_events(metrics: dict[str, np.ndarray], preset: CnnPreset) -> dict[str, np.ndarray]:
    """Per model: first peak / spike / bump epochs (NaN = none), test-loss-minimum epoch, final
    test accuracy and loss."""
    spec = preset.peaks
    test, train = metrics["test_loss"], metrics["train_loss"]
    models = test.shape[1]
    out = {k: np.full(models, np.nan) for k in ("first_peak", "first_spike", "first_bump")}
    for m in range(models):
        found = classify(test[:, m], train[:, m], spec.window, spec.prominence, spec.horizon)
        for key, epoch in found.items():
            if epoch >= 0:
                out[key][m] = epoch
    out["test_min_epoch"] = np.nanargmin(test, axis=0).astype(float)
    out["final_test_acc"] = metrics["test_acc"][-1].copy()
    out["final_test_loss"] = test[-1].copy()
    return out


def summarise(metrics: dict[str, np.ndarray], preset: CnnPreset, arms: tuple[int, ...],
              runs: int, seconds: float | None = None, device: str = "cpu") -> dict:
    events = per_run_events(metrics, preset)
    arm_rows = [slice(a * runs, (a + 1) * runs) for a in range(len(arms))]
    summary = {"preset": preset.name, "device": device, "runs": runs, "arms": list(arms),
               "epochs": int(metrics["test_loss"].shape[0] - 1),
               "optimizer": preset.training.optimizer, "lr": preset.training.lr,
               "data": f"{preset.data.source}, {preset.data.per_class} per class",
               "peak_rule": {"window": preset.peaks.window,
                             "prominence": preset.peaks.prominence,
                             "horizon": preset.peaks.horizon},
               "seconds": seconds, "arm": {}, "paired_ghost_minus_baseline": {},
               "paper": PAPER}
    for e, rows in zip(arms, arm_rows):
        entry = {key: _describe(values[rows]) for key, values in events.items()}
        for key in ("first_peak", "first_spike", "first_bump"):
            entry[key]["runs_without"] = int(np.sum(~np.isfinite(events[key][rows])))
        entry["final_ghost_mass"] = _describe(metrics["ghost_mass"][-1, rows])
        summary["arm"][f"e={e}"] = entry
    if len(arms) == 2:
        summary["paired_ghost_minus_baseline"] = {
            key: paired(values[arm_rows[0]], values[arm_rows[1]])
            for key, values in events.items()}
    summary["per_run"] = {key: values for key, values in events.items()}
    return summary


def text_report(summary: dict) -> str:
    lines = [f"{summary['preset']}: {summary['runs']} runs × arms {summary['arms']}, "
             f"{summary['epochs']} epochs, {summary['optimizer']} lr={summary['lr']}, "
             f"{summary['data']}"
             + (f", {summary['seconds']:.1f} s on {summary['device']}"
                if summary.get("seconds") else "")]
    labels = {"first_peak": "first test-loss peak (epoch)",
              "first_spike": "first optimisation spike (epoch)",
              "first_bump": "first overfitting bump (epoch)",
              "test_min_epoch": "test-loss minimum (epoch)",
              "final_test_acc": "final test accuracy", "final_test_loss": "final test loss"}
    for key, label in labels.items():
        parts = []
        for arm, entry in summary["arm"].items():
            d = entry[key]
            if d["mean"] is None:
                parts.append(f"{arm}: none")
                continue
            sd = f" ± {d['sd']:.3g}" if d["sd"] is not None else ""
            missing = entry[key].get("runs_without")
            extra = f" ({missing} runs without)" if missing else ""
            parts.append(f"{arm}: {d['mean']:.4g}{sd}{extra}")
        pair = summary["paired_ghost_minus_baseline"].get(key)
        if pair and pair["mean"] is not None:
            ci = pair["ci95"]
            ci_text = f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci[0] is not None else ""
            parts.append(f"ghost − baseline {pair['mean']:+.4g}{ci_text} (n={pair['n']})")
        lines.append(f"  {label}: " + "; ".join(parts))
    return "\n".join(lines)


def write_figures(metrics: dict[str, np.ndarray], summary: dict, stem: Path) -> list[Path]:
    """``<stem>_bands.png`` (mean ± 1σ per arm), ``<stem>_peaks.png`` (per-run peak epochs,
    baseline vs ghost) and, when diagnostics ran, ``<stem>_diagnostics.png``."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    arms, runs = summary["arms"], summary["runs"]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    written = []

    def bands(ax, key, title, rows_for_arm=None):
        epochs = np.arange(metrics[key].shape[0])
        for a, e in enumerate(arms):
            values = metrics[key][:, a * runs:(a + 1) * runs]
            finite = np.isfinite(values).any(1)
            if not finite.any():
                continue
            mean, sd = np.nanmean(values[finite], 1), np.nanstd(values[finite], 1)
            ax.plot(epochs[finite], mean, color=colours[a], label=f"e = {e}")
            ax.fill_between(epochs[finite], mean - sd, mean + sd, color=colours[a], alpha=0.25)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()

    fig = Figure(figsize=(15, 4.2), dpi=100)
    axes = fig.subplots(1, 3)
    bands(axes[0], "test_loss", "test loss (real classes), mean ± 1σ")
    bands(axes[1], "train_loss", "training loss (trained objective), mean ± 1σ")
    bands(axes[2], "test_acc", "test accuracy, mean ± 1σ")
    fig.suptitle(f"{summary['preset']} — {runs} runs, {summary['optimizer']} "
                 f"lr = {summary['lr']}")
    fig.tight_layout()
    path = Path(f"{stem}_bands.png")
    fig.savefig(path)
    written.append(path)

    if len(arms) == 2:
        fig = Figure(figsize=(11, 4.2), dpi=100)
        ax1, ax2 = fig.subplots(1, 2)
        per_run = summary["per_run"]
        base = per_run["first_peak"][:runs]
        ghost = per_run["first_peak"][runs:2 * runs]
        ok = np.isfinite(base) & np.isfinite(ghost)
        ax1.scatter(base[ok], ghost[ok], color="k", s=18)
        if ok.any():
            lo, hi = min(base[ok].min(), ghost[ok].min()), max(base[ok].max(), ghost[ok].max())
            ax1.plot([lo, hi], [lo, hi], "--", color="grey", label="no difference")
            ax1.legend()
        ax1.set_xlabel("first peak epoch, e = 0")
        ax1.set_ylabel(f"first peak epoch, e = {arms[1]}")
        ax1.set_title("first test-loss peak per run")
        ax1.grid(alpha=0.3)
        names = ["first_peak", "first_spike", "first_bump", "test_min_epoch"]
        pairs = summary["paired_ghost_minus_baseline"]
        means = [pairs[k]["mean"] if pairs[k]["mean"] is not None else np.nan for k in names]
        err = [[(m - pairs[k]["ci95"][0]) if pairs[k]["ci95"][0] is not None else 0
                for m, k in zip(means, names)],
               [(pairs[k]["ci95"][1] - m) if pairs[k]["ci95"][1] is not None else 0
                for m, k in zip(means, names)]]
        ax2.bar(range(len(names)), np.nan_to_num(means), yerr=err, color=colours[:4],
                capsize=4)
        ax2.axhline(PAPER["first_peak_difference_epochs"], color="k", ls=":",
                    label="paper, first peak (MNIST): −4.8")
        ax2.axhline(0, color="grey", lw=0.8)
        ax2.set_xticks(range(len(names)), ["first peak", "opt. spike", "overfit bump",
                                           "test-loss min"])
        ax2.set_ylabel("ghost − baseline (epochs), 95 % CI")
        ax2.set_title("paired differences")
        ax2.legend()
        fig.tight_layout()
        path = Path(f"{stem}_peaks.png")
        fig.savefig(path)
        written.append(path)

    if np.isfinite(metrics["lambda_max"]).any():
        fig = Figure(figsize=(15, 4.2), dpi=100)
        axes = fig.subplots(1, 4)
        bands(axes[0], "lambda_max", "Hessian λ_max")
        bands(axes[1], "noise_norm", "noise norm σ(θ)")
        bands(axes[2], "lyapunov", "running Lyapunov estimate")
        axes[2].axhline(0, color="grey", lw=0.8)
        bands(axes[3], "ghost_mass", "ghost mass")
        fig.tight_layout()
        path = Path(f"{stem}_diagnostics.png")
        fig.savefig(path)
        written.append(path)
    return written
