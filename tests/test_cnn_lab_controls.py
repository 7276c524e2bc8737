"""The CNN lab tab's ghost-schedule and optimizer controls (issue 24): they show the loaded
preset, what Train hands on is what they show, and settings the preset rules refuse are
reported in the tab instead of starting."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from app.views.cnn_lab import CnnLabView
from engine.cnn.config import apply_cnn_sets, load_cnn
from engine.cnn.report import summarise, text_report
from engine.cnn.trainer import CnnExperiment

from conftest import ROOT

SMOKE = ROOT / "presets" / "cnn_smoke.toml"


def _view(qtbot, preset) -> CnnLabView:
    view = CnnLabView()
    qtbot.addWidget(view)
    view.set_preset(preset)
    return view


def _train_clicked(qtbot, view):
    with qtbot.waitSignal(view.start_requested, timeout=2000) as blocker:
        view.start_button.click()
    return blocker.args


def test_controls_show_the_loaded_presets_schedule_and_optimizer(qtbot):
    smoke = load_cnn(SMOKE)
    scheduled = apply_cnn_sets(smoke, ["model.ghost_schedule=remove", "model.ghost_off_epoch=12",
                                       "training.optimizer=sgd", "training.batch_size=20",
                                       "training.lr=0.03"])
    view = _view(qtbot, scheduled)
    assert view.schedule.currentData() == "remove"
    assert view.off_epoch.value() == 12 and view.off_epoch.isEnabled()
    assert view.optimizer.currentData() == "sgd"
    assert view.batch_size.value() == 20 and view.batch_size.isEnabled()
    assert view.lr.value() == 0.03
    assert view.configured_preset() == scheduled            # untouched: the preset itself
    assert "removed at epoch 12" in view.title.text() and "SGD B = 20" in view.title.text()
    view.set_preset(smoke)                                  # back to a fixed, full-batch one
    assert (view.schedule.currentData(), view.optimizer.currentData()) == ("fixed", "gd")
    assert not view.off_epoch.isEnabled() and not view.batch_size.isEnabled()
    assert view.configured_preset() == smoke
    assert "fixed" in view.title.text() and "full-batch GD" in view.title.text()


def test_enabled_states_and_ranges_follow_the_choices(qtbot):
    view = _view(qtbot, load_cnn(SMOKE))                    # 30 epochs, 10 per class
    for schedule, enabled in (("remove", True), ("linear", True), ("fixed", False)):
        view.schedule.setCurrentIndex(view.schedule.findData(schedule))
        assert view.off_epoch.isEnabled() is enabled, schedule
    for optimizer, enabled in (("sgd", True), ("adam", True), ("gd", False)):
        view.optimizer.setCurrentIndex(view.optimizer.findData(optimizer))
        assert view.batch_size.isEnabled() is enabled, optimizer
    # the removal epoch lies within the run, the batch within the training set (10 classes)
    assert (view.off_epoch.minimum(), view.off_epoch.maximum()) == (1, 30)
    assert (view.batch_size.minimum(), view.batch_size.maximum()) == (1, 100)
    view.off_epoch.setValue(25)
    view.epochs.setValue(20)
    assert view.off_epoch.maximum() == 20 and view.off_epoch.value() == 20
    view.batch_size.setValue(1000)
    assert view.batch_size.value() == 100


def test_changed_controls_are_what_train_hands_on_and_the_run_reports(qtbot):
    view = _view(qtbot, load_cnn(SMOKE))
    view.device.setCurrentText("cpu")
    view.runs.setValue(1)
    view.epochs.setValue(2)
    view.diag_every.setValue(0)
    view.schedule.setCurrentIndex(view.schedule.findData("linear"))
    view.off_epoch.setValue(2)
    view.optimizer.setCurrentIndex(view.optimizer.findData("adam"))
    view.batch_size.setValue(16)
    view.lr.setValue(0.01)
    assert "falling linearly to 0 at epoch 2" in view.title.text()
    assert "Adam B = 16, η = 0.01" in view.title.text()
    preset, device = _train_clicked(qtbot, view)
    assert device == "cpu"
    assert (preset.model.ghost_schedule, preset.model.ghost_off_epoch) == ("linear", 2)
    assert (preset.training.optimizer, preset.training.batch_size) == ("adam", 16)
    assert preset.training.lr == 0.01
    # the trainer runs that schedule: e = 2 live at epoch 0, one at epoch 1, none at 2
    experiment = CnnExperiment(preset, "cpu", dtype=torch.float32)
    experiment.advance(2)
    metrics = experiment.metrics()
    assert metrics["live_ghosts"][:, experiment.arms.index(2)].tolist() == [2, 1, 0]
    summary = summarise(metrics, preset, experiment.arms, 1)
    view.show_report(text_report(summary), cancelled=False)
    report = view.report.toPlainText()
    assert "falling linearly to 0 at epoch 2" in report and "Adam B = 16" in report
    assert "adam lr=0.01" in report
    # turning the choices back off hands on the preset's own off epoch and batch size
    view.schedule.setCurrentIndex(view.schedule.findData("fixed"))
    view.optimizer.setCurrentIndex(view.optimizer.findData("gd"))
    preset, _ = _train_clicked(qtbot, view)
    smoke = load_cnn(SMOKE)
    assert preset.model == replace(smoke.model, ghost_schedule="fixed")
    assert (preset.training.optimizer, preset.training.batch_size) == ("gd", 32)


def test_a_setting_the_preset_rules_refuse_is_shown_in_the_tab_and_nothing_starts(qtbot):
    # 200 training images per class are fine for mnist5k (500 per class) but not for digits
    # (≥ 174 per class, 50 of them kept for testing)
    mnist = apply_cnn_sets(load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml"),
                           ["data.per_class=200"])
    view = _view(qtbot, mnist)
    view.source.setCurrentIndex(view.source.findData("digits"))
    view.optimizer.setCurrentIndex(view.optimizer.findData("sgd"))
    with qtbot.assertNotEmitted(view.start_requested):
        view.start_button.click()
    assert view.status.text().startswith("not started")
    message = view.report.toPlainText()
    assert message.startswith("Not started") and "data.per_class = 200" in message
    assert "digits" in message and "Traceback" not in message
    # neither the refusal nor a long status widens the tab (the docks beside it keep their
    # share at 1366 px): its three rows of settings set its width
    view.status.setText("epoch 30/30 · test loss " + " · ".join(["e=0: 2.3026"] * 6))
    view.layout().activate()
    rows = max(view.layout().itemAt(i).minimumSize().width() for i in (1, 2, 3))
    assert view.minimumSizeHint().width() <= rows + 2 * view.layout().contentsMargins().left()
    # the session keeps its state: the same preset and settings, Train still offered
    assert view.preset == mnist and view.start_button.isEnabled()
    assert view.optimizer.currentData() == "sgd" and view.source.currentData() == "digits"
    view.source.setCurrentIndex(view.source.findData("mnist5k"))
    preset, _ = _train_clicked(qtbot, view)
    assert preset.data == mnist.data and preset.training.optimizer == "sgd"
    assert np.isclose(preset.training.lr, mnist.training.lr)
