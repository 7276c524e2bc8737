"""Sweep definitions: grid axes, zipped ``--vary`` axes, seeds, and the validated points.

A sweep is the Cartesian product of its axes and ``seeds`` replicates.  Each ``--grid KEY=…``
is one axis (one dimension of the result); repeated ``--vary`` options together form one axis
whose positions set every varied key at once (their zipped meaning, as in ``engine sweep`` with
a table output).  Values are written

* ``v1,v2,v3`` — TOML values, e.g. ``0.2,0.25`` or ``"gd","sgd"`` (bare words are strings);
* ``start:stop:count`` — ``count`` evenly spaced values from ``start`` to ``stop`` inclusive;
* ``log:start:stop:count`` — ``count`` values evenly spaced in log scale.

Ranges of whole numbers whose values are all whole stay integers (``dynamics.batch_size=4:16:4``);
other range values are rounded to 12 significant digits so coordinates read as written
(``0.015``, not ``0.015000000000000001``).

Points are numbered in C order over ``(axes…, seed)``; point ``i`` runs the preset with its
axis values and ``ensemble.seed`` drawn from ``numpy.random.SeedSequence([preset seed, i])``, so
its result depends on neither the worker count, the order of execution nor resuming (a CNN
preset's ``training.seed`` likewise).  Every point is validated (:func:`engine.presets.apply_sets`,
:func:`engine.cnn.config.apply_cnn_sets`) before anything runs.
"""
from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass

import numpy as np
import tomli_w

from ..presets import Preset, PresetError, apply_sets, dumps, parse_set
from .point import CONVERGED_TOL

SEED_DIM = "seed"
VARY_DIM = "vary"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^(log:)?({_NUMBER}):({_NUMBER}):(\d+)$")
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class Axis:
    """One dimension of the sweep: ``keys`` set together to ``values[k]`` at position ``k``."""
    name: str
    keys: tuple[str, ...]
    values: tuple[tuple, ...]

    def __len__(self) -> int:
        return len(self.values)

    def column(self, key: str) -> list:
        j = self.keys.index(key)
        return [row[j] for row in self.values]


def is_cnn(preset) -> bool:
    """Whether ``preset`` is a CNN-lab preset (its points train the ghost-CNN experiment)."""
    from ..cnn.config import CnnPreset
    return isinstance(preset, CnnPreset)


def preset_text(preset) -> str:
    """The preset as the TOML text a worker loads."""
    if is_cnn(preset):
        from ..cnn.config import dumps_cnn
        return dumps_cnn(preset)
    return dumps(preset)


def apply_to(preset, assignments: list[str]):
    """``key=value`` overrides of a landscape or CNN preset, validated."""
    if is_cnn(preset):
        from ..cnn.config import apply_cnn_sets
        return apply_cnn_sets(preset, assignments)
    return apply_sets(preset, assignments)


def seed_key(preset) -> str:
    """The key that seeds a point: ``ensemble.seed``, or a CNN preset's ``training.seed``."""
    return "training.seed" if is_cnn(preset) else "ensemble.seed"


def base_seed(preset) -> int:
    return preset.training.seed if is_cnn(preset) else preset.ensemble.seed


@dataclass(frozen=True)
class Sweep:
    """The preset (with ``--set`` overrides applied), the axes, the seed count and the
    gradient norm under which a particle counts as converged.  A CNN preset's sweep trains on
    ``device`` (``engine cnn --device``); a landscape preset's has none."""
    preset: Preset
    axes: tuple[Axis, ...]
    seeds: int = 1
    converged_tol: float = CONVERGED_TOL
    device: str | None = None

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes) + (SEED_DIM,)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes) + (self.seeds,)

    @property
    def scalars(self) -> tuple[str, ...]:
        """The names of a point's scalar results."""
        if is_cnn(self.preset):
            from .cnn_point import CNN_SCALARS
            return CNN_SCALARS
        from .point import SCALARS
        return SCALARS

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def position(self, index: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(index, self.shape))

    def assignments(self, index: int) -> list[str]:
        """The ``key=value`` settings of point ``index`` (its seed included)."""
        *where, _ = self.position(index)
        sets = []
        for axis, k in zip(self.axes, where):
            sets += [f"{key}={toml_value(v)}" for key, v in zip(axis.keys, axis.values[k])]
        return sets + [f"{seed_key(self.preset)}={point_seed(base_seed(self.preset), index)}"]

    def label(self, index: int) -> str:
        *where, replicate = self.position(index)
        parts = [f"{key}={v}" for axis, k in zip(self.axes, where)
                 for key, v in zip(axis.keys, axis.values[k])]
        return " ".join(parts + [f"seed#{replicate}"])

    def manifest(self) -> dict:
        """Everything that defines the points: a resumed sweep must match it exactly."""
        manifest = {"preset": preset_text(self.preset), "seeds": self.seeds,
                    "converged_tol": self.converged_tol,
                    "axes": [{"name": a.name, "keys": list(a.keys),
                              "values": [list(v) for v in a.values]} for a in self.axes]}
        if self.device is not None:
            manifest["device"] = self.device
        return manifest

    def manifest_json(self) -> str:
        return json.dumps(self.manifest(), sort_keys=True)


