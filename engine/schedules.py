"""Schedules of the step size η, the temperature T and the batch size B (``[dynamics.schedule]``
in a preset).

::

    [dynamics.schedule]
    every = 100                       # the values change at multiples of this many steps
    [dynamics.schedule.lr]
    shape = "warmup_cosine"           # see SHAPES
    warmup = 1000
    end = 0.001
    steps = 20000
    [dynamics.schedule.temperature]
    shape = "expression"
    expr = "v0 * exp(-t / 5000)"      # t: the global step; v0: dynamics.temperature
    [dynamics.schedule.batch_size]
    shape = "step"
    factor = 2.0
    interval = 5000

Each value starts from the preset's own ``v₀`` (``dynamics.lr``, ``dynamics.temperature``,
``dynamics.batch_size``) and is a function of the global step ``t`` only:

* ``constant``: ``v₀``;
* ``step``: ``v₀ · factor^⌊t/interval⌋``;
* ``exponential``: ``v₀ · factor^(t/interval)`` (``factor`` per ``interval`` steps);
* ``cosine``: ``v₀ + (end − v₀)(1 − cos(π min(t, S)/S))/2`` with ``S = steps``;
* ``linear``: ``v₀ + (end − v₀) min(t, S)/S``;
* ``warmup_cosine``: ``v₀ · t/W`` for ``t < W = warmup``, then the cosine from ``v₀`` to ``end``
  over the remaining ``S − W`` steps (Loshchilov & Hutter 2017, with a linear warm-up);
* ``cyclic``: from ``v₀`` to ``end`` and back every ``period`` steps, on a triangular
  (``wave = "triangular"``, Smith 2017) or a raised-cosine (``wave = "cosine"``) wave;
* ``expression``: ``expr``, a formula in ``t`` (the global step, an integer, not the time
  ``t·η``: it is the same for every η) and ``v0``, read by the landscapes' safe parser
  (:mod:`engine.landscapes.expression`: a whitelist grammar, never ``eval``).

The batch size is an integer: the scheduled value is rounded half up, ``⌊v + ½⌋``, and held in
``[1, dynamics.dataset_size]``; it applies to the kinds that use B (``engine.kinds``: sgd, ghost,
adam, rmsprop, adamw) and is ignored by the others, as ``dynamics.batch_size`` is.  η and T must
stay finite and ≥ 0: an expression that leaves that range is an error naming the key, the step
and the value (at load for the steps of ``run.steps``, see :func:`resolve_schedule`).  ``steps``
left out (or 0) is the run's length, ``run.steps``.

Every value is piecewise constant: the value of step ``t`` is the schedule's at
``every·⌊t/every⌋``, and ``Simulation.advance`` cuts its compiled chunks at those multiples, so a
run is the same bit for bit however ``advance`` is called (and a checkpoint needs no schedule
state).  The Lyapunov estimates, the clock (η per step) and T_eff use the scheduled values; the
recorded ``lr``, ``temperature`` and ``batch_size`` series show them.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from .kinds import kind_named
from .landscapes.expression import (_PY_FUNCTIONS, MAX_OPERATIONS, Expression, ExpressionError,
                                    _Parser)

SHAPES = ("constant", "step", "exponential", "cosine", "linear", "warmup_cosine", "cyclic",
          "expression")
WAVES = ("triangular", "cosine")
SCHEDULED = ("lr", "temperature", "batch_size")
EXPRESSION_NAMES = ("t", "v0")  # the names a schedule expression may use
# the range of each scheduled parameter's `end` (and, for η and T, of every scheduled value)
_RANGES = {"lr": (0.0, 1e3), "temperature": (0.0, 1e6), "batch_size": (1.0, 1e5)}
# how many segment starts check_schedule_values evaluates at most (spread evenly over the run)
MAX_CHECKED_SEGMENTS = 4096


class ScheduleError(ValueError):
    """A scheduled value left its parameter's range; names the key, the step and the value."""


