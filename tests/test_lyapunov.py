"""Running Lyapunov estimate (Park & Yun (2025), eq. 4.1) and the tangent exponent vs exact values."""
import numpy as np
import pytest

from engine.simulation import Simulation
from tests.conftest import make_preset


def test_gd_on_a_quadratic_gives_log_of_the_largest_multiplier():
    lr = 0.3
    h = np.array([[3.0, 1.0], [1.0, 2.0]])
    sim = Simulation(make_preset(
        landscape={"builtin": "quadratic", "params": {"a": 3.0, "b": 1.0, "c": 2.0},
                   "boundary": "none"},
        dynamics={"kind": "gd", "lr": lr},
        ensemble={"particles": 20, "seed": 0, "init": {"mean": [1.0, -1.0], "std": 0.5}}))
    steps = 4000
    sim.advance(steps)
    gamma, tangent = sim.running_lyapunov()
    exact = np.log(np.max(np.abs(1 - lr * np.linalg.eigvalsh(h))))
    # constant Hessian: every term of γ̂ is exactly log ‖I − ηH‖₂
    np.testing.assert_allclose(gamma, exact, rtol=1e-12)
    # the tangent vector aligns with the top eigenvector; the transient costs O(1/steps)
    np.testing.assert_allclose(tangent, exact, atol=5.0 / steps)


@pytest.mark.parametrize("lr,steps", [(0.04, 15), (0.015, 500)])
def test_zhang_sin_near_a_minimum_gives_log_abs_one_minus_100_lr(lr, steps):
    # at the minimum (π/2, −π/2) of 100 sin x sin y the Hessian is 100·I, so both estimates
    # equal ln|1 − 100η| there (ln 3 at η = 0.04).  At η = 0.04 the minimum is unstable: the
    # 1e-16 rounding offset grows ×3 per step, so only the first steps stay "near" it
    # (15 steps: offset ~1e-8, Hessian still 100·I to ~1e-14)
    sim = Simulation(make_preset(
        landscape={"builtin": "zhang_sin", "boundary": "none"},
        dynamics={"kind": "gd", "lr": lr},
        ensemble={"particles": 4, "seed": 0,
                  "init": {"mean": [np.pi / 2, -np.pi / 2], "std": 0.0}}))
    sim.advance(steps)
    gamma, tangent = sim.running_lyapunov()
    expected = np.log(abs(1 - 100 * lr))
    np.testing.assert_allclose(gamma, expected, atol=1e-9)
    np.testing.assert_allclose(tangent, expected, atol=1e-9)
    if lr == 0.04:
        assert expected == pytest.approx(np.log(3.0))


def test_paper_estimate_bounds_the_top_exponent_from_above():
    # Zhang at η = 0.04 from a uniform cloud: non-constant Hessians along the orbit, so
    # Σ log ‖J_t‖ ≥ log ‖J_N ⋯ J_1‖ strictly (submultiplicativity)
    sim = Simulation(make_preset(
        landscape={"builtin": "zhang_sin", "boundary": "periodic",
                   "bounds": [[-np.pi, np.pi], [-np.pi, np.pi]]},
        dynamics={"kind": "gd", "lr": 0.04},
        ensemble={"particles": 200, "seed": 1, "init": {"uniform": True}}))
    sim.advance(1000)
    gamma, tangent = sim.running_lyapunov()
    assert np.all(gamma >= tangent - 1e-12)
    assert np.mean(gamma - tangent) > 0.1


def test_singular_step_is_clamped_not_minus_infinity():
    # η = 0.01 at the Zhang minimum: I − ηH = 0 exactly (a superattracting fixed point)
    sim = Simulation(make_preset(
        landscape={"builtin": "zhang_sin", "boundary": "none"},
        dynamics={"kind": "gd", "lr": 0.01},
        ensemble={"particles": 2, "seed": 0,
                  "init": {"mean": [np.pi / 2, -np.pi / 2], "std": 0.0}}))
    sim.advance(10)
    gamma, tangent = sim.running_lyapunov()
    # in floating point ‖I − ηH‖ is ~1e-33 (cos(π/2) ≠ 0), exactly 0 never arises here; the
    # kernel clamps an exact 0 at log(1e-300).  Either way: finite and hugely negative
    assert np.all(np.isfinite(gamma)) and np.all(np.isfinite(tangent))
    assert np.all(gamma < -30) and np.all(tangent < -30)


