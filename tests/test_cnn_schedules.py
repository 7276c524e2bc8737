"""CNN lab, issue 24: fused test-set inference, ghost removal and decay schedules, the gradient
gap of Park & Yun (2025) Result 5.3, and Adam."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.cnn.config import cnn_preset_from_dict
from engine.cnn.inference import padded_images, shared_logits
from engine.cnn.model import PARAM_NAMES, Architecture, forward, init_params
from engine.cnn.schedule import ghost_counts, live_ghosts
from engine.cnn.trainer import CnnExperiment
from engine.presets import PresetError


def tiny_preset(model=None, diagnostics=None, **training):
    table = {"lr": 0.2, "epochs": 6, "runs": 2, "seed": 3}
    table.update(training)
    spec = {"channels": [3, 4], "ghosts": 2}
    spec.update(model or {})
    return cnn_preset_from_dict({"name": "tiny", "data": {"per_class": 3, "test_per_class": 2},
                                 "model": spec, "training": table,
                                 "diagnostics": diagnostics or {}}, "<test>")


def test_fused_test_logits_equal_the_autograd_forward():
    arch = Architecture(12, 8, 5, (3, 4), max_ghosts=2)
    params = init_params(arch, [1, 2, 3], dtype=torch.float64)
    images = torch.rand((7, 12, 8), generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    expected = forward(params, images[:, None])
    for chunk in (3, 64):   # chunks that split the images and one that holds them all
        got = shared_logits(params, padded_images(images), chunk=chunk)
        assert got.shape == expected.shape == (3, 7, 7)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_schedule_ghost_counts_per_epoch():
    assert list(ghost_counts(2, "fixed", 0, 5)) == [2] * 6
    assert list(ghost_counts(2, "remove", 3, 5)) == [2, 2, 2, 0, 0, 0]
    # ⌈2·(4 − t)/4⌉: one ghost dropped halfway, the other at the off epoch
    assert list(ghost_counts(2, "linear", 4, 6)) == [2, 2, 1, 1, 0, 0, 0]
    assert list(ghost_counts(3, "linear", 3, 4)) == [3, 2, 1, 0, 0]
    assert live_ghosts(0, "linear", 4, 0) == 0
    with pytest.raises(ValueError, match="schedule"):
        live_ghosts(2, "cosine", 4, 0)


def test_schedule_needs_an_off_epoch():
    with pytest.raises(PresetError, match="ghost_off_epoch"):
        tiny_preset(model={"ghost_schedule": "remove"})
    with pytest.raises(PresetError, match="ghost_schedule"):
        tiny_preset(model={"ghost_schedule": "sometimes", "ghost_off_epoch": 2})


def test_experiment_follows_the_schedule_and_records_live_ghosts():
    preset = tiny_preset(model={"ghost_schedule": "linear", "ghost_off_epoch": 4})
    experiment = CnnExperiment(preset, "cpu", dtype=torch.float64).run()
    metrics = experiment.metrics()
    runs = len(experiment.run_ids)
    live = metrics["live_ghosts"]
    assert np.all(live[:, :runs] == 0)
    for m in range(runs, 2 * runs):
        assert list(live[:, m]) == list(ghost_counts(2, "linear", 4, 6))
    # once every ghost is dropped the ghost loss and mass are zero (to float64 rounding of the
    # two log-sum-exps, whose reductions differ in length)
    assert np.all(np.abs(metrics["f_ghost"][4:, runs:]) < 1e-14)
    assert np.all(np.abs(metrics["ghost_mass"][4:, runs:]) < 1e-14)
    assert np.all(metrics["ghost_mass"][:2, runs:] > 0)


def test_ghost_removal_run_equals_the_plain_model_from_the_removal_epoch_on():
    removal = 3
    removed = CnnExperiment(tiny_preset(model={"ghost_schedule": "remove",
                                               "ghost_off_epoch": removal}),
                            "cpu", dtype=torch.float64, arms=(2,)).run()
    # the same ghost model trained with its ghosts up to the removal epoch …
    with_ghosts = CnnExperiment(tiny_preset(), "cpu", dtype=torch.float64, arms=(2,))
    with_ghosts.advance(removal)
    # … then a plain model (no ghost rows at all) continued from its weights
    plain = CnnExperiment(tiny_preset(), "cpu", dtype=torch.float64, arms=(0,))
    classes = plain.classes
    with torch.no_grad():
        for name in PARAM_NAMES:
            source = with_ghosts.params[name]
            if name.startswith("head"):
                source = source[:, :classes]
            plain.params[name].copy_(source)
    plain.epoch = removal
    plain.run()
    got, want = removed.metrics(), plain.metrics()
    for key in ("train_loss", "train_loss_orig", "test_loss", "test_acc", "grad_norm"):
        np.testing.assert_allclose(got[key][removal:], want[key][removal:], rtol=1e-10,
                                   atol=1e-13, err_msg=key)
    # before the removal the ghost run had its ghosts: its objective differed from the plain one
    assert np.all(got["train_loss"][:removal] > got["train_loss_orig"][:removal])
    for name in PARAM_NAMES:
        final = removed.params[name].detach()
        if name.startswith("head"):
            final = final[:, :classes]
        torch.testing.assert_close(final, plain.params[name].detach(), rtol=1e-10, atol=1e-13)


def test_gradient_gap_is_the_norm_of_the_ghost_loss_gradient_on_shared_weights():
    preset = tiny_preset(diagnostics={"gradient_gap_every": 2}, epochs=4)
    experiment = CnnExperiment(preset, "cpu", dtype=torch.float64)
    runs = len(experiment.run_ids)
    _, parts = experiment._objective()
    leaves = experiment._leaves()
    ext = torch.autograd.grad(parts.ext.sum(), leaves, retain_graph=True)
    orig = torch.autograd.grad(parts.orig.sum(), leaves)
    squared = torch.zeros(experiment.models, dtype=torch.float64)
    for name, a, b in zip(PARAM_NAMES, ext, orig):
        diff = a - b
        if name.startswith("head"):
            diff = diff[:, :experiment.classes]        # the ghost rows γ are not shared weights
        squared += diff.pow(2).reshape(experiment.models, -1).sum(1)
    experiment.run()
    gap = experiment.metrics()["gradient_gap"]
    np.testing.assert_allclose(gap[0], np.sqrt(squared.numpy()), rtol=1e-10, atol=1e-15)
    assert np.all(gap[0, runs:] > 0)
    assert np.all(gap[0, :runs] < 1e-12)          # no ghosts: f_ext = f_orig
    assert np.isnan(gap[1]).all() and np.isfinite(gap[[0, 2, 4]]).all()


def test_adam_steps_match_torch_optim_adam():
    preset = tiny_preset(optimizer="adam", lr=0.01, batch_size=7, epochs=2)
    ours = CnnExperiment(preset, "cpu", dtype=torch.float64)
    reference = CnnExperiment(preset, "cpu", dtype=torch.float64)
    optimiser = torch.optim.Adam(reference._leaves(), lr=0.01)
    rows = torch.arange(reference.models)[:, None]
    ours.advance(2)
    for epoch in range(2):
        for index in reference._batches(epoch):
            images = reference.train_x[index.T, rows.T].contiguous(
                memory_format=torch.channels_last)
            _, parts = reference._objective(images, reference.train_y[rows, index])
            optimiser.zero_grad()
            parts.ext.sum().backward()
            optimiser.step()
    for name in PARAM_NAMES:
        torch.testing.assert_close(ours.params[name].detach(), reference.params[name].detach(),
                                   rtol=1e-9, atol=1e-12)


def test_report_verdicts_for_removal_and_gradient_gap_follow_their_intervals():
    from engine.cnn.report import gradient_gap_claim, removal_claim
    runs, epochs = 8, 10
    rng = np.random.default_rng(0)
    base, ghost = slice(0, runs), slice(runs, 2 * runs)
    live = np.zeros((epochs + 1, 2 * runs))
    live[:6, ghost] = 2                                     # removed at epoch 6
    gap = np.full((epochs + 1, 2 * runs), np.nan)
    gap[:, ghost] = np.linspace(1.0, 0.1, epochs + 1)[:, None] + rng.uniform(0, 0.01, runs)
    gap[6:, ghost] = 0.0                                    # masked ghosts: zero by construction
    metrics = {"gradient_gap": gap, "live_ghosts": live, "grad_norm": np.ones_like(gap),
               "ghost_mass": np.full_like(gap, 0.1)}
    entry = gradient_gap_claim(metrics, ghost)
    assert entry["verdict"] == "supported"
    assert entry["last_epoch"] == 5                          # the last epoch with live ghosts
    assert entry["final"]["mean"] == pytest.approx(1.0 - 0.9 * 5 / 10 + 0.005, abs=0.01)
    final_loss = np.concatenate([np.full(runs, 0.5), 0.5 + rng.uniform(0.1, 0.2, runs)])
    events = {"final_test_loss": final_loss, "final_test_acc": np.full(2 * runs, 0.8)}
    removal = tiny_preset(model={"ghost_schedule": "remove", "ghost_off_epoch": 6},
                          epochs=epochs)
    assert removal_claim(metrics, events, base, ghost, removal)["verdict"] == "not supported"
    events["final_test_loss"] = np.concatenate([final_loss[:runs], final_loss[:runs] - 0.01
                                                + rng.uniform(0, 0.02, runs)])
    assert removal_claim(metrics, events, base, ghost, removal)["verdict"] == "supported"
    fixed = removal_claim(metrics, events, base, ghost, tiny_preset(epochs=epochs))
    assert fixed["verdict"] == "not testable"


def test_figures_redrawn_from_the_npz_include_every_run(tmp_path):
    from engine.cnn.api import redraw_figures, run_cnn
    preset = tiny_preset(diagnostics={"gradient_gap_every": 1}, epochs=3)
    summary, _ = run_cnn(preset, tmp_path / "t.npz", "cpu")
    names = {p.split("/")[-1] for p in summary["figures"]}
    assert {"t_bands.png", "t_peaks.png", "t_ghosts.png", "t_runs_test_loss.png",
            "t_runs_train_loss.png", "t_runs_test_acc.png"} <= names
    again = redraw_figures(tmp_path / "t.npz", tmp_path / "again")
    assert {p.name.replace("again", "t") for p in again} == names
