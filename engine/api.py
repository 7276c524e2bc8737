"""Headless Python API: the same operations as the CLI, for scripts and tests."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .export import write_csv, write_json, write_npz
from .presets import Preset
from .simulation import Simulation


def run_preset(preset: Preset, out: str | Path | None = None, steps: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> Simulation:
    """Run ``preset`` for ``steps`` (default ``preset.run.steps``); optionally write ``out``.

    ``out`` ending in ``.npz`` gets the DESIGN §9 arrays, ``.csv`` the long-format table.
    Returns the finished :class:`Simulation` for further inspection.
    """
    sim = Simulation(preset)
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
    }


def structure_info(preset: Preset) -> dict:
    """Minima, saddles and Eyring–Kramers times of the preset's landscape (DESIGN §10)."""
    from .diagnostics.structure import analyse
    return analyse(preset).to_json()
