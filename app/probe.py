"""One followed particle: a start point clicked on the landscape, run with the ensemble's
dynamics beside it (engine process side; nothing here imports Qt).

The probe is a :class:`engine.simulation.Simulation` of one particle with the same preset and
seed, started at the clicked point (initial spread 0) and advanced in lockstep with the
ensemble: every chunk the ensemble takes, the probe takes in up to :data:`POINTS_PER_CHUNK`
pieces, so its path has points between frames even at thousands of steps per frame.  Its path
and loss are kept whole, thinned to every other point when they pass :data:`MAX_POINTS` (the
same rule as the ensemble series), so a long run still shows the descent from the start point.
"""
from __future__ import annotations

import numpy as np

from engine.presets import Preset, PresetError
from engine.simulation import Simulation

POINTS_PER_CHUNK = 16
MAX_POINTS = 4096


def probe_preset(preset: Preset, x: float, y: float) -> Preset:
    """``preset`` for one particle starting exactly at (x, y)."""
    return preset.with_changes(ensemble={"particles": 1, "init_mean": (float(x), float(y)),
                                         "init_std": (0.0, 0.0), "init_uniform": False})


class Probe:
    """A single particle from ``start`` under ``preset``'s dynamics; ``structure`` (when
    given) is attached so the probe runs the same compiled copy of the step loop as the
    ensemble (no second compilation)."""

    def __init__(self, preset: Preset, start: tuple[float, float], structure=None,
                 step: int = 0):
        self.start = (float(start[0]), float(start[1]))
        self.offset = int(step)  # the ensemble's step when the probe started
        self.sim = Simulation(probe_preset(preset, *self.start))
        self._structure = structure
        if structure is not None:
            self.sim.attach_structure(structure)
        self._restart()

    def _restart(self) -> None:
        self.steps: list[int] = []
        self.positions: list[tuple[float, float]] = []
        self.loss: list[float] = []
        self._note()

    def _note(self) -> None:
        sim = self.sim
        x, y = (float(v) for v in sim.positions[0])
        self.steps.append(self.offset + int(sim.step))
        self.positions.append((x, y))
        self.loss.append(float(sim.out[0, 0]))
        if len(self.steps) > MAX_POINTS:  # bounded: keep every other point, and the last
            last = (self.steps[-1], self.positions[-1], self.loss[-1])
            self.steps, self.positions, self.loss = (self.steps[::2], self.positions[::2],
                                                     self.loss[::2])
            if self.steps[-1] != last[0]:
                self.steps.append(last[0])
                self.positions.append(last[1])
                self.loss.append(last[2])

    def advance(self, steps: int) -> None:
        """``steps`` steps in up to :data:`POINTS_PER_CHUNK` pieces, a path point after each."""
        remaining = int(steps)
        piece = max(1, -(-remaining // POINTS_PER_CHUNK))
        while remaining > 0:
            n = min(piece, remaining)
            self.sim.advance(n)
            remaining -= n
            self._note()

    def update_params(self, changes: dict) -> bool:
        """Follow a live change of the ensemble (N excepted); False when the probe cannot."""
        changes = {k: v for k, v in changes.items() if k != "particles"}
        if not changes:
            return True
        try:
            self.sim.update_params(**changes)
        except PresetError:
            return False
        return True

    def reset(self) -> None:
        """Back to the start point (the ensemble's Reset)."""
        self.sim.reset()
        self.offset = 0
        self._restart()

    def payload(self) -> dict:
        """What a frame carries: the start point, the path (K, 2), its steps and losses."""
        return {"start": np.array(self.start), "steps": np.array(self.steps, dtype=np.int64),
                "positions": np.array(self.positions, dtype=np.float64).reshape(-1, 2),
                "loss": np.array(self.loss, dtype=np.float64)}