@dataclass(frozen=True)
class ParamSchedule:
    shape: str = "constant"
    end: float = 0.0
    steps: int = 0  # cosine, linear, warmup_cosine: S; 0 (or absent) = run.steps, set at load
    factor: float = 0.5
    interval: int = 1000
    warmup: int = 0
    period: int = 1000
    wave: str = "triangular"
    expr: str = ""

    def value(self, start: float, step: int) -> float:
        """The value at global step ``step`` of a parameter whose preset value is ``start``
        (for an expression, NaN where it cannot be evaluated)."""
        if self.shape == "step":
            return start * _power(self.factor, step // self.interval)
        if self.shape == "exponential":
            return start * _power(self.factor, step / self.interval)
        if self.shape == "linear":
            span = max(self.steps, 1)
            return start + (self.end - start) * min(step, span) / span
        if self.shape == "cosine":
            span = max(self.steps, 1)
            return _cosine(start, self.end, min(step, span) / span)
        if self.shape == "warmup_cosine":
            if step < self.warmup:
                return start * step / self.warmup
            decay = max(self.steps - self.warmup, 1)
            return _cosine(start, self.end, min(step - self.warmup, decay) / decay)
        if self.shape == "cyclic":
            phase = (step % self.period) / self.period
            if self.wave == "triangular":
                rise = 1.0 - abs(2.0 * phase - 1.0)
            else:
                rise = 0.5 * (1.0 - math.cos(2.0 * math.pi * phase))
            return start + (self.end - start) * rise
        if self.shape == "expression":
            return _evaluate(_parsed(self.expr), {"t": float(step), "v0": float(start)})
        return start


def _power(factor: float, exponent: float) -> float:
    """``factor ** exponent``, ``inf`` where it overflows (Python raises instead; the range
    check then names the key and the step)."""
    try:
        return factor ** exponent
    except OverflowError:
        return math.inf


def _cosine(start: float, end: float, progress: float) -> float:
    """Half a cosine from ``start`` (progress 0, exactly) to ``end`` (progress 1)."""
    return start + (end - start) * 0.5 * (1.0 - math.cos(math.pi * progress))


@dataclass(frozen=True)
class Schedule:
    every: int = 100
    lr: ParamSchedule | None = None
    temperature: ParamSchedule | None = None
    batch_size: ParamSchedule | None = None

    def segment_start(self, step: int) -> int:
        return step - step % self.every


def batch_size_of(value: float, dataset_size: int) -> int:
    """A scheduled batch size: ``value`` rounded half up, held in ``[1, dataset_size]``."""
    if not math.isfinite(value):
        return dataset_size if value > 0 else 1
    return int(min(max(math.floor(value + 0.5), 1), dataset_size))


def scheduled(dynamics, step: int):
    """``dynamics`` (a DynamicsSpec) with η, T and B of ``step`` (itself without a schedule).
    Raises :class:`ScheduleError` for an η or T outside ``[0, ∞)``."""
    schedule = dynamics.schedule
    if schedule is None:
        return dynamics
    at = schedule.segment_start(step)
    changes = {}
    for name in SCHEDULED:
        item = getattr(schedule, name)
        if item is None:
            continue
        value = item.value(getattr(dynamics, name), at)
        if name == "batch_size":
            if name in kind_named(dynamics.kind).uses:
                changes[name] = batch_size_of(value, dynamics.dataset_size)
            continue
        low, high = _RANGES[name]
        if not low <= value <= high:  # also NaN
            shown = f"expr = {item.expr!r} " if item.shape == "expression" else ""
            raise ScheduleError(f"dynamics.schedule.{name}: {shown}gives {value!r} at step {at} "
                                f"(must be in [{low:g}, {high:g}])")
        changes[name] = value
    return replace(dynamics, **changes) if changes else dynamics


def values_over(dynamics, name: str, steps: np.ndarray) -> np.ndarray:
    """The scheduled value of parameter ``name`` at each of ``steps`` (for plotting: a value that
    cannot be taken is NaN instead of an error)."""
    schedule = dynamics.schedule
    item = None if schedule is None else getattr(schedule, name)
    start = float(getattr(dynamics, name))
    if item is None:
        return np.full(len(steps), start)
    out = np.empty(len(steps))
    for i, step in enumerate(np.asarray(steps, dtype=np.int64).tolist()):
        value = item.value(start, schedule.segment_start(step))
        if name == "batch_size" and math.isfinite(value):
            value = batch_size_of(value, dynamics.dataset_size)
        out[i] = value
    return out


def resolve_schedule(dynamics, run_steps: int, fail: Callable[[str, str], Exception]):
    """``dynamics`` with each schedule's ``steps = 0`` set to the run's length ``run_steps``
    (so ``--set dynamics.schedule.lr.shape=cosine`` decays over the run), checked: a warm-up
    shorter than its schedule, η and T in range at the segment starts of the run
    (:func:`check_schedule_values`)."""
    schedule = dynamics.schedule
    if schedule is None:
        return dynamics
    changes = {}
    for name in SCHEDULED:
        item = getattr(schedule, name)
        if item is not None and item.steps == 0 and item.shape in _SPANNED:
            changes[name] = item = replace(item, steps=max(run_steps, 1))
        if item is not None and item.shape == "warmup_cosine" and item.warmup >= item.steps:
            key = f"dynamics.schedule.{name}"
            raise fail(f"{key}.warmup", f"= {item.warmup}: must be < {key}.steps = "
                       f"{item.steps}")
    if changes:
        dynamics = replace(dynamics, schedule=replace(schedule, **changes))
    check_schedule_values(dynamics, run_steps, fail)
    return dynamics


def check_schedule_values(dynamics, run_steps: int, fail: Callable[[str, str], Exception]) -> None:
    """Raise ``fail(key, message)`` if a scheduled η or T leaves its range at a segment start of
    the first ``run_steps`` steps (at most :data:`MAX_CHECKED_SEGMENTS` starts, spread evenly;
    the simulation checks every segment it runs)."""
    schedule = dynamics.schedule
    if schedule is None:
        return
    segments = run_steps // schedule.every + 1
    picked = np.unique(np.linspace(0, segments - 1, min(segments, MAX_CHECKED_SEGMENTS))
                       .round().astype(np.int64))
    for name in ("lr", "temperature"):
        item = getattr(schedule, name)
        if item is None:
            continue
        low, high = _RANGES[name]
        values = values_over(dynamics, name, picked * schedule.every)
        bad = np.flatnonzero(~((values >= low) & (values <= high)))
        if bad.size:
            k = int(bad[0])
            key, shown = (f"dynamics.schedule.{name}.expr", f"= {item.expr!r}: gives"
                          ) if item.shape == "expression" else (f"dynamics.schedule.{name}",
                                                                f"(shape {item.shape!r}) gives")
            step = int(picked[k]) * schedule.every
            raise fail(key, f"{shown} {float(values[k])!r} at step {step} "
                       f"(must be in [{low:g}, {high:g}])")


# --- expressions ----------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _parsed(text: str) -> Expression:
    """``text`` parsed as a function of :data:`EXPRESSION_NAMES`.  The landscapes' parser with
    ``t`` and ``v0`` as its parameters; its public ``parse`` insists on ``x`` or ``y``, which a
    schedule must not use."""
    parser = _Parser(text, EXPRESSION_NAMES)
    root = parser.parse()
    expression = Expression(tuple(parser.graph.nodes), root, EXPRESSION_NAMES,
                            frozenset(parser.used))
    if expression.depends_on_xy():
        raise ExpressionError("a schedule is a function of t (the step) and v0 only, not of",
                              "x or y")
    if expression.operations > MAX_OPERATIONS:
        raise ExpressionError(f"expression has {expression.operations} distinct operations, "
                              f"above the limit of {MAX_OPERATIONS}")
    return expression


_BINARY = {"add": operator.add, "mul": operator.mul, "div": operator.truediv}


def _evaluate(expression: Expression, names: dict[str, float]) -> float:
    """The value of ``expression`` at ``names`` in float64, NaN where it has none (a division by
    zero, a function outside its domain, an overflow)."""
    values: dict[int, float] = {}
    try:
        for k in expression.reachable:
            node = expression.nodes[k]
            op = node[0]
            if op == "num":
                value = node[1]
            elif op == "param":
                value = names[expression.parameters[node[1]]]
            elif op in _BINARY:
                value = _BINARY[op](values[node[1]], values[node[2]])
            elif op == "neg":
                value = -values[node[1]]
            elif op == "pow":
                value = values[node[1]] ** node[2]
            else:  # ("call", name, a)
                value = _PY_FUNCTIONS[node[1]](values[node[2]])
            values[k] = float(value)
    except (ArithmeticError, ValueError):
        return math.nan
    return values[expression.root]


# --- preset tables --------------------------------------------------------------------------------

_SPANNED = ("cosine", "linear", "warmup_cosine")  # the shapes that run over `steps`
_FIELDS = ("shape", "end", "steps", "factor", "interval", "warmup", "period", "wave", "expr")


def parse_schedule(raw: Any, number: Callable, integer: Callable, string: Callable,
                   table: Callable, unknown: Callable,
                   fail: Callable[[str, str], Exception] | None = None) -> Schedule:
    """Validate ``[dynamics.schedule]`` with the preset reader's checks (errors name the file,
    the dotted key and the value); ``fail(key, message)`` reports a bad expression."""
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
        unknown(item, set(_FIELDS), sub)
        d = ParamSchedule()
        low, high = _RANGES[name]
        schedule = ParamSchedule(
            shape=string(item.get("shape", d.shape), f"{sub}.shape", SHAPES),
            end=number(item.get("end", low if name == "batch_size" else d.end), f"{sub}.end",
                       low=low, high=high),
            steps=integer(item.get("steps", d.steps), f"{sub}.steps", low=0, high=10**12),
            factor=number(item.get("factor", d.factor), f"{sub}.factor", low=0, low_open=True,
                          high=1e3),
            interval=integer(item.get("interval", d.interval), f"{sub}.interval", low=1,
                             high=10**12),
            warmup=integer(item.get("warmup", d.warmup), f"{sub}.warmup", low=0, high=10**12),
            period=integer(item.get("period", d.period), f"{sub}.period", low=2, high=10**12),
            wave=string(item.get("wave", d.wave), f"{sub}.wave", WAVES),
            expr=string(item.get("expr", d.expr), f"{sub}.expr"))
        _check_shape(schedule, sub, fail or (lambda k, m: ValueError(f"{k} {m}")))
        parsed[name] = schedule
    return Schedule(every, **parsed)


def _check_shape(item: ParamSchedule, key: str, fail: Callable[[str, str], Exception]) -> None:
    """What the per-key checks cannot see: an expression that parses, and only there (the
    warm-up is checked against ``steps`` once the run's length is known: resolve_schedule)."""
    if item.shape == "expression":
        if not item.expr.strip():
            raise fail(f"{key}.expr", "missing (shape = 'expression' needs a formula in t and v0)")
        try:
            _parsed(item.expr)
        except ExpressionError as exc:
            raise fail(f"{key}.expr", f"= {item.expr!r}: {exc} (a schedule may use t, the "
                       "step, and v0, the preset's value)") from None
    elif item.expr:
        raise fail(f"{key}.expr", f"= {item.expr!r}: only with shape = 'expression'")


def schedule_to_dict(schedule: Schedule) -> dict:
    """The TOML table of a schedule (every field of each scheduled parameter; ``expr`` only for
    an expression)."""
    out: dict = {"every": schedule.every}
    for name in SCHEDULED:
        item = getattr(schedule, name)
        if item is not None:
            out[name] = {field: getattr(item, field) for field in _FIELDS
                         if field != "expr" or item.shape == "expression"}
    return out
