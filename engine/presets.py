"""Presets: strict TOML loading, validation and exact round-trip saving (README, "Presets").

Every error is a :class:`PresetError` whose message names the file, the dotted key and the value,
e.g. ``presets/x.toml: dynamics.lr = -0.1: must be > 0``.  ``save`` writes every field of the
resolved preset, so ``load(save(p)) == p``.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from .dynamics import BOUNDARIES, NOISE_MODELS
from .kinds import kind_named, kind_names
from .replica_spec import ReplicaSpec, parse_replicas, replicas_to_dict
from .schedules import Schedule, parse_schedule, resolve_schedule, schedule_to_dict

CLASSIFIER_PARAMS = ("alpha", "classes", "teacher_x", "teacher_y", "label_noise")


class PresetError(ValueError):
    """A preset could not be loaded; ``source`` is the file (or ``<string>``), ``key`` dotted."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.message = source, key, message
        where = f"{source}: {key}" if key else source
        # "file: key = value: problem" reads better than "file: key: = value: problem"
        joiner = " " if key and message.startswith("= ") else ": "
        super().__init__(f"{where}{joiner}{message}")


@dataclass(frozen=True)
class LandscapeSpec:
    builtin: str | None = None
    expr: str | None = None
    params: dict[str, float] = field(default_factory=dict)
    bounds: tuple[tuple[float, float], tuple[float, float]] | None = None
    boundary: str = "reflect"
    wall_stiffness: float = 100.0
    max_operations: int | None = None  # an expression's operation budget (None: the default)


@dataclass(frozen=True)
class DynamicsSpec:
    kind: str = "langevin"
    lr: float = 0.01
    temperature: float = 0.0
    batch_size: int = 8
    dataset_size: int = 64
    noise: str = "additive"
    noise_scale: float = 1.0
    noise_cov: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.0), (0.0, 1.0))
    ghosts: int = 0
    ghost_init: float = 0.0
    momentum: float = 0.0
    friction: float = 1.0  # underdamped Langevin's γ (mass 1)
    beta1: float = 0.9  # adam, adamw: the first moment's decay
    beta2: float = 0.999  # adam, adamw, rmsprop: the second moment's decay
    eps: float = 1e-8  # adam, adamw, rmsprop: added to √v
    weight_decay: float = 0.0  # adam, rmsprop: λ x in the gradient; adamw: decoupled η λ x
    schedule: Schedule | None = None  # η and T as functions of the step (engine.schedules)


@dataclass(frozen=True)
class EnsembleSpec:
    particles: int = 1000
    init_mean: tuple[float, float] = (0.0, 0.0)
    init_std: tuple[float, float] = (0.1, 0.1)
    init_uniform: bool = False
    seed: int = 0
    replicas: ReplicaSpec | None = None  # replica exchange's ladder (engine.replica_spec)


@dataclass(frozen=True)
class RunSpec:
    steps: int = 10000
    record_every: int = 10


@dataclass(frozen=True)
class CompareSpec:
    """One ``[[compare]]`` table: a ``label`` and the dynamics keys it overrides (as written)."""
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


MAX_COMPARE = 4  # configurations side by side at most (each runs an engine of its own)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str = ""
    landscape: LandscapeSpec = field(default_factory=LandscapeSpec)
    dynamics: DynamicsSpec = field(default_factory=DynamicsSpec)
    ensemble: EnsembleSpec = field(default_factory=EnsembleSpec)
    run: RunSpec = field(default_factory=RunSpec)
    source: str = field(default="<memory>", compare=False)
    # [[compare]]: configurations run side by side from the same cloud (engine.compare)
    compare: tuple["CompareSpec", ...] = ()

    def with_changes(self, **tables: dict[str, Any]) -> "Preset":
        """Copy with e.g. ``dynamics={"lr": 0.02}`` applied (no validation; use ``apply_sets``)."""
        updates = {name: replace(getattr(self, name), **changes)
                   for name, changes in tables.items()}
        return replace(self, **updates)


# --- validation helpers ------------------------------------------------------------------------

