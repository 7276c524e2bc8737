"""One CNN sweep point: the ghost-CNN experiment (``engine.cnn.api.run_cnn``) of a CNN preset
with the point's settings, reduced to numbers per arm.

Its result has the shape of :func:`engine.sweep.point.run_point`'s (``scalars``, empty
``transitions`` and ``states``, wall and CPU time), so the same executor, store and dataset hold
it.  Scalars (``CNN_SCALARS``): per arm (``baseline``: e = 0; ``ghost``: the preset's e) the
mean over its runs of the final test accuracy and loss, the first test-loss peak's epoch and
the number of runs without one, the final ghost mass; the paired ghost − baseline difference of
the first peak's epoch with its 95 % interval; the device it trained on (1 = CUDA).

``DEVICE_RESOURCE``: a point that asks for CUDA is submitted with the Dask resource
``{"GPU": 1}``, so only workers started with ``--resources GPU=1`` take it (README, "Sweeps at
scale").
"""
from __future__ import annotations

import math
import time

ARMS = ("baseline", "ghost")
_PER_ARM = ("final_test_acc", "final_test_loss", "first_peak", "runs_without_peak",
            "final_ghost_mass")
CNN_SCALARS = tuple(f"{arm}_{name}" for arm in ARMS for name in _PER_ARM) + (
    "paired_first_peak_mean", "paired_first_peak_ci95_low", "paired_first_peak_ci95_high",
    "runs", "epochs", "cuda")
DEVICE_RESOURCE = "GPU"


def _number(value) -> float:
    return math.nan if value is None else float(value)


def wants_gpu(device: str) -> bool:
    """Whether points of this ``--device`` go to GPU workers: ``cuda``, or ``auto`` on a
    cluster (where this process cannot see the workers' devices)."""
    return device in ("cuda", "auto")


def run_cnn_point(preset_toml: str, assignments: list[str], device: str = "auto") -> dict:
    """Train the CNN preset in ``preset_toml`` with ``assignments`` (``key=value``, its
    ``training.seed`` among them) on ``device`` and return its numbers (module docstring)."""
    from ..cnn.api import run_cnn
    from ..cnn.config import apply_cnn_sets, loads_cnn

    started, cpu_started = time.perf_counter(), time.process_time()
    preset = apply_cnn_sets(loads_cnn(preset_toml, "<sweep>"), assignments)
    summary, _ = run_cnn(preset, None, device, figures=False)
    arms = summary["arm"]  # "e=0" is the baseline, the other arm has the preset's ghosts
    ghost = next((entry for name, entry in arms.items() if name != "e=0"), {})
    scalars: dict[str, float] = {}
    for label, arm in zip(ARMS, (arms.get("e=0", {}), ghost)):
        scalars[f"{label}_final_test_acc"] = _number(arm.get("final_test_acc", {}).get("mean"))
        scalars[f"{label}_final_test_loss"] = _number(arm.get("final_test_loss", {})
                                                      .get("mean"))
        peak = arm.get("first_peak", {})
        scalars[f"{label}_first_peak"] = _number(peak.get("mean"))
        scalars[f"{label}_runs_without_peak"] = _number(peak.get("runs_without"))
        scalars[f"{label}_final_ghost_mass"] = _number(arm.get("final_ghost_mass", {})
                                                       .get("mean"))
    paired = summary["paired_ghost_minus_baseline"].get("first_peak", {})
    low, high = paired.get("ci95") or (None, None)
    scalars.update(paired_first_peak_mean=_number(paired.get("mean")),
                   paired_first_peak_ci95_low=_number(low),
                   paired_first_peak_ci95_high=_number(high),
                   runs=float(summary["runs"]), epochs=float(summary["epochs"]),
                   cuda=float(str(summary["device"]).startswith("cuda")))
    return {"scalars": {k: scalars[k] for k in CNN_SCALARS}, "transitions": [],
            "states": {"occupation": [], "laplace_weight": []},
            "wall_time_s": time.perf_counter() - started,
            "cpu_time_s": time.process_time() - cpu_started}
