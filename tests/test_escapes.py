"""Escape events between core sets, first-passage statistics and mixing times."""
import numpy as np
import pytest

from engine.api import escape_summary, run_preset, summary
from engine.diagnostics.escapes import EscapeLog, first_passage, transition_table
from engine.diagnostics.mixing import integrated_autocorrelation_time
from engine.diagnostics.structure import analyse
from engine.simulation import Simulation, equivalent_langevin
from tests.conftest import make_preset

B_CORE = 0.6  # core sets {x ≤ −0.6} and {x ≥ 0.6} of (x² − 1)² + y²


def exact_mfpt(temperature, x0=-1.0, a=-2.0, b=B_CORE, n=20001):
    """1-D MFPT of dx = −U'(x)dt + √(2T)dW from x0 to b, reflecting at a, by quadrature:
    τ = (1/T) ∫_{x0}^{b} e^{U(y)/T} ∫_a^y e^{−U(z)/T} dz dy."""
    z = np.linspace(a, b, n)
    u = (z ** 2 - 1) ** 2
    inner = np.concatenate([[0.0], np.cumsum(0.5 * (np.exp(-u[1:] / temperature)
                                                    + np.exp(-u[:-1] / temperature))
                                             * np.diff(z))])
    integrand = np.exp(u / temperature) * inner / temperature
    mask = z >= x0
    zz, ff = z[mask], integrand[mask]
    return float(np.sum(0.5 * (ff[1:] + ff[:-1]) * np.diff(zz)))


def _core_grid():
    gx = np.linspace(-2, 2, 801)
    gy = np.linspace(-1.5, 1.5, 301)
    cores = np.full((gy.size, gx.size), -1, dtype=np.int32)
    cores[:, gx <= -B_CORE] = 0
    cores[:, gx >= B_CORE] = 1
    return cores, gx, gy


def _double_well_run(dynamics, particles, steps):
    """``particles`` started at (−1, 0) of the double well, run ``steps`` with the core sets of
    :func:`_core_grid` (a 0.005 grid: exact targets sit at the cell boundary B_CORE − 0.0025)."""
    sim = Simulation(make_preset(
        landscape={"builtin": "double_well", "params": {"kappa": 1.0},
                   "bounds": [[-2.0, 2.0], [-1.5, 1.5]], "boundary": "reflect"},
        dynamics=dynamics,
        ensemble={"particles": particles, "seed": 21, "init": {"mean": [-1.0, 0.0], "std": 0.0}},
        run={"steps": steps, "record_every": 1000}), diagnostics=False)
    cores, gx, gy = _core_grid()
    sim.attach_cores(cores, gx, gy)
    sim.advance(steps)
    return sim


@pytest.mark.parametrize("temperature,particles,steps", [(0.25, 2000, 15000),
                                                         (0.2, 3000, 25000)])
def test_mfpt_matches_exact_one_dimensional_quadrature(temperature, particles, steps):
    lr = 0.002
    assert 3 <= 1.0 / temperature <= 6  # ΔU/T as the issue asks
    sim = _double_well_run({"kind": "langevin", "lr": lr, "temperature": temperature},
                           particles, steps)
    passage = first_passage(sim.events(), sim.initial_core, 0, steps)
    assert passage["censored"] > 0 and passage["escaped"] > 400
    exact_steps = exact_mfpt(temperature, b=B_CORE - 0.0025) / lr  # nearest-cell rounding
    # 99 % interval (two temperatures are tested): τ̂ exp(±2.576/√n)
    tau, n = passage["mfpt_steps"], passage["escaped"]
    assert tau * np.exp(-2.576 / np.sqrt(n)) < exact_steps < tau * np.exp(2.576 / np.sqrt(n)), \
        (tau, exact_steps, n)
    # exit times follow the exponential law (KS against the censored MLE fit)
    assert passage["ks_pvalue"] > 0.001


DATASET = 4096
SGD_SIGMA = 31.63  # per-sample noise σ: T_eff ≈ 0.25 at η = 0.001, B = 2 and at η = 0.002, B = 4


