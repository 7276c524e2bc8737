"""Transition paths and committors (issue 25) against exact answers and against the cloud.

Tolerances are derived, not tuned: the grid committor's error against its leading-order
prediction, the Laplace expansion of the Eyring–Kramers prefactor to second order, binomial
standard errors of the empirical committor (Bonferroni over the cells), confidence intervals of
measured escape times, bootstrap errors of the MSM's implied time scale.
"""
import json
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from engine.diagnostics.structure import analyse
from engine.paths import msm
from engine.paths.cloud import (cell_and_core_maps, empirical_committor, reactive_segments,
                                record_cloud)
from engine.paths.committor import (committor, core_set_rates, make_grid, spectral_gap,
                                    transition_path_theory)
from engine.paths.cores import (core_grid, core_labels, discrete_monitoring_shift,
                                monitored_core_labels)
from engine.paths.mep import minimum_energy_path
from engine.simulation import Simulation
from tests.conftest import ROOT, make_preset
from tests.test_structure import MB_SADDLES

DW_BOUNDS = [[-2.0, 2.0], [-1.5, 1.5]]


def _double_well(x, y):
    """``(x² − 1)² + y²`` as an ``evaluate`` row (only ``f`` is used by the grid)."""
    out = np.zeros((x.size, 6))
    out[:, 0] = (x * x - 1) ** 2 + y * y
    return out


def _dw_evaluate(points):
    return _double_well(points[:, 0], points[:, 1])


# --- the committor PDE ---------------------------------------------------------------------------

def test_committor_of_separable_double_well_matches_quadrature_at_second_order():
    """f = (x² − 1)² + y², A = {x ≤ x_A}, B = {x ≥ x_B}: q(x) = ∫_{x_A}^x e^{f/T} / ∫_{x_A}^{x_B}.

    The grid committor is exactly the quadrature of ∫ e^{g} (g = f/T) with the geometric mean of
    the end points, which falls short of each interval's integral by the relative amount
    ε(x) = h² (g'² − 2g'')/24 + O(h⁴); so q_grid − q = q (ε̄_D − ε̄_N) + O(h⁴) with ε̄ the e^{g}-
    weighted means of ε over [x_A, x] and [x_A, x_B].  The measured error must be that leading
    term up to an O(h⁴) remainder (≤ 5 % of it at these h), and halve twice per halving of h."""
    t = 0.2
    errors = []
    for nx in (80, 160):
        g = make_grid(_dw_evaluate, (-2, 2, -1.5, 1.5), nx, 12, t)
        A = np.broadcast_to(g.x <= -1.0, g.shape)
        B = np.broadcast_to(g.x >= 1.0, g.shape)
        xa, xb, h = g.x[g.x <= -1].max(), g.x[g.x >= 1].min(), g.hx
        q = committor(g, A, B)
        assert np.max(np.ptp(q, axis=0)) < 1e-12  # independent of y, as the exact solution

        def weight(x):
            return np.exp(((x * x - 1) ** 2 - 1) / t)

        def eps(x):
            return h * h * ((4 * x * (x * x - 1) / t) ** 2 - 2 * (12 * x * x - 4) / t) / 24

        def integral(a, b, fn):
            return quad(fn, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0]

        total = integral(xa, xb, weight)
        eps_total = integral(xa, xb, lambda x: weight(x) * eps(x)) / total
        free = (g.x > xa) & (g.x < xb)
        exact, predicted = [], []
        for x in g.x[free]:
            part = integral(xa, x, weight)
            eps_part = integral(xa, x, lambda s: weight(s) * eps(s)) / part
            exact.append(part / total)
            predicted.append(part / total * (eps_total - eps_part))
        error = q[0, free] - np.array(exact)
        predicted = np.array(predicted)
        assert np.max(np.abs(error - predicted)) <= 0.05 * np.max(np.abs(predicted)), nx
        errors.append(np.max(np.abs(error)))
    order = math.log2(errors[0] / errors[1])
    print(f"committor max error {errors[0]:.3e} (h = 0.05), {errors[1]:.3e} (h = 0.025): "
          f"order {order:.3f}")
    assert 1.9 < order < 2.1


def _symmetric_preset():
    # symmetric under x → −x, not separable: the committor is ½ on x = 0
    return make_preset(landscape={"expr": "(x**2 - 1)**2 + (y - 0.5*x**2)**2",
                                  "bounds": DW_BOUNDS},
                       dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.3},
                       ensemble={"particles": 1, "seed": 0})


