"""Headless Python API: the same operations as the CLI, for scripts and tests."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from .export import csv_bytes, npz_bytes, prepare_output, publish_pair
from .presets import Preset, PresetError
from .simulation import Simulation


def run_preset(preset: Preset, out: str | Path | None = None, steps: int | None = None,
               progress: Callable[[int, int], None] | None = None,
               escapes: bool = True, resume: Simulation | None = None,
               checkpoint: str | Path | None = None,
               checkpoint_every: int | None = None) -> Simulation:
    """Run ``preset`` for ``steps`` (default ``preset.run.steps``); optionally write ``out``.

    ``out`` ending in ``.npz`` gets the trajectory arrays, ``.csv`` the long-format table; the
    JSON sidecar ``out + ".json"`` holds :func:`summary`.  The output folder is checked (and
    created) before the run starts, and the two files are published together
    (:func:`engine.export.publish_pair`).  ``escapes`` runs the structure analysis first so
    basins and core-set escape events are tracked.
    ``resume`` continues that simulation (:func:`engine.checkpoint.resume`) instead of
    starting one; ``checkpoint`` writes its state there every ``checkpoint_every`` steps and at
    the end (:func:`engine.checkpoint.advance_with_checkpoints`).
    Returns the finished :class:`Simulation` for further inspection.
    """
    if out is not None:
        out = prepare_output(out)
        if out.suffix not in (".npz", ".csv"):
            raise ValueError(f"{out}: the output must end in .npz or .csv")
    sim = Simulation(preset) if resume is None else resume
    if escapes and resume is None:
        from .diagnostics.structure import StructureError, analyse
        try:
            structure = analyse(preset, sim=sim)
        except StructureError as exc:
            raise PresetError(preset.source, "landscape", str(exc)) from None
        sim.attach_structure(structure)
    total = preset.run.steps if steps is None else int(steps)
    if checkpoint is None:
        sim.advance(total, progress=progress)
    else:
        from .checkpoint import advance_with_checkpoints
        advance_with_checkpoints(sim, total, checkpoint, checkpoint_every, progress)
    if out is not None:
        run_id = uuid.uuid4().hex
        arrays = sim.trajectory_arrays()
        arrays["run_id"] = np.array(run_id)
        data = csv_bytes(arrays) if out.suffix == ".csv" else npz_bytes(arrays)
        publish_pair(out, data, {"run_id": run_id, "file": out.name, **summary(sim)})
    return sim


def divergence_summary(sim: Simulation) -> dict:
    """Particles frozen because their state left the finite numbers: how many, and the first
    recorded step at which the record saw one (records are ``stride`` steps apart)."""
    series = sim.history.scalar_series()
    frozen = int(len(sim.alive) - np.count_nonzero(sim.alive))
    first = None
    counts = series.get("n_frozen")
    if frozen and counts is not None and counts.size:
        seen = np.flatnonzero(counts > 0)
        first = int(series["steps"][seen[0]]) if seen.size else int(sim.step)
    return {"frozen": frozen, "particles": int(len(sim.alive)), "first_seen_step": first,
            "record_stride_steps": int(sim.history.stride)}


def summary(sim: Simulation) -> dict:
    """Ensemble summary of a finished run (the JSON sidecar of ``run``).  Frozen (diverged)
    particles are left out of every statistic and counted in ``divergence``."""
    with np.errstate(all="ignore"):  # non-finite series of diverged runs are reported as null
        return _summary(sim)


def _summary(sim: Simulation) -> dict:
    frame = sim.snapshot()
    alive = frame.alive
    return {
        "preset": sim.preset.name, "steps": sim.step, "time": sim.time,
        "particles": int(alive.size), "frozen": frame.n_frozen,
        "loss_mean": float(frame.loss[alive].mean()) if alive.any() else None,
        "time_avg_loss_mean": float(frame.time_avg_loss[alive].mean()) if alive.any() else None,
        "grad_norm_mean": float(frame.grad_norm[alive].mean()) if alive.any() else None,
        "lyapunov_mean": float(frame.lyapunov[alive].mean()) if alive.any() else None,
        "tangent_lyapunov_mean": float(frame.tangent_lyapunov[alive].mean())
        if alive.any() else None,
        "effective_temperature": frame.effective_temperature,
        "vanishing_change_mean": float(sim.vanishing_change()[alive].mean())
        if alive.any() else None,
        "measure": measure_summary(sim),
        "escapes": escape_summary(sim),
        "mixing": mixing_summary(sim),
        "divergence": divergence_summary(sim),
        # replica exchange (engine.replica_exchange): swap acceptance and round trips
        **({"replica_exchange": sim.replica_summary()} if hasattr(sim, "replica_summary")
           else {}),
    }


def measure_summary(sim: Simulation, bins: int = 64, burn_in_fraction: float = 0.2) -> dict:
    """Pooled empirical measure of the recorded frames after a burn-in (the first
    ``burn_in_fraction`` of them) vs the Gibbs density at the effective temperature: total
    variation and KL on the grid (:class:`engine.reporters.MeasureReporter`, docs/science.md
    § 3).  From the history, which checkpoints keep, so a resumed run reports what an
    uninterrupted one does."""
    from .reporters import MeasureReporter
    frames = sim.history.particle_arrays()
    positions = frames.get("positions")
    reporter = MeasureReporter(sim, bins)
    if positions is None or positions.ndim != 3 or not reporter.temperature > 0:
        return {"temperature": reporter.temperature, "tv": None, "kl": None}
    first = int(burn_in_fraction * positions.shape[0])
    for step, frame in zip(frames["steps"][first:], positions[first:]):
        reporter.add(int(step), frame)
    return {**reporter.summary(), "frames_pooled": positions.shape[0] - first}


def escape_summary(sim: Simulation) -> dict | None:
    """Measured escape statistics beside the Eyring–Kramers and Laplace predictions."""
    from .diagnostics.escapes import occupation
    if sim.structure is None:
        return None
    structure = sim.structure
    n_states = len(structure.minima)
    log = sim.escape_log
    table = log.transition_table(sim.step)
    kramers = {(k["from"], k["to"]): k for k in structure.kramers}
    for pair in table["pairs"]:
        predicted = kramers.get((pair["from"], pair["to"]), {})
        pair["kramers_mfpt_steps"] = predicted.get("mfpt_steps")
        pair["mfpt_time"] = pair["mfpt_steps"] * structure.lr
    passage = log.first_passage(sim.step)
    passage.pop("times", None)
    return {"events": log.total, "events_retained": log.retained,
            "events_dropped": sim.events_dropped,
            "transitions": table["pairs"], "first_passage_from_start": passage,
            "occupation": occupation(sim.last_core[sim.alive.astype(bool)], n_states),
            "laplace_weights": structure.weights.tolist(),
            # the equivalent Langevin temperature and step the predictions are made at
            "prediction_temperature": structure.temperature, "prediction_lr": structure.lr}


def mixing_summary(sim: Simulation) -> dict:
    """Integrated autocorrelation times (in recorded frames and steps) of the ensemble-mean
    loss and of the mean position, from the recorded history."""
    from .diagnostics.mixing import integrated_autocorrelation_time
    series = sim.history.scalar_series()
    frames = sim.history.particle_arrays()
    stride, frame_stride = sim.history.stride, sim.history.frame_stride
    out = {"record_stride_steps": stride, "frame_stride_steps": frame_stride}
    if series["steps"].size > 8 and np.all(np.isfinite(series["loss_mean"])):
        out["loss_mean_iat_frames"] = integrated_autocorrelation_time(series["loss_mean"])
        out["loss_mean_iat_steps"] = out["loss_mean_iat_frames"] * stride
    positions = frames.get("positions")
    if positions is not None and positions.ndim == 3 and positions.shape[0] > 8:
        # per-particle trajectories, averaged over the particles whose whole record is finite
        finite = (np.all(np.isfinite(positions), axis=(0, 2))
                  & np.all(np.isfinite(frames["loss"]), axis=0))
        if not finite.any():
            return out
        out["x_iat_frames"] = integrated_autocorrelation_time(positions[:, finite, 0])
        out["loss_iat_frames"] = integrated_autocorrelation_time(frames["loss"][:, finite])
        for key in ("x_iat", "loss_iat"):
            out[f"{key}_steps"] = out[f"{key}_frames"] * frame_stride
    return out


def structure_info(preset: Preset) -> dict:
    """Minima, saddles and Eyring–Kramers times of the preset's landscape (``engine info``)."""
    from .diagnostics.structure import StructureError, analyse
    from .kinds import kind_named
    try:
        info = analyse(preset).to_json()
    except StructureError as exc:
        raise PresetError(preset.source, "landscape", str(exc)) from None
    kind = kind_named(preset.dynamics.kind)
    for minimum in info["minima"]:  # e.g. Adam's preconditioned sharpness and its limit
        extra = kind.stability(minimum["hessian"], preset.dynamics)
        if extra:
            minimum[f"{kind.name}_stability"] = extra
    replicas = preset.ensemble.replicas
    if replicas is not None:  # the ladder a run uses (its swap statistics: the run summary)
        info["replica_exchange"] = {
            "temperatures": replicas.ladder(preset.dynamics.temperature).tolist(),
            "swap_every": replicas.swap_every}
    return info
