"""Underdamped Langevin (BAOAB) and the adaptive kinds (Adam, RMSprop, AdamW): physics against
closed forms and independent NumPy code (issue 26)."""
import math

import numpy as np
import pytest

from engine.api import structure_info
from engine.kinds import kind_named
from engine.kinds.adaptive import sharpness_limit
from engine.presets import PresetError
from engine.simulation import Simulation
from tests.conftest import make_preset


def _quadratic(kind, a=1.0, b=0.0, c=1.0, particles=1000, std=0.7, seed=1, record=50,
               **dynamics):
    return make_preset(landscape={"builtin": "quadratic", "boundary": "none",
                                  "params": {"a": a, "b": b, "c": c}},
                       dynamics={"kind": kind, **dynamics},
                       ensemble={"particles": particles, "seed": seed, "init": {"std": std}},
                       run={"steps": 100, "record_every": record})


# -- underdamped Langevin (BAOAB) ---------------------------------------------------------------
@pytest.mark.parametrize("h", [0.3, 0.9])
def test_baoab_x_variance_is_exactly_t_over_k_at_any_stable_step(h):
    """Leimkuhler & Matthews (2013): BAOAB's stationary x-marginal on a quadratic is exactly
    N(0, T/k) at any stable h (< 2/√k; k = 1 and 4 here, so h < 1).  Velocities start from
    Maxwell, positions from N(0, 0.7²): after a burn-in of 40 time units (every mode relaxes as
    e^{−γt/2}, e^{−20}) M = 10 snapshots 10 time units apart (the correlation of x² between
    them ≤ e^{−10}: independent).  x is Gaussian (linear dynamics, Gaussian noise and start),
    so each mean of x² over N particles has standard error (T/k)√(2/N); the pooled one
    (T/k)√(2/(NM)) = 0.22 % of T/k at N = 40 000.  Tolerance: 3.5 s.e.  (A first-order scheme
    misses by O(h) — tens of %; ABOBA's x-variance is T/(k(1 − h²k/4)), 25 % off at h = 0.9.)"""
    temperature, friction, n, m = 0.5, 1.0, 40_000, 10
    sim = Simulation(_quadratic("underdamped", a=1.0, c=4.0, particles=n, lr=h,
                                temperature=temperature, friction=friction, record=10**6))
    sim.advance(round(40 / h))
    estimates = []
    for _ in range(m):
        sim.advance(round(10 / h))
        estimates.append((sim.positions ** 2).mean(axis=0))
    estimates = np.mean(estimates, axis=0)
    expected = np.array([temperature / 1.0, temperature / 4.0])
    standard_error = expected * math.sqrt(2.0 / (n * m))
    assert np.all(np.abs(estimates - expected) < 3.5 * standard_error), (
        estimates, expected, standard_error)


def test_baoab_velocities_start_maxwellian_and_are_exported():
    sim = Simulation(_quadratic("underdamped", particles=20_000, lr=0.1, temperature=0.3,
                                friction=2.0, record=5))
    assert sim.velocities.var(axis=0) == pytest.approx([0.3, 0.3], rel=0.05)
    sim.advance(10)
    arrays = sim.trajectory_arrays()
    assert arrays["velocities"].shape == arrays["positions"].shape == (3, 20_000, 2)
    assert "series_kinetic_temperature" in arrays


def _baoab_matrix(h, friction, k):
    """The noiseless BAOAB map of one mode of stiffness k on (x, v): B A O A B."""
    c = math.exp(-friction * h)
    kick = np.array([[1.0, 0.0], [-0.5 * h * k, 1.0]])
    drift = np.array([[1.0, 0.5 * h], [0.0, 1.0]])
    damp = np.array([[1.0, 0.0], [0.0, c]])
    return kick @ drift @ damp @ drift @ kick


def test_baoab_tangent_exponent_is_the_linear_maps_on_x_and_v():
    """Noiseless BAOAB on a quadratic is linear: the tangent exponent of (δx, δv) is the log
    spectral radius of its 4×4 map, the larger of the two modes'."""
    h, friction = 0.4, 0.3
    sim = Simulation(_quadratic("underdamped", a=1.0, c=3.0, particles=8, lr=h,
                                temperature=0.0, friction=friction))
    steps = 4000
    sim.advance(steps)
    expected = max(math.log(max(abs(np.linalg.eigvals(_baoab_matrix(h, friction, k)))))
                   for k in (1.0, 3.0))
    _, tangent = sim.running_lyapunov()
    # both modes underdamped here: |eigenvalue|² = det = e^{−γh}, so the exponent is −γh/2;
    # the transient is O(1) in the log over 4000 steps (measured: 2e-5 off)
    assert expected == pytest.approx(-0.5 * friction * h)
    assert tangent == pytest.approx(np.full(8, expected), abs=5e-4)
    assert np.isnan(sim.snapshot().lyapunov).all()  # γ̂ is the gradient maps' estimate