class _Reader:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> PresetError:
        return PresetError(self.source, key, message)

    def table(self, data: Any, key: str) -> dict:
        if not isinstance(data, dict):
            raise self.fail(key, f"= {data!r}: expected a table")
        return data

    def unknown(self, data: dict, allowed: set[str], prefix: str) -> None:
        for name in data:
            if name not in allowed:
                dotted = f"{prefix}.{name}" if prefix else name
                raise self.fail(dotted, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def number(self, value: Any, key: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"= {value!r}: expected a number")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(key, f"= {value!r}: must be finite")
        if low is not None and (value <= low if low_open else value < low):
            raise self.fail(key, f"= {value!r}: must be {'>' if low_open else '>='} {low}")
        if high is not None and value > high:
            raise self.fail(key, f"= {value!r}: must be <= {high}")
        return value

    def integer(self, value: Any, key: str, *, low: int | None = None,
                high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"= {value!r}: expected an integer")
        if low is not None and value < low:
            raise self.fail(key, f"= {value!r}: must be >= {low}")
        if high is not None and value > high:
            raise self.fail(key, f"= {value!r}: must be <= {high}")
        return value

    def string(self, value: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"= {value!r}: expected a string")
        if choices is not None and value not in choices:
            raise self.fail(key, f"= {value!r}: must be one of {', '.join(choices)}")
        return value

    def pair(self, value: Any, key: str, **limits) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(key, f"= {value!r}: expected a list of two numbers")
        return (self.number(value[0], f"{key}[0]", **limits),
                self.number(value[1], f"{key}[1]", **limits))


MAX_BOUND = 1e12  # |bound| of the landscape box: beyond it f, its grid and steps lose meaning
MIN_RELATIVE_WIDTH = 1e-9
_PRESET_KEYS = {"name", "description", "landscape", "dynamics", "ensemble", "run"}
_MAX_PARTICLES = 5_000_000


def _schedule_into_dynamics(data: dict, source: str) -> dict:
    """A top-level ``[schedule]`` table is the same as ``[dynamics.schedule]`` (either spelling,
    not both)."""
    dyn = data.get("dynamics", {})
    if not isinstance(dyn, dict):
        return data  # the dynamics table's own check names the problem
    if "schedule" in dyn:
        raise PresetError(source, "schedule", "given twice: as [schedule] and as "
                          "[dynamics.schedule]; keep one")
    moved = {key: value for key, value in data.items() if key != "schedule"}
    moved["dynamics"] = {**dyn, "schedule": data["schedule"]}
    return moved


def preset_from_dict(data: dict, source: str = "<string>") -> Preset:
    """Validate a parsed TOML document into a :class:`Preset`."""
    if isinstance(data, dict) and any(t in data for t in ("model", "training", "data")):
        raise PresetError(source, "", "this is a CNN-lab preset (tables data/model/training); "
                          "run it with `python -m engine cnn`")
    if isinstance(data, dict) and "schedule" in data:
        data = _schedule_into_dynamics(data, source)
    if isinstance(data, dict) and "compare" in data:
        return _with_comparisons(data, source)
    r = _Reader(source)
    r.unknown(data, _PRESET_KEYS, "")
    if "name" not in data:
        raise r.fail("name", "missing (every preset needs a name)")
    name = r.string(data["name"], "name")
    description = r.string(data.get("description", ""), "description")

    landscape = _read_landscape(r, data)
    dynamics = _read_dynamics(r, data, landscape.builtin, landscape.boundary)
    ensemble = _read_ensemble(r, data, dynamics, landscape.builtin)
    run = _read_run(r, data)
    dynamics = resolve_schedule(dynamics, run.steps, r.fail)  # steps = 0: the run's length
    preset = Preset(name, description, landscape, dynamics, ensemble, run, source)
    _check_landscape(preset, r)
    return preset


def _read_landscape(r: "_Reader", data: dict) -> LandscapeSpec:
    land = r.table(data.get("landscape", {}), "landscape")
    r.unknown(land, {f.name for f in fields(LandscapeSpec)}, "landscape")
    builtin = expr = None
    if ("builtin" in land) == ("expr" in land):
        raise r.fail("landscape", "give exactly one of 'builtin' or 'expr'")
    from .landscapes import BUILTINS  # local: keeps presets importable without numba compiles
    if "builtin" in land:
        builtin = r.string(land["builtin"], "landscape.builtin",
                           tuple(BUILTINS) + ("sine_classifier",))
    else:
        expr = r.string(land["expr"], "landscape.expr")
    params_raw = r.table(land.get("params", {}), "landscape.params")
    params = {k: r.number(v, f"landscape.params.{k}") for k, v in params_raw.items()}
    if builtin is not None:
        known = CLASSIFIER_PARAMS if builtin == "sine_classifier" else BUILTINS[builtin].param_names
        for k in params:
            if k not in known:
                raise r.fail(f"landscape.params.{k}",
                             f"unknown parameter of {builtin} (known: {', '.join(known)})")
    bounds = None
    if "bounds" in land:
        raw = land["bounds"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise r.fail("landscape.bounds", f"= {raw!r}: expected [[x_lo, x_hi], [y_lo, y_hi]]")
        bx = r.pair(raw[0], "landscape.bounds[0]", low=-MAX_BOUND, high=MAX_BOUND)
        by = r.pair(raw[1], "landscape.bounds[1]", low=-MAX_BOUND, high=MAX_BOUND)
        for key, (lo, hi) in (("landscape.bounds[0]", bx), ("landscape.bounds[1]", by)):
            if not lo < hi:
                raise r.fail(key, f"= {[lo, hi]!r}: lower bound must be below upper bound")
            if hi - lo < MIN_RELATIVE_WIDTH * max(1.0, abs(lo), abs(hi)):
                raise r.fail(key, f"= {[lo, hi]!r}: too narrow for float64 to resolve its "
                             f"grid (width must be ≥ {MIN_RELATIVE_WIDTH:g} × max(1, |bound|))")
        bounds = (bx, by)
    boundary = r.string(land.get("boundary", "reflect"), "landscape.boundary", BOUNDARIES)
    stiffness = r.number(land.get("wall_stiffness", 100.0), "landscape.wall_stiffness", low=0,
                         low_open=True)
    max_operations = None
    if "max_operations" in land:
        max_operations = r.integer(land["max_operations"], "landscape.max_operations", low=1,
                                   high=100_000)
    return LandscapeSpec(builtin, expr, params, bounds, boundary, stiffness, max_operations)


def _read_dynamics(r: "_Reader", data: dict, builtin: str | None,
                   boundary: str) -> DynamicsSpec:
    dyn = r.table(data.get("dynamics", {}), "dynamics")
    r.unknown(dyn, {f.name for f in fields(DynamicsSpec)}, "dynamics")
    d = DynamicsSpec()
    cov = d.noise_cov
    if "noise_cov" in dyn:
        raw = dyn["noise_cov"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise r.fail("dynamics.noise_cov", f"= {raw!r}: expected a 2×2 matrix")
        cov = (r.pair(raw[0], "dynamics.noise_cov[0]"), r.pair(raw[1], "dynamics.noise_cov[1]"))
        det = cov[0][0] * cov[1][1] - cov[0][1] * cov[1][0]
        if cov[0][1] != cov[1][0] or cov[0][0] < 0 or det < 0:
            raise r.fail("dynamics.noise_cov", f"= {raw!r}: must be symmetric positive semidefinite")
    dynamics = DynamicsSpec(
        kind=r.string(dyn.get("kind", d.kind), "dynamics.kind", kind_names()),
        lr=r.number(dyn.get("lr", d.lr), "dynamics.lr", low=0, low_open=True, high=1e3),
        temperature=r.number(dyn.get("temperature", d.temperature), "dynamics.temperature",
                             low=0, high=1e6),
        batch_size=r.integer(dyn.get("batch_size", d.batch_size), "dynamics.batch_size",
                             low=1, high=100_000),
        dataset_size=r.integer(dyn.get("dataset_size", d.dataset_size), "dynamics.dataset_size",
                               low=2, high=100_000),
        noise=r.string(dyn.get("noise", d.noise), "dynamics.noise", NOISE_MODELS),
        noise_scale=r.number(dyn.get("noise_scale", d.noise_scale), "dynamics.noise_scale",
                             low=0, high=1e6),
        noise_cov=cov,
        ghosts=r.integer(dyn.get("ghosts", d.ghosts), "dynamics.ghosts", low=0, high=16),
        ghost_init=r.number(dyn.get("ghost_init", d.ghost_init), "dynamics.ghost_init", low=0,
                            high=10),
        momentum=r.number(dyn.get("momentum", d.momentum), "dynamics.momentum", low=0,
                          high=0.999),
        friction=r.number(dyn.get("friction", d.friction), "dynamics.friction", low=0,
                          low_open=True, high=1e6),
        beta1=_below_one(r, dyn.get("beta1", d.beta1), "dynamics.beta1"),
        beta2=_below_one(r, dyn.get("beta2", d.beta2), "dynamics.beta2"),
        eps=r.number(dyn.get("eps", d.eps), "dynamics.eps", low=0, low_open=True, high=1e6),
        weight_decay=r.number(dyn.get("weight_decay", d.weight_decay), "dynamics.weight_decay",
                              low=0, high=1e6),
        schedule=parse_schedule(dyn["schedule"], r.number, r.integer, r.string, r.table,
                                r.unknown, r.fail) if "schedule" in dyn else None,
    )
    if dynamics.batch_size > dynamics.dataset_size:
        raise r.fail("dynamics.batch_size", f"= {dynamics.batch_size}: must be <= "
                     f"dynamics.dataset_size = {dynamics.dataset_size}")
    kind_named(dynamics.kind).validate(dynamics, builtin, boundary, r.fail)
    return dynamics


def _read_ensemble(r: "_Reader", data: dict, dynamics: DynamicsSpec,
                   builtin: str | None) -> EnsembleSpec:
    ens = r.table(data.get("ensemble", {}), "ensemble")
    r.unknown(ens, {"particles", "init", "seed", "replicas"}, "ensemble")
    e = EnsembleSpec()
    init = r.table(ens.get("init", {}), "ensemble.init")
    r.unknown(init, {"mean", "std", "uniform"}, "ensemble.init")
    std_raw = init.get("std", list(e.init_std))
    if isinstance(std_raw, (int, float)) and not isinstance(std_raw, bool):
        std_raw = [std_raw, std_raw]
    uniform = init.get("uniform", False)
    if not isinstance(uniform, bool):
        raise r.fail("ensemble.init.uniform", f"= {uniform!r}: expected true or false")
    ensemble = EnsembleSpec(
        particles=r.integer(ens.get("particles", e.particles), "ensemble.particles", low=1,
                            high=_MAX_PARTICLES),
        init_mean=r.pair(init.get("mean", list(e.init_mean)), "ensemble.init.mean"),
        init_std=r.pair(std_raw, "ensemble.init.std", low=0),
        init_uniform=uniform,
        seed=r.integer(ens.get("seed", e.seed), "ensemble.seed", low=0, high=2**63 - 1),
    )
    if "replicas" in ens:
        if not getattr(kind_named(dynamics.kind), "replica_exchange", False):
            raise r.fail("dynamics.kind", f"= {dynamics.kind!r}: cannot run ensemble.replicas "
                         "(replica exchange runs the kinds langevin and underdamped)")
        if builtin == "sine_classifier":
            raise r.fail("ensemble.replicas", "replica exchange runs on analytic landscapes, "
                         "not landscape.builtin = 'sine_classifier'")
        ensemble = replace(ensemble, replicas=parse_replicas(
            ens["replicas"], dynamics.temperature, ensemble.particles, _MAX_PARTICLES,
            r.number, r.integer, r.table, r.unknown, r.fail))
    return ensemble


def _read_run(r: "_Reader", data: dict) -> RunSpec:
    run_table = r.table(data.get("run", {}), "run")
    r.unknown(run_table, {f.name for f in fields(RunSpec)}, "run")
    return RunSpec(
        steps=r.integer(run_table.get("steps", RunSpec.steps), "run.steps", low=0,
                        high=10**12),
        record_every=r.integer(run_table.get("record_every", RunSpec.record_every),
                               "run.record_every", low=1, high=10**9),
    )


def _with_comparisons(data: dict, source: str) -> Preset:
    """A preset with ``[[compare]]`` tables: the base preset (every other table) and 2 to
    :data:`MAX_COMPARE` configurations, each a label and dynamics keys over the base, each
    validated as a preset of its own (errors name ``compare[i].key`` and the value)."""
    base = preset_from_dict({k: v for k, v in data.items() if k != "compare"}, source)
    r = _Reader(source)
    raw = data["compare"]
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise r.fail("compare", f"= {_shown(repr(raw))}: expected [[compare]] tables")
    if not 2 <= len(raw) <= MAX_COMPARE:
        raise r.fail("compare", f"has {len(raw)} configuration(s): give 2 to {MAX_COMPARE}")
    allowed = {"label"} | {f.name for f in fields(DynamicsSpec)}
    specs: list[CompareSpec] = []
    for i, table in enumerate(raw):
        r.unknown(table, allowed, f"compare[{i}]")
        if "label" not in table:
            raise r.fail(f"compare[{i}].label", "missing (every configuration needs a label)")
        label = r.string(table["label"], f"compare[{i}].label").strip()
        if not label or label in (s.label for s in specs):
            raise r.fail(f"compare[{i}].label", f"= {table['label']!r}: must be non-empty "
                         "and differ from the other configurations' labels")
        spec = CompareSpec(label, {k: v for k, v in table.items() if k != "label"})
        configuration(base, spec, i)  # validated now: nothing runs with a bad override
        specs.append(spec)
    return replace(base, compare=tuple(specs))


def configuration(base: Preset, spec: CompareSpec, index: int = 0) -> Preset:
    """The preset of one ``[[compare]]`` configuration: ``base`` with the configuration's
    dynamics overrides applied and no comparisons of its own.  Name, description, source,
    landscape, ensemble (seed, so the initial cloud and noise streams) and run are the base's.
    A bad override is a :class:`PresetError` keyed ``compare[index].key``."""
    data = to_dict(replace(base, compare=()))
    data["dynamics"].update(spec.overrides)
    try:
        return preset_from_dict(data, base.source)
    except PresetError as exc:
        name = exc.key.removeprefix("dynamics.")
        if exc.key.startswith("dynamics.") and re.split(r"[.\[]", name)[0] in spec.overrides:
            raise PresetError(base.source, f"compare[{index}].{name}", exc.message) from None
        raise PresetError(base.source, f"compare[{index}]",
                          f"{exc.key} {exc.message}" if exc.key else exc.message) from None


def configurations(preset: Preset) -> list[Preset]:
    """The presets of the ``[[compare]]`` configurations, in order (empty for a plain one)."""
    return [configuration(preset, spec, i) for i, spec in enumerate(preset.compare)]


def _below_one(r: _Reader, value: Any, key: str) -> float:
    """A moment decay β in [0, 1)."""
    value = r.number(value, key, low=0)
    if value >= 1.0:
        raise r.fail(key, f"= {value!r}: must be < 1")
    return value


def _check_landscape(preset: Preset, r: _Reader) -> None:
    """Parse the expression now so a bad one is reported at load time with file and key."""
    spec = preset.landscape
    if spec.expr is None:
        return
    from .landscapes.expression import MAX_OPERATIONS, ExpressionError, parse
    try:
        parse(spec.expr, tuple(spec.params), spec.max_operations or MAX_OPERATIONS)
    except ExpressionError as exc:
        raise r.fail("landscape.expr", str(exc)) from None


def parse_toml(text: str, source: str = "<string>") -> dict:
    """TOML text → dict; syntax errors become a :class:`PresetError` naming the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(source, "", f"TOML syntax error: {exc}") from None
    except RecursionError:
        raise PresetError(source, "", "TOML nested too deeply") from None


def read_text(path: str | Path) -> str:
    """A preset file's text; a missing or unreadable file is a :class:`PresetError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(str(path), "", f"cannot read: {exc}") from None


def loads(text: str, source: str = "<string>") -> Preset:
    """Parse preset text; TOML syntax errors name the line."""
    return preset_from_dict(parse_toml(text, source), source)


def load(path: str | Path) -> Preset:
    """Load and validate a preset file."""
    return loads(read_text(path), str(path))


def to_dict(preset: Preset) -> dict:
    """The resolved preset as a TOML-ready dict (every field written)."""
    land = {k: v for k, v in asdict(preset.landscape).items() if v is not None}
    if "bounds" in land:
        land["bounds"] = [list(b) for b in land["bounds"]]
    dyn = asdict(preset.dynamics)
    dyn["noise_cov"] = [list(row) for row in dyn["noise_cov"]]
    dyn.pop("schedule")
    if preset.dynamics.schedule is not None:
        dyn["schedule"] = schedule_to_dict(preset.dynamics.schedule)
    ens = preset.ensemble
    data = {
        "name": preset.name,
        "description": preset.description,
        "landscape": land,
        "dynamics": dyn,
        "ensemble": {"particles": ens.particles, "seed": ens.seed,
                     "init": {"mean": list(ens.init_mean), "std": list(ens.init_std),
                              "uniform": ens.init_uniform},
                     **({"replicas": replicas_to_dict(ens.replicas)}
                        if ens.replicas is not None else {})},
        "run": asdict(preset.run),
    }
    if preset.compare:
        data["compare"] = [{"label": c.label, **c.overrides} for c in preset.compare]
    return data


def dumps(preset: Preset) -> str:
    """TOML text of the resolved preset."""
    return tomli_w.dumps(to_dict(preset))


def save(preset: Preset, path: str | Path) -> None:
    """Write the preset atomically (temp file + rename)."""
    from .export import atomic_write_text
    atomic_write_text(Path(path), dumps(preset))


def parse_set(assignment: str) -> tuple[list[str], Any]:
    """``"dynamics.temperature=0.2"`` → (["dynamics", "temperature"], 0.2).

    The value is read as a TOML value; a bare word that is not valid TOML is taken as a string.
    """
    if "=" not in assignment:
        raise PresetError("--set", _shown(assignment), "expected key.path=value")
    key, raw = assignment.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise PresetError("--set", _shown(key), "empty key component")
    for part in path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", part):
            raise PresetError("--set", _shown(key), f"key component {_shown(part)!r} is not a "
                              "bare TOML key (letters, digits, _ and -)")
    raw = raw.strip()
    if any(c in raw for c in "\n\r\x00") or any(ord(c) < 32 and c != "\t" for c in raw):
        raise PresetError("--set", ".".join(path), f"= {_shown(raw)!r}: a value is one line "
                          "(no newlines or control characters)")
    depth = _nesting(raw)
    if depth > MAX_SET_NESTING:
        raise PresetError("--set", ".".join(path), f"= {_shown(raw)!r}: nested {depth} deep "
                          f"(at most {MAX_SET_NESTING})")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


MAX_SET_NESTING = 8


def _shown(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _nesting(raw: str) -> int:
    """Deepest bracket nesting of a TOML value, ignoring brackets inside strings."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for c in raw:
        if quote:
            if escaped:
                escaped = False
            elif c == "\\" and quote == '"':
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def assign(data: dict, assignments: list[str]) -> set[str]:
    """Write ``key.path=value`` assignments into a preset document in place; returns the dotted
    keys set.  Shared by the 2D and the CNN presets."""
    keys = set()
    for path, value in (parse_set(a) for a in assignments):
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PresetError("--set", ".".join(path), f"{part} is not a table")
            node = child
        node[path[-1]] = value
        keys.add(".".join(path))
    return keys


def apply_sets(preset: Preset, assignments: list[str]) -> Preset:
    """Apply ``--set`` overrides to the preset and re-validate the result."""
    if not assignments:
        return preset
    data = to_dict(preset)
    keys = assign(data, assignments)
    # setting one kind of landscape replaces the other
    for given, other in (("expr", "builtin"), ("builtin", "expr")):
        if f"landscape.{given}" in keys:
            data["landscape"].pop(other, None)
    return preset_from_dict(data, f"{preset.source} (with --set)")