@pytest.mark.parametrize("lr,batch", [(0.001, 2), (0.002, 4)])
def test_sgd_escapes_at_the_temperature_its_batch_size_sets(lr, batch):
    """Minibatch SGD with additive noise escapes like Langevin at T = η σ² tr Σ (n − B) /
    (4 B (n − 1)); η/B fixed keeps T and the escape time per unit time η·steps (the linear
    scaling rule)."""
    steps = int(30 / lr)
    dynamics = {"kind": "sgd", "lr": lr, "batch_size": batch, "dataset_size": DATASET,
                "noise": "additive", "noise_scale": SGD_SIGMA}
    sim = _double_well_run(dynamics, 2000, steps)
    temperature, step = equivalent_langevin(sim.preset.dynamics)
    assert step == lr and temperature == pytest.approx(0.25, rel=2e-3)
    assert temperature == pytest.approx(sim.effective_temperature(), rel=1e-12)
    passage = first_passage(sim.events(), sim.initial_core, 0, steps)
    assert passage["censored"] > 0 and passage["escaped"] > 400
    exact_steps = exact_mfpt(temperature, b=B_CORE - 0.0025) / lr
    tau, n = passage["mfpt_steps"], passage["escaped"]  # 99 % interval, as above
    assert tau * np.exp(-2.576 / np.sqrt(n)) < exact_steps < tau * np.exp(2.576 / np.sqrt(n)), \
        (tau, exact_steps, n)


def test_predictions_use_the_equivalent_langevin_temperature_and_step():
    landscape = {"builtin": "double_well", "params": {"kappa": 1.0}}
    sgd = {"kind": "sgd", "lr": 0.01, "batch_size": 8, "dataset_size": 64, "noise": "additive",
           "noise_scale": 2.0, "noise_cov": [[1.5, 0.5], [0.5, 0.5]], "temperature": 0.05}
    # 0.05 + η σ² tr Σ (n − B)/(4B(n − 1)) = 0.05 + 0.01 · 4 · 2 · 56/(4 · 8 · 63)
    assert equivalent_langevin(make_preset(dynamics=sgd).dynamics) == pytest.approx(
        (0.05 + 0.08 * 56 / (32 * 63), 0.01), rel=1e-12)
    heavy_ball = make_preset(dynamics={"kind": "momentum", "lr": 0.01, "temperature": 0.1,
                                       "momentum": 0.75}).dynamics
    assert equivalent_langevin(heavy_ball) == pytest.approx((0.4, 0.04), rel=1e-12)
    gd = make_preset(dynamics={"kind": "gd", "lr": 0.01, "temperature": 0.3}).dynamics
    curvature = make_preset(dynamics={**sgd, "noise": "curvature"}).dynamics
    assert equivalent_langevin(gd)[0] == 0.0 and equivalent_langevin(curvature)[0] == 0.0

    preset = make_preset(landscape=landscape, dynamics={**sgd, "temperature": 0.0})
    sim = Simulation(preset)
    sim.attach_structure(analyse(preset, resolution=128, sim=sim))
    temperature = sim.effective_temperature()
    assert sim.structure.temperature == pytest.approx(temperature, rel=1e-12)
    kramers = sim.structure.kramers[0]
    assert kramers["barrier_over_T"] == pytest.approx(1.0 / temperature, rel=1e-6)
    sim.advance(200)
    summary = escape_summary(sim)
    assert summary["prediction_temperature"] == pytest.approx(temperature, rel=1e-12)


