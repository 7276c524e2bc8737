"""Schedules of the step size η and the temperature T (``[dynamics.schedule]`` in a preset).

::

    [dynamics.schedule]
    every = 100                       # the values change at multiples of this many steps
    [dynamics.schedule.lr]
    shape = "cosine"                  # constant, step, cosine, linear
    end = 0.001                       # cosine and linear: the value reached at step `steps`
    steps = 20000
    [dynamics.schedule.temperature]
    shape = "step"                    # step: × factor every `interval` steps
    factor = 0.5
    interval = 5000

The value starts from the preset's own (``dynamics.lr``, ``dynamics.temperature``) and is a
function of the global step only: constant ``v₀``; step ``v₀ · factor^⌊t/interval⌋``; cosine
``end + (v₀ − end)(1 + cos(π min(t, S)/S))/2``; linear ``v₀ + (end − v₀) min(t, S)/S``.  It is
piecewise constant: the value of step ``t`` is the schedule's at ``every·⌊t/every⌋``, and
``Simulation.advance`` cuts its compiled chunks at those multiples, so a run is the same bit for
bit however ``advance`` is called (and a checkpoint needs no schedule state).  The Lyapunov
estimate, the clock (η per step) and T_eff use the scheduled values; the recorded ``lr`` and
``temperature`` series show them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

SHAPES = ("constant", "step", "cosine", "linear")
SCHEDULED = ("lr", "temperature")


@dataclass(frozen=True)
class ParamSchedule:
    shape: str = "constant"
    end: float = 0.0
    steps: int = 1
    factor: float = 0.5
    interval: int = 1000

    def value(self, start: float, step: int) -> float:
        if self.shape == "step":
            return start * self.factor ** (step // self.interval)
        if self.shape in ("cosine", "linear"):
            progress = min(step, self.steps) / self.steps
            if self.shape == "linear":
                return start + (self.end - start) * progress
            return self.end + (start - self.end) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return start


@dataclass(frozen=True)
class Schedule:
    every: int = 100
    lr: ParamSchedule | None = None
    temperature: ParamSchedule | None = None

    def segment_start(self, step: int) -> int:
        return step - step % self.every


def scheduled(dynamics, step: int):
    """``dynamics`` (a DynamicsSpec) with η and T of ``step`` (itself without a schedule)."""
    schedule = dynamics.schedule
    if schedule is None:
        return dynamics
    at = schedule.segment_start(step)
    changes = {name: getattr(schedule, name).value(getattr(dynamics, name), at)
               for name in SCHEDULED if getattr(schedule, name) is not None}
    return replace(dynamics, **changes) if changes else dynamics


def parse_schedule(raw: Any, number: Callable, integer: Callable, string: Callable,
                   table: Callable, unknown: Callable) -> Schedule:
    """Validate ``[dynamics.schedule]`` with the preset reader's checks (errors name the file,
    the dotted key and the value)."""
    key = "dynamics.schedule"
    raw = table(raw, key)
    unknown(raw, {"every", *SCHEDULED}, key)
    every = integer(raw.get("every", Schedule.every), f"{key}.every", low=1, high=10**9)
    parsed = {}
    for name in SCHEDULED:
        if name not in raw:
            continue
        sub = f"{key}.{name}"
        item = table(raw[name], sub)
        unknown(item, {"shape", "end", "steps", "factor", "interval"}, sub)
        d = ParamSchedule()
        parsed[name] = ParamSchedule(
            shape=string(item.get("shape", d.shape), f"{sub}.shape", SHAPES),
            end=number(item.get("end", d.end), f"{sub}.end", low=0,
                       high=1e3 if name == "lr" else 1e6),
            steps=integer(item.get("steps", d.steps), f"{sub}.steps", low=1, high=10**12),
            factor=number(item.get("factor", d.factor), f"{sub}.factor", low=0, low_open=True,
                          high=1e3),
            interval=integer(item.get("interval", d.interval), f"{sub}.interval", low=1,
                             high=10**12))
    return Schedule(every, **parsed)


def schedule_to_dict(schedule: Schedule) -> dict:
    """The TOML table of a schedule (every field of each scheduled parameter)."""
    out: dict = {"every": schedule.every}
    for name in SCHEDULED:
        item = getattr(schedule, name)
        if item is not None:
            out[name] = {"shape": item.shape, "end": item.end, "steps": item.steps,
                         "factor": item.factor, "interval": item.interval}
    return out
