"""Park & Yun (2025)'s remaining claims on real MNIST, cheaply: ghost removal and linear decay,
the gradient gap (Result 5.3), mini-batch SGD (B = 10, 30, 100) and Adam over a small η grid.

Every variant is ``presets/rmnist30_mnist_ghost.toml`` with fewer runs, fewer epochs and a fixed
test set (``data.test_per_class`` per class instead of every image outside the training subset),
so that the whole grid fits in tens of minutes on a 2-core CPU; the sample sizes are printed and
stored with every verdict.  Runs are seeded by index, so the baseline arm (e = 0) of the GD
variants is the same model in each and the ghost arms are paired with it run by run.  Writes
``OUT.json`` (each variant's claims, arm summaries and settings), a Markdown table (``OUT`` + ``.md``)
and each variant's figures ``OUT_<variant>_*.png``.

    .venv/bin/python scripts/cnn_claims.py --out out/claims [--runs 4] [--gd-epochs 110]
        [--minibatch-epochs 30] [--test-per-class 20] [--only gd_fixed,adam_lr0.001]
    .venv/bin/python scripts/cnn_claims.py --merge out/a.json out/b.json --out assets/cnn/claims

``--merge`` gathers the variants of several such result files (run with different epochs or
runs), or ``engine cnn`` reports, into one JSON and table, each variant named
``<variant>_<epochs>ep`` and carrying its own runs, epochs and test set.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine.cnn.api import load_experiment, run_cnn  # noqa: E402
from engine.cnn.config import CnnPreset, apply_cnn_sets, dumps_cnn, load_cnn  # noqa: E402
from engine.cnn.report import summarise, write_figures  # noqa: E402
from engine.cnn.trainer import CnnExperiment  # noqa: E402
from engine.export import write_json, write_npz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variants(gd_epochs: int, minibatch_epochs: int) -> dict[str, list[str]]:
    """Name → ``--set`` assignments on top of the reduced preset."""
    gd = [f"training.epochs={gd_epochs}", "diagnostics.gradient_gap_every=1"]
    out = {"gd_fixed": gd,
           "gd_remove": gd + ["model.ghost_schedule=remove",
                              f"model.ghost_off_epoch={gd_epochs // 3}"],
           "gd_linear": gd + ["model.ghost_schedule=linear",
                              f"model.ghost_off_epoch={gd_epochs // 2}"]}
    mb = [f"training.epochs={minibatch_epochs}"]
    for batch in (10, 30, 100):
        for lr in (0.005, 0.02):
            out[f"sgd_B{batch}_lr{lr}"] = mb + ["training.optimizer=sgd",
                                               f"training.batch_size={batch}",
                                               f"training.lr={lr}"]
    for lr in (0.0003, 0.001):
        out[f"adam_lr{lr}"] = mb + ["training.optimizer=adam", "training.batch_size=30",
                                    f"training.lr={lr}"]
    return out


TABLE_HEAD = ["| variant | runs × epochs | runs with a first peak e=0/e=2 | first peak earlier "
              "(ghost − baseline, epochs) | gradient gap falls (final − initial) | ghosts "
              "removed, no worse (final test loss, ghost − baseline) | final accuracy, ghost − "
              "baseline |", "|---|---|---|---|---|---|---|"]


def row(name: str, summary: dict) -> str:
    """One Markdown line: the variant, its sample size and each claim's verdict with numbers;
    ``summary`` is a run's report or a stored variant (both carry runs, epochs and, unless the
    report predates them, claims)."""
    if "claims" not in summary:
        peaks = [arm["first_peak"]["n"] for arm in summary["arm"].values()]
        return (f"| {name} | {summary['runs']} × {summary['epochs']} | "
                + "/".join(map(str, peaks)) + " | (a report without claims) | | | |")
    parts = []
    for key in ("first_peak_earlier", "gradient_gap_vanishes", "ghost_removal"):
        entry = summary["claims"].get(key)
        if entry is None:               # a report from before this claim was measured
            parts.append("—")
            continue
        pair = entry.get("ghost_minus_baseline") or entry.get("final_minus_initial") or {}
        numbers = ""
        if pair.get("mean") is not None and pair["ci95"][0] is not None:
            numbers = f" {pair['mean']:+.3g} [{pair['ci95'][0]:.3g}, {pair['ci95'][1]:.3g}]"
        parts.append(f"{entry['verdict']}{numbers}")
    acc = summary["paired_ghost_minus_baseline"]["final_test_acc"]
    acc_text = (f"{acc['mean']:+.3f} [{acc['ci95'][0]:.3f}, {acc['ci95'][1]:.3f}]"
                if acc["ci95"][0] is not None else "—")
    peaks = summary["claims"]["first_peak_earlier"]["runs_with_a_peak"]
    return (f"| {name} | {summary['runs']} × {summary['epochs']} | "
            f"{peaks['e=0']}/{peaks['e=ghosts']} | " + " | ".join(parts) + f" | {acc_text} |")


def _setting(sets: list[str], key: str) -> str:
    """The value a variant's ``--set`` list gives ``key``."""
    for assignment in sets:
        name, _, value = assignment.partition("=")
        if name == key:
            return value
    raise KeyError(f"no {key} among the variant's settings {sets}")


