"""The experiment report: per-arm bands, peak epochs of each kind, paired differences with
95 % intervals, the paper's claims with verdicts (:func:`claims`), and PNG figures (matplotlib's
Agg backend; no Qt).

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
               "ghost_schedule": (preset.model.ghost_schedule
                                  if preset.model.ghost_schedule == "fixed" else
                                  f"{preset.model.ghost_schedule}, off at epoch "
                                  f"{preset.model.ghost_off_epoch}"),
               "data": f"{preset.data.source}, {preset.data.per_class} per class, tested on "
                       + (f"{preset.data.test_per_class} per class"
                          if preset.data.test_per_class else "every other image"),
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
    if len(arms) == 2 and arms[0] == 0:
        summary["claims"] = claims(metrics, events, runs, preset)
    return summary


def _interval(values: np.ndarray) -> dict:
    """Mean of the finite values with a 95 % Student-t interval (None below two values)."""
    paired_zero = paired(np.zeros_like(np.asarray(values, float)), values)
    return {"n": paired_zero["n"], "mean": paired_zero["mean"], "ci95": paired_zero["ci95"]}


def _below(interval: dict, level: float) -> bool | None:
    """Whether a 95 % interval lies entirely below ``level`` (None: no interval)."""
    high = interval["ci95"][1]
    return None if high is None else bool(high < level)


def _above(interval: dict, level: float) -> bool | None:
    low = interval["ci95"][0]
    return None if low is None else bool(low > level)


def stays_below_zero(curve: np.ndarray) -> float:
    """First epoch from which the finite values of ``curve`` stay < 0 to the end (NaN: never,
    or no values)."""
    finite = np.flatnonzero(np.isfinite(curve))
    if finite.size == 0 or curve[finite[-1]] >= 0:
        return np.nan
    above = finite[curve[finite] >= 0]
    later = finite[finite > above[-1]] if above.size else finite
    return float(later[0])


def claims(metrics: dict[str, np.ndarray], events: dict[str, np.ndarray], runs: int,
           preset: CnnPreset) -> dict:
    """Park & Yun (2025)'s claims measured on this experiment, each with its numbers and a
    verdict from 95 % intervals over runs: ``supported``, ``not supported`` or ``not testable``
    (and why).  Arm 0 is the baseline (e = 0), arm 1 the ghost arm."""
    base, ghost = slice(0, runs), slice(runs, 2 * runs)
    out = {}

    # §5, Appendix A: the first test-loss peak comes earlier with ghosts (paper: 4.8 epochs)
    diff = paired(events["first_peak"][base], events["first_peak"][ghost])
    with_peak = [int(np.isfinite(events["first_peak"][rows]).sum()) for rows in (base, ghost)]
    entry = {"claim": "with e = 2 ghosts the first test-loss peak comes earlier "
                      "(Park & Yun (2025), Appendix A: 4.8 epochs earlier on MNIST/30)",
             "paper_epochs": PAPER["first_peak_difference_epochs"],
             "runs_with_a_peak": {"e=0": with_peak[0], "e=ghosts": with_peak[1]},
             "ghost_minus_baseline": diff}
    if diff["ci95"][0] is None:
        entry["verdict"] = "not testable"
        entry["why"] = (f"fewer than 2 runs have a first peak in both arms "
                        f"({diff['n']}): no peak within {metrics['test_loss'].shape[0] - 1} "
                        f"epochs at this η")
    else:
        earlier = _below(diff, 0.0)
        entry["verdict"] = "supported" if earlier else "not supported"
        low, high = diff["ci95"]
        entry["paper_value_in_interval"] = bool(low <= PAPER["first_peak_difference_epochs"]
                                                <= high)
    out["first_peak_earlier"] = entry

    # Result 5.3: the ghost mass collapses as training converges
    mass = metrics["ghost_mass"][:_live_rows(metrics, ghost), ghost]
    initial, final = mass[0], mass[-1]
    change = paired(initial, final)
    ratio = _interval(final / np.where(initial > 0, initial, np.nan))
    entry = {"claim": "the ghost mass vanishes as training converges (Park & Yun (2025), "
                      "Result 5.3)",
             "initial": _interval(initial), "final": _interval(final),
             "final_minus_initial": change, "final_over_initial": ratio,
             "epochs": int(mass.shape[0] - 1)}
    if change["ci95"][0] is None:
        entry["verdict"] = "not testable"
        entry["why"] = "fewer than 2 runs"
    else:
        entry["verdict"] = "supported" if _below(change, 0.0) else "not supported"
        entry["note"] = ("supported means the mass falls (the interval of final − initial lies "
                         "below 0); its limit 0 is not reached at a finite epoch — the fraction "
                         "left is final_over_initial")
    out["ghost_mass_decreases"] = entry

    # §4 / §5: the running Lyapunov estimate could turn negative earlier with ghosts
    entry = {"claim": "with ghosts the running Lyapunov estimate γ̂ (Park & Yun (2025), eq. 4.1) "
                      "turns negative, and stays so, earlier"}
    lyap = metrics.get("lyapunov")
    if lyap is None or not np.isfinite(lyap).any():
        entry["verdict"] = "not testable"
        entry["why"] = "no Hessian diagnostics in this run (diagnostics.every = 0)"
    else:
        turns = np.array([stays_below_zero(lyap[:, m]) for m in range(lyap.shape[1])])
        diff = paired(turns[base], turns[ghost])
        last_epoch = int(np.flatnonzero(np.isfinite(lyap).any(1))[-1])
        last = lyap[last_epoch]
        entry.update({"last_estimate_epoch": last_epoch,
                      "last_estimate": {"e=0": _interval(last[base]),
                                        "e=ghosts": _interval(last[ghost]),
                                        "ghost_minus_baseline": paired(last[base], last[ghost])},
                      "epoch_stays_negative": {"e=0": _describe(turns[base]),
                                               "e=ghosts": _describe(turns[ghost])},
                      "runs_never_negative": {"e=0": int(np.isnan(turns[base]).sum()),
                                              "e=ghosts": int(np.isnan(turns[ghost]).sum())},
                      "ghost_minus_baseline": diff,
                      "resolution_epochs": preset.diagnostics.every})
        if diff["ci95"][0] is None:
            entry["verdict"] = "not testable"
            entry["why"] = (f"fewer than 2 runs turn negative in both arms ({diff['n']}) by "
                            f"epoch {last_epoch}")
        else:
            entry["verdict"] = "supported" if _below(diff, 0.0) else "not supported"
            if _above(diff, 0.0):
                entry["note"] = "later with ghosts (the interval lies above 0)"
    out["lyapunov_negative_earlier"] = entry
    out["gradient_gap_vanishes"] = gradient_gap_claim(metrics, ghost)
    out["ghost_removal"] = removal_claim(metrics, events, base, ghost, preset)
    out["sgd_and_adam"] = optimizer_claim(out["first_peak_earlier"], preset)
    return out


def _live_rows(metrics: dict[str, np.ndarray], ghost: slice) -> int:
    """Epoch rows 0 … k−1 in which the ghost arm still had live ghosts (all rows for the fixed
    schedule): after a removal the mass and the gap are zero by construction, not by training."""
    live = metrics.get("live_ghosts")
    if live is None or not np.isfinite(live).all():
        return metrics["ghost_mass"].shape[0]
    alive = np.flatnonzero((live[:, ghost] > 0).all(1))
    return int(alive[-1]) + 1 if alive.size else 0


def gradient_gap_claim(metrics: dict[str, np.ndarray], ghost: slice) -> dict:
    """Result 5.3 of Park & Yun (2025): as the ghost mass vanishes, the extended model's
    gradient on the shared weights approaches the original one's, ‖∇f_ext − ∇f_orig‖ → 0."""
    entry = {"claim": "‖∇f_ext − ∇f_orig‖ on the shared weights vanishes with the ghost mass "
                      "(Park & Yun (2025), Result 5.3)"}
    gap = metrics.get("gradient_gap")
    measured = (np.flatnonzero(np.isfinite(gap[:_live_rows(metrics, ghost), ghost]).all(1))
                if gap is not None else np.zeros(0, int))
    if measured.size < 2:
        entry["verdict"] = "not testable"
        entry["why"] = "gradient gap not measured (diagnostics.gradient_gap_every = 0)"
        return entry
    first, last = int(measured[0]), int(measured[-1])
    initial, final = gap[first, ghost], gap[last, ghost]
    change = paired(initial, final)
    entry.update({"first_epoch": first, "last_epoch": last, "initial": _interval(initial),
                  "final": _interval(final), "final_minus_initial": change,
                  "final_over_initial": _interval(final / initial),
                  "final_over_gradient_norm": _interval(final / metrics["grad_norm"][last, ghost]),
                  "ghost_mass_final": _interval(metrics["ghost_mass"][last, ghost])})
    if change["ci95"][0] is None:
        entry["verdict"], entry["why"] = "not testable", "fewer than 2 runs"
    else:
        entry["verdict"] = "supported" if _below(change, 0.0) else "not supported"
        entry["note"] = ("supported means the gap falls (the interval of final − initial lies "
                         "below 0); final_over_initial is the fraction left")
    return entry


