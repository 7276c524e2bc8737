"""Schedules of η, T and B ([dynamics.schedule], engine/schedules.py): values at given steps,
validation, and chunking invariance — a schedule is a function of the global step, applied per
segment of `every` steps, so advance(a); advance(b) ≡ advance(a + b) bit for bit, and a
constant schedule is the unscheduled run bit for bit."""
import math

import numpy as np
import pytest

from engine.presets import PresetError, dumps, load, loads
from engine.schedules import (ParamSchedule, Schedule, ScheduleError, batch_size_of, scheduled,
                              values_over)
from engine.simulation import Simulation
from tests.conftest import ROOT, make_preset
from tests.test_checkpoint import assert_same_run


def assert_same_state(a, b):
    """Bitwise: every particle field, the events and the recorded arrays.  The clock ``time``
    (and its series) is a running sum of chunk × η, as in unscheduled runs, so it agrees to
    rounding only: advance(3); advance(1) adds 3η + η where advance(4) adds 4η."""
    assert a.step == b.step and a.preset == b.preset
    for name in a.PARTICLE_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.events(), b.events())
    arrays_a, arrays_b = a.trajectory_arrays(), b.trajectory_arrays()
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        if key != "series_time":
            np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    np.testing.assert_allclose(arrays_a["series_time"], arrays_b["series_time"], rtol=1e-14)
    assert a.time == pytest.approx(b.time, rel=1e-14)


def _resumed_equals_uninterrupted(preset, first, then, before_checkpoint=lambda sim: True):
    """Run ``first`` steps, checkpoint, run ``then`` more; a restored copy running ``then``
    steps must be the same run bit for bit.  Returns the uninterrupted simulation."""
    sim = Simulation(preset)
    sim.advance(first)
    assert before_checkpoint(sim)
    saved = sim.checkpoint()
    sim.advance(then)
    fresh = Simulation(preset)
    fresh.restore(saved)
    fresh.advance(then)
    assert_same_run(sim, fresh)
    return sim


def _preset(schedule, kind="langevin", **dynamics):
    if schedule is not None:
        dynamics["schedule"] = schedule
    return make_preset(landscape={"builtin": "double_well"},
                       dynamics={"kind": kind, "lr": 0.02, "temperature": 0.3, **dynamics},
                       ensemble={"particles": 300, "seed": 5, "init": {"std": 0.5}},
                       run={"steps": 100, "record_every": 10})


def test_values_at_given_steps():
    assert ParamSchedule("constant").value(0.1, 10**6) == 0.1
    step = ParamSchedule("step", factor=0.5, interval=100)
    assert [step.value(0.1, t) for t in (0, 99, 100, 250)] == [0.1, 0.1, 0.05, 0.025]
    cosine = ParamSchedule("cosine", end=0.01, steps=1000)
    assert cosine.value(0.1, 0) == 0.1 and cosine.value(0.1, 1000) == pytest.approx(0.01)
    assert cosine.value(0.1, 500) == pytest.approx(0.055)
    assert cosine.value(0.1, 5000) == pytest.approx(0.01)  # held after `steps`
    linear = ParamSchedule("linear", end=0.0, steps=200)
    assert [linear.value(0.5, t) for t in (0, 50, 200, 400)] == [0.5, 0.375, 0.0, 0.0]
    # piecewise constant over segments of `every` steps
    d = _preset({"every": 100, "lr": {"shape": "linear", "end": 0.01, "steps": 1000}}).dynamics
    assert scheduled(d, 0).lr == scheduled(d, 99).lr == 0.02
    assert scheduled(d, 150).lr == pytest.approx(0.019)
    assert scheduled(d, 150).temperature == 0.3


