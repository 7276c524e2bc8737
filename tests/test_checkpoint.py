"""Checkpoints are complete: for every kind, run a; checkpoint; run b equals run a + b bit for
bit after a restore into a fresh Simulation — also after a change of N and a parameter edit."""
import numpy as np
import pytest

from engine.presets import apply_sets, load
from engine.simulation import Simulation
from tests.conftest import ROOT, make_preset
from tests.test_ghost_seams import stripe_cores

KINDS = ("gd", "sgd", "langevin", "momentum", "ghost", "underdamped", "adam", "rmsprop",
         "adamw")


def _preset(kind):
    if kind == "ghost":
        return apply_sets(load(ROOT / "presets" / "ghost_corridor.toml"), [
            "ensemble.particles=70", "dynamics.dataset_size=32", "dynamics.batch_size=8",
            "dynamics.ghost_init=0.5", "dynamics.temperature=0.02", "run.record_every=10"])
    dynamics = {"kind": kind, "lr": 0.02, "temperature": 0.3, "batch_size": 8,
                "noise_scale": 2.0, "momentum": 0.5 if kind == "momentum" else 0.0}
    return make_preset(landscape={"builtin": "double_well"}, dynamics=dynamics,
                       ensemble={"particles": 70, "seed": 3, "init": {"std": 0.5}},
                       run={"steps": 100, "record_every": 10})


def _tracked(preset):
    sim = Simulation(preset)
    sim.attach_cores(*stripe_cores(sim.bounds, width=0.25))
    return sim


def assert_same_run(a, b):
    assert type(a) is type(b)
    assert (a.step, a.time, a.preset) == (b.step, b.time, b.preset)
    for name in a.PARTICLE_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.event_count() == b.event_count()
    assert a.escape_log.transition_table(a.step) == b.escape_log.transition_table(b.step)
    arrays_a, arrays_b = a.trajectory_arrays(), b.trajectory_arrays()
    assert sorted(arrays_a) == sorted(arrays_b)
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)
    frame_a, frame_b = a.snapshot(), b.snapshot()
    for key in ("loss", "grad_norm", "lyapunov", "time_avg_loss"):
        np.testing.assert_array_equal(getattr(frame_a, key), getattr(frame_b, key), err_msg=key)
    assert frame_a.effective_temperature == frame_b.effective_temperature


@pytest.mark.parametrize("kind", KINDS)
def test_a_restored_checkpoint_continues_bit_for_bit(kind):
    preset = _preset(kind)
    straight = _tracked(preset)
    straight.advance(13 + 21)
    run = _tracked(preset)
    run.advance(13)
    saved = run.checkpoint()
    run.advance(5)                      # the checkpoint is a copy: later steps leave it alone
    fresh = Simulation(preset)          # no escape tracking of its own: the checkpoint's
    fresh.restore(saved)
    fresh.advance(21)
    assert straight.event_count() > 0
    assert_same_run(straight, fresh)


@pytest.mark.parametrize("kind", KINDS)
def test_a_checkpoint_after_a_change_of_n_and_a_parameter_edit(kind):
    preset = _preset(kind)
    run = _tracked(preset)
    run.advance(12)
    run.update_params(particles=101)    # N grows; escape statistics and history restart
    params = {"alpha": 4.0} if kind == "ghost" else {"tilt": 0.2}
    run.update_params(lr=0.015, landscape_params=params)
    run.advance(7)
    run.update_params(particles=90)
    run.advance(3)
    saved = run.checkpoint()
    run.advance(25)
    fresh = Simulation(preset)
    fresh.restore(saved)
    assert fresh.positions.shape[0] == 90 and fresh.preset.dynamics.lr == 0.015
    fresh.advance(25)
    assert_same_run(run, fresh)


def test_the_declared_fields_are_all_a_checkpoint_needs_and_are_checked():
    sim = Simulation(_preset("ghost"))
    saved = sim.checkpoint()
    for name in sim.PARTICLE_FIELDS + sim.RUN_FIELDS:
        assert name in saved
    assert "gamma" in sim.PARTICLE_FIELDS and saved["gamma"].shape == (70, 2, 3)
    incomplete = {k: v for k, v in saved.items() if k != "gamma"}
    with pytest.raises(ValueError, match="gamma"):
        Simulation(_preset("ghost")).restore(incomplete)
    with pytest.raises(ValueError, match="GhostSimulation checkpoint"):
        Simulation(_preset("langevin")).restore(saved)
    # every particle field follows N, the ghost weights included
    sim.update_params(particles=75)
    assert all(len(getattr(sim, name)) == 75 for name in sim.PARTICLE_FIELDS)