def test_tangent_vector_never_holds_subnormal_numbers():
    # diagonal Hessian (3, 1) at η = 0.1: the x-component shrinks like 0.7^k against the norm's
    # 0.9^k and, unflushed, spends steps ≈ 1990–2090 as a subnormal number (≈ 100× slower
    # arithmetic, which halved the engine's speed on the double well after 10⁴ steps)
    lr = 0.1
    sim = Simulation(make_preset(
        landscape={"builtin": "quadratic", "params": {"a": 3.0, "b": 0.0, "c": 1.0},
                   "boundary": "none"},
        dynamics={"kind": "gd", "lr": lr},
        ensemble={"particles": 5, "seed": 0, "init": {"mean": [1.0, -1.0], "std": 0.5}}))
    smallest_normal = np.finfo(np.float64).tiny
    for _ in range(2200):
        sim.advance(1)
        t = np.abs(sim.tangent)
        assert not np.any((t > 0) & (t < smallest_normal)), sim.step
    _, tangent = sim.running_lyapunov()
    np.testing.assert_allclose(tangent, np.log(1 - lr * 1.0), atol=5.0 / 2200)


def _edge_of_stability_run(lr, steps=3000):
    from engine.presets import apply_sets, load
    sim = Simulation(apply_sets(load("presets/edge_of_stability.toml"), [f"dynamics.lr={lr}"]))
    sim.advance(steps)
    sharp = np.hypot(sim.positions[:, 0] + 1.0, sim.positions[:, 1])
    flat = np.hypot(sim.positions[:, 0] - 1.5, sim.positions[:, 1])
    return sim, sharp, flat


def test_edge_of_stability_preset_the_sharp_minimum_is_a_gd_limit_only_below_two_over_a():
    """The preset's minima have Hessians aI (a = 20, at (−1, 0)) and bI (b = 2, at (1.5, 0))."""
    from engine.api import structure_info
    from engine.presets import load
    minima = structure_info(load("presets/edge_of_stability.toml"))["minima"]
    assert sorted(m["gd_stable_below_lr"] for m in minima) == pytest.approx([0.1, 1.0])
    # below 2/a = 0.1 both are limits, γ̂ → log|1 − ηa| at the sharp one
    sim, sharp, flat = _edge_of_stability_run(0.095)
    at_sharp = sharp < 1e-9
    assert 0.3 < at_sharp.mean() and np.all(at_sharp | (flat < 1e-9))
    gamma, _ = sim.running_lyapunov()
    # the transient's terms differ from the limit's for a few dozen of the 3000 steps
    np.testing.assert_allclose(gamma[at_sharp], np.log(abs(1 - 0.095 * 20.0)), atol=0.005)

    # above it the sharp minimum repels: its particles end on a period-2 orbit across it with
    # loss > 0, where I − ηH has the eigenvalue −1 (seen at 1e-16), so ‖I − ηH‖₂ = 1 and γ̂
    # stops moving, while the tangent exponent is negative: a stable orbit that γ̂, an upper
    # bound, puts at the edge of stability
    sim, sharp, flat = _edge_of_stability_run(0.15)
    orbiting = flat > 1e-9
    assert sharp.min() > 0.05 and 0.3 < orbiting.mean()
    assert np.all(sim.snapshot().loss[orbiting] > 0.1)
    before = sim.positions[orbiting].copy()
    gamma, tangent = sim.running_lyapunov()
    sim.advance(1)
    assert np.all(np.abs(sim.positions[orbiting] - before).max(axis=1) > 0.05)
    sim.advance(1999)
    np.testing.assert_allclose(sim.positions[orbiting], before, atol=1e-9)
    gamma_late, tangent_late = sim.running_lyapunov()
    # the mean term of each estimate over the last 2000 steps
    term = (gamma_late * 5000 - gamma * 3000)[orbiting] / 2000
    tangent_term = (tangent_late * 5000 - tangent * 3000)[orbiting] / 2000
    np.testing.assert_allclose(term, 0.0, atol=1e-12)
    assert np.all(tangent_term < -0.1)
    assert np.all(gamma_late[orbiting] > tangent_late[orbiting])

    # from η ≈ 0.25 the sharp region throws every particle out to the flat minimum
    _, _, flat = _edge_of_stability_run(0.25)
    assert np.all(flat < 1e-9)