def test_committor_is_one_half_on_the_symmetry_line_with_the_run_core_sets():
    preset = _symmetric_preset()
    sim = Simulation(preset)
    st = analyse(preset, sim=sim, resolution=257)
    left = int(np.argmin([m.x for m in st.minima]))
    g = make_grid(sim.evaluate, sim.bounds, 81, 61, 0.3)  # odd: a column of centres on x = 0
    labels = core_labels(st, g.points()).reshape(g.shape)
    tpt = transition_path_theory(g, labels == left, labels == 1 - left)
    q = tpt.committor
    assert np.max(np.abs(q[:, 40] - 0.5)) < 1e-10
    np.testing.assert_allclose(q, 1 - q[:, ::-1], atol=1e-10)
    # the reactive flux is the current out of A (discrete TPT identity), and k_AB = k_BA here
    assert tpt.flux == pytest.approx(tpt.flux_out_of_A, rel=1e-9)
    assert tpt.rate_AB == pytest.approx(tpt.rate_BA, rel=1e-9)
    # with two core sets, the rates between all core sets are TPT's k_{A→B} = ν_AB / ρ_A
    rates = core_set_rates(g, np.where(labels == left, 0, np.where(labels == 1 - left, 1, -1)))
    assert rates.rate(0, 1) == pytest.approx(tpt.rate_AB, rel=1e-9)
    assert rates.flux[0, 1] == pytest.approx(tpt.flux, rel=1e-9)
    # the current crosses x = 0 from A to B everywhere, and carries the whole flux
    assert np.all(tpt.current[:, 40, 0] >= 0)
    assert np.sum(tpt.current[:, 40, 0]) * g.hy == pytest.approx(tpt.flux, rel=1e-9)


def test_core_sets_are_those_of_the_run():
    preset = make_preset(landscape={"builtin": "muller_brown"},
                         dynamics={"kind": "langevin", "lr": 1e-4, "temperature": 10.0},
                         ensemble={"particles": 1, "seed": 0})
    sim = Simulation(preset)
    st = analyse(preset, sim=sim, resolution=200)
    sim.attach_structure(st)
    np.testing.assert_array_equal(sim._cores, core_grid(st))
    pts = np.random.default_rng(0).uniform([-1.6, -0.6], [1.3, 2.1], (5000, 2))
    np.testing.assert_array_equal(core_labels(st, pts), sim._grid_lookup(sim._cores, pts))


# --- minimum-energy paths ------------------------------------------------------------------------

def test_mep_highest_point_is_the_saddle_on_muller_brown():
    """The climbing image (no Newton step) lands on the saddle that Newton finds in the
    structure analysis, and on the published saddle (Müller & Brown 1979), within 1e-6; the
    path from the deep minimum to B passes through the intermediate minimum."""
    preset = make_preset(landscape={"builtin": "muller_brown"},
                         dynamics={"kind": "langevin", "lr": 1e-4, "temperature": 10.0},
                         ensemble={"particles": 1, "seed": 0})
    sim = Simulation(preset)
    st = analyse(preset, sim=sim)
    published = np.array(MB_SADDLES)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        a, b = st.minima[i], st.minima[j]
        path = minimum_energy_path(sim.evaluate, (a.x, a.y), (b.x, b.y))
        top = path.points[path.highest]
        nearest = min(st.saddles, key=lambda s: math.hypot(s[0].x - top[0], s[0].y - top[1]))[0]
        assert math.hypot(nearest.x - top[0], nearest.y - top[1]) < 1e-6
        assert abs(path.profile[path.highest] - nearest.f) < 1e-6
        assert np.min(np.hypot(*(published[:, :2] - top).T)) < 2e-6  # published to 6 digits
        assert path.profile[path.highest] == pytest.approx(path.profile.max(), abs=1e-9)
        np.testing.assert_allclose(path.points[[0, -1]], [[a.x, a.y], [b.x, b.y]], atol=1e-12)
        if {i, j} == {0, 2}:  # B ↔ A goes through C (minimum 1) and over the higher saddle
            c = st.minima[1]
            spacing = path.arc[-1] / (len(path.arc) - 1)
            assert np.min(np.hypot(*(path.points - [c.x, c.y]).T)) < spacing
            assert path.profile[path.highest] == pytest.approx(max(s.f for s, _ in st.saddles),
                                                               abs=1e-6)


