"""Reporters watch a run without changing it; the measure reporter is the one place the
empirical measure is compared with Gibbs (headless summary and window alike)."""
import numpy as np

from engine.api import measure_summary
from engine.reporters import MeasureReporter
from engine.simulation import Simulation
from tests.conftest import make_preset


class _Steps:
    def __init__(self, every):
        self.every, self.seen = every, []

    def due(self, step):
        return step % self.every == 0

    def report(self, sim):
        self.seen.append((sim.step, float(sim.positions[:, 0].sum())))


def test_a_reporter_sees_the_steps_it_asks_for_and_changes_no_number():
    preset = make_preset(run={"steps": 100, "record_every": 10})
    plain, watched = Simulation(preset), Simulation(preset)
    reporter = _Steps(every=20)
    watched.reporters.append(reporter)
    for sim in (plain, watched):
        sim.advance(35)
        sim.advance(65)
    assert [step for step, _ in reporter.seen] == [20, 40, 60, 80, 100]
    np.testing.assert_array_equal(plain.positions, watched.positions)
    assert reporter.seen[-1][1] == float(watched.positions[:, 0].sum())


def test_pooled_measure_reaches_gibbs_within_sampling_error():
    bins, particles, temperature = 32, 10000, 1.0
    preset = make_preset(
        landscape={"builtin": "gaussian_mixture", "bounds": [[-3, 3], [-3, 3]]},
        dynamics={"kind": "langevin", "lr": 0.003, "temperature": temperature},
        ensemble={"particles": particles, "seed": 5, "init": {"uniform": True}},
        run={"steps": 1, "record_every": 500})
    sim = Simulation(preset, diagnostics=False)
    reporter = MeasureReporter(sim, bins, burn_in=6000, every=500)
    sim.reporters.append(reporter)
    sim.advance(6000 + 4 * 500)  # t = 18 ≫ the mixing time of this mixture at T = 1
    # 4 pooled snapshots of M particles, 500 steps (t = 1.5) apart, taken as independent:
    # E TV ≈ ½ Σ √(2 p(1 − p)/(π 4M)), sd ≈ ½ √((1 − 2/π)/(4M)); bound = mean + 5 sd, doubled
    # for the correlation left between snapshots 1.5 time units apart
    samples = 4 * particles
    gibbs = reporter.gibbs
    expected = 0.5 * np.sum(np.sqrt(2 * gibbs * (1 - gibbs) / (np.pi * samples)))
    bound = 2 * (expected + 5 * 0.5 * np.sqrt((1 - 2 / np.pi) / samples))
    summary = reporter.summary()
    assert summary["samples"] == samples
    assert summary["tv"] < bound, (summary["tv"], bound)
    # the headless summary is the same reporter over the recorded frames
    recorded = measure_summary(sim, bins, burn_in_fraction=0.0)
    assert recorded["temperature"] == summary["temperature"] == temperature