def test_new_kinds_refuse_the_classifier_and_validate_their_keys():
    for kind in ("underdamped", "adam"):
        with pytest.raises(PresetError, match=f"dynamics.kind = '{kind}' runs"):
            make_preset(landscape={"builtin": "sine_classifier"}, dynamics={"kind": kind})
    with pytest.raises(PresetError, match=r"dynamics.beta1 = 1.0: must be < 1"):
        make_preset(dynamics={"kind": "adam", "beta1": 1.0})
    with pytest.raises(PresetError, match=r"dynamics.friction = 0.0: must be > 0"):
        make_preset(dynamics={"kind": "underdamped", "friction": 0.0})
    with pytest.raises(PresetError, match=r"dynamics.eps = -1.0"):
        make_preset(dynamics={"kind": "rmsprop", "eps": -1.0})


# -- adaptive methods ---------------------------------------------------------------------------
def _sgd_noise(preset, steps):
    """The minibatch noise means ā_t of each particle's first ``steps`` steps, read off a
    T = 0 SGD run on the same quadratic (x_{t+1} = x_t − η(H x_t + σ ā_t)): the picks depend
    on the particle's stream only, so an adaptive run of the same seed draws the same ā_t."""
    sgd = Simulation(preset.with_changes(dynamics={"kind": "sgd"}))
    p = preset.landscape.params
    hessian = np.array([[p["a"], p["b"]], [p["b"], p["c"]]])
    lr, sigma = preset.dynamics.lr, preset.dynamics.noise_scale
    noise = []
    for _ in range(steps):
        x = sgd.positions.copy()
        sgd.advance(1)
        noise.append(((x - sgd.positions) / lr - x @ hessian) / sigma)
    return np.array(noise), hessian


def _numpy_adaptive(kind, x, noise, hessian, d):
    """Independent reference: the textbook updates, vectorised over particles."""
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, a in enumerate(noise, start=1):
        g = x @ hessian + d.noise_scale * a
        if kind != "adamw":
            g = g + d.weight_decay * x
        v = d.beta2 * v + (1 - d.beta2) * g * g
        if kind == "rmsprop":
            x = x - d.lr * g / (np.sqrt(v) + d.eps)
            continue
        m = d.beta1 * m + (1 - d.beta1) * g
        m_hat = m / (1 - d.beta1 ** t)
        v_hat = v / (1 - d.beta2 ** t)
        x = x - d.lr * m_hat / (np.sqrt(v_hat) + d.eps)
        if kind == "adamw":
            x = x - d.lr * d.weight_decay * (x + d.lr * m_hat / (np.sqrt(v_hat) + d.eps))
    return x


@pytest.mark.parametrize("kind, beta1, beta2", [("adam", 0.9, 0.99), ("adamw", 0.8, 0.9),
                                                ("rmsprop", 0.9, 0.95), ("adam", 0.0, 0.0)])
def test_adaptive_steps_match_numpy_with_sgds_noise(kind, beta1, beta2):
    """30 steps of each rule against NumPy code fed the minibatch noise SGD draws (σ-noise
    model, additive, B = 4 of n = 16); β1 = β2 = 0 is sign descent η g/(|g| + ε)."""
    preset = _quadratic(kind, a=1.0, b=0.3, c=2.0, particles=64, lr=0.03, temperature=0.0,
                        noise_scale=0.5, batch_size=4, dataset_size=16, beta1=beta1,
                        beta2=beta2, eps=1e-3, weight_decay=0.1)
    steps = 30
    noise, hessian = _sgd_noise(preset, steps)
    sim = Simulation(preset)
    start = sim.positions.copy()
    sim.advance(steps)
    expected = _numpy_adaptive(kind, start, noise, hessian, preset.dynamics)
    np.testing.assert_allclose(sim.positions, expected, rtol=1e-9, atol=1e-12)