# --- TPT rates against Eyring–Kramers and the generator's spectral gap ------------------------

def test_tpt_rate_tends_to_eyring_kramers_with_its_laplace_corrections():
    """1/k_{A→B} of TPT over τ_EK = (2π/|λ⁻|)√(|det H_s|/det H_m) e^{ΔU/T} for
    f = (x² − 1)² + y², A = {x ≤ −0.9}, B = {x ≥ 0.9}.  Laplace's method to second order on the
    well integral (f = 4u² + 4u³ + u⁴) and on the saddle integral (f = 1 − 2x² + x⁴) gives each
    the factor 1 + 3T/16 + 105T²/512, so τ/τ_EK = 1 + 3T/8 + 57T²/128 + O(T³) (up to terms
    e^{−(f(0.9) − 1)/T}-small from the sets' edges).  Grids of 640 and 1280 cells in x
    (Richardson-extrapolated, the scheme is second order); y cancels in k_{A→B}.  The remainder
    after the T and T² terms must shrink at least like T³ — by more than 5 when T halves (a wrong
    T² coefficient would leave 4, a wrong T coefficient 2)."""
    remainders = []
    for t in (0.1, 0.05):
        ratios = []
        for nx in (640, 1280):
            g = make_grid(_dw_evaluate, (-2, 2, -1.5, 1.5), nx, 6, t)
            tpt = transition_path_theory(g, np.broadcast_to(g.x <= -0.9, g.shape),
                                         np.broadcast_to(g.x >= 0.9, g.shape))
            assert tpt.flux == pytest.approx(tpt.flux_out_of_A, rel=1e-8)
            kramers = 2 * math.pi / 4 * math.sqrt(4 / 8) * math.exp(1 / t)
            ratios.append(1 / tpt.rate_AB / kramers)
        ratio = (4 * ratios[1] - ratios[0]) / 3
        first = ratio - 1 - 3 * t / 8
        assert abs(first) < 2 * 57 / 128 * t * t, (t, ratio)
        remainders.append(first - 57 / 128 * t * t)
        print(f"T = {t}: τ_TPT/τ_EK = {ratio:.6f}; 1 + 3T/8 + 57T²/128 = "
              f"{1 + 3 * t / 8 + 57 * t * t / 128:.6f}")
    assert abs(remainders[1]) < abs(remainders[0]) / 5, remainders


def test_spectral_gap_approaches_the_tpt_relaxation_rate_exponentially():
    """For two wells the slowest decay rate μ₁ of the generator and k_AB + k_BA of TPT (with the
    run's core sets) agree up to exponentially small terms in 1/T: halving T from 0.2 to 0.1 must
    shrink their relative difference by more than a power law of order 2 would (× 4)."""
    gaps = []
    for t in (0.2, 0.1):
        preset = make_preset(landscape={"builtin": "double_well", "bounds": DW_BOUNDS,
                                        "params": {"kappa": 1.0, "tilt": 0.0}},
                             dynamics={"kind": "langevin", "lr": 0.01, "temperature": t},
                             ensemble={"particles": 1, "seed": 0})
        sim = Simulation(preset)
        st = analyse(preset, sim=sim, resolution=257)
        g = make_grid(sim.evaluate, sim.bounds, 160, 120, t)
        labels = core_labels(st, g.points()).reshape(g.shape)
        tpt = transition_path_theory(g, labels == 0, labels == 1)
        mu = spectral_gap(g)
        assert abs(mu[0]) < 1e-9 * mu[1]
        gaps.append(abs(mu[1] / (tpt.rate_AB + tpt.rate_BA) - 1))
        print(f"T = {t}: 1/μ₁ = {1 / mu[1]:.4f}, 1/(k_AB + k_BA) = "
              f"{1 / (tpt.rate_AB + tpt.rate_BA):.4f}")
    assert gaps[1] < gaps[0] / 4, gaps


# --- the cloud: empirical committor, reactive segments, MSM, measured rates ----------------------

T_CLOUD, LR_CLOUD, N_CLOUD, STEPS_CLOUD = 0.25, 0.01, 600, 10000
NX_C, NY_C = 20, 15  # cells of the empirical committor; the PDE grid refines each 16 × 16


