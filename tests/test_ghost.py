"""Ghost-extended SGD on the sine classifier (Park & Yun (2025), §5, eqs. 5.2–5.4, Result 5.3)."""
import math

import numpy as np
import pytest

from engine.ghost import METRIC_COLUMNS, classifier_landscape, full_data_metrics, make_task
from engine.presets import apply_sets, load
from engine.simulation import Simulation
from tests.conftest import ROOT

ALPHA = 6.0


def _preset(*sets):
    base = load(ROOT / "presets" / "ghost_corridor.toml")
    return apply_sets(base, ["ensemble.particles=64", "dynamics.dataset_size=32",
                             "dynamics.batch_size=8", "run.record_every=10", *sets])


def _direct_eq_5_2(w, gamma, x, label, classes):
    theta = w @ x
    z_real = ALPHA * np.cos(theta - 2 * np.pi * np.arange(classes) / classes)
    z_ghost = gamma @ np.array([np.cos(theta), np.sin(theta), 1.0])  # same representation h
    l_ext = -np.log(np.exp(z_real[label]) / (np.exp(z_real).sum() + np.exp(z_ghost).sum()))
    l_orig = -np.log(np.exp(z_real[label]) / np.exp(z_real).sum())
    mass = np.exp(z_ghost).sum() / (np.exp(z_real).sum() + np.exp(z_ghost).sum())
    return l_ext, l_orig, mass


@pytest.mark.parametrize("label", [0, 1, 2])
def test_ghost_loss_is_eq_5_2_and_f_ghost_is_the_label_free_difference(label):
    w = np.array([0.7, -1.3])
    gamma = np.array([[0.5, -0.2, 0.3], [-1.0, 0.4, 1.1]])
    x = np.array([0.35, -0.8])
    out = np.empty((1, len(METRIC_COLUMNS)))   # the engine's per-particle metrics on a one-sample dataset
    full_data_metrics(w[None], gamma[None], x[None], np.array([label]), 3, 2, ALPHA, out)
    l_orig, f_ghost, l_ext, mass = out[0, :4]
    d_ext, d_orig, d_mass = _direct_eq_5_2(w, gamma, x, label, 3)
    assert l_ext == pytest.approx(d_ext, rel=1e-13)
    assert l_orig == pytest.approx(d_orig, rel=1e-13)
    assert mass == pytest.approx(d_mass, rel=1e-13)
    theta = w @ x
    z_real = ALPHA * np.cos(theta - 2 * np.pi * np.arange(3) / 3)
    z_ghost = gamma @ np.array([np.cos(theta), np.sin(theta), 1.0])
    label_free = math.log(1 + np.exp(z_ghost).sum() / np.exp(z_real).sum())
    assert f_ghost == pytest.approx(label_free, rel=1e-12) and f_ghost >= 0


def test_f_ext_equals_f_orig_plus_f_ghost_over_data():
    task = make_task(40, 3, (4.0, 2.0), 0.1, 3)
    rng = np.random.default_rng(0)
    w = rng.uniform(-3, 3, (20, 2))
    gamma = rng.normal(size=(20, 2, 3))
    out = np.empty((20, len(METRIC_COLUMNS)))
    full_data_metrics(w, gamma, task.x, task.y, 3, 2, ALPHA, out)
    np.testing.assert_allclose(out[:, 2], out[:, 0] + out[:, 1], rtol=1e-12)
    assert np.all(out[:, 1] >= 0) and np.all((out[:, 3] > 0) & (out[:, 3] < 1))
    # f_orig and ‖∇f_orig‖ agree with the classifier landscape's own (independent) evaluation
    landscape = classifier_landscape(task, ALPHA)
    exact = np.array([landscape.func(x, y, np.array([ALPHA])) for x, y in w])
    np.testing.assert_allclose(out[:, 0], exact[:, 0], rtol=1e-12)
    np.testing.assert_allclose(out[:, 5], np.hypot(exact[:, 1], exact[:, 2]), rtol=1e-10)


