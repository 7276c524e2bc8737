"""The temperature ladder of replica exchange (parallel tempering): ``[ensemble] replicas`` in a
preset, its validation and its round trip to TOML.

::

    [ensemble]
    replicas = { temperatures = [0.1, 0.2, 0.4, 0.8], swap_every = 10 }   # the rungs, listed
    replicas = { count = 4, t_max = 0.8, swap_every = 10 }                # a geometric ladder

The first rung is the target: ``dynamics.temperature`` is its temperature (a listed ladder must
start there).  A geometric ladder has ``T_k = T (t_max/T)^{k/(K−1)}``, ``k = 0 … K−1``, which
gives neighbouring rungs the same ratio and so, on a landscape whose energy fluctuations grow
with T as a harmonic one's do, about the same swap acceptance (Kofke 2002); ``count`` defaults
to 4 and ``t_max`` to ``8 T``.  When T changes (a live change, a schedule) every rung scales
with it: the ratios ``T_k/T_0`` are the ladder.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

DEFAULT_COUNT = 4
DEFAULT_T_MAX_RATIO = 8.0
MAX_RUNGS = 64
DEFAULT_SWAP_EVERY = 10
KEYS = ("temperatures", "count", "t_max", "swap_every")


@dataclass(frozen=True)
class ReplicaSpec:
    """A ladder given as ``temperatures`` or as ``(count, t_max)``; ``swap_every`` steps
    between neighbour swap attempts."""

    temperatures: tuple[float, ...] | None = None
    count: int | None = None
    t_max: float | None = None
    swap_every: int = DEFAULT_SWAP_EVERY

    @property
    def rungs(self) -> int:
        return len(self.temperatures) if self.temperatures is not None else \
            (self.count or DEFAULT_COUNT)

    def ratios(self, temperature: float) -> np.ndarray:
        """``T_k / T_0`` of every rung, for a preset whose ``dynamics.temperature`` is
        ``temperature`` (the ladder's own first rung)."""
        if self.temperatures is not None:
            ladder = np.asarray(self.temperatures, dtype=float)
            return ladder / ladder[0]
        t_max = self.t_max if self.t_max is not None else DEFAULT_T_MAX_RATIO * temperature
        k = np.arange(self.rungs) / (self.rungs - 1)
        return (t_max / temperature) ** k

    def ladder(self, temperature: float, lowest: float | None = None) -> np.ndarray:
        """The rungs' temperatures of a preset whose ``dynamics.temperature`` is
        ``temperature``, when the lowest rung is at ``lowest`` (default: ``temperature``; a
        schedule's current value otherwise)."""
        return (temperature if lowest is None else lowest) * self.ratios(temperature)

    def scaled(self, old: float, new: float) -> "ReplicaSpec":
        """The ladder after the lowest temperature changed from ``old`` to ``new``, ratios
        kept (the lowest rung exactly ``new``)."""
        if self.temperatures is not None:
            return replace(self, temperatures=(new,) + tuple(
                t * new / old for t in self.temperatures[1:]))
        if self.t_max is not None:
            return replace(self, t_max=self.t_max * new / old)
        return self


def parse_replicas(raw: Any, temperature: float, particles: int, max_particles: int,
                   number: Callable, integer: Callable, table: Callable, unknown: Callable,
                   fail: Callable) -> ReplicaSpec:
    """Validate ``ensemble.replicas`` (the preset reader's checks are passed in, so errors name
    the file, key and value as every preset error does)."""
    key = "ensemble.replicas"
    data = table(raw, key)
    unknown(data, set(KEYS), key)
    if not temperature > 0:
        raise fail("dynamics.temperature", f"= {temperature!r}: replica exchange needs the "
                   "lowest rung's temperature > 0")
    swap_every = integer(data.get("swap_every", DEFAULT_SWAP_EVERY), f"{key}.swap_every",
                         low=1, high=10**9)
    if "temperatures" in data:
        for other in ("count", "t_max"):
            if other in data:
                raise fail(f"{key}.{other}", "give either temperatures or count/t_max, not both")
        listed = data["temperatures"]
        if not isinstance(listed, list) or not 2 <= len(listed) <= MAX_RUNGS:
            raise fail(f"{key}.temperatures", f"= {listed!r}: expected a list of 2 to "
                       f"{MAX_RUNGS} temperatures")
        ladder = tuple(number(t, f"{key}.temperatures[{i}]", low=0, low_open=True, high=1e6)
                       for i, t in enumerate(listed))
        if ladder[0] != temperature:
            raise fail(f"{key}.temperatures[0]", f"= {ladder[0]!r}: the lowest rung is the "
                       f"target, so it must equal dynamics.temperature = {temperature!r}")
        for i in range(1, len(ladder)):
            if ladder[i] < ladder[i - 1]:
                raise fail(f"{key}.temperatures[{i}]", f"= {ladder[i]!r}: the ladder must "
                           f"not decrease (previous rung {ladder[i - 1]!r})")
        spec = ReplicaSpec(temperatures=ladder, swap_every=swap_every)
    else:
        count = integer(data["count"], f"{key}.count", low=2, high=MAX_RUNGS) \
            if "count" in data else None
        t_max = None
        if "t_max" in data:
            t_max = number(data["t_max"], f"{key}.t_max", low=0, low_open=True, high=1e6)
            if t_max < temperature:
                raise fail(f"{key}.t_max", f"= {t_max!r}: must be >= the lowest rung's "
                           f"dynamics.temperature = {temperature!r}")
        spec = ReplicaSpec(count=count, t_max=t_max, swap_every=swap_every)
    if particles * spec.rungs > max_particles:
        raise fail(key, f"{spec.rungs} rungs × ensemble.particles = {particles} exceed "
                   f"{max_particles} particles in all")
    return spec


def replicas_to_dict(spec: ReplicaSpec) -> dict:
    """The TOML table of ``spec``, in the form it was given (so a preset saves as loaded)."""
    out: dict[str, Any] = {"swap_every": spec.swap_every}
    if spec.temperatures is not None:
        out["temperatures"] = list(spec.temperatures)
    if spec.count is not None:
        out["count"] = spec.count
    if spec.t_max is not None:
        out["t_max"] = spec.t_max
    return out