@pytest.fixture(scope="module")
def cloud():
    """One Langevin run on the double well at ΔU/T = 4, recorded every step, with escape
    tracking on the run's core sets; the PDE committor on a 320 × 240 grid with those core sets
    as they are and as a chain checked once a step sees them (their edges moved inward by the
    Siegmund shift β√(2ηT), :func:`engine.paths.cores.monitored_core_labels`)."""
    preset = make_preset(landscape={"builtin": "double_well", "bounds": DW_BOUNDS,
                                    "params": {"kappa": 1.0, "tilt": 0.0}},
                         dynamics={"kind": "langevin", "lr": LR_CLOUD,
                                   "temperature": T_CLOUD},
                         ensemble={"particles": N_CLOUD, "seed": 3,
                                   "init": {"mean": [-1.0, 0.0], "std": 0.1}},
                         run={"steps": STEPS_CLOUD, "record_every": STEPS_CLOUD})
    sim = Simulation(preset, diagnostics=False)
    st = analyse(preset, sim=sim)
    sim.attach_structure(st)
    left = int(np.argmin([m.x for m in st.minima]))
    g = make_grid(sim.evaluate, sim.bounds, 16 * NX_C, 16 * NY_C, T_CLOUD)
    labels = core_labels(st, g.points()).reshape(g.shape)
    A, B = labels == left, labels == 1 - left
    shift = discrete_monitoring_shift(T_CLOUD, LR_CLOUD)
    seen = monitored_core_labels(st, g.points(), sim.evaluate, shift).reshape(g.shape)
    tpt = transition_path_theory(g, seen == left, seen == 1 - left)
    plain = transition_path_theory(g, A, B)
    coarse = make_grid(sim.evaluate, sim.bounds, NX_C, NY_C, T_CLOUD)
    cell_of, core_of = cell_and_core_maps(st, coarse, left, 1 - left)

    def value_of(points):
        return np.column_stack([g.interpolate(tpt.committor, points),
                                g.interpolate(plain.committor, points)])

    rec = record_cloud(sim, STEPS_CLOUD, cell_of, core_of, NX_C * NY_C, value_of)
    assert sim.events_dropped == 0
    return {"sim": sim, "rec": rec, "grid": g, "tpt": tpt, "plain": plain, "left": left,
            "drawn": A | B}


def _bonferroni(cells: int, family: float = 0.01) -> float:
    return float(norm.isf(family / (2 * cells)))


def test_empirical_committor_matches_the_pde_within_binomial_errors(cloud):
    """Per cell with ≥ 20 excursions, the count of those that hit B first is Poisson-binomial with
    the PDE committor at their entry points as probabilities; every cell's two-sided binomial
    p-value must pass Bonferroni at family-wise 1 %.  The PDE uses the core sets as a chain
    monitored once a step sees them; with the sets as drawn the same counts are rejected (the
    test can tell a 0.04 shift of the sets' edges)."""
    ec = empirical_committor(cloud["rec"], column=0)
    used = ec.trials >= 20
    level = 0.01 / used.sum()
    p = ec.p_values()[used]
    z = ec.z_scores()[used]
    print(f"{used.sum()} cells, {int(ec.trials[used].sum())} excursions: min p = "
          f"{np.min(p):.2e} (Bonferroni {level:.1e}); |z| ≤ 3 in {np.mean(np.abs(z) <= 3):.3f} "
          f"of the cells")
    assert used.sum() > 100
    assert np.min(p) > level
    plain = empirical_committor(cloud["rec"], column=1).p_values()[used]
    print(f"with the core sets as drawn: min p = {np.min(plain):.2e}")
    assert np.min(plain) < level


