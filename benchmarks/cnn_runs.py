"""CNN lab throughput: R runs × 2 arms trained batched (one CnnExperiment) vs a sequential loop
over runs (one CnnExperiment per run, its two arms together), same epochs, same run.  Every epoch
includes the test-set evaluation, as in the experiment.  Target: batched ≥ 3× faster.

Also: the cost of one diagnostics pass (σ(θ) from per-sample gradients, λ_max/λ_min by Lanczos)
relative to an epoch, and with ``--full`` the wall time of the whole ``rmnist30_ghost`` experiment
(target ≤ 2 minutes on the 2-core CPU) and of the same with diagnostics every 20 epochs.

With ``--mnist``: the 28×28 experiment (``rmnist30_mnist_ghost``, 30 runs × 2 arms, 4,700 test
images per run) instead — seconds per epoch with the test set through the fused CPU inference
kernels (:mod:`engine.cnn.inference`) against the autograd forward, in the same process, the
split into training and test evaluation, and the full 150-epoch wall time extrapolated from the
measured epochs (target ≤ 10 min on the 2-core CPU).  Wall and process CPU seconds are both
printed: on a shared machine the CPU seconds are the steadier measure.

    .venv/bin/python benchmarks/cnn_runs.py [--runs 30] [--epochs 10] [--device cpu] [--full]
    .venv/bin/python benchmarks/cnn_runs.py --mnist [--epochs 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cnn.config import apply_cnn_sets, load_cnn  # noqa: E402
from engine.cnn.trainer import CnnExperiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed_epochs(experiment: CnnExperiment, epochs: int) -> float:
    experiment.advance(1)                       # warm-up: first-call allocations
    start = time.perf_counter()
    experiment.advance(epochs)
    return time.perf_counter() - start


def mnist_epochs(args) -> None:
    base = load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml")
    preset = apply_cnn_sets(base, [f"training.epochs={args.epochs + 2}"])
    total_epochs = base.training.epochs
    print(f"{preset.training.runs} runs × 2 arms at 28×28, full-batch GD, device {args.device}; "
          f"{args.epochs} timed epochs after one warm-up")
    results = {}
    for label, fused in (("fused test kernels", True), ("autograd test forward", False),
                         ("fused test kernels (again)", True)):
        experiment = CnnExperiment(preset, args.device)
        if not fused:
            experiment.test_padded = None
        experiment.advance(1)
        wall, cpu = time.perf_counter(), time.process_time()
        experiment.advance(args.epochs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with torch.no_grad():
            test_wall, test_cpu = time.perf_counter(), time.process_time()
            experiment._test_parts()
            test_wall, test_cpu = time.perf_counter() - test_wall, time.process_time() - test_cpu
        per_epoch = wall / args.epochs
        results[label] = (per_epoch, cpu / args.epochs)
        print(f"{label:28s}: {per_epoch:6.2f} s/epoch wall, {cpu / args.epochs:6.2f} CPU-s/epoch; "
              f"test evaluation {test_wall:5.2f} s wall, {test_cpu:5.2f} CPU-s; "
              f"{total_epochs} epochs ≈ {per_epoch * (total_epochs + 1) / 60:5.1f} min wall, "
              f"{cpu / args.epochs * (total_epochs + 1) / 60 / max(torch.get_num_threads(), 1):5.1f}"
              f" min at full use of {torch.get_num_threads()} cores")
    fused, plain = results["fused test kernels"], results["autograd test forward"]
    print(f"ratio autograd / fused: {plain[0] / fused[0]:.2f}× wall, {plain[1] / fused[1]:.2f}× "
          f"CPU (target: the full experiment ≤ 10 min)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--mnist", action="store_true")
    args = parser.parse_args()
    if args.mnist:
        mnist_epochs(args)
        return
    base = load_cnn(ROOT / "presets" / "rmnist30_ghost.toml")
    preset = apply_cnn_sets(base, [f"training.runs={args.runs}",
                                   f"training.epochs={args.epochs + 1}"])
    n = preset.data.per_class * 10
    print(f"{args.runs} runs × 2 arms, {n} training images of 8×8, test set "
          f"{preset.data.test_per_class * 10}, full-batch GD, device {args.device}")

    batched = timed_epochs(CnnExperiment(preset, args.device), args.epochs)
    sequential = sum(timed_epochs(CnnExperiment(preset, args.device, runs=[r]), args.epochs)
                     for r in range(args.runs))
    arms = (0, preset.model.ghosts)
    single = sum(timed_epochs(CnnExperiment(preset, args.device, runs=[r], arms=(e,)),
                              args.epochs) for r in range(args.runs) for e in arms)
    print(f"batched             : {args.epochs / batched:7.2f} epochs/s (all runs and arms)")
    print(f"loop over runs      : {args.epochs / sequential:7.2f} epochs/s "
          f"(each run's two arms together)")
    print(f"loop over models    : {args.epochs / single:7.2f} epochs/s (one model at a time)")
    print(f"ratio batched / loop over runs   = {sequential / batched:.2f}× (target ≥ 3×)")
    print(f"ratio batched / loop over models = {single / batched:.2f}×")

    diag = apply_cnn_sets(preset, ["diagnostics.every=1", "training.epochs=3"])
    experiment = CnnExperiment(diag, args.device)
    experiment.advance(1)
    start = time.perf_counter()
    experiment.advance(1)
    with_diag = time.perf_counter() - start
    plain = batched / args.epochs
    print(f"one diagnostics pass (σ, Lanczos 20 HVPs): {with_diag - plain:.2f} s = "
          f"{(with_diag - plain) / plain:.1f} epochs")

    if args.full:
        for label, sets in (("rmnist30_ghost, no diagnostics", []),
                            ("rmnist30_ghost, diagnostics every 20 epochs",
                             ["diagnostics.every=20"])):
            full = apply_cnn_sets(base, sets)
            start = time.perf_counter()
            CnnExperiment(full, args.device).run()
            seconds = time.perf_counter() - start
            print(f"{label}: {seconds:.1f} s ({full.training.runs} runs × 2 arms × "
                  f"{full.training.epochs} epochs; target ≤ 120 s without diagnostics)")


if __name__ == "__main__":
    main()
