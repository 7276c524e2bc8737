"""Generated hostile input — expressions, preset mutations, ``--set`` values — and the outcome
of feeding each to the engine, shared by the fuzz tests and ``scripts/fuzz.py``.

An outcome is one of ``ok`` (accepted and, where asked, run), ``error`` (refused with the
engine's one-line error: :class:`PresetError` / :class:`ExpressionError`), ``traceback`` (any
other exception: a defect) or, in ``scripts/fuzz.py`` only, ``hang`` (over the time limit).
A canary file and an audit hook detect any attempt to execute code from the input.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

import tomli_w
from hypothesis import strategies as st

from engine.landscapes import ExpressionError
from engine.presets import PresetError

ROOT = Path(__file__).resolve().parents[1]
CANARY = Path(tempfile.gettempdir()) / "ergoscope_fuzz_canary"
_EXECUTED: list[str] = []


_WATCHING = [False]  # only the engine's handling of the input is watched, not the harness


def _audit(event: str, args: tuple) -> None:
    if not _WATCHING[0]:
        return
    if event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"):
        _EXECUTED.append(f"{event}{args!r:.80}")
    elif event == "open" and args and str(args[0]) == str(CANARY):
        _EXECUTED.append(f"open({CANARY})")


_HOOKED = False


def watch_for_execution() -> None:
    """Install (once per process) the audit hook that records process launches and canary
    writes; :func:`executions` reads what it saw."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True


def executions() -> list[str]:
    found = list(_EXECUTED)
    if CANARY.exists():
        found.append(f"{CANARY} exists")
    return found


PAYLOADS = [
    f"__import__('os').system('touch {CANARY}')",
    f"open('{CANARY}', 'w')",
    "().__class__.__bases__[0].__subclasses__()",
    "exec('1')", "eval('x')", "lambda: x", "x if y else 1", "x.__class__", "globals()",
    "x; import os", "x\n+ y", "[x for x in y]", "{x: y}", "x @ y", "x ^ 2", "'x'", "x ** y",
    "sin(x, y)", "x ** 2.5", "x ** (1/2)", "f(x)", "_p0 * x", "p[0] * x",
]

_NUMBERS = st.one_of(
    st.sampled_from(["0", "0.0", "1", "2", "10", "1e308", "1e-308", "1e-320", "1e400", "9",
                     "0.5", ".5", "1.", "3.14159", "123456789012345678901234567890",
                     "1" * 45, "1e-5", "1E3"]),
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False).map(repr),
)
_VARIABLES = st.sampled_from(["x", "y", "x", "y", "pi", "e", "a"])
_ATOMS = st.one_of(_VARIABLES, _VARIABLES, _VARIABLES, _NUMBERS)
_FUNCS = st.one_of(st.sampled_from(["sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sinh",
                                    "cosh", "abs", "atan", "arctan"]) for _ in range(9)) | \
    st.sampled_from(["foo", "exec", "__import__"])
_EXPONENTS = st.one_of(st.integers(-4, 6).map(str), st.integers(-4, 6).map(str),
                       st.integers(-1200, 1200).map(str),
                       st.sampled_from(["2", "-2", "(-3)", "((4))", "1000", "1001", "0", "y",
                                        "2.5", "-400", "", "99999999999"]))


def _combine(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(children, _EXPONENTS).map(lambda t: f"({t[0]})**{t[1]}"),
        st.tuples(_FUNCS, children).map(lambda t: f"{t[0]}({t[1]})"),
        children.map(lambda c: f"-({c})"),
        children.map(lambda c: f"({c})"),
    )


GRAMMAR_EXPRESSIONS = st.recursive(_ATOMS, _combine, max_leaves=40)


