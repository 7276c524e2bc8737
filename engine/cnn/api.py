"""Python API of the CNN lab: ``run_cnn(preset, out=…)`` trains, writes the NPZ, its JSON
summary and the PNG figures next to it, and returns the summary.

NPZ fields: every metric as ``(E+1, M)`` (rows are epochs, columns models, arm-major: model
``a·R + r`` is run ``r`` of arm ``a``), ``epochs``, ``arms``, ``model_ghosts (M,)``,
``model_run (M,)``, ``diag_epochs``, ``pca_epochs (S,)``, ``pca_coords (S, M, 2)``,
``pca_explained (2,)``, per-model peak epochs (``first_peak`` … NaN = none) and ``preset``
(the resolved preset as TOML).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..export import write_json, write_npz
from .config import CnnPreset, dumps_cnn
from .report import summarise, write_figures
from .trainer import CnnExperiment


def with_overrides(preset: CnnPreset, runs: int | None = None,
                   epochs: int | None = None) -> CnnPreset:
    training = preset.training
    if runs is not None:
        training = replace(training, runs=int(runs))
    if epochs is not None:
        training = replace(training, epochs=int(epochs))
    return replace(preset, training=training)


def experiment_arrays(experiment: CnnExperiment, summary: dict) -> dict[str, np.ndarray]:
    metrics = experiment.metrics()
    pca_epochs, coords, explained = experiment.pca()
    arrays = dict(metrics)
    arrays.update(
        epochs=np.arange(metrics["test_loss"].shape[0]),
        arms=np.asarray(experiment.arms),
        model_ghosts=np.asarray(experiment.ghosts),
        model_run=np.tile(np.asarray(experiment.run_ids), len(experiment.arms)),
        diag_epochs=experiment.diag_epochs,
        pca_epochs=pca_epochs, pca_coords=coords, pca_explained=explained,
        preset=np.asarray(dumps_cnn(experiment.preset)))
    for key, values in summary["per_run"].items():
        arrays[key] = values
    return arrays


def run_cnn(preset: CnnPreset, out: str | Path | None = None, device: str | None = None,
            progress=None, cancelled=None, figures: bool = True) -> tuple[dict, CnnExperiment]:
    """Train the preset's experiment; with ``out``, write ``out`` (NPZ), ``<out>.json`` and
    the figures ``<stem>_bands.png`` / ``_peaks.png`` / ``_diagnostics.png``."""
    start = time.perf_counter()
    experiment = CnnExperiment(preset, device)
    experiment.run(progress, cancelled)
    seconds = time.perf_counter() - start
    summary = summarise(experiment.metrics(), preset, experiment.arms,
                        len(experiment.run_ids), seconds, str(experiment.device))
    if out is not None:
        out = Path(out)
        write_npz(out, experiment_arrays(experiment, summary))
        write_json(out.with_suffix(".json"), summary)
        if figures:
            summary["figures"] = [str(p) for p in write_figures(
                experiment.metrics(), summary, out.with_suffix(""))]
    return summary, experiment


def load_experiment(npz: str | Path) -> tuple[CnnPreset, tuple[int, ...], int, dict]:
    """A finished experiment's NPZ: its preset, arms, runs per arm and per-epoch metrics
    (each ``(epochs + 1, arms × runs)``, the arms' columns one after the other)."""
    from .config import loads_cnn
    with np.load(npz) as stored:
        arrays = {key: stored[key] for key in stored.files}
    preset = loads_cnn(str(arrays["preset"]), str(npz))
    arms = tuple(int(a) for a in arrays["arms"])
    runs = arrays["test_loss"].shape[1] // len(arms)
    metrics = {key: value for key, value in arrays.items()
               if value.ndim == 2 and value.shape == arrays["test_loss"].shape}
    return preset, arms, runs, metrics


def redraw_figures(npz: str | Path, stem: str | Path) -> list[Path]:
    """The figures of a finished experiment from its NPZ alone (the summary is recomputed from
    the stored metrics and preset), written as ``<stem>_*.png``."""
    preset, arms, runs, metrics = load_experiment(npz)
    summary = summarise(metrics, preset, arms, runs)
    return write_figures(metrics, summary, Path(stem))
