"""Bounded, decimating history of an ensemble run.

Frames are kept at every ``record_every``-th step until ``max_frames`` is reached; then every
second frame is dropped and the recording stride doubles.  Memory therefore stays below
``max_frames`` frames however long the run, while the whole run stays covered evenly.
Per-particle arrays need a fixed particle count: when N changes they restart, scalar series go on.
"""
from __future__ import annotations

import numpy as np

PER_PARTICLE = ("positions", "loss", "lyapunov", "basin", "ghost_mass", "f_ghost")


class History:
    """Recorded frames; see module docstring.

    Parameters
    ----------
    record_every : int
        Initial stride in steps.
    budget_bytes : int
        Memory allowed for per-particle frames; sets ``max_frames`` from the particle count.
    """

    def __init__(self, record_every: int, budget_bytes: int = 256 * 2**20, min_frames: int = 64):
        self.base_stride = int(record_every)
        self.stride = int(record_every)
        self.budget_bytes = int(budget_bytes)
        self.min_frames = int(min_frames)
        self.max_frames = min_frames
        self.steps: list[int] = []
        self.frames: dict[str, list[np.ndarray]] = {}
        self.frame_steps: list[int] = []
        self.scalars: dict[str, list[float]] = {}
        self.n_particles = -1

    def due(self, step: int) -> bool:
        return step % self.stride == 0

    def record(self, step: int, per_particle: dict[str, np.ndarray],
               scalars: dict[str, float]) -> None:
        n = per_particle["positions"].shape[0]
        if n != self.n_particles:
            self.frames = {}
            self.frame_steps = []
            self.n_particles = n
            bytes_per_frame = sum(a.nbytes for a in per_particle.values())
            self.max_frames = max(self.min_frames, self.budget_bytes // max(bytes_per_frame, 1))
        for key, array in per_particle.items():
            self.frames.setdefault(key, []).append(np.array(array, copy=True))
        self.frame_steps.append(step)
        self.steps.append(step)
        for key, value in scalars.items():
            self.scalars.setdefault(key, []).append(float(value))
        if len(self.steps) > max(self.max_frames, 4096) or len(self.frame_steps) > self.max_frames:
            self._decimate()

    def _decimate(self) -> None:
        self.stride *= 2
        keep_scalar = [i for i, s in enumerate(self.steps) if s % self.stride == 0]
        self.steps = [self.steps[i] for i in keep_scalar]
        self.scalars = {k: [v[i] for i in keep_scalar] for k, v in self.scalars.items()}
        keep = [i for i, s in enumerate(self.frame_steps) if s % self.stride == 0]
        self.frame_steps = [self.frame_steps[i] for i in keep]
        self.frames = {k: [v[i] for i in keep] for k, v in self.frames.items()}

    def scalar_series(self) -> dict[str, np.ndarray]:
        """Ensemble scalars per recorded step, including ``steps``."""
        out = {"steps": np.asarray(self.steps, dtype=np.int64)}
        out.update({k: np.asarray(v) for k, v in self.scalars.items()})
        return out

    def particle_arrays(self) -> dict[str, np.ndarray]:
        """Stacked per-particle frames: ``steps (F,)``, ``positions (F,N,2)``, ``loss (F,N)``…"""
        out = {"steps": np.asarray(self.frame_steps, dtype=np.int64)}
        for key, frames in self.frames.items():
            out[key] = np.stack(frames) if frames else np.empty((0,))
        return out

    def clear(self) -> None:
        self.__init__(self.base_stride, self.budget_bytes, self.min_frames)