def removal_claim(metrics: dict[str, np.ndarray], events: dict[str, np.ndarray], base: slice,
                  ghost: slice, preset: CnnPreset) -> dict:
    """"As ghost nodes are removed, the expanded space contracts to reinstate the original loss
    surface" (Park & Yun (2025), §1) with no adverse long-term effect (§5): on a run whose ghost
    arm follows a ``remove`` or ``linear`` schedule, the final test loss and accuracy against
    the baseline's, paired by run.  The fixed-ghost arm is the same preset with
    ``ghost_schedule = "fixed"`` (the same runs, seeds and baseline)."""
    spec = preset.model
    entry = {"claim": "training with ghosts, then removing them, ends no worse than the baseline "
                      "(final test loss; Park & Yun (2025), §1 and §5)",
             "schedule": spec.ghost_schedule, "off_epoch": spec.ghost_off_epoch}
    if spec.ghost_schedule == "fixed":
        entry["verdict"] = "not testable"
        entry["why"] = ("the ghosts stay to the end in this run (model.ghost_schedule = "
                        "'fixed'); run it with 'remove' or 'linear'")
        return entry
    loss = paired(events["final_test_loss"][base], events["final_test_loss"][ghost])
    acc = paired(events["final_test_acc"][base], events["final_test_acc"][ghost])
    entry.update({"final_test_loss_ghost_minus_baseline": loss,
                  "final_test_acc_ghost_minus_baseline": acc,
                  "ghost_minus_baseline": loss,
                  "live_ghosts_at_end": int(metrics["live_ghosts"][-1, ghost].max())})
    if preset.training.epochs <= spec.ghost_off_epoch:
        entry["verdict"] = "not testable"
        entry["why"] = "the run ends before the ghosts are removed"
    elif loss["ci95"][0] is None:
        entry["verdict"], entry["why"] = "not testable", "fewer than 2 runs"
    else:
        worse = _above(loss, 0.0)
        entry["verdict"] = "not supported" if worse else "supported"
        entry["note"] = ("supported means the interval of ghost − baseline final test loss does "
                         "not lie above 0; below 0 means better: "
                         + ("better" if _below(loss, 0.0) else
                            "worse" if worse else "no difference resolved"))
    return entry


