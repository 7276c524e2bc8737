"""presets/annealing_muller_brown.toml: the temperature schedule turns the stationary measure
into an optimiser — the annealed cloud ends in Müller–Brown's deepest basin more often than the
same run (same cloud, same noise streams) held at the initial temperature."""
import math
from pathlib import Path

import numpy as np

from engine.diagnostics.structure import analyse
from engine.presets import load
from engine.simulation import Simulation

PRESET = Path(__file__).resolve().parents[1] / "presets" / "annealing_muller_brown.toml"
PARTICLES = 400  # the preset's 2000 cost 5× the time; the statistics below scale with it


def _final_occupation(preset, structure, deepest: int) -> float:
    sim = Simulation(preset)
    sim.advance(preset.run.steps)
    alive = sim.alive.astype(bool)
    return float(np.mean(structure.basin_of(sim.positions[alive]) == deepest))


def test_annealing_fills_the_deepest_basin_beyond_the_constant_temperature_run():
    preset = load(PRESET)
    schedule = preset.dynamics.schedule.temperature
    assert schedule.end < preset.dynamics.temperature  # it anneals
    preset = preset.with_changes(ensemble={"particles": PARTICLES})
    constant = preset.with_changes(dynamics={"schedule": None})
    structure = analyse(preset, resolution=256)
    deepest = int(np.argmin([m.f for m in structure.minima]))
    start = structure.basin_of(np.array([preset.ensemble.init_mean]))[0]
    assert start != deepest  # the cloud starts elsewhere
    annealed = _final_occupation(preset, structure, deepest)
    held = _final_occupation(constant, structure, deepest)
    # binomial standard error of the difference of two occupations of PARTICLES each, as if
    # the runs were independent (they share their initial cloud and noise streams)
    error = math.sqrt((annealed * (1 - annealed) + held * (1 - held)) / PARTICLES)
    assert annealed - held > 3 * error, (annealed, held, error)
    assert annealed > 0.5  # most of the cloud, not just more of it