@st.composite
def expressions(draw) -> str:
    """Mostly grammatical expressions with extreme constants, deep nesting, huge powers and
    long sums; some with junk characters or code-injection payloads spliced in."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.sampled_from(PAYLOADS))
    if kind == 1:
        depth = draw(st.integers(1, 200))
        return "(" * depth + "x" + ")" * draw(st.integers(0, depth + 1))
    if kind == 2:
        terms = draw(st.lists(GRAMMAR_EXPRESSIONS, min_size=20, max_size=60))
        return " + ".join(terms)
    text = draw(GRAMMAR_EXPRESSIONS)
    if kind == 3:
        junk = draw(st.text(min_size=1, max_size=4))
        at = draw(st.integers(0, len(text)))
        text = text[:at] + junk + text[at:]
    if kind == 4:
        text = f"{text} + {draw(st.sampled_from(PAYLOADS))}"
    if kind >= 12:  # a confining term: mostly valid landscapes that particles can run on
        text = f"{text} + (x**2 + y**2)/10"
    return text


def bundled_2d_presets() -> list[Path]:
    from engine.cnn.config import is_cnn_document
    from engine.presets import parse_toml
    return [p for p in sorted((ROOT / "presets").glob("*.toml"))
            if not is_cnn_document(parse_toml(p.read_text(), str(p)))]


_HOSTILE_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 0.0, 1e308, -1e308, 1e-320, 2**63 - 1,
                     -2**63, 10**30, True, "", "x" * 5000, "gd", "ghost", "sgd", "wall", "none",
                     [], [1], [[1, 2], [3]], [[0, 1e-300], [0, 1e-300]],
                     [[-1e308, 1e308], [-1e308, 1e308]], {}, {"a": 1}, "log(x) + y**2",
                     "-x**4 - y**4", "1/(x - 0.1234)", "x*1e308*10"]),
    st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.lists(st.floats(-1e6, 1e6), max_size=3),
)


def _paths(document: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in document.items():
        out.append(prefix + (key,))
        if isinstance(value, dict):
            out.extend(_paths(value, prefix + (key,)))
    return out


@st.composite
def preset_texts(draw) -> tuple[str, str]:
    """(name of the bundled preset it came from, mutated TOML text)."""
    from engine.presets import load, to_dict
    path = draw(st.sampled_from(bundled_2d_presets()))
    document = to_dict(load(path))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(document)
        where = draw(st.sampled_from(paths))
        node = document
        for part in where[:-1]:
            node = node[part]
        action = draw(st.integers(0, 9))
        value = node.get(where[-1])
        if action == 0:
            node.pop(where[-1], None)
        elif action == 1:
            node[draw(st.sampled_from(["bogus", "__class__", "expr", "builtin", "kind"]))] = \
                draw(_HOSTILE_VALUES)
        elif action <= 3:
            node[where[-1]] = draw(_HOSTILE_VALUES)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            # a plausible edit: scale a number by a factor from 10⁻³ to 10³, or flip its sign
            factor = draw(st.sampled_from([1e-3, 0.1, 0.5, 2.0, 10.0, 1e3, -1.0, 0.0]))
            node[where[-1]] = type(value)(value * factor)
        elif where[-1] == "kind":
            node["kind"] = draw(st.sampled_from(["gd", "sgd", "langevin", "momentum", "ghost"]))
        elif where[-1] == "boundary":
            node["boundary"] = draw(st.sampled_from(["none", "reflect", "wall", "periodic"]))
        elif where[-1] in ("expr", "builtin") or action == 9:
            target = document.get("landscape")
            if not isinstance(target, dict):
                continue
            target.pop("builtin", None)
            target["params"] = {}
            target["expr"] = draw(GRAMMAR_EXPRESSIONS)
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        text = repr(document)
    if draw(st.integers(0, 5)) == 0:  # byte-level damage
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=8)) + text[at + draw(st.integers(0, 20)):]
    return path.name, text


SET_KEYS = ["dynamics.lr", "dynamics.temperature", "dynamics.kind", "dynamics.batch_size",
            "ensemble.particles", "landscape.expr", "landscape.bounds", "landscape.builtin",
            "landscape.params.a", "run.steps", "name", "dynamics", "a.b.c", "dynamics.lr.x",
            "", ".", "dynamics..lr", "dyn amics.lr", "landscape.max_operations"]


@st.composite
def set_values(draw) -> str:
    key = draw(st.sampled_from(SET_KEYS))
    raw = draw(st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False).map(repr), st.integers(-10, 10**4).map(str),
        st.sampled_from(["gd", "sgd", "langevin", "momentum", "0.2", "16", "[[-2, 2], [-2, 2]]",
                         '"sin(x)*cos(y)"', "2000"]),
        st.sampled_from(["[" * 5000, "[[[[1]]]]", "0.1\n[ensemble]\nparticles=5", "inf", "nan",
                         "-0.0", "1e999", '"unterminated', "{a = 1}", "[1, 2", "'''", "0x10",
                         "true", "2026-01-01", "x**2 + y**2", "1_000", "\x00", "" ]),
        st.text(max_size=40), _HOSTILE_VALUES.map(str)))
    return f"{key}={raw}" if draw(st.integers(0, 9)) else key + raw


def outcome(action) -> tuple[str, str]:
    """Run ``action()``; ``("ok", "")``, ``("error", message)`` for the engine's clean
    one-line errors, ``("traceback", repr)`` for anything else."""
    _WATCHING[0] = True
    try:
        action()
    except (PresetError, ExpressionError) as exc:
        message = str(exc)
        if "\n" in message.strip() or not message:
            return "traceback", f"multi-line or empty error: {message!r:.200}"
        return "error", message
    except Exception as exc:  # noqa: BLE001 - classifying is the point
        return "traceback", f"{type(exc).__name__}: {exc!s:.300}"
    finally:
        _WATCHING[0] = False
    return "ok", ""


def check_expression(text: str, compile_it: bool = True) -> None:
    """Parse (and compile, and evaluate at a few points) a user expression."""
    from engine.landscapes import compile_expression, parse
    if not compile_it:
        parse(text)
        return
    landscape = compile_expression(text)
    params = landscape.param_vector()
    for x, y in ((0.0, 0.0), (1e300, -1e300), (0.1234, -0.0567)):
        values = landscape.func(x, y, params)
        assert len(values) == 6 and all(isinstance(v, float) for v in values)


def check_preset(text: str, run: bool, steps: int = 20) -> None:
    """Load preset text; with ``run``, analyse its landscape and advance a small ensemble."""
    from engine.api import divergence_summary, summary
    from engine.diagnostics.structure import StructureError, analyse
    from engine.presets import loads
    from engine.simulation import Simulation
    preset = loads(text, "fuzz.toml")
    if not run:
        return
    preset = preset.with_changes(ensemble={"particles": min(preset.ensemble.particles, 64)})
    sim = Simulation(preset)
    try:
        sim.attach_structure(analyse(preset, resolution=64, sim=sim))
    except StructureError as exc:
        raise PresetError(preset.source, "landscape", str(exc)) from None
    sim.advance(steps)
    summary(sim)
    divergence_summary(sim)


def check_set(assignment: str, base: str = "double_well_kramers.toml") -> None:
    from engine.presets import apply_sets, load
    apply_sets(load(ROOT / "presets" / base), [assignment])
