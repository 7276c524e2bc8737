"""Hostile input: every reproducer of the robustness review as a regular test, and generated
expressions, preset mutations and ``--set`` values that must give a clean error or a valid run
— never a traceback, a hang or code execution (``scripts/fuzz.py`` runs long campaigns)."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from engine.landscapes import ExpressionError, compile_expression, parse
from engine.presets import PresetError, apply_sets, load, loads
from tests import hostile
from tests.conftest import ROOT

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _engine(*args, cwd):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)


# -- expressions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,message", [
    ("x + 1.5/0.0", "division by zero"),
    ("x*10**400", "overflows float64"),
    ("x*(1/3)**1000", "underflows float64"),
    ("((9**1000)**1000)**1000*x", "overflows float64"),
    ("exp(1000) * x", "overflows float64"),
    ("log(0) + x", "outside its function's domain"),
    ("sqrt(-1) + x", "outside its function's domain"),
    ("x ** 99999999999", "exponent magnitude above"),
])
def test_constants_float64_cannot_hold_are_rejected_at_parse_time(text, message):
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match=message):
        parse(text)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("text", ["x**-400", "1/(x-0.1234)", "x*1e308*10 + y"])
def test_expressions_singular_at_a_point_compile_and_give_inf_not_an_exception(text):
    landscape = compile_expression(text)
    values = landscape.func(0.1234, 0.0, landscape.param_vector())
    assert len(values) == 6
    assert not all(np.isfinite(values))  # the singular point is reported as non-finite


# the compile guards below count this process's CPU time, not wall time: they catch runaway
# compile work, and a loaded machine (other test workers, other jobs) does not trip them


def test_derivative_blowup_expressions_compile_in_linear_time():
    text = "15 * cosh(sin(y) / cos(-exp(atan((-17 + (x) / cosh(tanh(y)))**1000))))"
    started = time.process_time()
    compile_expression(text)
    assert time.process_time() - started < 30  # was ≈ 100 s of symbolic differentiation


def test_a_179_term_sum_compiles_in_seconds():
    text = " + ".join(f"{k}*sin({k}*x+y)" for k in range(1, 180))  # 3,182 characters
    started = time.process_time()
    landscape = compile_expression(text)
    assert time.process_time() - started < 30  # was 12 s of sympy before numba
    x, y = 0.3, -0.7
    expected = sum(k * np.sin(k * x + y) for k in range(1, 180))
    assert landscape.func(x, y, landscape.param_vector())[0] == pytest.approx(expected, rel=1e-12)


def test_operation_budget_is_named_and_can_be_raised():
    text = "*".join(["x", "y"] * 600)  # a chain of 1199 distinct products
    with pytest.raises(ExpressionError, match="landscape.max_operations"):
        parse(text)
    assert parse(text, max_operations=5000).operations > 1000
    preset = loads(f'name = "r"\n[landscape]\nexpr = "{text}"\nmax_operations = 5000\n', "r.toml")
    assert preset.landscape.max_operations == 5000


def test_shared_subexpressions_are_one_node():
    assert parse("sin(x*y) + sin(x*y)").operations == parse("2*sin(x*y)").operations


# -- landscapes that are not finite everywhere ----------------------------------------------------
def _structure(expr, bounds=None):
    from engine.diagnostics.structure import analyse
    text = f'name = "r"\n[landscape]\nexpr = "{expr}"\n'
    if bounds:
        text += f"bounds = {bounds}\n"
    return analyse(loads(text, "r.toml"))


def test_nan_half_of_the_domain_is_excluded_from_the_structure():
    s = _structure("log(x) + y**2")
    assert s.extra["non_finite_cells"] == (s.grid_x <= 0).sum() * s.grid_y.size  # log(x ≤ 0)
    assert not s.minima  # log(x) decreases towards the NaN region: no minimum inside
    assert np.all(s.basins[~np.isfinite(s.values)] == -1)


def test_structure_analysis_of_a_rugged_landscape_is_bounded():
    from engine.diagnostics.structure import MAX_MINIMA
    _structure("sin(200*x)*sin(200*y)")  # compile outside the timing
    started = time.perf_counter()
    s = _structure("sin(200*x)*sin(200*y)")
    assert time.perf_counter() - started < 10  # the review asks ≤ 2 s; margin for loaded CI
    assert len(s.minima) == MAX_MINIMA and s.extra["minima_dropped"] > 0


def test_a_landscape_finite_nowhere_is_a_clear_error():
    from engine.diagnostics.structure import StructureError
    with pytest.raises(StructureError, match="not finite anywhere"):
        _structure("sqrt(x) + sqrt(-x) + y")


@pytest.mark.parametrize("bounds,key", [
    ("[[-1e308, 1e308], [-1e308, 1e308]]", "landscape.bounds[0][0]"),
    ("[[0, 1e-300], [0, 1e-300]]", "landscape.bounds[0]"),
])
def test_bounds_float64_cannot_resolve_are_refused(bounds, key):
    with pytest.raises(PresetError, match=key.replace("[", r"\[").replace("]", r"\]")):
        loads(f'name = "r"\n[landscape]\nexpr = "x**2 + y**2"\nbounds = {bounds}\n', "r.toml")


# -- --set ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("assignment,message", [
    ("dynamics.lr=" + "[" * 5000, "nested 5000 deep"),
    ("dynamics.lr=0.1\n[ensemble]\nparticles=5", "one line"),
    ("dyn amics.lr=0.1", "bare TOML key"),
])
def test_hostile_set_values_are_one_line_errors(assignment, message):
    base = load(ROOT / "presets" / "double_well_kramers.toml")
    with pytest.raises(PresetError, match=message) as info:
        apply_sets(base, [assignment])
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_deeply_nested_preset_file_is_an_error_not_a_recursion_error():
    with pytest.raises(PresetError, match="nested too deeply"):
        loads('name = "r"\nx = ' + "[" * 5000 + "]" * 5000 + "\n", "deep.toml")


# -- runs that diverge, and the output folder -----------------------------------------------------
def test_unbounded_landscape_run_warns_records_and_exits_by_how_many_diverged(tmp_path):
    preset = tmp_path / "r.toml"
    preset.write_text('name = "r"\n[landscape]\nexpr = "-x**4 - y**4"\nboundary = "none"\n'
                      "[ensemble]\nparticles = 200\n[run]\nsteps = 3000\nrecord_every = 10\n")
    result = _engine("run", preset, "--out", "new/folder/o.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "diverged" in warnings[0], result.stderr
    assert "RuntimeWarning" not in result.stderr and "Traceback" not in result.stderr
    summary = json.loads((tmp_path / "new/folder/o.npz.json").read_text())
    divergence = summary["divergence"]
    assert 0 < divergence["frozen"] < 200 and divergence["first_seen_step"] > 0
    with np.load(tmp_path / "new/folder/o.npz") as data:
        assert str(data["run_id"]) == summary["run_id"]

    preset.write_text(preset.read_text().replace('"-x**4 - y**4"', '"-exp(x*x) * 1e300"'))
    result = _engine("run", preset, "--out", "o.npz", "--steps", "50", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "200 of 200 particles diverged" in result.stderr


# -- kill -9 during exports -----------------------------------------------------------------------
_PUBLISHER = """
import sys, numpy as np
from engine.export import prepare_output, publish_pair, npz_bytes
path = prepare_output(sys.argv[1])
print("ready", flush=True)
for k in range(10**6):
    data = npz_bytes({"generation": np.array(k), "payload": np.full(3_000_000, float(k))})
    publish_pair(path, data, {"generation": k})