def merge(files: list[Path], stem: Path) -> None:
    """Write ``stem``.json and .md with every variant of ``files`` (later files win on a clash),
    each keyed ``<variant>_<epochs>ep`` and stamped with its own runs, epochs and test images."""
    merged: dict[str, dict] = {}
    for path in files:
        stored = json.loads(path.read_text())
        if "variants" not in stored:     # one experiment's report (``engine cnn`` JSON sidecar)
            keep = ("claims", "arm", "paired_ghost_minus_baseline", "runs", "epochs",
                    "seconds", "data", "device")
            stored = {"runs": stored["runs"], "variants": {
                f"{stored['optimizer']}_lr{stored['lr']}_{stored['runs']}runs":
                    {k: stored[k] for k in keep if k in stored}}}
        for name, entry in stored["variants"].items():
            epochs = (entry["epochs"] if "epochs" in entry
                      else int(_setting(entry["sets"], "training.epochs")))
            entry = dict(entry, runs=entry.get("runs", stored["runs"]), epochs=epochs)
            merged[f"{name}_{entry['epochs']}ep"] = dict(entry, source=str(path),
                                                         command=stored.get("command"))
    lines = TABLE_HEAD + [row(name, entry) for name, entry in merged.items()]
    write_json(stem.with_suffix(".json"), {"script": "scripts/cnn_claims.py",
                                           "variants": merged})
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def stored_baseline(npz: Path, preset: CnnPreset) -> dict[str, np.ndarray]:
    """The e = 0 arm's metrics, (epochs + 1, runs) each, of a finished variant's NPZ, after
    checking that it trained the very baseline ``preset`` would: the ghost schedule masks ghost
    logits only, so the settings must agree in everything else."""
    other, arms, runs, metrics = load_experiment(npz)

    def baseline_settings(p: CnnPreset) -> tuple:
        return (p.data, p.training, p.diagnostics, p.peaks, p.model.channels,
                p.model.ghosts, p.model.ghost_init_scale)
    if baseline_settings(other) != baseline_settings(preset):
        raise SystemExit(f"--baseline {npz}: trained with other settings than this variant "
                         f"({baseline_settings(other)} against {baseline_settings(preset)})")
    if 0 not in arms:
        raise SystemExit(f"--baseline {npz}: has no e = 0 arm (arms {list(arms)})")
    rows = slice(arms.index(0) * runs, (arms.index(0) + 1) * runs)
    return {key: value[:, rows] for key, value in metrics.items()}


def run_ghost_arm(preset: CnnPreset, baseline: dict[str, np.ndarray], out: Path,
                  device: str, figures: bool = True) -> dict:
    """Train only the ghost arm and report it against a stored baseline arm: the arms of a run
    share data and initial weights, and one arm trained alone follows the same trajectory as
    inside the pair, so the paired report is that of a two-arm run for half the training.
    Writes ``out`` (NPZ of the metrics, readable by ``redraw_figures``), its JSON and figures."""
    start = time.perf_counter()
    experiment = CnnExperiment(preset, device, arms=(preset.model.ghosts,)).run()
    seconds = time.perf_counter() - start
    ghost = experiment.metrics()
    metrics = {key: np.concatenate([baseline[key], ghost[key]], axis=1)
               for key in ghost if key in baseline}
    arms = (0, preset.model.ghosts)
    runs = len(experiment.run_ids)
    summary = summarise(metrics, preset, arms, runs, seconds, str(experiment.device))
    summary["baseline_arm"] = "stored (--baseline); only the ghost arm was trained here"
    write_npz(out, dict(metrics, arms=np.asarray(arms), preset=np.asarray(dumps_cnn(preset)),
                        model_run=np.tile(np.asarray(experiment.run_ids), 2),
                        **summary["per_run"]))
    write_json(out.with_suffix(".json"), summary)
    if figures:
        write_figures(metrics, summary, out.with_suffix(""))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output stem (folder created)")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--gd-epochs", type=int, default=110)
    parser.add_argument("--minibatch-epochs", type=int, default=30)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--baseline", default=None, metavar="NPZ",
                        help="a finished GD variant's NPZ whose e = 0 arm the chosen variants "
                             "reuse (checked to be the same baseline): only ghost arms train")
    parser.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                        help="gather these result files into --out instead of training")
    args = parser.parse_args()
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if args.merge:
        merge([Path(f) for f in args.merge], stem)
        return 0
    base = apply_cnn_sets(load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml"),
                          [f"training.runs={args.runs}",
                           f"data.test_per_class={args.test_per_class}",
                           "diagnostics.snapshots=2"])
    chosen = variants(args.gd_epochs, args.minibatch_epochs)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    results = {}
    lines = list(TABLE_HEAD)
    for name, sets in chosen.items():
        preset = apply_cnn_sets(base, sets)
        start = time.perf_counter()
        out = Path(f"{stem}_{name}.npz")
        if args.baseline:
            summary = run_ghost_arm(preset, stored_baseline(Path(args.baseline), preset), out,
                                    args.device)
        else:
            summary, _ = run_cnn(preset, out, args.device)
        seconds = time.perf_counter() - start
        results[name] = {"sets": sets, "seconds": seconds, "claims": summary["claims"],
                         "baseline": args.baseline or "trained in this run",
                         "arm": summary["arm"],
                         "paired_ghost_minus_baseline": summary["paired_ghost_minus_baseline"],
                         "test_images": args.test_per_class * 10,
                         "runs": summary["runs"], "epochs": summary["epochs"]}
        lines.append(row(name, summary))
        print(lines[-1], f"({seconds:.0f} s)", flush=True)
        write_json(stem.with_suffix(".json"), {"runs": args.runs, "variants": results,
                                               "command": " ".join(sys.argv)})
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: {c: v["claims"][c]["verdict"] for c in v["claims"]}
                      for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
