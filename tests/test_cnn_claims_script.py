"""scripts/cnn_claims.py: a ghost arm trained alone against a stored baseline arm reports what
the two-arm run reports, and a baseline trained with other settings is refused."""
from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.cnn.api import run_cnn
from engine.cnn.config import cnn_preset_from_dict

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cnn_claims.py"


def claims_script():
    spec = importlib.util.spec_from_file_location("cnn_claims", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_preset(**model):
    spec = {"channels": [3, 4], "ghosts": 2}
    spec.update(model)
    return cnn_preset_from_dict({"name": "tiny", "data": {"per_class": 3, "test_per_class": 2},
                                 "model": spec,
                                 "training": {"lr": 0.2, "epochs": 8, "runs": 3, "seed": 3},
                                 "diagnostics": {"gradient_gap_every": 1}}, "<test>")


def test_ghost_arm_against_a_stored_baseline_matches_the_two_arm_run(tmp_path):
    script = claims_script()
    run_cnn(tiny_preset(), tmp_path / "fixed.npz", "cpu", figures=False)
    removed = tiny_preset(ghost_schedule="remove", ghost_off_epoch=3)
    pair, _ = run_cnn(removed, tmp_path / "pair.npz", "cpu", figures=False)
    baseline = script.stored_baseline(tmp_path / "fixed.npz", removed)
    reused = script.run_ghost_arm(removed, baseline, tmp_path / "reused.npz", "cpu",
                                 figures=False)
    with np.load(tmp_path / "pair.npz") as a, np.load(tmp_path / "reused.npz") as b:
        # the baseline arm is the stored one, copied; it is the same model as the pair's
        np.testing.assert_array_equal(b["test_loss"][:, :3], a["test_loss"][:, :3])
        # the ghost arm alone convolves 3 models instead of 6: the same trajectory up to
        # float32 rounding of another summation order (eps 1.2e-7, a few ulps per epoch)
        for key in ("train_loss", "test_loss", "ghost_mass", "gradient_gap", "live_ghosts"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-7, err_msg=key)
    for key in ("first_peak", "test_min_epoch", "final_test_acc"):
        np.testing.assert_array_equal(reused["per_run"][key], pair["per_run"][key])
    assert reused["claims"]["ghost_removal"]["verdict"] == pair["claims"]["ghost_removal"][
        "verdict"]
    assert reused["runs"] == 3 and reused["arms"] == [0, 2]


def test_a_baseline_trained_otherwise_is_refused(tmp_path):
    script = claims_script()
    run_cnn(tiny_preset(), tmp_path / "fixed.npz", "cpu", figures=False)
    other = tiny_preset()
    other = replace(other, training=replace(other.training, lr=0.1))
    with pytest.raises(SystemExit, match="--baseline .*other settings"):
        script.stored_baseline(tmp_path / "fixed.npz", other)