def test_the_new_shapes_at_given_steps():
    for shape in ("constant", "step", "exponential", "cosine", "linear", "cyclic"):
        assert ParamSchedule(shape, end=0.003, steps=100).value(0.0123, 0) == 0.0123, shape
    exponential = ParamSchedule("exponential", factor=0.5, interval=100)
    assert [exponential.value(0.8, t) for t in (0, 100, 250)] == [0.8, 0.4, 0.8 * 0.5 ** 2.5]
    warm = ParamSchedule("warmup_cosine", end=0.01, steps=1100, warmup=100)
    assert [warm.value(0.1, t) for t in (0, 25, 100)] == [0.0, 0.025, 0.1]
    assert warm.value(0.1, 600) == pytest.approx(0.055)  # half-way down the cosine
    assert warm.value(0.1, 1100) == warm.value(0.1, 10**6) == pytest.approx(0.01)
    triangle = ParamSchedule("cyclic", end=1.0, period=200)
    assert [triangle.value(0.2, t) for t in (0, 50, 100, 150, 200, 300)] == pytest.approx(
        [0.2, 0.6, 1.0, 0.6, 0.2, 1.0])
    wave = ParamSchedule("cyclic", end=1.0, period=200, wave="cosine")
    assert [wave.value(0.2, t) for t in (0, 50, 100, 200)] == pytest.approx([0.2, 0.6, 1.0, 0.2])
    assert wave.value(0.2, 25) == pytest.approx(0.2 + 0.8 * (1 - math.cos(math.pi / 4)) / 2)
    formula = ParamSchedule("expression", expr="v0 * exp(-t / 100) + 0.001 * sqrt(t)")
    for t in (0, 37, 400):
        assert formula.value(0.3, t) == 0.3 * math.exp(-t / 100) + 0.001 * math.sqrt(t)
    assert math.isnan(ParamSchedule("expression", expr="log(v0 - t)").value(1.0, 5))
    # a power past float64's range is inf (then a range error naming the key), not a crash
    assert ParamSchedule("step", factor=2.0, interval=1).value(1.0, 5000) == math.inf
    assert ParamSchedule("exponential", factor=2.0, interval=1).value(1.0, 5000) == math.inf
    # B: rounded half up, held in [1, n]
    assert [batch_size_of(v, 64) for v in (0.2, 1.5, 2.49, 2.5, 63.7, 1e9)] == [1, 2, 2, 3, 64, 64]


def test_the_batch_size_is_scheduled_where_the_kind_uses_it():
    schedule = {"every": 10, "batch_size": {"shape": "linear", "end": 32, "steps": 100}}
    sgd = _preset(schedule, kind="sgd", batch_size=4).dynamics
    assert [scheduled(sgd, t).batch_size for t in (0, 10, 55, 100, 500)] == [4, 7, 18, 32, 32]
    # 4 + 28·0.5 = 18 at the segment start 50; 4 + 28·0.1 = 6.8 → 7
    np.testing.assert_array_equal(values_over(sgd, "batch_size", np.array([0, 10, 55])),
                                  [4, 7, 18])
    langevin = _preset(schedule, kind="langevin", batch_size=4).dynamics
    assert scheduled(langevin, 55).batch_size == 4  # B does not apply to Langevin


def test_an_expression_leaving_the_range_mid_run_stops_the_run_with_the_key_and_step():
    schedule = {"every": 10, "lr": {"shape": "expression", "expr": "v0 - t / 2000"}}
    preset = make_preset(dynamics={"kind": "langevin", "lr": 0.02, "schedule": schedule},
                         run={"steps": 0})  # checked at load over run.steps = 0 steps only
    sim = Simulation(preset)
    with pytest.raises(ScheduleError, match=r"dynamics.schedule.lr: expr = 'v0 - t / 2000' "
                                            r"gives -0.005\d* at step 50"):
        sim.advance(60)
    assert sim.step == 50


