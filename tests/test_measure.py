"""Empirical measure vs Gibbs, and basin occupation vs Gibbs/Laplace weights."""
import numpy as np

from engine.diagnostics.measure import EmpiricalMeasure, gibbs_cells, kl_divergence, \
    total_variation
from engine.diagnostics.structure import analyse
from engine.simulation import Simulation
from tests.conftest import make_preset


def test_langevin_empirical_measure_reaches_gibbs_within_sampling_error():
    bins, particles, temperature = 32, 10000, 1.0
    sim = Simulation(make_preset(
        landscape={"builtin": "gaussian_mixture", "bounds": [[-3, 3], [-3, 3]]},
        dynamics={"kind": "langevin", "lr": 0.003, "temperature": temperature},
        ensemble={"particles": particles, "seed": 5, "init": {"uniform": True}},
        run={"steps": 1, "record_every": 10**6}), diagnostics=False)
    gibbs = gibbs_cells(sim.evaluate, sim.bounds, bins, temperature)

    def tv_now():
        measure = EmpiricalMeasure(sim.bounds, bins)
        measure.add(1, sim.positions)
        return total_variation(measure.density(), gibbs), measure.density()

    # sampling error of M independent particles: E TV ≈ ½ Σ √(2 p(1 − p)/(π M)), and the
    # standard deviation of TV ≈ ½ √((1 − 2/π)/M); bound = mean + 5 sd
    expected = 0.5 * np.sum(np.sqrt(2 * gibbs * (1 - gibbs) / (np.pi * particles)))
    bound = expected + 5 * 0.5 * np.sqrt((1 - 2 / np.pi) / particles)
    start, _ = tv_now()
    assert start > 2 * bound  # the uniform start is far from Gibbs: the test can fail
    sim.advance(6000)  # t = 18 ≫ the mixing time of this mixture at T = 1
    tv, density = tv_now()
    assert tv < bound, (tv, expected, bound)
    assert kl_divergence(density, gibbs) < 0.1


def _basin_mass(structure, temperature):
    """Exact Gibbs mass of each basin by quadrature on the analysis grid."""
    weights = np.exp(-(structure.values - structure.values.min()) / temperature)
    mass = np.array([weights[structure.basins == i].sum() for i in range(len(structure.minima))])
    return mass / mass.sum()


def test_occupation_follows_gibbs_and_laplace_weights_at_low_temperature():
    temperature, particles = 0.25, 4000
    preset = make_preset(
        landscape={"builtin": "double_well", "params": {"kappa": 1.0, "tilt": 0.1},
                   "bounds": [[-2.0, 2.0], [-1.5, 1.5]]},
        dynamics={"kind": "langevin", "lr": 0.01, "temperature": temperature},
        ensemble={"particles": particles, "seed": 8, "init": {"mean": [1.0, 0.0], "std": 0.05}},
        run={"steps": 1, "record_every": 10**6})
    sim = Simulation(preset, diagnostics=False)
    structure = analyse(preset, sim=sim)
    sim.attach_structure(structure)
    # Kramers time ≈ 60 time units at ΔU/T ≈ 4; t = 300 is ≥ 5 relaxation times of occupation
    sim.advance(30000)
    occupation = np.bincount(sim.last_core, minlength=2) / particles
    gibbs = _basin_mass(structure, temperature)
    se = np.sqrt(gibbs * (1 - gibbs) / particles)
    assert np.all(np.abs(occupation - gibbs) < 4 * se), (occupation, gibbs, se)
    # the Laplace weights exp(−f_m/T)/√det H_m approach the exact basin masses as T → 0
    errors = []
    for t in (0.5, 0.25, 0.1, 0.05):
        s = analyse(preset.with_changes(dynamics={"temperature": t}), sim=sim)
        errors.append(np.max(np.abs(s.weights - _basin_mass(s, t))))
    # (at high T the two approximation errors can cancel, so no monotonicity is claimed there)
    assert errors[3] < errors[2] < errors[1] and errors[3] < 0.01, errors


def test_adding_a_finer_histogram_equals_adding_the_positions():
    # the window bins large clouds once at 256² and feeds the 64² measure from that image
    from engine.diagnostics.binning import histogram2d
    bounds = np.array([-2.0, 2.0, -1.5, 1.5])
    points = np.random.default_rng(4).normal(scale=0.9, size=(50_000, 2))
    points[:10] = [[2.0, 1.5], [-2.0, -1.5], [2.0, 0.0], [0.0, 1.5], [5.0, 0.0],
                   [1.0, 1.0], [-1.0, -1.0], [0.0, 0.0], [1.99999, 1.49999], [-3.0, 9.0]]
    direct, coarse = EmpiricalMeasure(bounds, 64), EmpiricalMeasure(bounds, 64)
    direct.add(10, points)
    coarse.add_counts(10, histogram2d(points, bounds, 256), len(points))
    np.testing.assert_array_equal(direct.counts, coarse.counts)
    assert direct.samples == coarse.samples == len(points)


def test_binning_counts_what_numpy_counts():
    # an independent reference: NumPy's histogram2d (the right and top edges belong to the last
    # cell in both); NaN, ±inf and points outside the bounds are not counted
    from engine.diagnostics.binning import histogram2d
    bounds = np.array([-2.0, 2.0, -1.5, 1.5])
    points = np.random.default_rng(8).normal(scale=1.2, size=(20_000, 2))
    points[:8] = [[2.0, 1.5], [-2.0, -1.5], [2.0, -1.5], [np.nan, 0.0], [0.0, np.inf],
                  [-np.inf, 0.5], [2.0000001, 0.0], [0.5, -1.5000001]]
    finite = np.all(np.isfinite(points), axis=1)
    reference, _, _ = np.histogram2d(points[finite, 1], points[finite, 0], bins=100,
                                     range=[bounds[2:], bounds[:2]])
    np.testing.assert_array_equal(histogram2d(points, bounds, 100), reference)


def test_threaded_binning_gives_the_single_thread_counts(monkeypatch):
    # the window bins large clouds on both threads: per-thread histograms, summed
    from engine.diagnostics import binning
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(scale=1.5, size=(30_001, 2)),
                             [[-3.0, -3.0], [3.0, 3.0], [np.nan, 0.0], [10.0, 0.0]]])
    bounds = np.array([-3.0, 3.0, -3.0, 3.0])
    single = binning.histogram2d(points, bounds, 64)
    monkeypatch.setattr(binning, "PARALLEL_POINTS", 1000)
    threaded = binning.histogram2d(points, bounds, 64, out=np.ones((64, 64)))
    np.testing.assert_array_equal(threaded, single + 1.0)   # adds into out, like one thread
    assert single.sum() == np.sum(np.all(np.abs(points) <= 3.0, axis=1))
