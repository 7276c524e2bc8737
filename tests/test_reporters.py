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


def test_history_and_escapes_live_in_their_reporters_for_every_kind():
    # recording and escape tracking are reporters of their own: the simulation's history,
    # escape log and core sets are theirs, and a checkpoint still holds them by their names
    from engine.diagnostics.structure import analyse
    from engine.reporters import EscapeReporter, HistoryReporter
    for kind in ("langevin", "underdamped", "adam"):
        preset = make_preset(landscape={"builtin": "double_well"},
                             dynamics={"kind": kind, "lr": 0.02, "temperature": 0.4},
                             run={"record_every": 10}, ensemble={"particles": 300, "seed": 3})
        sim = Simulation(preset)
        sim.attach_structure(analyse(preset, resolution=64, sim=sim))
        assert isinstance(sim.recorder, HistoryReporter) and isinstance(sim.escapes,
                                                                         EscapeReporter)
        assert sim.history is sim.recorder.history and sim.escape_log is sim.escapes.log
        assert sim._cores is sim.escapes.cores and sim.escapes.tracking
        sim.advance(400)
        assert sim.event_count() == sim.escapes.log.total > 0, kind   # every entry collected
        assert sim.events_dropped == sim.escapes.dropped == 0
        series = sim.history.scalar_series()
        assert len(series["steps"]) == 41 and "occupation_1" in series
        state = sim.checkpoint()
        assert state["escape_log"] is not sim.escape_log and state["history"] is not sim.history
        assert state["escape_log"].total == sim.event_count()


def test_escape_events_are_collected_piece_by_piece_without_loss(monkeypatch):
    # the reporter cuts a chunk into pieces whose buffers cannot overflow: tiny pieces log the
    # same events as one piece
    import engine.reporters.escapes as escapes
    from engine.diagnostics.structure import analyse
    preset = make_preset(landscape={"builtin": "double_well"},
                         dynamics={"kind": "langevin", "lr": 0.02, "temperature": 0.5},
                         run={"record_every": 100}, ensemble={"particles": 200, "seed": 9})
    whole, pieces = Simulation(preset), Simulation(preset)
    for sim in (whole, pieces):
        sim.attach_structure(analyse(preset, resolution=64, sim=sim))
    whole.advance(300)
    monkeypatch.setattr(escapes, "EVENT_BUFFER_BYTES", 32 * 200 * 7)   # pieces of 7 steps
    assert pieces.escapes.pieces(100, 200)[:2] == [(0, 7), (7, 7)]
    pieces.advance(300)
    assert whole.event_count() > 0
    np.testing.assert_array_equal(whole.events(), pieces.events())
    np.testing.assert_array_equal(whole.positions, pieces.positions)