def test_reactive_segments_match_tpt_duration_and_density(cloud):
    """Excursions from one core set to the other against TPT: (1) the distribution of their time
    over the committor, in 8 bins of q ∈ [0.1, 0.9], against TPT's reactive density ``π q(1 − q)``
    projected on q (shares of the time in [0.1, 0.9]: a ratio estimator over independent
    segments, Bonferroni at 1 %) — bins away from the core sets' boundary layer, where the chain
    and the diffusion differ at O(√η); (2) their mean duration against
    ``Σ π q (1 − q) / ν_AB`` (3 standard errors of the mean).  The chain's records of a segment
    lie outside the core sets as drawn while its hitting statistics are those of the eroded sets
    (see the fixture), so TPT's density is summed outside the drawn sets."""
    edges = np.linspace(0.1, 0.9, 9)
    segments = reactive_segments(cloud["rec"], value_bins=edges)
    tpt, g = cloud["tpt"], cloud["grid"]
    reactive = np.where(~cloud["drawn"], tpt.reactive_density, 0.0)
    occupancy = segments.value_occupancy.astype(float)                  # (K, bins)
    inner = occupancy.sum(axis=1)
    share = occupancy.sum(axis=0) / inner.sum()
    residual = occupancy - share[None, :] * inner[:, None]
    share_se = np.sqrt((residual ** 2).sum(axis=0)) / inner.sum()
    # TPT's density projected on q: both fields interpolated on a 4× finer sampling (a cell's q
    # steps by h|∇q| ≈ 0.02 near the saddle, too coarse for bins of 0.1)
    x = np.linspace(g.x[0], g.x[-1], 4 * g.x.size)
    y = np.linspace(g.y[0], g.y[-1], 4 * g.y.size)
    points = np.column_stack([a.ravel() for a in np.meshgrid(x, y)])
    expected, _ = np.histogram(g.interpolate(tpt.committor, points), edges,
                               weights=g.interpolate(reactive, points))
    expected /= expected.sum()
    z = (share - expected) / share_se
    print("reactive time over q, measured:", np.round(share, 4), "TPT:", np.round(expected, 4))
    assert segments.durations.size > 300
    assert np.max(np.abs(z)) < _bonferroni(edges.size - 1), z
    duration = reactive.sum() * g.hx * g.hy / tpt.flux
    mean, se = segments.mean_duration()
    print(f"{segments.durations.size} reactive segments: mean duration {mean:.4f} ± {se:.4f}, "
          f"TPT {duration:.4f}")
    assert abs(mean - duration) < 3 * se


def test_tpt_rates_match_the_measured_escape_times_of_the_same_run(cloud):
    """The run's escape log (time attributed to the last core set per transition) measures
    1/k_{A→B}; its 99 % interval must hold TPT's value for both directions."""
    sim, tpt = cloud["sim"], cloud["tpt"]
    table = sim.escape_log.transition_table(sim.step)
    left = cloud["left"]
    for pair in table["pairs"]:
        rate = tpt.rate_AB if pair["from"] == left else tpt.rate_BA
        predicted = 1 / rate / LR_CLOUD
        half = 2.576 / math.sqrt(pair["transitions"])
        tau = pair["mfpt_steps"]
        print(f"{pair['from']}→{pair['to']}: measured {tau:.0f} steps "
              f"({pair['transitions']} transitions), TPT {predicted:.0f}")
        assert tau * math.exp(-half) < predicted < tau * math.exp(half)


def test_tpt_rate_matches_the_measured_escape_time_at_barrier_five_temperatures():
    """ΔU/T = 5 (T = 0.2), 1500 particles from the left minimum for 30 000 steps of η = 0.005
    with the run's escape tracking: the measured mean time 0 → 1 (exposure per transition) holds
    TPT's 1/k_{A→B} in its 99 % interval."""
    t, lr, steps = 0.2, 0.005, 30000
    preset = make_preset(landscape={"builtin": "double_well", "bounds": DW_BOUNDS,
                                    "params": {"kappa": 1.0, "tilt": 0.0}},
                         dynamics={"kind": "langevin", "lr": lr, "temperature": t},
                         ensemble={"particles": 1500, "seed": 11,
                                   "init": {"mean": [-1.0, 0.0], "std": 0.0}},
                         run={"steps": steps, "record_every": 1000})
    sim = Simulation(preset, diagnostics=False)
    st = analyse(preset, sim=sim)
    sim.attach_structure(st)
    sim.advance(steps)  # in chunks of 1000 steps: every event kept
    assert sim.events_dropped == 0
    left = int(np.argmin([m.x for m in st.minima]))
    g = make_grid(sim.evaluate, sim.bounds, 320, 240, t)
    seen = monitored_core_labels(st, g.points(), sim.evaluate,
                                 discrete_monitoring_shift(t, lr)).reshape(g.shape)
    tpt = transition_path_theory(g, seen == left, seen == 1 - left)
    pair = next(p for p in sim.escape_log.transition_table(sim.step)["pairs"]
                if p["from"] == left)
    tau, n = pair["mfpt_steps"], pair["transitions"]
    predicted = 1 / tpt.rate_AB / lr
    kramers = next(k for k in st.kramers if k["from"] == left)["mfpt_steps"]
    print(f"ΔU/T = 5: measured {tau:.0f} steps ({n} transitions), TPT {predicted:.0f}, "
          f"Eyring–Kramers {kramers:.0f}")
    half = 2.576 / math.sqrt(n)
    assert tau * math.exp(-half) < predicted < tau * math.exp(half)