def test_a_schedule_without_steps_spans_the_run():
    """``steps`` left out is ``run.steps`` (set at load, so saving writes it): a bare
    ``shape = "cosine"`` decays to ``end`` over the run, not in one step."""
    preset = make_preset(dynamics={"kind": "langevin", "lr": 0.02, "temperature": 0.3,
                                   "schedule": {"lr": {"shape": "cosine", "end": 0.002},
                                                "temperature": {"shape": "step"}}},
                         run={"steps": 400})
    assert preset.dynamics.schedule.lr.steps == 400
    assert preset.dynamics.schedule.temperature.steps == 0  # a step schedule has no span
    assert scheduled(preset.dynamics, 200).lr == pytest.approx(0.011)
    assert loads(dumps(preset)) == preset


def test_a_schedule_round_trips_and_is_validated():
    preset = _preset({"every": 50, "temperature": {"shape": "step", "factor": 0.5,
                                                   "interval": 100}})
    assert preset.dynamics.schedule == Schedule(50, None, ParamSchedule("step", factor=0.5,
                                                                        interval=100))
    assert loads(dumps(preset)) == preset
    for bad, message in (({"lr": {"shape": "exp"}},
                          r"dynamics.schedule.lr.shape = 'exp': must be one of"),
                         ({"every": 0}, r"dynamics.schedule.every = 0: must be >= 1"),
                         ({"temperature": {"end": -1.0}},
                          r"dynamics.schedule.temperature.end = -1.0: must be >= 0"),
                         ({"momentum": {}}, r"dynamics.schedule.momentum: unknown key"),
                         ({"batch_size": {"end": 0}},
                          r"dynamics.schedule.batch_size.end = 0.0: must be >= 1"),
                         ({"lr": {"shape": "cyclic", "wave": "square"}},
                          r"dynamics.schedule.lr.wave = 'square': must be one of"),
                         ({"lr": {"shape": "warmup_cosine", "warmup": 50, "steps": 50}},
                          r"dynamics.schedule.lr.warmup = 50: must be < "),
                         ({"lr": {"shape": "expression"}},
                          r"dynamics.schedule.lr.expr: missing"),
                         ({"lr": {"shape": "linear", "expr": "t"}},
                          r"dynamics.schedule.lr.expr = 't': only with shape = 'expression'"),
                         ({"lr": {"shape": "expression", "expr": "v0 * x"}},
                          r"dynamics.schedule.lr.expr = 'v0 \* x': a schedule is a function of "
                          r"t .* 'x or y'"),
                         ({"temperature": {"shape": "expression",
                                           "expr": "__import__('os').system('true')"}},
                          r"temperature.expr = .*unknown function '__import__'"),
                         ({"temperature": {"shape": "expression", "expr": "v0 - t / 50"}},
                          r"dynamics.schedule.temperature.expr = 'v0 - t / 50': gives "
                          r"-1.7 at step 100 .*must be in \[0, 1e\+06\]"),
                         ({"lr": {"shape": "exponential", "factor": 1000.0, "interval": 10}},
                          r"dynamics.schedule.lr: \(shape 'exponential'\) gives .* at step"),
                         ({"temperature": {"shape": "step", "factor": 2.0, "interval": 1}},
                          r"dynamics.schedule.temperature: \(shape 'step'\) gives 3.8\d*e\+29 at step 100"),
                         ({"lr": {"shape": "step", "factor": 0}},
                          r"dynamics.schedule.lr.factor = 0.0: must be > 0")):
        with pytest.raises(PresetError, match=message):
            _preset(bad)


def test_gd_follows_a_step_schedule_exactly():
    """GD on f = x²/2 + y²/2: x_t = x_0 Π (1 − η_t), with η halved every 100 steps."""
    preset = make_preset(landscape={"builtin": "quadratic", "boundary": "none"},
                         dynamics={"kind": "gd", "lr": 0.1, "schedule": {
                             "every": 100, "lr": {"shape": "step", "factor": 0.5,
                                                  "interval": 100}}},
                         ensemble={"particles": 4, "seed": 0}, run={"record_every": 30})
    sim = Simulation(preset)
    start = sim.positions.copy()
    sim.advance(250)
    expected = start * 0.9 ** 100 * 0.95 ** 100 * 0.975 ** 50
    np.testing.assert_allclose(sim.positions, expected, rtol=1e-12)
    assert sim.time == pytest.approx(100 * 0.1 + 100 * 0.05 + 50 * 0.025)
    series = sim.trajectory_arrays()
    lr = dict(zip(series["series_steps"].tolist(), series["series_lr"].tolist()))
    assert (lr[90], lr[120], lr[240]) == (0.1, 0.05, 0.025)


