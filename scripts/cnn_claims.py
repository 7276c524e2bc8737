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
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cnn.api import run_cnn  # noqa: E402
from engine.cnn.config import apply_cnn_sets, load_cnn  # noqa: E402
from engine.export import write_json  # noqa: E402

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


def row(name: str, summary: dict) -> str:
    """One Markdown line: the variant, its sample size and each claim's verdict with numbers."""
    parts = []
    for key in ("first_peak_earlier", "gradient_gap_vanishes", "ghost_removal"):
        entry = summary["claims"][key]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output stem (folder created)")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--gd-epochs", type=int, default=110)
    parser.add_argument("--minibatch-epochs", type=int, default=30)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    args = parser.parse_args()
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    base = apply_cnn_sets(load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml"),
                          [f"training.runs={args.runs}",
                           f"data.test_per_class={args.test_per_class}",
                           "diagnostics.snapshots=2"])
    chosen = variants(args.gd_epochs, args.minibatch_epochs)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    results = {}
    lines = ["| variant | runs × epochs | runs with a first peak e=0/e=2 | first peak earlier "
             "(ghost − baseline, epochs) | gradient gap falls (final − initial) | ghosts "
             "removed, no worse (final test loss, ghost − baseline) | final accuracy, ghost − "
             "baseline |", "|---|---|---|---|---|---|---|"]
    for name, sets in chosen.items():
        preset = apply_cnn_sets(base, sets)
        start = time.perf_counter()
        summary, _ = run_cnn(preset, f"{stem}_{name}.npz", args.device)
        seconds = time.perf_counter() - start
        results[name] = {"sets": sets, "seconds": seconds, "claims": summary["claims"],
                         "arm": summary["arm"],
                         "paired_ghost_minus_baseline": summary["paired_ghost_minus_baseline"],
                         "test_images": args.test_per_class * 10}
        lines.append(row(name, summary))
        print(lines[-1], f"({seconds:.0f} s)", flush=True)
        write_json(stem.with_suffix(".json"), {"runs": args.runs, "variants": results})
        stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(json.dumps({k: {c: v["claims"][c]["verdict"] for c in v["claims"]}
                      for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