def test_core_set_rates_match_the_run_on_muller_brown():
    """Three minima: the rates between all core sets (a third set ends a transition) for the
    chain checked once a step (sets eroded by β√(2ηT)) against ``run``'s escape log at
    η = 5·10⁻⁵, T = 10, each measured pair's 99 % interval holding the prediction; the pair's own
    two-set TPT (which gives time in the deep third well to A) is 20 % off and rejected."""
    t, lr, steps = 10.0, 5e-5, 30000
    preset = make_preset(landscape={"builtin": "muller_brown",
                                    "bounds": [[-1.5, 1.2], [-0.5, 2.0]]},
                         dynamics={"kind": "langevin", "lr": lr, "temperature": t},
                         ensemble={"particles": 600, "seed": 2,
                                   "init": {"mean": [0.62, 0.03], "std": 0.02}},
                         run={"steps": steps, "record_every": 1000})
    sim = Simulation(preset, diagnostics=False)
    st = analyse(preset, sim=sim)
    sim.attach_structure(st)
    sim.advance(steps)  # in chunks of 1000 steps: every event kept
    assert sim.events_dropped == 0
    # 384² cells: the rates differ from 512²'s by 0.2 %, against intervals of ± 4 %
    g = make_grid(sim.evaluate, sim.bounds, 384, 384, t)
    eroded = monitored_core_labels(st, g.points(), sim.evaluate,
                                   discrete_monitoring_shift(t, lr)).reshape(g.shape)
    rates = core_set_rates(g, eroded)
    checked = 0
    for pair in sim.escape_log.transition_table(sim.step)["pairs"]:
        tau, n = pair["mfpt_steps"] * lr, pair["transitions"]
        if n < 100:
            continue
        predicted = 1 / rates.rate(pair["from"], pair["to"])
        print(f"{pair['from']}→{pair['to']}: measured {tau:.4f} ({n} transitions), "
              f"predicted {predicted:.4f}")
        half = 2.576 / math.sqrt(n)
        assert tau * math.exp(-half) < predicted < tau * math.exp(half)
        checked += 1
    assert checked >= 3
    two_set = transition_path_theory(g, eroded == 0, eroded == 1)
    pair = next(p for p in sim.escape_log.transition_table(sim.step)["pairs"]
                if (p["from"], p["to"]) == (0, 1))
    assert 1 / two_set.rate_AB > pair["mfpt_steps_ci95"][1] * lr


