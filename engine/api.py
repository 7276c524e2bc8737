"""Headless Python API: the same operations as the CLI, for scripts and tests."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .export import write_csv, write_json, write_npz
from .presets import Preset
from .simulation import Simulation


def run_preset(preset: Preset, out: str | Path | None = None, steps: int | None = None,
               progress: Callable[[int, int], None] | None = None,
               escapes: bool = True) -> Simulation:
    """Run ``preset`` for ``steps`` (default ``preset.run.steps``); optionally write ``out``.

    ``out`` ending in ``.npz`` gets the DESIGN §9 arrays, ``.csv`` the long-format table; the
    JSON sidecar ``out + ".json"`` holds :func:`summary`.  ``escapes`` runs the structure
    analysis first so basins and core-set escape events are tracked.
    Returns the finished :class:`Simulation` for further inspection.
    """
    sim = Simulation(preset)
    if escapes:
        from .diagnostics.structure import analyse
        sim.attach_structure(analyse(preset, sim=sim))
    total = preset.run.steps if steps is None else int(steps)
    sim.advance(total, progress=progress)
    if out is not None:
        out = Path(out)
        arrays = sim.trajectory_arrays()
        if out.suffix == ".csv":
            write_csv(out, arrays)
        else:
            write_npz(out, arrays)
        write_json(out.with_suffix(out.suffix + ".json"), summary(sim))
    return sim


def summary(sim: Simulation) -> dict:
    """Ensemble summary of a finished run (the JSON sidecar of ``run``)."""
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
    }


def measure_summary(sim: Simulation, bins: int = 64, burn_in_fraction: float = 0.2) -> dict:
    """Pooled empirical measure of the recorded frames after a burn-in vs the Gibbs density at
    the effective temperature: total variation and KL on the grid (DESIGN §7)."""
    from .diagnostics.measure import (EmpiricalMeasure, gibbs_cells, kl_divergence,
                                      total_variation)
    frames = sim.history.particle_arrays()
    positions = frames.get("positions")
    temperature = sim.effective_temperature()
    if positions is None or positions.ndim != 3 or not temperature > 0:
        return {"temperature": temperature, "tv": None, "kl": None}
    first = int(burn_in_fraction * positions.shape[0])
    measure = EmpiricalMeasure(sim.bounds, bins)
    for frame in positions[first:]:
        measure.add(1, frame)
    gibbs = gibbs_cells(sim.evaluate, sim.bounds, bins, temperature)
    density = measure.density()
    return {"temperature": temperature, "bins": bins, "frames_pooled": positions.shape[0] - first,
            "samples": measure.samples, "tv": total_variation(density, gibbs),
            "kl": kl_divergence(density, gibbs)}


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
    if series["steps"].size > 8:
        out["loss_mean_iat_frames"] = integrated_autocorrelation_time(series["loss_mean"])
        out["loss_mean_iat_steps"] = out["loss_mean_iat_frames"] * stride
    if frames.get("positions") is not None and frames["positions"].ndim == 3 and \
            frames["positions"].shape[0] > 8:
        # per-particle x trajectories: average the autocorrelation over particles
        out["x_iat_frames"] = integrated_autocorrelation_time(frames["positions"][:, :, 0])
        out["loss_iat_frames"] = integrated_autocorrelation_time(frames["loss"])
        for key in ("x_iat", "loss_iat"):
            out[f"{key}_steps"] = out[f"{key}_frames"] * frame_stride
    return out


def structure_info(preset: Preset) -> dict:
    """Minima, saddles and Eyring–Kramers times of the preset's landscape (DESIGN §10)."""
    from .diagnostics.structure import analyse
    return analyse(preset).to_json()