@pytest.mark.parametrize("kind", ["langevin", "sgd", "underdamped", "adam"])
def test_chunking_never_changes_a_scheduled_run(kind):
    schedule = {"every": 7, "lr": {"shape": "warmup_cosine", "warmup": 10, "end": 0.005,
                                   "steps": 60},
                "temperature": {"shape": "linear", "end": 0.05, "steps": 45},
                "batch_size": {"shape": "cyclic", "end": 40, "period": 30}}
    preset = _preset(schedule, kind=kind)
    whole = Simulation(preset)
    whole.advance(61)
    parts = Simulation(preset)
    for n in (3, 1, 13, 20, 24):
        parts.advance(n)
    assert_same_state(whole, parts)
    assert whole.trajectory_arrays()["series_temperature"][-1] == pytest.approx(0.05)


@pytest.mark.parametrize("kind", ["langevin", "adam", "sgd"])
def test_a_constant_schedule_is_the_unscheduled_run_bit_for_bit(kind):
    constant = {"every": 9, "lr": {"shape": "constant"}, "temperature": {"shape": "constant"},
                "batch_size": {"shape": "expression", "expr": "v0"}}
    scheduled_run = Simulation(_preset(constant, kind=kind))
    plain_preset = _preset(None, kind=kind)
    plain = Simulation(plain_preset)
    for sim in (scheduled_run, plain):
        sim.advance(45)
    # the scheduled run is cut into chunks of ≤ 9 steps, the plain one at records only
    assert_same_state(plain, _with_preset(scheduled_run, plain_preset))


def _with_preset(sim, preset):
    """``sim`` compared as a run of ``preset`` (same dynamics bar the constant schedule)."""
    sim.preset = preset
    return sim


def test_annealing_lowers_the_effective_temperature_and_resumes_from_a_checkpoint():
    preset = _preset({"every": 10, "temperature": {"shape": "linear", "end": 0.0,
                                                   "steps": 100}})
    sim = _resumed_equals_uninterrupted(preset, 50, 55, before_checkpoint=lambda sim: (
        sim.effective_temperature() == pytest.approx(0.15)))
    assert sim.effective_temperature() == 0.0
    assert math.isfinite(sim.snapshot().tangent_lyapunov.mean())


def test_the_lyapunov_estimate_follows_the_scheduled_step_size():
    """GD on f = |x|²/2 multiplies every tangent vector by 1 − η_t per step, so the per-step
    Lyapunov estimates after 250 steps is the mean of log(1 − η_t) over the scheduled η_t — not
    log(1 − η₀), what an estimate ignoring the schedule would give."""
    preset = make_preset(landscape={"builtin": "quadratic", "boundary": "none"},
                         dynamics={"kind": "gd", "lr": 0.1, "schedule": {
                             "every": 50, "lr": {"shape": "step", "factor": 0.5,
                                                 "interval": 100}}},
                         ensemble={"particles": 8, "seed": 1, "init": {"std": 0.5}},
                         run={"record_every": 50})
    sim = Simulation(preset)
    sim.advance(250)
    expected = (100 * math.log(0.9) + 100 * math.log(0.95) + 50 * math.log(0.975)) / 250
    frame = sim.snapshot()
    np.testing.assert_allclose(frame.tangent_lyapunov, expected, rtol=1e-10)
    # γ̂ (Park & Yun 2025) is the mean of log‖I − η_t H‖ = log(1 − η_t) here: the same number
    np.testing.assert_allclose(frame.lyapunov, expected, rtol=1e-10)
    assert abs(expected - math.log(0.9)) > 0.03