def point_seed(base_seed: int, index: int) -> int:
    """``ensemble.seed`` of point ``index``: 63 bits of SeedSequence([base_seed, index])."""
    state = np.random.SeedSequence([int(base_seed), int(index)]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def toml_value(value) -> str:
    """A value as the TOML text ``--set`` reads back to the same value."""
    if isinstance(value, float):
        return repr(value)
    return tomli_w.dumps({"v": value})[4:].strip()


def _range_values(match: re.Match, option: str, spec: str) -> list:
    log, start_text, stop_text, count_text = match.groups()
    start, stop, count = float(start_text), float(stop_text), int(count_text)
    if count < 1:
        raise PresetError(option, spec, "a range needs count >= 1")
    if count == 1 and start != stop:
        raise PresetError(option, spec, "a range of 1 value needs start == stop")
    if log:
        if start <= 0 or stop <= 0:
            raise PresetError(option, spec, "log:start:stop:count needs start > 0 and stop > 0")
        raw = np.geomspace(start, stop, count)
    else:
        raw = np.linspace(start, stop, count)
    whole = all(re.fullmatch(r"[-+]?\d+", t) for t in (start_text, stop_text))
    if whole and all(float(v).is_integer() for v in np.round(raw, 9)):
        return [int(round(v)) for v in raw]
    return [float(f"{v:.12g}") for v in raw]


def parse_values(option: str, spec: str) -> tuple[str, list]:
    """``"dynamics.lr=0.005:0.05:10"`` → ("dynamics.lr", [0.005, …, 0.05])."""
    if "=" not in spec:
        raise PresetError(option, spec, "expected key.path=v1,v2,… or key.path=start:stop:count")
    key, raw = spec.split("=", 1)
    key = key.strip()
    path, _ = parse_set(f"{key}=0")  # checks the key's form
    key = ".".join(path)
    match = _RANGE.match(raw.strip())
    if match:
        values = _range_values(match, option, spec)
    else:
        values = [parse_set(f"{key}={v}")[1] for v in raw.split(",") if v.strip()]
    if not values:
        raise PresetError(option, spec, "no values")
    return key, values


def build_sweep(preset: Preset, grids: list[str] | None = None, varies: list[str] | None = None,
                seeds: int = 1, converged_tol: float = CONVERGED_TOL,
                device: str | None = None) -> Sweep:
    """The sweep of ``--grid`` and ``--vary`` options over ``preset``; every point validated.

    A bad value raises :class:`PresetError` naming the key and the value before anything runs.
    """
    axes: list[Axis] = []
    names: set[str] = set()
    varies = list(varies or [])
    if varies:
        columns = [parse_values("--vary", v) for v in varies]
        first_key, first = columns[0]
        for key, values in columns[1:]:
            if len(values) != len(first):
                raise PresetError("--vary", key, f"has {len(values)} values where {first_key} "
                                                 f"has {len(first)}")
        keys = tuple(k for k, _ in columns)
        name = keys[0] if len(keys) == 1 else VARY_DIM
        axes.append(Axis(name, keys, tuple(zip(*(v for _, v in columns)))))
        names.update(keys)
    for spec in grids or []:
        key, values = parse_values("--grid", spec)
        if key in names:
            raise PresetError("--grid", spec, f"{key} is already varied")
        if len(set(map(repr, values))) != len(values):
            raise PresetError("--grid", spec, "repeats a value")
        names.add(key)
        axes.append(Axis(key, (key,), tuple((v,) for v in values)))
    seeded = seed_key(preset)
    if seeded in names:
        raise PresetError("--grid", seeded, f"seeds come from --seeds (each point's {seeded} "
                                            "is derived from the preset's seed and its index)")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise PresetError("--seeds", str(seeds), "must be an integer >= 1")
    if not (isinstance(converged_tol, (int, float)) and converged_tol >= 0
            and math.isfinite(converged_tol)):
        raise PresetError("--converged-tol", str(converged_tol), "must be a number >= 0")
    if is_cnn(preset) and device is None:
        device = "auto"
    sweep = Sweep(preset, tuple(axes), seeds, float(converged_tol),
                  device if is_cnn(preset) else None)
    if sweep.size > MAX_POINTS:
        raise PresetError("--grid", "", f"{sweep.size} points (at most {MAX_POINTS})")
    validate(sweep)
    return sweep


def validate(sweep: Sweep) -> None:
    """Apply every combination of axis values to the preset (seeds aside: they are always
    valid); the first invalid one raises a :class:`PresetError` naming key and value."""
    for combination in itertools.product(*(a.values for a in sweep.axes)):
        sets = [f"{key}={toml_value(v)}" for axis, row in zip(sweep.axes, combination)
                for key, v in zip(axis.keys, row)]
        apply_to(sweep.preset, sets)