def optimizer_claim(first_peak: dict, preset: CnnPreset) -> dict:
    """The paper's first future-work item: does the ghost effect persist "under mini-batch SGD
    and adaptive optimization schemes"?  Measured as the first-peak claim of a run whose
    optimizer is ``sgd`` or ``adam``."""
    tr = preset.training
    entry = {"claim": "the first test-loss peak comes earlier with ghosts under mini-batch SGD "
                      "and Adam too (Park & Yun (2025), §6)",
             "optimizer": tr.optimizer, "lr": tr.lr,
             "batch_size": tr.batch_size if tr.optimizer != "gd" else None}
    if tr.optimizer == "gd":
        entry["verdict"] = "not testable"
        entry["why"] = ("full-batch GD in this run: run with training.optimizer = 'sgd' or "
                        "'adam' (scripts/cnn_claims.py runs the grid)")
        return entry
    for key in ("verdict", "why", "ghost_minus_baseline", "runs_with_a_peak"):
        if key in first_peak:
            entry[key] = first_peak[key]
    return entry


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
    for key, entry in summary.get("claims", {}).items():
        pair = entry.get("ghost_minus_baseline") or entry.get("final_minus_initial")
        numbers = ""
        if pair and pair.get("mean") is not None and pair["ci95"][0] is not None:
            numbers = (f": {pair['mean']:+.3g} [{pair['ci95'][0]:.3g}, {pair['ci95'][1]:.3g}]"
                       f" (n={pair['n']})")
        why = f" — {entry['why']}" if "why" in entry else ""
        lines.append(f"  claim {key}: {entry['verdict']}{numbers}{why}")
    return "\n".join(lines)