def test_ridge_recrossings_are_not_events():
    # particles started on the ridge at low T wander across x = 0 many times before reaching a
    # core; events require entering a core different from the last one
    sim = Simulation(make_preset(
        landscape={"builtin": "double_well", "bounds": [[-2.0, 2.0], [-1.5, 1.5]]},
        dynamics={"kind": "langevin", "lr": 0.005, "temperature": 0.3},
        ensemble={"particles": 500, "seed": 2, "init": {"mean": [-0.8, 0.0], "std": 0.0}},
        run={"steps": 1, "record_every": 1}), diagnostics=False)
    from engine.diagnostics.structure import analyse
    sim.attach_structure(analyse(sim.preset, sim=sim))
    crossings = 0
    previous = np.sign(sim.positions[:, 0])
    for _ in range(3000):
        sim.advance(1)
        sign = np.sign(sim.positions[:, 0])
        crossings += int(np.sum(sign != previous))
        previous = sign
    events = sim.events()
    assert len(events) > 0
    assert crossings > 3 * len(events)  # many ridge crossings, far fewer core-to-core events
    assert np.all(events[:, 2] != events[:, 3])
    # consecutive events of one particle alternate: to of one is from of the next
    for particle in np.unique(events[:, 1])[:50]:
        rows = events[events[:, 1] == particle]
        assert np.all(rows[1:, 2] == rows[:-1, 3])


def test_transition_table_handles_censoring_exactly():
    # two particles start in state 0; one jumps to 1 at step 30 and back at 50; run ends at 100
    events = np.array([[30, 0, 0, 1], [50, 0, 1, 0]])
    table = transition_table(events, np.array([0, 0]), 0, 100, 2)
    assert table["exposure_steps"] == [30 + 50 + 100, 20]
    pair01 = next(p for p in table["pairs"] if p["from"] == 0)
    assert pair01["mfpt_steps"] == 180.0 and pair01["transitions"] == 1
    passage = first_passage(events, np.array([0, 0]), 0, 100)
    assert passage["escaped"] == 1 and passage["censored"] == 1
    assert passage["mfpt_steps"] == pytest.approx((30 + 100) / 1)


def test_run_writes_basins_events_and_summaries(tmp_path):
    preset = make_preset(
        landscape={"builtin": "double_well", "bounds": [[-2.0, 2.0], [-1.5, 1.5]]},
        dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.3},
        ensemble={"particles": 300, "seed": 4, "init": {"mean": [-1.0, 0.0], "std": 0.05}},
        run={"steps": 4000, "record_every": 100})
    sim = run_preset(preset, out=tmp_path / "r.npz")
    data = np.load(tmp_path / "r.npz")
    assert data["basin"].shape == data["loss"].shape == (41, 300)
    assert set(np.unique(data["basin"])) <= {0, 1}
    assert data["events"].dtype == np.int64 and data["events"].shape[1] == 4
    assert len(data["events"]) == summary(sim)["escapes"]["events"] > 0
    measure = summary(sim)["measure"]
    assert 0.0 < measure["tv"] < 1.0 and measure["samples"] > 0
    assert "series_vanishing_change" in data.files
    left = min(range(2), key=lambda i: sim.structure.minima[i].x)
    assert np.all(data["basin"][0] == left)


def test_integrated_autocorrelation_time_of_ar1():
    # AR(1) x_t = φ x_{t−1} + ε: τ = (1 + φ)/(1 − φ) = 9 for φ = 0.8; 400 chains × 4000 steps
    rng = np.random.default_rng(0)
    phi, chains, length = 0.8, 400, 4000
    x = np.zeros((length, chains))
    noise = rng.standard_normal((length, chains))
    x[0] = noise[0] / np.sqrt(1 - phi ** 2)
    for t in range(1, length):
        x[t] = phi * x[t - 1] + noise[t]
    tau = integrated_autocorrelation_time(x)
    # relative error of the windowed estimator ≈ √(2(2M+1)/(N_eff)) with M ≈ 5τ: well under 5 %
    assert tau == pytest.approx(9.0, rel=0.05)
    assert integrated_autocorrelation_time(noise) == pytest.approx(1.0, abs=0.05)


def _escaping_cloud(capacity):
    sim = Simulation(make_preset(
        landscape={"builtin": "double_well", "params": {"kappa": 1.0},
                   "bounds": [[-2.0, 2.0], [-1.5, 1.5]], "boundary": "reflect"},
        dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.5},
        ensemble={"particles": 500, "seed": 3, "init": {"mean": [-1.0, 0.0], "std": 0.0}}),
        diagnostics=False, event_log_capacity=capacity)
    sim.attach_cores(*_core_grid())
    for chunk in (7, 1, 40, 13, 200, 3, 90, 600, 1000):  # chunks of every size, some eventless
        sim.advance(chunk)
    return sim


