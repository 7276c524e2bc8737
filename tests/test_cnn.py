"""CNN lab: ghost loss, batched runs, curvature by HVPs, noise norm, peak rule, data, CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.cnn import data as cnn_data
from engine.cnn.config import cnn_preset_from_dict, loads_cnn, dumps_cnn
from engine.cnn.curvature import hvp_operator, lanczos_extremes, noise_norm
from engine.cnn.model import (PARAM_NAMES, Architecture, forward, ghost_losses, ghost_mask,
                              init_params, loss_parts, model_major,
                              per_sample_loss)
from engine.cnn.peaks import classify, peaks
from engine.cnn.trainer import CnnExperiment
from engine.presets import PresetError

from conftest import CNN_PRESETS, ROOT

# every device-dependent test also runs on CUDA wherever a GPU is present (same code path)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def small_preset(diagnostics=None, **training):
    table = {"lr": 0.2, "epochs": 3, "runs": 3, "seed": 5}
    table.update(training)
    return cnn_preset_from_dict({"name": "small", "data": {"per_class": 4, "test_per_class": 3},
                                 "model": {"channels": [3, 4], "ghosts": 2},
                                 "training": table, "diagnostics": diagnostics or {}}, "<test>")


# --- the ghost loss (Park & Yun (2025), eq. 5.2) ------------------------------------------------

def test_ghost_loss_is_equation_5_2_on_a_hand_sized_example():
    z = np.array([[1.0, -0.5, 2.0, 0.3, -1.2], [0.0, 0.7, -0.2, 1.5, 0.4]])   # c = 3, e = 2
    y = np.array([2, 0])
    logits = torch.tensor(z)[None]                       # one model, two samples
    mask = torch.zeros((1, 5), dtype=torch.float64)
    ext, orig = ghost_losses(logits, torch.tensor(y)[None], mask, classes=3)
    for i in range(2):
        direct = -np.log(np.exp(z[i, y[i]]) / (np.exp(z[i, :3]).sum() + np.exp(z[i, 3:]).sum()))
        plain = -np.log(np.exp(z[i, y[i]]) / np.exp(z[i, :3]).sum())
        assert ext[0, i].item() == pytest.approx(direct, rel=1e-12)
        assert orig[0, i].item() == pytest.approx(plain, rel=1e-12)
    parts = loss_parts(logits, torch.tensor(y)[None], mask, 3)
    mass = np.mean([np.exp(z[i, 3:]).sum() / np.exp(z[i]).sum() for i in range(2)])
    assert parts.ghost_mass.item() == pytest.approx(mass, rel=1e-12)
    assert parts.ghost.item() >= 0
    assert parts.ext.item() == pytest.approx(parts.orig.item() + parts.ghost.item(), rel=1e-12)


def test_zero_ghosts_is_standard_cross_entropy_and_masked_rows_get_no_gradient():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn((1, 7, 6), generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (1, 7), generator=gen)
    arch = Architecture(8, 8, classes=4, max_ghosts=2)
    mask = ghost_mask(arch, [0], "cpu", torch.float64)
    ext, orig = ghost_losses(logits, labels, mask, 4)
    reference = F.cross_entropy(logits[0, :, :4], labels[0], reduction="none")
    assert torch.allclose(ext[0], reference, atol=1e-14)
    assert torch.allclose(orig[0], reference, atol=1e-14)
    (grad,) = torch.autograd.grad(ext.sum(), logits)
    assert torch.all(grad[..., 4:] == 0)


# --- batched runs ------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_batched_runs_equal_separate_trainings(optimizer, device):
    preset = small_preset(optimizer=optimizer, batch_size=7)
    together = CnnExperiment(preset, device, torch.float64).run()
    joint = together.metrics()
    for position, run in enumerate(together.run_ids):
        alone = CnnExperiment(preset, device, torch.float64, runs=[run]).run()
        single = alone.metrics()
        for arm in range(2):
            column = arm * len(together.run_ids) + position
            for key in ("train_loss", "test_loss", "test_acc", "grad_norm", "ghost_mass"):
                assert np.allclose(joint[key][:, column], single[key][:, arm], rtol=1e-10,
                                   atol=1e-12), (key, run, arm)
            for name in PARAM_NAMES:
                assert torch.allclose(together.params[name][column], alone.params[name][arm],
                                      rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("error:.*does not have a deterministic implementation")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_cuda_trains_the_same_runs_as_the_cpu(optimizer):
    """Same preset and seed on both devices: the same data subsets, initial weights and
    minibatches, hence the same metrics up to float64 rounding."""
    preset = small_preset(optimizer=optimizer, batch_size=7, epochs=5)
    cpu = CnnExperiment(preset, "cpu", torch.float64).run()
    gpu = CnnExperiment(preset, "cuda", torch.float64).run()
    for key, values in cpu.metrics().items():
        assert np.allclose(gpu.metrics()[key], values, rtol=1e-9, atol=1e-12,
                           equal_nan=True), key
    for name in PARAM_NAMES:
        assert torch.allclose(gpu.params[name].cpu(), cpu.params[name], rtol=1e-9, atol=1e-12)


def test_arms_share_data_and_shared_layer_initial_weights():
    experiment = CnnExperiment(small_preset(), "cpu", torch.float64)
    R, c = 3, experiment.classes
    p = experiment.params
    for name in ("conv1_w", "conv1_b", "conv2_w", "conv2_b"):
        assert torch.equal(p[name][:R], p[name][R:])
    assert torch.equal(p["head_w"][:R, :c], p["head_w"][R:, :c])
    assert not torch.equal(p["head_w"][R:, c:], torch.zeros_like(p["head_w"][R:, c:]))
    assert torch.all(p["head_w"][:R, c:] == 0)                 # unused rows of the baseline
    assert torch.equal(experiment.train_x[:, :R], experiment.train_x[:, R:])
    assert not torch.equal(experiment.train_x[:, 0], experiment.train_x[:, 1])  # runs differ


@pytest.mark.filterwarnings("error:.*does not have a deterministic implementation")
@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_gives_identical_metrics_and_another_seed_does_not(device):
    # float32 and minibatches, with σ(θ) and Lanczos every other epoch: bit for bit, also on CUDA
    def metrics(seed):
        preset = small_preset({"every": 2, "lanczos_steps": 8}, optimizer="sgd", batch_size=7,
                              seed=seed)
        return CnnExperiment(preset, device).run().metrics()

    a, b, c = metrics(5), metrics(5), metrics(6)
    assert np.isfinite(a["noise_norm"][2]).all()
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert not np.array_equal(a["test_loss"], c["test_loss"])


def test_ghost_mass_decays_under_training():
    """Park & Yun (2025), Result 5.3, on the CNN: mean ghost mass falls as the real logits grow."""
    preset = small_preset(epochs=60, lr=0.5, runs=4)
    metrics = CnnExperiment(preset, "cpu").run().metrics()
    mass = metrics["ghost_mass"][:, 4:]                        # the ghost arm
    assert np.all(metrics["ghost_mass"][:, :4] == 0)
    assert mass[-1].mean() < 0.5 * mass[0].mean()


# --- curvature and noise -----------------------------------------------------------------------

def _tiny_problem(device="cpu"):
    arch = Architecture(8, 8, classes=3, channels=(2, 3), max_ghosts=1)
    params = init_params(arch, [3, 4], dtype=torch.float64)
    params = {k: v.to(device).requires_grad_(True) for k, v in params.items()}
    gen = torch.Generator().manual_seed(0)
    images = torch.rand((2, 12, 8, 8), generator=gen, dtype=torch.float64).to(device)
    labels = torch.randint(0, 3, (2, 12), generator=gen).to(device)
    mask = ghost_mask(arch, [0, 1], device, torch.float64)
    return arch, params, model_major(images), labels, mask


@pytest.mark.parametrize("device", DEVICES)
def test_lanczos_extremes_match_the_full_hessian_within_the_ritz_residual(device):
    arch, params, images, labels, mask = _tiny_problem(device)
    logits = forward(params, images)
    total = loss_parts(logits, labels, mask, 3).ext.sum()
    dim = sum(params[n][0].numel() for n in PARAM_NAMES)
    result = lanczos_extremes(hvp_operator(total, params), 2, dim, 40, seed=1,
                              dtype=torch.float64, device=device)
    for m in range(2):
        def loss_of(flat, m=m):
            full = {}
            start = 0
            for name in PARAM_NAMES:
                size = params[name][0].numel()
                block = params[name].detach().clone()
                block[m] = flat[start:start + size].reshape(params[name].shape[1:])
                full[name] = block
                start += size
            return loss_parts(forward(full, images), labels, mask, 3).ext[m]
        flat = torch.cat([params[n][m].detach().reshape(-1) for n in PARAM_NAMES])
        exact = np.linalg.eigvalsh(
            torch.autograd.functional.hessian(loss_of, flat).cpu().numpy())
        scale = np.abs(exact).max()
        # stated tolerance: an eigenvalue within the Ritz residual (+ rounding)
        assert abs(result.lam_max[m] - exact[-1]) <= result.res_max[m] + 1e-9 * scale
        assert abs(result.lam_min[m] - exact[0]) <= result.res_min[m] + 1e-9 * scale
        assert result.res_max[m] < 1e-3 * scale                # and it has converged


@pytest.mark.parametrize("device", DEVICES)
def test_noise_norm_matches_a_loop_over_samples(device):
    arch, params, images, labels, mask = _tiny_problem(device)
    sigma = noise_norm(per_sample_loss(mask, 3), params, images, labels, chunk=5)
    n = images.shape[0]
    for m in range(2):
        grads = []
        for i in range(n):
            ext, _ = ghost_losses(forward(params, images[i:i + 1]), labels[:, i:i + 1], mask, 3)
            g = torch.autograd.grad(ext[m].sum(), [params[k] for k in PARAM_NAMES])
            grads.append(torch.cat([t[m].reshape(-1) for t in g]))
        stacked = torch.stack(grads)
        expected = (stacked - stacked.mean(0)).pow(2).sum(1).mean().sqrt()
        assert sigma[m].item() == pytest.approx(expected.item(), rel=1e-10)


def test_diagnostics_fill_every_kth_epoch_with_a_consistent_lyapunov_term():
    preset = cnn_preset_from_dict({
        "name": "diag", "data": {"per_class": 3, "test_per_class": 2},
        "model": {"channels": [2, 3], "ghosts": 1},
        "training": {"lr": 0.3, "epochs": 4, "runs": 2},
        "diagnostics": {"every": 2, "lanczos_steps": 10}}, "<test>")
    metrics = CnnExperiment(preset, "cpu").run().metrics()
    measured = np.isfinite(metrics["lambda_max"]).all(1)
    assert list(np.flatnonzero(measured)) == [0, 2, 4]
    lam_max, lam_min = metrics["lambda_max"][measured], metrics["lambda_min"][measured]
    assert np.all(lam_max >= lam_min)
    expected = np.log(np.maximum(abs(1 - 0.3 * lam_max), abs(1 - 0.3 * lam_min)))
    assert np.allclose(metrics["lyapunov_term"][measured], expected)
    assert np.allclose(metrics["lyapunov"][-1], expected.mean(0))
    assert np.all(metrics["noise_norm"][measured] > 0)


# --- the peak rule -----------------------------------------------------------------------------

def test_peak_rule_finds_known_peaks_and_ignores_noise():
    rng = np.random.default_rng(0)
    t = np.arange(400.0)
    smooth = 2.0 * np.exp(-t / 40) + 0.3 + 0.2 * np.exp(-((t - 150) / 12) ** 2)
    noisy = smooth + rng.normal(0, 0.001, t.size)
    # the rule's resolution is its window (3 epochs)
    found = peaks(noisy)
    assert len(found) == 1 and abs(found[0] - 150) <= 3
    assert peaks(2.0 * np.exp(-t / 40) + 0.3 + rng.normal(0, 0.001, t.size)) == []
    two = noisy + 0.5 * np.exp(-((t - 30) / 3) ** 2)
    found = peaks(two)
    assert len(found) == 2 and found[0] == 30 and abs(found[1] - 150) <= 3


def test_peaks_are_classified_by_the_training_loss():
    t = np.arange(300.0)
    test = 1.5 * np.exp(-t / 30) + 0.4 + 0.3 * np.exp(-((t - 20) / 3) ** 2) \
        + 0.001 * np.maximum(t - 150, 0)                       # spike at 20, slow rise later
    test = test + 0.1 * np.exp(-((t - 200) / 10) ** 2)         # an overfitting bump at 200
    train = 1.5 * np.exp(-t / 30) + 0.3 * np.exp(-((t - 20) / 3) ** 2) + 0.05
    found = classify(test, train)
    assert found["first_peak"] == 20 and found["first_spike"] == 20
    assert abs(found["first_bump"] - 200) <= 3


# --- data, presets, CLI ------------------------------------------------------------------------

def _write_mnist(folder, side=12, per_class=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    for prefix, count in (("train", per_class), ("t10k", 4)):
        labels = np.repeat(np.arange(classes), count).astype(np.uint8)
        images = rng.integers(0, 256, (labels.size, side, side)).astype(np.uint8)
        cnn_data.write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        cnn_data.write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return images


def test_mnist_idx_files_load_and_train(tmp_path):
    _write_mnist(tmp_path)
    split = cnn_data.split("mnist", str(tmp_path), test_per_class=2)
    assert split.pool.images.shape == (24, 12, 12) and split.pool.classes == 3
    assert split.test.images.shape == (6, 12, 12)
    assert 0.0 <= split.pool.images.min() and split.pool.images.max() <= 1.0
    preset = cnn_preset_from_dict({"name": "m", "data": {"source": "mnist", "path": str(tmp_path),
                                                         "per_class": 5, "test_per_class": 2},
                                   "model": {"channels": [2, 2]},
                                   "training": {"epochs": 2, "runs": 2}}, "<test>")
    metrics = CnnExperiment(preset, "cpu").run().metrics()
    assert metrics["test_loss"].shape == (3, 4) and np.isfinite(metrics["test_loss"]).all()


def test_broken_idx_file_names_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03")
    with pytest.raises(cnn_data.DataError, match="train-images-idx3-ubyte.*magic"):
        cnn_data.read_idx(bad)
    with pytest.raises(cnn_data.DataError, match="missing"):
        cnn_data.load_mnist(tmp_path, "t10k")


def test_run_subsets_are_per_class_without_replacement_and_seeded():
    pool = cnn_data.split("digits", "", 50).pool
    subsets = cnn_data.run_subsets(pool, 30, seed=0, runs=3)
    for row in subsets:
        assert np.unique(row).size == row.size
        assert np.all(np.bincount(pool.labels[row], minlength=10) == 30)
    assert not np.array_equal(subsets[0], subsets[1])
    assert np.array_equal(subsets, cnn_data.run_subsets(pool, 30, seed=0, runs=3))


@pytest.mark.parametrize("path", CNN_PRESETS, ids=lambda p: p.name)
def test_bundled_cnn_presets_round_trip_exactly(path):
    preset = loads_cnn(path.read_text(), str(path))
    assert preset.description
    assert loads_cnn(dumps_cnn(preset)) == preset
    assert dumps_cnn(loads_cnn(dumps_cnn(preset))) == dumps_cnn(preset)


def test_cnn_preset_validation():
    assert len(CNN_PRESETS) >= 2
    with pytest.raises(PresetError, match=r"x\.toml: training\.lr = -1\.0: must be > 0\.0"):
        loads_cnn('name = "x"\n[training]\nlr = -1.0\n', "x.toml")
    with pytest.raises(PresetError, match=r"model\.ghostz: unknown key"):
        loads_cnn('name = "x"\n[model]\nghostz = 1\n', "x.toml")


def test_cli_cnn_writes_npz_json_and_figures(tmp_path):
    out = tmp_path / "smoke.npz"
    done = subprocess.run([sys.executable, "-m", "engine", "cnn",
                           str(ROOT / "presets" / "cnn_smoke.toml"), "--epochs", "6",
                           "--runs", "2", "--device", "cpu", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    with np.load(out) as npz:
        assert npz["test_loss"].shape == (7, 4)
        assert npz["pca_coords"].shape[1:] == (4, 2)
        assert "[training]" in str(npz["preset"])
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["runs"] == 2 and "first_peak" in summary["paired_ghost_minus_baseline"]
    assert (tmp_path / "smoke_bands.png").stat().st_size > 1000
    assert (tmp_path / "smoke_peaks.png").stat().st_size > 1000


def test_cli_cnn_rejects_a_bad_preset_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[training]\noptimizer = "lbfgs"\n')
    done = subprocess.run([sys.executable, "-m", "engine", "cnn", str(bad), "--out",
                           str(tmp_path / "x.npz")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert "training.optimizer" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.npz").exists()


def test_shared_test_images_give_the_same_logits_as_per_model_copies():
    arch, params, images, labels, mask = _tiny_problem()
    shared = torch.rand((5, 1, 8, 8), dtype=torch.float64)
    copies = shared.expand(5, 2, 8, 8).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(forward(params, shared), forward(params, copies), atol=1e-13)


def test_randomized_principal_axes_match_a_full_svd():
    from engine.cnn.trainer import top_principal_axes
    rng = np.random.default_rng(3)
    data = rng.normal(size=(400, 3)) @ np.diag([5.0, 2.0, 0.5]) @ rng.normal(size=(3, 60))
    data += 0.01 * rng.normal(size=data.shape)
    centred = data - data.mean(0)
    axes, variance = top_principal_axes(centred, 2)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    assert np.allclose(variance, sing[:2] ** 2, rtol=1e-8)
    assert np.allclose(np.abs(np.sum(axes * vt[:2], axis=1)), 1.0, atol=1e-8)
