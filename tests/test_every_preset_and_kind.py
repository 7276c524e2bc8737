"""Every bundled 2D preset under every kind of dynamics it accepts: it runs with escape
tracking, exports its file pair, checkpoints and resumes to the same arrays as an uninterrupted
run; a kind it cannot run is refused at load time with the engine's one-line error."""
import json

import numpy as np
import pytest

from engine.api import run_preset
from engine.checkpoint import resume
from engine.kinds import kind_names
from engine.presets import PresetError, apply_sets, load
from tests.conftest import PRESETS

STEPS, SPLIT = 30, 13


def _small(path, kind):
    preset = load(path)
    sets = [f"dynamics.kind={kind}", "ensemble.particles=60", "run.record_every=5",
            f"run.steps={STEPS}"]
    if preset.landscape.builtin == "sine_classifier":
        sets += ["dynamics.dataset_size=32", "dynamics.batch_size=8"]
    return apply_sets(preset, sets)


@pytest.mark.parametrize("kind", kind_names())
@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_run_export_checkpoint_resume_and_escapes(tmp_path, path, kind):
    try:
        preset = _small(path, kind)
    except PresetError as exc:
        # a kind that cannot run this landscape says so at load time, in one line
        message = str(exc)
        assert "\n" not in message and "(with --set): dynamics.kind = " in message
        return
    straight = run_preset(preset, out=tmp_path / "straight.npz")
    assert straight.structure is not None and straight.step == STEPS
    checkpoint = tmp_path / "run.ckpt"
    run_preset(preset, steps=SPLIT, checkpoint=checkpoint)
    sim = resume(checkpoint, STEPS - SPLIT)
    run_preset(sim.preset, out=tmp_path / "resumed.npz", steps=STEPS - SPLIT, resume=sim)
    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "resumed.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key != "run_id":
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert {"basin", "events", "positions"} <= set(a.files)
        assert a["basin"].shape == a["loss"].shape  # every frame has its basins
    for name in ("straight", "resumed"):
        summary = json.loads((tmp_path / f"{name}.npz.json").read_text())
        assert summary["steps"] == STEPS and summary["escapes"] is not None


def test_the_clock_does_not_depend_on_how_steps_are_cut():
    from engine.simulation import Simulation
    from tests.conftest import make_preset
    preset = make_preset(dynamics={"kind": "langevin", "lr": 0.0217, "temperature": 0.2})
    whole, pieces = Simulation(preset), Simulation(preset)
    whole.advance(61)
    for n in (3, 1, 13, 20, 24):
        pieces.advance(n)
    assert pieces.time == whole.time == 61 * 0.0217  # bit for bit (a sum of chunks was not)
    for sim in (whole, pieces):
        sim.update_params(lr=0.013)
    whole.advance(40)
    pieces.advance(17)
    pieces.advance(23)
    assert pieces.time == whole.time == 61 * 0.0217 + 40 * 0.013