def test_msm_implied_time_scale_matches_spectral_gap_and_measured_relaxation(cloud):
    """A reversible MSM on 10 × 8 cells at lag 2 time units: its slowest implied time scale
    against 1/μ₁ of the discretised generator and against 1/(1/τ_AB + 1/τ_BA) from the measured
    escape times, each within 3 combined standard errors (bootstrap over the particles; the
    escape times' from their counts)."""
    rec = cloud["rec"]
    iy, ix = np.divmod(rec.cells, NX_C)
    states = (iy // 2) * (NX_C // 2) + ix // 2
    n_states, lag = (NX_C // 2) * ((NY_C + 1) // 2), 200
    its = msm.implied_timescales(states, lag, n_states, 1, rec.dt)[0]
    boot = msm.bootstrap_timescales(states, lag, n_states, 1, rec.dt, samples=20, seed=1)
    se = float(np.std(boot, ddof=1))
    mu = spectral_gap(cloud["grid"], 1)
    sim = cloud["sim"]
    pairs = sim.escape_log.transition_table(sim.step)["pairs"]
    rate = sum(1 / (p["mfpt_steps"] * LR_CLOUD) for p in pairs)
    rate_se = math.sqrt(sum((1 / (p["mfpt_steps"] * LR_CLOUD)) ** 2 / p["transitions"]
                            for p in pairs))
    measured, measured_se = 1 / rate, rate_se / rate ** 2
    print(f"MSM t₂ = {its:.2f} ± {se:.2f}; generator 1/μ₁ = {1 / mu[1]:.2f}; measured "
          f"relaxation {measured:.2f} ± {measured_se:.2f} (time units)")
    assert abs(its - 1 / mu[1]) < 3 * se
    assert abs(its - measured) < 3 * math.hypot(se, measured_se)


def test_reversible_mle_agrees_with_deeptime(cloud):
    deeptime = pytest.importorskip("deeptime.markov.msm")
    rec = cloud["rec"]
    iy, ix = np.divmod(rec.cells, NX_C)
    states = (iy // 2) * (NX_C // 2) + ix // 2
    C = msm.count_matrix(states, 200, 80)
    keep = msm.largest_connected_set(C)
    C = C[np.ix_(keep, keep)]
    T, mu = msm.reversible_mle(C)
    model = deeptime.MaximumLikelihoodMSM(reversible=True, maxiter=10 ** 6,
                                          maxerr=1e-12).fit(C).fetch_model()
    np.testing.assert_allclose(T, model.transition_matrix, atol=1e-7)
    np.testing.assert_allclose(msm.eigenvalues(T, mu, 3)[1:], model.eigenvalues(4)[1:],
                               rtol=1e-6)


# --- the command ---------------------------------------------------------------------------------

def test_paths_command_writes_json_and_npz(tmp_path):
    from engine.cli import main
    out = tmp_path / "sub" / "paths.json"
    code = main(["paths", str(ROOT / "presets" / "muller_brown_paths.toml"), "--from", "0",
                 "--to", "1", "--grid", "64", "--out", str(out), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["npz"] == "paths.json.npz"
    data = np.load(out.with_name("paths.json.npz"))
    assert data["x"].shape == (64,) and data["y"].shape == (64,)
    for key in ("committor", "reactive_density"):
        assert data[key].shape == (64, 64)
    assert data["current"].shape == (64, 64, 2)
    path = np.array(report["path"])
    assert path.shape[1] == 2 and len(report["profile"]) == len(path)
    top = report["highest"]
    saddle = (0.212487, 0.292988, -72.248940)  # Müller & Brown (1979), between minima 0 and 1
    assert abs(top["x"] - saddle[0]) < 2e-6 and abs(top["y"] - saddle[1]) < 2e-6
    assert report["saddle"]["distance"] < 1e-6
    rates = report["rates"]
    assert rates["tpt"]["rate"] > 0 and rates["kramers"]["rate"] > 0
    assert rates["measured"] is None
    q = data["committor"]
    assert np.all(q[data["core"] == 0] == 0) and np.all(q[data["core"] == 1] == 1)


def test_paths_command_refuses_bad_minima_and_zero_temperature(tmp_path, capsys):
    from engine.cli import main
    preset = str(ROOT / "presets" / "double_well_kramers.toml")
    out = str(tmp_path / "p.json")
    assert main(["paths", preset, "--from", "0", "--to", "7", "--out", out]) == 2
    assert "no such minimum" in capsys.readouterr().err
    assert main(["paths", preset, "--from", "0", "--to", "1", "--out", out,
                 "--set", "dynamics.kind=\"gd\""]) == 2
    assert "temperature" in capsys.readouterr().err


def test_committor_check_of_a_preset_passes_and_reports_the_error():
    """The check the Transitions dock runs on demand: a short recorded run of the preset, its
    empirical committor against the PDE's (Bonferroni at 1 % over the cells)."""
    from engine.paths.cloud import committor_check
    preset = make_preset(landscape={"builtin": "double_well", "bounds": DW_BOUNDS,
                                    "params": {"kappa": 1.0, "tilt": 0.0}},
                         dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.3},
                         ensemble={"particles": 10, "seed": 4,
                                   "init": {"mean": [-1.0, 0.0], "std": 0.3}})
    check = committor_check(preset, 0, 1, particles=200, steps=3000, cells=16, grid=128)
    print({k: v for k, v in check.items() if not isinstance(v, np.ndarray)})
    assert check["cells_compared"] > 40
    assert check["min_p"] > check["bonferroni_level"]
    # E[z²] = 1 per cell under the prediction (its variance is Σ q(1 − q)): a loose band
    assert 0.5 < check["rms_z"] < 1.5
    assert check["estimate"].shape == (16, 16)
