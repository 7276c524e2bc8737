"""GPU check: the same small ghost-CNN experiment on CUDA and on the CPU with the same seeds;
prints both results, their largest differences, the timings, and whether a repeat on the
first device gives identical metrics bit for bit.  Run it whenever a GPU is at
hand (exits 0 with a note when there is none):

    python scripts/gpu_check.py [--runs 8] [--epochs 40] [--full]

``--full`` also times the whole rmnist30_ghost experiment on CUDA (with and without
diagnostics every 20 epochs) and the batched-vs-loop ratio there; ``--mnist`` times the full
28×28 experiment (rmnist30_mnist_ghost: 30 runs × 2 arms × 150 epochs, each run tested on 4,700
images; issue 24's target ≤ 30 s on one H100) on the first device.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cnn.config import apply_cnn_sets, load_cnn  # noqa: E402
from engine.cnn.report import summarise, text_report  # noqa: E402
from engine.cnn.trainer import CnnExperiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train(preset, device):
    start = time.perf_counter()
    experiment = CnnExperiment(preset, device).run()
    if device == "cuda":
        torch.cuda.synchronize()
    return experiment, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--mnist", action="store_true")
    parser.add_argument("--devices", default="cuda,cpu",
                        help="the two devices compared (cpu,cpu exercises the script anywhere)")
    args = parser.parse_args()
    devices = args.devices.split(",")
    fast = devices[0]
    print(f"torch {torch.__version__}; CUDA available: {torch.cuda.is_available()}")
    if "cuda" in devices and not torch.cuda.is_available():
        print("no CUDA device here: nothing to compare (the CPU path is covered by the tests)")
        return 0
    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name(0)}")
    base = load_cnn(ROOT / "presets" / "rmnist30_ghost.toml")
    preset = apply_cnn_sets(base, [f"training.runs={args.runs}",
                                   f"training.epochs={args.epochs}", "diagnostics.every=10"])
    results = {}
    sync = torch.cuda.synchronize if fast == "cuda" else (lambda: None)
    for device in devices:
        train(apply_cnn_sets(preset, ["training.epochs=2", "training.runs=2"]), device)  # warm
        experiment, seconds = train(preset, device)
        metrics = experiment.metrics()
        results[device] = metrics
        summary = summarise(metrics, preset, experiment.arms, args.runs, seconds, device)
        print(f"--- {device}: {seconds:.2f} s")
        print(text_report(summary))
        print(f"    λ_max at epoch {args.epochs}: "
              f"{np.nanmean(metrics['lambda_max'][-1]):.4f} (mean over models); "
              f"Lyapunov estimate {np.nanmean(metrics['lyapunov'][-1]):.4f}")
    again, _ = train(preset, fast)
    repeat = again.metrics()
    same = all(np.array_equal(results[fast][k], repeat[k], equal_nan=True) for k in repeat)
    print(f"same seed twice on {fast}: metrics identical bit for bit: {same}")
    for key in ("train_loss", "test_loss", "test_acc", "grad_norm", "lambda_max", "noise_norm"):
        a, b = results[devices[0]][key], results[devices[1]][key]
        ok = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(a[ok] - b[ok])
        print(f"max |{devices[0]} − {devices[1]}| {key:12}: {diff.max():.3g} (first epoch: "
              f"{np.abs(a[0] - b[0]).max():.3g})")
    if args.mnist:
        mnist = load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml")
        train(apply_cnn_sets(mnist, ["training.epochs=2", "training.runs=2"]), fast)  # warm
        experiment, seconds = train(mnist, fast)
        summary = summarise(experiment.metrics(), mnist, experiment.arms,
                            mnist.training.runs, seconds, fast)
        print(f"full rmnist30_mnist_ghost on {fast}: {seconds:.1f} s (target ≤ 30 s on an H100)")
        print(text_report(summary))
    if args.full:
        for label, sets in (("full rmnist30_ghost, no diagnostics", []),
                            ("full rmnist30_ghost, diagnostics every 20", ["diagnostics.every=20"])):
            _, seconds = train(apply_cnn_sets(base, sets), fast)
            print(f"{label} on {fast}: {seconds:.1f} s")
        loop = apply_cnn_sets(base, ["training.epochs=11"])
        batched = CnnExperiment(loop, fast)
        batched.advance(1)
        sync()
        start = time.perf_counter()
        batched.advance(10)
        sync()
        t_batched = time.perf_counter() - start
        t_loop = 0.0
        for r in range(loop.training.runs):
            single = CnnExperiment(loop, fast, runs=[r])
            single.advance(1)
            sync()
            start = time.perf_counter()
            single.advance(10)
            sync()
            t_loop += time.perf_counter() - start
        print(f"{fast} epochs/s: batched {10 / t_batched:.1f}, loop over runs {10 / t_loop:.2f}, "
              f"ratio {t_loop / t_batched:.1f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
