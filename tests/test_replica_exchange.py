"""Replica exchange (engine.replica_exchange, engine.replica_spec): the lowest rung samples the
Gibbs law, swaps follow the Metropolis rule, runs are chunking-proof and resume bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.diagnostics.mixing import integrated_autocorrelation_time
from engine.presets import PresetError, dumps, loads
from engine.replica_exchange import (LangevinReplicaExchange, UnderdampedReplicaExchange,
                                     swap_neighbours)
from engine.rng import draw_uniforms, particle_states
from engine.simulation import Simulation


def _preset(kind="langevin", temperature=0.2, replicas="count = 4, t_max = 1.5, swap_every = 5",
            lr=0.005, particles=300, tilt=0.1, extra=""):
    return loads(f"""
name = "replica test"
[landscape]
builtin = "double_well"
params = {{ tilt = {tilt} }}
[dynamics]
kind = "{kind}"
lr = {lr}
temperature = {temperature}
friction = 2.0
{extra}
[ensemble]
particles = {particles}
seed = 3
init = {{ mean = [-1.0, 0.0], std = 0.1 }}
replicas = {{ {replicas} }}
[run]
record_every = 20
""")


def _gibbs_right_occupation(temperature: float, tilt: float) -> float:
    """P(x > 0) under exp(−f/T) on the box: f = (x² − 1)² + y² + tilt·x is separable, so the
    x-marginal ∝ exp(−((x² − 1)² + tilt·x)/T) on [−2, 2] (trapezoid rule, 4·10⁵ intervals)."""
    x = np.linspace(-2.0, 2.0, 400_001)
    w = np.exp(-((x * x - 1.0) ** 2 + tilt * x) / temperature)
    w[[0, -1]] *= 0.5
    return float(w[x > 0].sum() / w.sum())


@pytest.mark.parametrize("kind, lr, steps", [("langevin", 0.005, 12_000),
                                             ("underdamped", 0.02, 6_000)])
def test_lowest_rung_occupation_is_gibbs(kind, lr, steps):
    """Every chain starts in the deeper left well at T = 0.2, where plain dynamics would need
    ~10⁵ steps per crossing of the unit barrier; with the ladder up to T = 1.5 the lowest rung's
    right-well occupation matches the exact Gibbs value within 3 standard errors, the error from
    the effective sample size (frames × chains / integrated autocorrelation time)."""
    temperature, tilt = 0.2, 0.1
    sim = Simulation(_preset(kind, temperature, lr=lr))
    assert isinstance(sim, LangevinReplicaExchange if kind == "langevin"
                      else UnderdampedReplicaExchange)
    sim.advance(steps)
    x = sim.trajectory_arrays()["positions"][..., 0]
    right = (x[x.shape[0] // 5:] > 0).astype(float)  # a fifth of the frames as burn-in
    p = right.mean()
    tau = integrated_autocorrelation_time(right)
    stderr = math.sqrt(p * (1.0 - p) * tau / right.size)
    exact = _gibbs_right_occupation(temperature, tilt)
    assert abs(p - exact) < 3.0 * stderr, (p, exact, stderr)
    assert sim.round_trips[0] > 0


def test_equal_temperatures_accept_every_swap():
    """With two rungs at the same T the Metropolis ratio is exp(0) = 1: every tried swap is
    taken, one try per chain every 2m steps (pair (0, 1) at even swap numbers only)."""
    sim = Simulation(_preset(replicas="temperatures = [0.2, 0.2], swap_every = 4",
                             particles=50))
    sim.advance(80)
    attempts, accepted = sim.pair_counts[0]
    assert attempts == 50 * 80 // 8 and accepted == attempts
    assert sim.swap_acceptance()[0] == 1.0


def test_swap_rule_matches_numpy():
    """One sweep of :func:`swap_neighbours` against the rule written out in NumPy with the same
    uniforms: pairs of one parity, accepted iff u < exp((β_k − β_{k+1})(f_k − f_{k+1}))."""
    rng = np.random.default_rng(7)
    n, k_rungs = 400, 5
    lowest = rng.normal(size=(n, 2))
    hot = rng.normal(size=(k_rungs - 1, n, 2))
    energies = rng.exponential(size=(k_rungs, n))
    betas = 1.0 / np.array([0.2, 0.3, 0.45, 0.7, 1.0])
    streams = particle_states(11, 0, n, 99)
    for parity in (0, 1):
        rungs = np.concatenate([lowest[None], hot])
        expected = rungs.copy()
        uniforms = draw_uniforms(streams.copy(), len(range(parity, k_rungs - 1, 2)))
        accepted = np.zeros(k_rungs - 1, dtype=np.int64)
        for j, k in enumerate(range(parity, k_rungs - 1, 2)):
            take = uniforms[:, j] < np.exp((betas[k] - betas[k + 1])
                                           * (energies[k] - energies[k + 1]))
            accepted[k] = take.sum()
            expected[k, take], expected[k + 1, take] = rungs[k + 1, take], rungs[k, take]
        low, hi = lowest.copy(), hot.copy()
        counts = np.zeros((k_rungs - 1, 2), dtype=np.int64)
        walkers = np.repeat(np.arange(k_rungs)[:, None], n, axis=1)
        swap_neighbours(low, hi, energies, np.ones(n, np.uint8),
                        np.ones((k_rungs - 1, n), np.uint8), betas, parity, streams.copy(),
                        walkers, np.zeros((k_rungs, n), np.int8),
                        np.zeros((k_rungs, n), np.int64), 10, counts, np.zeros(2, np.int64))
        np.testing.assert_array_equal(np.concatenate([low[None], hi]), expected)
        np.testing.assert_array_equal(counts[:, 1], accepted)
        tried = [n if (k - parity) % 2 == 0 else 0 for k in range(k_rungs - 1)]
        np.testing.assert_array_equal(counts[:, 0], tried)
        assert 0 < accepted.sum() < sum(tried)  # both outcomes occur


def _state(sim) -> dict:
    return {name: getattr(sim, name).copy() for name in
            ("positions", "velocities", "tangent", "acc", "rng", "swap_rng", "hot_positions",
             "hot_velocities", "hot_rng", "walkers", "heading", "bottom_step", "pair_counts",
             "round_trips")}


@pytest.mark.parametrize("kind", ["langevin", "underdamped"])
def test_chunking_and_checkpoint_resume_are_bitwise(kind):
    """advance(a); advance(b) ≡ advance(a + b), and a fresh simulation restored from a
    checkpoint at a (not a multiple of swap_every) continues exactly as the uninterrupted run,
    rungs, swap streams, walkers and counters included."""
    preset = _preset(kind, replicas="count = 3, swap_every = 7", particles=64, lr=0.01)
    whole = Simulation(preset)
    whole.advance(300)
    cut = Simulation(preset)
    cut.advance(123)
    saved = cut.checkpoint()
    cut.advance(177)
    resumed = Simulation(preset)
    resumed.advance(5)  # a different state, overwritten by the restore
    resumed.restore(saved)
    resumed.advance(100)
    resumed.advance(77)
    reference = _state(whole)
    assert reference["pair_counts"][:, 1].sum() > 0
    for other in (cut, resumed):
        for name, value in _state(other).items():
            np.testing.assert_array_equal(value, reference[name], err_msg=name)
    np.testing.assert_array_equal(resumed.trajectory_arrays()["rung_positions"],
                                  whole.trajectory_arrays()["rung_positions"])


def test_exports_and_summary():
    sim = Simulation(_preset(particles=20, replicas="count = 3, t_max = 0.8"))
    sim.advance(100)
    arrays = sim.trajectory_arrays()
    frames = arrays["positions"].shape[0]
    assert arrays["rung_positions"].shape == (frames, 3, 20, 2)
    np.testing.assert_array_equal(arrays["rung_positions"][:, 0], arrays["positions"])
    assert arrays["series_swap_acceptance_0"].shape == arrays["series_steps"].shape
    assert "series_swap_acceptance_1" in arrays and "series_swap_acceptance_2" not in arrays
    info = sim.replica_summary()
    assert info["temperatures"] == pytest.approx([0.2, 0.4, 0.8])
    assert [p["rungs"] for p in info["pairs"]] == [[0, 1], [1, 2]]
    assert info["pairs"][0]["attempts"] == 20 * 5  # swaps at 10, 30, …, 90 for pair (0, 1)
    from engine.api import summary
    assert summary(sim)["replica_exchange"]["pairs"] == info["pairs"]


def test_live_changes_scale_the_ladder_and_resize_the_chains():
    sim = Simulation(_preset(particles=30, replicas="temperatures = [0.2, 0.5, 1.0]"))
    sim.advance(20)
    sim.update_params(temperature=0.4)
    assert sim.rung_temperatures() == pytest.approx([0.4, 1.0, 2.0])
    assert sim.preset.ensemble.replicas.temperatures[0] == 0.4
    sim.update_params(particles=45)
    assert sim.hot_positions.shape == (2, 45, 2) and sim.walkers.shape == (3, 45)
    sim.advance(20)
    sim.update_params(particles=10)
    assert sim.hot_rng.shape == (2, 10, 4) and sim.swap_rng.shape == (10, 4)
    sim.advance(20)


def test_underdamped_hot_rungs_start_from_their_maxwell_law():
    sim = Simulation(_preset("underdamped", replicas="temperatures = [0.2, 2.0]",
                             particles=4000, lr=0.01))
    v = sim.hot_velocities[0]
    # ⟨v²⟩ per component is T = 2; its standard error is T √(2/n) for n = 8000 normals
    assert abs(np.mean(v ** 2) - 2.0) < 3 * 2.0 * math.sqrt(2.0 / v.size)


def test_preset_round_trip():
    for replicas in ("temperatures = [0.2, 0.3, 0.9], swap_every = 3",
                     "count = 5, t_max = 2.0", "swap_every = 2"):
        preset = _preset(replicas=replicas)
        assert loads(dumps(preset)) == preset
    assert _preset(replicas="").ensemble.replicas.ratios(0.2) == pytest.approx(
        [1.0, 2.0, 4.0, 8.0])


@pytest.mark.parametrize("replicas, extra, kind, key, fragment", [
    ("count = 4", "", "sgd", "dynamics.kind", "= 'sgd': cannot run ensemble.replicas"),
    ("temperatures = [0.3, 0.5]", "", "langevin", "ensemble.replicas.temperatures[0]",
     "0.3"),
    ("temperatures = [0.2, 0.5, 0.4]", "", "langevin", "ensemble.replicas.temperatures[2]",
     "0.4"),
    ("temperatures = [0.2]", "", "langevin", "ensemble.replicas.temperatures", "[0.2]"),
    ("count = 1", "", "langevin", "ensemble.replicas.count", "1"),
    ("t_max = 0.1", "", "langevin", "ensemble.replicas.t_max", "0.1"),
    ("count = 3, temperatures = [0.2, 0.4]", "", "langevin", "ensemble.replicas.count", ""),
    ("swap_every = 0", "", "langevin", "ensemble.replicas.swap_every", "0"),
    ("rungs = 3", "", "langevin", "ensemble.replicas.rungs", "unknown key"),
])
def test_bad_ladders_are_named(replicas, extra, kind, key, fragment):
    with pytest.raises(PresetError) as error:
        _preset(kind, replicas=replicas, extra=extra)
    assert error.value.key == key and fragment in str(error.value)


def test_lowest_temperature_must_be_positive():
    with pytest.raises(PresetError, match=r"dynamics\.temperature = 0\.0"):
        _preset(temperature=0.0, replicas="count = 3, t_max = 1.0")


def test_the_window_engine_shows_the_chosen_rung():
    """The engine side of the window (app.engine_loop) draws the rung the selector names; the
    measure keeps reading the lowest rung."""
    import queue
    import threading

    from app.engine_loop import EngineLoop
    preset = _preset(particles=40, replicas="count = 3, t_max = 0.8")
    loop = EngineLoop(preset, queue.Queue(), threading.Event(), threading.Event(),
                      lambda kind, payload: None)
    loop._load(preset)
    loop.sim.advance(30)
    loop._cmd_rung(2)
    np.testing.assert_array_equal(loop._bundle(loop.sim).frame.positions,
                                  loop.sim.hot_positions[1])
    loop._cmd_rung(0)
    np.testing.assert_array_equal(loop._bundle(loop.sim).frame.positions, loop.sim.positions)


def test_a_temperature_schedule_moves_the_whole_ladder():
    """With T halved every 50 steps the ladder keeps its ratios: each rung halves too."""
    sim = Simulation(_preset(particles=20, replicas="temperatures = [0.2, 0.4, 1.0]",
                             extra='schedule = { every = 50, temperature = { shape = "step", '
                                   'factor = 0.5, interval = 50 } }'))
    sim.advance(120)
    assert sim.rung_temperatures() == pytest.approx([0.05, 0.1, 0.25])
    assert sim.replica_summary()["temperatures"] == pytest.approx([0.05, 0.1, 0.25])


def test_info_lists_the_ladder():
    from engine.api import structure_info
    info = structure_info(_preset(replicas="count = 3, t_max = 0.8, swap_every = 4"))
    assert info["replica_exchange"] == {"temperatures": pytest.approx([0.2, 0.4, 0.8]),
                                        "swap_every": 4}


@pytest.mark.qt
def test_the_window_lists_the_rungs_and_follows_a_live_temperature(qtbot):
    """The selector appears for a replica-exchange preset with one entry per rung, the lowest
    chosen; a live T rescales the temperatures it lists and keeps the choice."""
    from app.main_window import MainWindow
    from tests.conftest import ROOT
    window = MainWindow(_preset(particles=50, replicas="temperatures = [0.2, 0.4, 0.8]"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.rung_combo.count() == 3, timeout=120_000)
    assert not window.rung_row.isHidden() and window.rung_combo.currentIndex() == 0
    window.rung_combo.setCurrentIndex(2)
    window._set("temperature", 0.4)  # what the T slider sends
    qtbot.waitUntil(lambda: window.rung_combo.itemText(2).startswith("2: T = 1.6"),
                    timeout=60_000)
    assert window.rung_combo.currentIndex() == 2
    assert window.rung_combo.itemText(0) == "0: T = 0.4 (target)"
    assert window.open_preset(ROOT / "presets" / "double_well_kramers.toml")
    qtbot.waitUntil(lambda: window.rung_row.isHidden(), timeout=120_000)
    window.shutdown()