def test_the_effective_temperature_follows_the_scheduled_step_and_batch_size():
    """SGD's additive noise model: T_eff = T + η σ² tr Σ (n − B)/(4B(n − 1)), with η and B of
    the current step."""
    preset = _preset({"every": 10, "lr": {"shape": "step", "factor": 0.5, "interval": 20},
                      "batch_size": {"shape": "step", "factor": 2.0, "interval": 20}},
                     kind="sgd", batch_size=4, dataset_size=64, noise_scale=2.0)
    sim = Simulation(preset)
    sim.advance(45)  # η = 0.02/4 = 0.005, B = 16 from step 40
    expected = 0.3 + 0.005 * 4.0 * 2.0 * (64 - 16) / (16 * 63) / 4.0
    assert sim.effective_temperature() == pytest.approx(expected, rel=1e-12)
    recorded = sim.trajectory_arrays()
    at_40 = recorded["series_steps"].tolist().index(40)
    assert recorded["series_batch_size"][at_40] == 16
    assert recorded["series_effective_temperature"][at_40] == pytest.approx(expected, rel=1e-12)


def test_a_schedule_is_set_from_the_command_line(tmp_path, capsys):
    """``--set`` writes [dynamics.schedule] keys like any other (a whole table as inline TOML, or
    one key of it); a bad one exits 2 naming the key and the value."""
    from engine.cli import main
    out = tmp_path / "run.npz"
    dw = str(ROOT / "presets" / "double_well_kramers.toml")
    common = ["run", dw, "--steps", "200", "--quiet", "--set", "ensemble.particles=20",
              "--set", "run.record_every=10"]
    assert main([*common, "--set", 'dynamics.schedule.lr={shape="cosine", end=0.001, '
                 'steps=200}', "--set", "dynamics.schedule.every=50", "--out", str(out)]) == 0
    with np.load(out) as saved:
        lr = dict(zip(saved["series_steps"].tolist(), saved["series_lr"].tolist()))
    start = load(dw).dynamics.lr
    assert lr[10] == start and lr[60] == ParamSchedule("cosine", end=0.001,
                                                       steps=200).value(start, 50)
    assert main([*common, "--set", "dynamics.schedule.lr.shape=cosine_ish",
                 "--out", str(out)]) == 2
    assert "dynamics.schedule.lr.shape = 'cosine_ish': must be one of" in capsys.readouterr().err


def test_a_scheduled_batch_size_and_formula_resume_from_a_checkpoint_bit_for_bit():
    preset = _preset({"every": 6, "lr": {"shape": "expression", "expr": "v0 / (1 + t / 40)"},
                      "batch_size": {"shape": "cyclic", "end": 32, "period": 24,
                                     "wave": "cosine"}}, kind="sgd", batch_size=4)
    sim = _resumed_equals_uninterrupted(preset, 37, 40)
    assert set(sim.trajectory_arrays()["series_batch_size"]) > {4.0, 32.0}


def test_a_top_level_schedule_table_is_the_dynamics_schedule():
    text = '''name = "top-level schedule"
[landscape]
builtin = "double_well"
[dynamics]
kind = "langevin"
lr = 0.01
temperature = 0.4
[schedule]
every = 10
temperature = { shape = "linear", end = 0.1 }
[run]
steps = 200
'''
    top = loads(text, "top.toml")
    nested = loads(text.replace("[schedule]", "[dynamics.schedule]"), "nested.toml")
    assert top == nested
    assert top.dynamics.schedule.temperature.shape == "linear"
    twice = text + '[dynamics.schedule]\nlr = { shape = "cosine" }\n'
    with pytest.raises(PresetError, match=r"twice\.toml: schedule: given twice"):
        loads(twice, "twice.toml")
