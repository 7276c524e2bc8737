"""Bounded, decimating history of an ensemble run.

Two series share one clock.  Ensemble scalars are recorded every ``stride`` steps (initially
``record_every``); when more than ``MAX_SCALAR_POINTS`` are kept, every second one is dropped
and ``stride`` doubles.  Per-particle frames are recorded every ``frame_stride`` steps (a
multiple of ``stride``) until ``max_frames`` are kept — as many as ``budget_bytes`` holds, at
least ``min_frames`` — then every second frame is dropped and ``frame_stride`` doubles.  So
memory stays within the budget however long the run and whatever N, both series cover the
whole run evenly, and the scalar series keeps its resolution when N is large (per-particle
frames are the costly part of a record: at N = 10⁶ one frame is 40 MB).  The arrays of dropped
frames are reused for later ones, so recording does not fault in fresh memory each time.
Per-particle arrays need a fixed particle count: when N changes they restart, scalar series go on.
"""
from __future__ import annotations

import numpy as np

PER_PARTICLE = ("positions", "loss", "lyapunov", "basin", "ghost_mass", "f_ghost")
MAX_SCALAR_POINTS = 4096


class History:
    """Recorded scalars and frames; see module docstring.

    Parameters
    ----------
    record_every : int
        Initial stride in steps of both series.
    budget_bytes : int
        Memory allowed for per-particle frames; sets ``max_frames`` from the frame size.
    min_frames : int
        Frames kept even when they exceed the budget (the start and the latest state).
    """

    def __init__(self, record_every: int, budget_bytes: int = 256 * 2**20, min_frames: int = 2):
        self.base_stride = int(record_every)
        self.stride = int(record_every)
        self.frame_stride = int(record_every)
        self.budget_bytes = int(budget_bytes)
        self.min_frames = int(min_frames)
        self.max_frames = self.min_frames
        self.steps: list[int] = []
        self.frames: dict[str, list[np.ndarray]] = {}
        self.frame_steps: list[int] = []
        self.scalars: dict[str, list[float]] = {}
        self.n_particles = -1
        self._spare: dict[str, list[np.ndarray]] = {}   # arrays of dropped frames, for reuse

    def due(self, step: int) -> bool:
        """Whether ``step`` is recorded (its scalars, and a frame if :meth:`frame_due`)."""
        return step % self.stride == 0

    def frame_due(self, step: int) -> bool:
        return step % self.frame_stride == 0

    def record(self, step: int, per_particle: dict[str, np.ndarray] | None,
               scalars: dict[str, float]) -> None:
        """Record ``scalars`` at ``step`` and, when given (pass them when :meth:`frame_due`),
        a per-particle frame."""
        if per_particle is not None:
            self._record_frame(step, per_particle)
        self.steps.append(step)
        for key, value in scalars.items():
            self.scalars.setdefault(key, []).append(float(value))
        if len(self.steps) > MAX_SCALAR_POINTS:
            self.stride *= 2
            keep = [i for i, s in enumerate(self.steps) if s % self.stride == 0]
            self.steps = [self.steps[i] for i in keep]
            self.scalars = {k: [v[i] for i in keep] for k, v in self.scalars.items()}
            if self.frame_stride < self.stride:
                self._thin_frames(self.stride)

    def _record_frame(self, step: int, per_particle: dict[str, np.ndarray]) -> None:
        n = per_particle["positions"].shape[0]
        if n != self.n_particles:
            self.frames, self.frame_steps, self._spare = {}, [], {}
            self.n_particles = n
            bytes_per_frame = sum(a.nbytes for a in per_particle.values())
            self.max_frames = max(self.min_frames, self.budget_bytes // max(bytes_per_frame, 1))
        for key, array in per_particle.items():
            self.frames.setdefault(key, []).append(self._copy(key, array))
        self.frame_steps.append(step)
        if len(self.frame_steps) > self.max_frames:
            self._thin_frames(2 * self.frame_stride)

    def _thin_frames(self, frame_stride: int) -> None:
        """Keep the frames at multiples of the new ``frame_stride``; the others' arrays become
        spares."""
        self.frame_stride = frame_stride
        keep = {i for i, s in enumerate(self.frame_steps) if s % frame_stride == 0}
        self.frame_steps = [s for i, s in enumerate(self.frame_steps) if i in keep]
        for key, frames in self.frames.items():
            self._spare.setdefault(key, []).extend(
                f for i, f in enumerate(frames) if i not in keep)
            self.frames[key] = [f for i, f in enumerate(frames) if i in keep]

    def _copy(self, key: str, array: np.ndarray) -> np.ndarray:
        spare = self._spare.get(key)
        if spare:  # same N (the pool restarts with N), same key: same shape and dtype
            buffer = spare.pop()
            np.copyto(buffer, array)
            return buffer
        return np.array(array, copy=True)

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

    def copy(self) -> "History":
        """An independent copy (its frames copied: recording reuses the arrays of dropped
        frames); the spare arrays are not copied."""
        twin = History.__new__(History)
        twin.__dict__ = dict(self.__dict__)
        twin.steps = list(self.steps)
        twin.frame_steps = list(self.frame_steps)
        twin.scalars = {key: list(values) for key, values in self.scalars.items()}
        twin.frames = {key: [frame.copy() for frame in frames]
                       for key, frames in self.frames.items()}
        twin._spare = {}
        return twin

    def clear(self) -> None:
        self.__init__(self.base_stride, self.budget_bytes, self.min_frames)