"""


def _check_pair(path) -> None:
    sidecar = path.with_name(path.name + ".json")
    if path.exists():
        assert sidecar.exists(), "an NPZ without its sidecar"
        with np.load(path) as data:
            assert int(data["generation"]) == json.loads(sidecar.read_text())["generation"], \
                "a stale pair"


def test_kill_9_during_exports_never_leaves_an_npz_without_its_own_sidecar(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "out" / "run.npz"
    for _ in range(20):
        process = subprocess.Popen([sys.executable, "-c", _PUBLISHER, str(path)], env=ENV,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))
        process.kill()
        process.wait()
        process.stdout.close()
        _check_pair(path)
    from engine.export import prepare_output
    prepare_output(path)  # what the next run does first
    assert not list(path.parent.glob(".*.tmp"))
    _check_pair(path)
    assert not (path.with_name("run.npz.json").exists() and not path.exists())


# -- generated input ------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _watch():
    hostile.watch_for_execution()
    hostile.CANARY.unlink(missing_ok=True)
    yield
    assert not hostile.executions()


def _assert_clean(kind, detail, started, budget):
    assert kind != "traceback", detail
    assert time.perf_counter() - started < budget
    assert not hostile.executions()


@settings(FUZZ, max_examples=200)
@given(hostile.expressions())
def test_generated_expressions_parse_or_fail_cleanly(text):
    started = time.perf_counter()
    kind, detail = hostile.outcome(lambda: hostile.check_expression(text, compile_it=False))
    _assert_clean(kind, detail, started, budget=5)


@settings(FUZZ, max_examples=40)
@given(hostile.expressions())
def test_generated_expressions_compile_and_evaluate_or_fail_cleanly(text):
    started = time.perf_counter()
    kind, detail = hostile.outcome(lambda: hostile.check_expression(text))
    _assert_clean(kind, detail, started, budget=60)


@settings(FUZZ, max_examples=150)
@given(hostile.preset_texts())
def test_generated_presets_load_or_fail_cleanly(source_and_text):
    _, text = source_and_text
    started = time.perf_counter()
    kind, detail = hostile.outcome(lambda: hostile.check_preset(text, run=False))
    _assert_clean(kind, detail, started, budget=5)


@settings(FUZZ, max_examples=25)
@given(hostile.preset_texts())
def test_generated_double_well_presets_run_or_fail_cleanly(source_and_text):
    source, text = source_and_text
    started = time.perf_counter()
    # runs only where the kernel is the base preset's, so the test compiles a few kernels
    run = source == "double_well_kramers.toml"
    kind, detail = hostile.outcome(lambda: hostile.check_preset(text, run=run))
    _assert_clean(kind, detail, started, budget=120)


@settings(FUZZ, max_examples=300)
@given(hostile.set_values())
def test_generated_set_values_apply_or_fail_cleanly(assignment):
    started = time.perf_counter()
    kind, detail = hostile.outcome(lambda: hostile.check_set(assignment))
    _assert_clean(kind, detail, started, budget=5)