def test_adam_converges_on_a_quadratic():
    sim = Simulation(_quadratic("adam", a=1.0, b=0.3, c=4.0, particles=500, lr=0.01,
                                temperature=0.0, noise_scale=0.0, std=1.0))
    start = float(sim.out[:, 0].mean())
    sim.advance(5000)
    assert float(sim.out[:, 0].max()) < 1e-6 * start


def _adam_fixed_point_map(lr, beta1, beta2, eps, hessian):
    """The 6×6 linearisation of noiseless Adam at its fixed point x = m = v = 0, late (bias
    corrections 1): g = H x, so δm' = β1 δm + (1 − β1) H δx, δv' = β2 δv (g = 0), and
    δx' = δx − (η/ε) δm' (the m̂ δ√v̂ term vanishes with m̂)."""
    j = np.zeros((6, 6))
    i2 = np.eye(2)
    j[2:4, 0:2] = (1 - beta1) * hessian
    j[2:4, 2:4] = beta1 * i2
    j[4:6, 4:6] = beta2 * i2
    j[0:2, 0:2] = i2 - lr / eps * (1 - beta1) * hessian
    j[0:2, 2:4] = -lr / eps * beta1 * i2
    return j


def test_adam_tangent_exponent_matches_the_linearised_map_at_its_fixed_point():
    """The tangent vector runs through the whole update (δx, δm, δv): at Adam's fixed point
    on a quadratic its exponent is the log spectral radius of the 6×6 linearisation."""
    lr, beta1, beta2, eps = 0.1, 0.9, 0.5, 1.0
    hessian = np.array([[1.0, 0.2], [0.2, 0.5]])
    sim = Simulation(_quadratic("adam", a=1.0, b=0.2, c=0.5, particles=16, lr=lr,
                                temperature=0.0, noise_scale=0.0, beta1=beta1, beta2=beta2,
                                eps=eps, std=0.5))
    steps = 3000
    sim.advance(steps)
    radius = max(abs(np.linalg.eigvals(_adam_fixed_point_map(lr, beta1, beta2, eps, hessian))))
    _, tangent = sim.running_lyapunov()
    assert radius > 0.9  # the (x, m) block, not β2's decay, sets the exponent
    # measured: within 5e-5 of log ρ = log √β1 (the block's complex pair, |λ|² = det = β1)
    assert tangent == pytest.approx(np.full(16, math.log(radius)), abs=5e-4)


def test_the_stability_limit_is_cohens_formula_and_the_map_obeys_it():
    """(2 + 2β1)/((1 − β1)η) is where the frozen-preconditioner map of Adam on a mode of
    preconditioned curvature a loses stability (an eigenvalue −1); `engine info` reports it
    beside λ_max(P⁻¹H), and noiseless Adam with P ≈ ε converges just below it and leaves just
    above."""
    lr, beta1 = 1.0, 0.9
    limit = sharpness_limit(beta1, lr)
    assert limit == pytest.approx(38.0)

    def radius(a):
        m = np.array([[1 - lr * (1 - beta1) * a, -lr * beta1], [(1 - beta1) * a, beta1]])
        return max(abs(np.linalg.eigvals(m)))
    assert radius(limit * 0.999) < 1 < radius(limit * 1.001)
    # noiseless Adam with P ≈ ε (√v̂ ≪ ε = 1000 while |x| ≪ 1e-3): after the bias
    # corrections' transient (steps ≲ 100, where m̂ ≠ m), |x| changes by the map's spectral
    # radius per step — below 1 just under the limit, above it just over
    eps = 1000.0
    for factor in (0.95, 1.05):
        a = factor * limit * eps
        preset = _quadratic("adam", a=a, c=0.1 * a, particles=8, lr=lr, beta1=beta1,
                            beta2=0.999, eps=eps, temperature=0.0, noise_scale=0.0, std=1e-100)
        info = structure_info(preset)["minima"][0]["adam_stability"]
        assert info["preconditioned_sharpness_limit"] == pytest.approx(limit)
        assert info["preconditioned_sharpness"] == pytest.approx(a / eps)
        assert info["stable"] == (factor < 1)
        assert info["stable_below_lr"] == pytest.approx(lr / factor)
        sim = Simulation(preset)
        sim.advance(100)
        before = np.linalg.norm(sim.positions, axis=1)
        sim.advance(40)
        rate = (np.linalg.norm(sim.positions, axis=1) / before) ** (1 / 40)
        assert np.abs(sim.positions).max() < 1e-20  # still where P = ε to 1e-16
        assert rate == pytest.approx(np.full(8, radius(factor * limit)), rel=0.02)
