"""Schedules of η and T ([dynamics.schedule], engine/schedules.py): values at given steps,
validation, and chunking invariance — a schedule is a function of the global step, applied per
segment of `every` steps, so advance(a); advance(b) ≡ advance(a + b) bit for bit, and a
constant schedule is the unscheduled run bit for bit."""
import math

import numpy as np
import pytest

from engine.presets import PresetError, dumps, loads
from engine.schedules import ParamSchedule, Schedule, scheduled
from engine.simulation import Simulation
from tests.conftest import make_preset
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


def test_a_schedule_round_trips_and_is_validated():
    preset = _preset({"every": 50, "temperature": {"shape": "step", "factor": 0.5,
                                                   "interval": 100}})
    assert preset.dynamics.schedule == Schedule(50, None, ParamSchedule("step", factor=0.5,
                                                                        interval=100))
    assert loads(dumps(preset)) == preset
    for bad, message in (({"lr": {"shape": "exponential"}},
                          r"dynamics.schedule.lr.shape = 'exponential': must be one of"),
                         ({"every": 0}, r"dynamics.schedule.every = 0: must be >= 1"),
                         ({"temperature": {"end": -1.0}},
                          r"dynamics.schedule.temperature.end = -1.0: must be >= 0"),
                         ({"batch_size": {}}, r"dynamics.schedule.batch_size: unknown key"),
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
    schedule = {"every": 7, "lr": {"shape": "cosine", "end": 0.005, "steps": 60},
                "temperature": {"shape": "linear", "end": 0.05, "steps": 45}}
    preset = _preset(schedule, kind=kind)
    whole = Simulation(preset)
    whole.advance(61)
    parts = Simulation(preset)
    for n in (3, 1, 13, 20, 24):
        parts.advance(n)
    assert_same_state(whole, parts)
    assert whole.trajectory_arrays()["series_temperature"][-1] == pytest.approx(0.05)


@pytest.mark.parametrize("kind", ["langevin", "adam"])
def test_a_constant_schedule_is_the_unscheduled_run_bit_for_bit(kind):
    constant = {"every": 9, "lr": {"shape": "constant"}, "temperature": {"shape": "constant"}}
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
    sim = Simulation(preset)
    sim.advance(50)
    assert sim.effective_temperature() == pytest.approx(0.15)
    saved = sim.checkpoint()
    sim.advance(55)
    fresh = Simulation(preset)
    fresh.restore(saved)
    fresh.advance(55)
    assert_same_run(sim, fresh)
    assert sim.effective_temperature() == 0.0
    assert math.isfinite(sim.snapshot().tangent_lyapunov.mean())