def write_figures(metrics: dict[str, np.ndarray], summary: dict, stem: Path) -> list[Path]:
    """``<stem>_bands.png`` (mean ± 1σ per arm, as Park & Yun (2025)'s Figure 3a),
    ``<stem>_peaks.png`` (per-run first-peak epochs, baseline vs ghost, as their Figure 3b, and the
    paired differences), ``<stem>_runs_{train_loss,test_loss,test_acc}.png`` (every run on its
    own, both arms, as their Appendix A), ``<stem>_ghosts.png`` (ghost mass and gradient gap,
    when the gap was measured) and, when diagnostics ran, ``<stem>_diagnostics.png``."""
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
    schedule = summary.get("ghost_schedule", "fixed")
    fig.suptitle(f"{summary['preset']} — {runs} runs, {summary['optimizer']} "
                 f"lr = {summary['lr']}" + ("" if schedule == "fixed"
                                           else f", ghosts {schedule}"))
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

    if "gradient_gap" in metrics and np.isfinite(metrics["gradient_gap"]).any():
        fig = Figure(figsize=(11, 4.2), dpi=100)
        axes = fig.subplots(1, 2)
        bands(axes[0], "ghost_mass", "ghost mass Σ ŷ_ghost (training set)")
        bands(axes[1], "gradient_gap", "‖∇f_ext − ∇f_orig‖ on the shared weights")
        for ax in axes:
            ax.set_yscale("log")
        fig.tight_layout()
        path = Path(f"{stem}_ghosts.png")
        fig.savefig(path)
        written.append(path)

    for key, title in (("train_loss", "training loss"), ("test_loss", "test loss"),
                       ("test_acc", "test accuracy")):
        written.append(_individual_runs(metrics, summary, key, title,
                                        Path(f"{stem}_runs_{key}.png")))

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


def _individual_runs(metrics: dict[str, np.ndarray], summary: dict, key: str, title: str,
                     path: Path) -> Path:
    """One small panel per run with every arm's curve of ``key`` (Park & Yun (2025),
    Appendix A, Figures 4–9)."""
    from matplotlib.figure import Figure

    arms, runs = summary["arms"], summary["runs"]
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    columns = min(6, runs)
    rows = math.ceil(runs / columns)
    fig = Figure(figsize=(2.6 * columns, 1.9 * rows + 0.6), dpi=90)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, squeeze=False)).ravel()
    epochs = np.arange(metrics[key].shape[0])
    for r in range(runs):
        ax = axes[r]
        for a, e in enumerate(arms):
            ax.plot(epochs, metrics[key][:, a * runs + r], color=colours[a], lw=1,
                    label=f"e = {e}")
        ax.set_title(f"run {r + 1}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[runs:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{summary['preset']} — {title}, every run (epochs on x)")
    fig.tight_layout()
    fig.savefig(path)
    return path