@pytest.mark.parametrize("n, classes", [(40, 3), (200, 5)])
def test_classifier_landscape_value_gradient_and_hessian_are_exact(n, classes):
    # value against a direct NumPy cross-entropy; derivatives against central differences
    # (n = 200 crosses the kernel's 64-sample log chunks)
    task = make_task(n, classes, (3.0, 1.0), 0.1, 7)
    landscape = classifier_landscape(task, ALPHA)
    p = np.array([ALPHA])
    h = 1e-5
    for w in np.random.default_rng(1).uniform(-4, 4, (6, 2)):
        theta = task.x @ w
        z = ALPHA * np.cos(theta[:, None] - 2 * np.pi * np.arange(classes) / classes)
        direct = np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(n), task.y])
        f, fx, fy, hxx, hxy, hyy = landscape.func(w[0], w[1], p)
        assert f == pytest.approx(direct, rel=1e-12)
        grad = [(landscape.func(*(w + h * e), p)[0] - landscape.func(*(w - h * e), p)[0])
                / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose([fx, fy], grad, rtol=1e-6, atol=1e-8)
        hess_x = [(landscape.func(*(w + h * e), p)[1] - landscape.func(*(w - h * e), p)[1])
                  / (2 * h) for e in np.eye(2)]
        hess_y = (landscape.func(*(w + h * np.eye(2)[1]), p)[2]
                  - landscape.func(*(w - h * np.eye(2)[1]), p)[2]) / (2 * h)
        np.testing.assert_allclose([hxx, hxy, hyy], [hess_x[0], hess_x[1], hess_y],
                                   rtol=1e-5, atol=1e-7)


def test_full_data_metrics_match_a_direct_numpy_evaluation():
    # every column, ghost mass and accuracy included, with ghost logits large enough to matter
    task = make_task(90, 4, (2.0, -3.0), 0.2, 11)
    rng = np.random.default_rng(5)
    w = rng.uniform(-4, 4, (12, 2))
    gamma = rng.normal(scale=2.0, size=(12, 3, 3))
    out = np.empty((12, len(METRIC_COLUMNS)))
    full_data_metrics(w, gamma, task.x, task.y, 4, 3, ALPHA, out)
    for i in range(12):
        theta = task.x @ w[i]
        real = ALPHA * np.cos(theta[:, None] - 2 * np.pi * np.arange(4) / 4)
        phi = np.stack([np.cos(theta), np.sin(theta), np.ones_like(theta)], 1)
        ghost = phi @ gamma[i].T
        z_y = real[np.arange(90), task.y]
        log_real = np.log(np.exp(real).sum(1))
        log_total = np.log(np.exp(real).sum(1) + np.exp(ghost).sum(1))
        p_real = np.exp(real - log_real[:, None])
        p_real[np.arange(90), task.y] -= 1.0
        dz = -ALPHA * np.sin(theta[:, None] - 2 * np.pi * np.arange(4) / 4)
        grad = ((p_real * dz).sum(1)[:, None] * task.x).mean(0)
        expected = [np.mean(log_real - z_y), np.mean(log_total - log_real),
                    np.mean(log_total - z_y), np.mean(np.exp(ghost).sum(1) / np.exp(log_total)),
                    np.mean(real.argmax(1) == task.y), np.hypot(*grad),
                    _per_sample_ext_gradients(w[i], gamma[i], task).var(0).sum()]
        np.testing.assert_allclose(out[i], expected, rtol=1e-10, atol=1e-13)


def _per_sample_ext_gradients(w, gamma, task):
    """(n, 2) ∇_w L_ext per sample in closed form: (Σ_k ŷ_k ∂z_k/∂θ − ∂z_y/∂θ) x over the real
    and ghost logits (θ = w·x, the ghost logits γ_j·(cos θ, sin θ, 1) move with w too)."""
    n, classes = task.x.shape[0], task.classes
    theta = task.x @ w
    shifts = 2 * np.pi * np.arange(classes) / classes
    z = np.concatenate([ALPHA * np.cos(theta[:, None] - shifts),
                        np.stack([np.cos(theta), np.sin(theta), np.ones(n)], 1) @ gamma.T], 1)
    dz = np.concatenate([-ALPHA * np.sin(theta[:, None] - shifts),
                         np.stack([-np.sin(theta), np.cos(theta)], 1) @ gamma[:, :2].T], 1)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    drive = (p * dz).sum(1) - dz[np.arange(n), task.y]
    return drive[:, None] * task.x


def test_per_sample_extended_gradients_are_those_of_eq_5_2():
    # the closed form the covariance column is checked against, against central differences
    # of the per-sample loss itself
    task = make_task(30, 3, (4.0, 2.0), 0.1, 2)
    w = np.array([0.9, -1.7])
    gamma = np.array([[1.5, -0.7, 0.8], [-0.4, 2.0, 1.2]])
    grads = _per_sample_ext_gradients(w, gamma, task)
    h = 1e-6
    for s in range(0, 30, 7):
        numeric = [(_direct_eq_5_2(w + h * e, gamma, task.x[s], task.y[s], 3)[0]
                    - _direct_eq_5_2(w - h * e, gamma, task.x[s], task.y[s], 3)[0]) / (2 * h)
                   for e in np.eye(2)]
        np.testing.assert_allclose(grads[s], numeric, rtol=1e-6, atol=1e-9)


def test_effective_temperature_predicts_the_spread_of_one_minibatch_step():
    # Every particle at the same (w, γ), T = 0: one step moves each by −η g_B with its own
    # minibatch, so the spread of the cloud after it, Σ Var(Δw) = η² tr Cov(g_B), must equal
    # 4 η T_eff (d = 2: T_eff = η tr Cov(g_B) / 4).  B = 8 of n = 32 without replacement: the
    # finite-population factor (n − B)/(n − 1) = 0.77 is part of the claim.
    particles = 6000
    sim = Simulation(_preset("dynamics.ghosts=2", "dynamics.temperature=0",
                             f"ensemble.particles={particles}"))
    sim.positions[:] = [0.4, -0.6]
    sim.gamma[:] = [[1.5, -0.7, 0.8], [-0.4, 2.0, 1.2]]
    sim.out = None
    sim.out  # the full-data metrics of the state set here
    t_eff = sim.effective_temperature()
    lr = sim.preset.dynamics.lr
    sim.advance(1)
    squared = ((sim.positions - sim.positions.mean(0)) ** 2).sum(1)
    measured = squared.mean() * particles / (particles - 1) / lr  # estimates 4 T_eff
    # standard error of a mean of `particles` independent squared displacements
    standard_error = squared.std() / math.sqrt(particles) / lr
    assert abs(measured - 4 * t_eff) < 4 * standard_error, (measured, 4 * t_eff, standard_error)
    assert standard_error < 0.05 * measured  # the check has power: ±5 % at this sample size
    # full batch: no minibatch noise at all
    full = Simulation(_preset("dynamics.ghosts=2", "dynamics.temperature=0.003",
                              "dynamics.batch_size=32"))
    assert full.effective_temperature() == pytest.approx(0.003, rel=1e-12)


def _f_ext(w, gamma, task):
    out = np.empty((1, len(METRIC_COLUMNS)))
    full_data_metrics(w[None], gamma[None], task.x, task.y, task.classes, gamma.shape[0],
                      ALPHA, out)
    return out[0, 2]


def test_full_batch_step_follows_eq_5_4_and_the_exact_gradient():
    # B = n: the step is deterministic GD on f_ext; compare with central differences of f_ext
    # in w (ghost logits depend on w through h) and in γ (∂L/∂z_{c+j} = ŷ_{c+j}, eq. 5.4, so
    # ∂f_ext/∂γ_j = mean ŷ_{c+j} (h, 1))
    preset = _preset("dynamics.batch_size=32", "dynamics.ghost_init=0.7", "dynamics.lr=0.01",
                     "ensemble.particles=3")
    sim = Simulation(preset)
    task = sim.task
    w0, g0 = sim.positions.copy(), sim.gamma.copy()
    sim.advance(1)
    h = 1e-6
    for i in range(3):
        grad_w = [(_f_ext(w0[i] + h * e, g0[i], task) - _f_ext(w0[i] - h * e, g0[i], task))
                  / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose((w0[i] - sim.positions[i]) / 0.01, grad_w, rtol=1e-6,
                                   atol=1e-8)
        for j in range(2):
            for d in range(3):
                bump = np.zeros_like(g0[i])
                bump[j, d] = h
                numeric = (_f_ext(w0[i], g0[i] + bump, task)
                           - _f_ext(w0[i], g0[i] - bump, task)) / (2 * h)
                assert (g0[i, j, d] - sim.gamma[i, j, d]) / 0.01 == pytest.approx(
                    numeric, rel=1e-6, abs=1e-9)


def test_zero_ghosts_is_plain_sgd_and_vanishing_ghosts_change_nothing():
    plain = Simulation(_preset("dynamics.ghosts=0"))
    plain.advance(200)
    # e = 2 ghosts whose logits sit at −50: e^{−50}/Σ e^{z} is below double precision, so the
    # ghost path must reproduce plain SGD bit for bit (same seed, same minibatches)
    muted = Simulation(_preset("dynamics.ghosts=2"))
    muted.gamma[:] = 0.0
    muted.gamma[:, :, 2] = -50.0
    muted.advance(200)
    np.testing.assert_array_equal(plain.positions, muted.positions)
    # e = 0 full-batch ghost SGD equals GD with the landscape's exact gradient (independent code)
    ghost_gd = Simulation(_preset("dynamics.ghosts=0", "dynamics.batch_size=32"))
    gd = Simulation(apply_sets(_preset("dynamics.ghosts=0"), ["dynamics.kind=gd"]))
    np.testing.assert_array_equal(ghost_gd.positions, gd.positions)  # same initial cloud
    ghost_gd.advance(20)
    gd.advance(20)
    np.testing.assert_allclose(ghost_gd.positions, gd.positions, rtol=1e-10, atol=1e-12)


def test_the_lyapunov_diagnostics_do_not_change_the_trajectory():
    # the diagnostics only read the step's per-sample arrays: with or without them, and with
    # Langevin noise on every coordinate, the run is the same bit for bit
    sets = ("dynamics.ghosts=2", "dynamics.ghost_init=0.5", "dynamics.temperature=0.01")
    with_diag = Simulation(_preset(*sets), diagnostics=True)
    without = Simulation(_preset(*sets), diagnostics=False)
    with_diag.advance(60)
    without.advance(60)
    np.testing.assert_array_equal(with_diag.positions, without.positions)
    np.testing.assert_array_equal(with_diag.gamma, without.gamma)
    assert np.isfinite(with_diag.running_lyapunov()[0]).all()
    assert np.abs(with_diag.running_lyapunov()[0]).max() > 0.0


def test_same_seed_identical_runs():
    a = Simulation(_preset("dynamics.ghosts=2", "dynamics.ghost_init=0.5"))
    b = Simulation(_preset("dynamics.ghosts=2", "dynamics.ghost_init=0.5"))
    a.advance(100)
    b.advance(100)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.gamma, b.gamma)


def test_ghost_mass_decays_and_extended_gradient_approaches_original():
    # Result 5.3, measured: small learning rate, full batch; ghost logits start at 0
    sim = Simulation(_preset("dynamics.ghosts=2", "dynamics.batch_size=32", "dynamics.lr=0.05",
                             "ensemble.particles=16"))
    task = sim.task

    def gradient_gap():
        gaps = []
        for i in range(sim.positions.shape[0]):
            w, g = sim.positions[i], sim.gamma[i]
            h = 1e-6
            ext = [(_f_ext(w + h * e, g, task) - _f_ext(w - h * e, g, task)) / (2 * h)
                   for e in np.eye(2)]
            orig = sim.evaluate(w[None])[0, 1:3]
            gaps.append(np.linalg.norm(np.array(ext) - orig))
        return np.array(gaps)

    mass_start = sim.metrics[:, 3].copy()
    gap_start = gradient_gap()
    sim.advance(4000)
    mass_end = sim.metrics[:, 3]
    gap_end = gradient_gap()
    assert np.all(mass_end < 0.5 * mass_start), (mass_start, mass_end)
    assert np.median(gap_end) < 0.5 * np.median(gap_start), (gap_start, gap_end)
    # the ghost bias follows db/dt = −η·mass with mass ∝ e^b, so the mass decays like 1/t:
    # late in the run, doubling t halves the mass
    series = sim.history.scalar_series()
    steps, mass = series["steps"], series["ghost_mass_mean"]
    assert np.all(np.diff(mass[len(mass) // 4:]) < 0)  # after the early transient of w
    half = mass[np.searchsorted(steps, steps[-1] // 2)]
    assert 0.4 < mass[-1] / half < 0.7, (mass[-1], half)


def test_npz_has_ghost_fields(tmp_path):
    from engine.api import run_preset
    run_preset(_preset("dynamics.ghosts=2", "run.steps=50"), out=tmp_path / "g.npz",
               escapes=False)
    data = np.load(tmp_path / "g.npz")
    assert data["ghost_mass"].shape == data["f_ghost"].shape == data["loss"].shape == (6, 64)
    assert np.all(data["f_ghost"] >= 0)


@pytest.mark.parametrize("lr", [0.02, 0.5])
def test_running_lyapunov_uses_the_full_extended_hessian(lr):
    """B = n: one step's log ‖I − ηH‖₂ equals that of the finite-difference Hessian of f_ext in
    all 2 + 3e coordinates (w and γ), not just the w-block."""
    preset = _preset("dynamics.batch_size=32", "dynamics.ghost_init=0.7", f"dynamics.lr={lr}",
                     "ensemble.particles=3")
    sim = Simulation(preset)
    task = sim.task
    w0, g0 = sim.positions.copy(), sim.gamma.copy()
    sim.advance(1)
    gamma_hat, _ = sim.running_lyapunov()
    h = 1e-4
    differences = []
    for i in range(3):
        theta0 = np.concatenate([w0[i], g0[i].ravel()])
        dim = theta0.size

        def f(theta):
            return _f_ext(theta[:2], theta[2:].reshape(g0[i].shape), task)

        hess = np.empty((dim, dim))
        basis = np.eye(dim) * h
        for a in range(dim):
            for b in range(dim):
                hess[a, b] = (f(theta0 + basis[a] + basis[b]) - f(theta0 + basis[a] - basis[b])
                              - f(theta0 - basis[a] + basis[b])
                              + f(theta0 - basis[a] - basis[b])) / (4 * h * h)
        hess = 0.5 * (hess + hess.T)
        full = np.log(np.abs(np.linalg.eigvalsh(np.eye(dim) - lr * hess)).max())
        w_block = np.log(np.abs(np.linalg.eigvalsh(np.eye(2) - lr * hess[:2, :2])).max())
        # finite differences with h = 1e-4 are good to ≈ 1e-7 in H, i.e. ≈ lr·1e-7 here
        assert gamma_hat[i] == pytest.approx(full, abs=1e-6)
        differences.append(abs(full - w_block))
    assert max(differences) > 1e-4                 # the test can tell the two apart


def test_symmetric_spectral_norm_matches_numpy():
    from engine.ghost import symmetric_spectral_norm
    rng = np.random.default_rng(4)
    cases = []
    for n in (1, 2, 5, 8, 14):
        a = rng.normal(size=(n, n))
        cases.append(a + a.T)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    cases.append(q @ np.diag([3.0, 3.0, 3.0, -1.0, 0.0, 0.0, 2.0, -3.0 + 1e-9]) @ q.T)  # repeated
    cases.append(np.diag([0.5, -2.0, 1.0]))                                 # already diagonal
    cases.append(np.zeros((4, 4)))
    cases.append(np.eye(8) - 1e-3 * (cases[3] @ cases[3]))                 # like I − ηH
    for a in cases:
        expected = np.abs(np.linalg.eigvalsh(a)).max() if a.size else 0.0
        got = symmetric_spectral_norm(a.copy(), a.shape[0])
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