def test_bounded_event_log_keeps_the_latest_events_and_exact_statistics():
    complete, bounded = _escaping_cloud(1 << 20), _escaping_cloud(60)
    everything = complete.events()
    assert len(everything) > 300 and complete.event_count() == len(everything)
    assert bounded.event_count() == len(everything)
    np.testing.assert_array_equal(bounded.events(), everything[-60:])
    for count in (1, 17, 60, 61, len(everything) + 5):
        np.testing.assert_array_equal(bounded.recent_events(count), everything[-min(count, 60):])
        np.testing.assert_array_equal(complete.recent_events(count), everything[-count:])
    # the streaming statistics are those of the whole list, however few rows are kept
    end = complete.step
    whole = transition_table(everything, complete.initial_core, 0, end, 2)
    assert bounded.escape_log.transition_table(end) == whole
    assert whole["counts"][0][1] > 100 and whole["counts"][1][0] > 20  # both ways
    passage = first_passage(everything, complete.initial_core, 0, end)
    streamed = bounded.escape_log.first_passage(end)
    np.testing.assert_array_equal(np.sort(streamed.pop("times")), np.sort(passage.pop("times")))
    assert streamed == passage
    bounded.restart_escapes()
    assert bounded.event_count() == 0 == len(bounded.events()) == len(bounded.recent_events(10))


def test_event_ring_wraps_around_in_step_order():
    # synthetic chunks, some longer than the ring: the ring always holds the newest rows
    rng = np.random.default_rng(5)
    log = EscapeLog(np.zeros(40, dtype=np.int64), 0, 2, capacity=32)
    rows, step = [], 0
    for size in (5, 0, 31, 32, 70, 1, 9, 33):
        chunk = np.column_stack([step + rng.integers(0, 10, size), rng.permutation(40)[:size]
                                 if size <= 40 else rng.integers(0, 40, size),
                                 np.zeros(size, int), np.ones(size, int)])
        step += 10
        log.add(chunk[rng.permutation(size)])    # rows within a chunk in any order
        rows.append(chunk[np.lexsort((chunk[:, 1], chunk[:, 0]))])
        expected = np.concatenate(rows)[-32:]
        np.testing.assert_array_equal(log.events(), expected)
        assert log.total == sum(map(len, rows))


def test_restoring_a_checkpoint_replays_the_same_steps_and_escape_statistics():
    sim = _escaping_cloud(1 << 20)
    saved = sim.checkpoint()
    sim.advance(300)
    first = (sim.positions.copy(), sim.events(), sim.escape_log.transition_table(sim.step),
             sim.event_count())
    sim.restore(saved)
    sim.advance(300)
    np.testing.assert_array_equal(sim.positions, first[0])
    np.testing.assert_array_equal(sim.events(), first[1])
    assert sim.escape_log.transition_table(sim.step) == first[2]
    assert sim.event_count() == first[3] > saved["escape_log"].total  # the replay logged anew


def test_a_long_advance_loses_no_escape_event():
    """One call of 3000 steps sees thousands of core-set entries per block of particles (the
    kernels once kept 1024 per block and call and dropped the rest): the same events, in the
    same order, as the run advanced 10 steps at a time, and none dropped."""
    from engine.diagnostics.structure import analyse
    preset = make_preset(landscape={"builtin": "double_well"},
                         dynamics={"kind": "langevin", "lr": 0.02, "temperature": 1.0},
                         ensemble={"particles": 1024, "seed": 7},
                         run={"steps": 3000, "record_every": 10**6})
    structure = analyse(preset, resolution=128)
    whole, pieces = Simulation(preset), Simulation(preset)
    for sim in (whole, pieces):
        sim.attach_structure(structure)
    whole.advance(3000)
    for _ in range(300):
        pieces.advance(10)
    events = whole.events()
    assert whole.events_dropped == pieces.events_dropped == 0
    per_block = np.bincount(events[:, 1] // 256)
    assert per_block.max() > 4 * 1024  # far beyond the old fixed buffer
    np.testing.assert_array_equal(events, pieces.events())
