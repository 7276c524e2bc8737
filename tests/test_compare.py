"""Side by side ([[compare]]): validation of the overrides, one initial cloud and one set of
noise streams for every configuration, bit-for-bit agreement with the plain run, and the
headless files (engine.compare)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from engine.api import run_preset
from engine.compare import Comparison, run_comparison
from engine.presets import PresetError, apply_sets, configurations, dumps, load, loads
from tests.conftest import PRESETS, ROOT

BASE = """name = "c"
[landscape]
builtin = "double_well"
[dynamics]
kind = "langevin"
lr = 0.01
temperature = 0.3
[ensemble]
particles = 50
init = { mean = [-1.0, 0.0], std = 0.3 }
seed = 7
[run]
steps = 120
record_every = 10
"""
SAME = '[[compare]]\nlabel = "as the base"\n'
OTHERS = ('[[compare]]\nlabel = "sgd"\nkind = "sgd"\ntemperature = 0.0\nnoise_scale = 3.0\n'
          '[[compare]]\nlabel = "underdamped"\nkind = "underdamped"\nfriction = 2.0\n'
          '[[compare]]\nlabel = "adam"\nkind = "adam"\nlr = 0.02\n')
COMPARE_PRESETS = [p for p in PRESETS if load(p).compare]


def _table(label: str, body: str = "") -> str:
    return f'[[compare]]\nlabel = "{label}"\n{body}'


def test_every_configuration_starts_from_the_same_cloud_and_noise_streams():
    comparison = Comparison(loads(BASE + SAME + OTHERS), escapes=False)
    first = comparison.simulations[0]
    assert [s.preset.dynamics.kind for s in comparison.simulations] == [
        "langevin", "sgd", "underdamped", "adam"]
    for sim in comparison.simulations[1:]:
        np.testing.assert_array_equal(sim.positions, first.positions)
        np.testing.assert_array_equal(sim.rng, first.rng)
    comparison.advance(25)
    assert [s.step for s in comparison.simulations] == [25] * 4
    # different dynamics from there on: every pair of clouds has moved apart
    final = [s.positions for s in comparison.simulations]
    assert all(not np.array_equal(final[i], final[j]) for i in range(4) for j in range(i))


def test_a_configuration_without_overrides_is_the_plain_run_bit_for_bit(tmp_path):
    preset = loads(BASE + SAME + OTHERS)
    run_comparison(preset, out=tmp_path / "side.npz")
    plain = loads(BASE)
    run_preset(plain, out=tmp_path / "plain.npz")
    with np.load(tmp_path / "side.npz") as side, np.load(tmp_path / "plain.npz") as one:
        assert list(side["compare_labels"]) == ["as the base", "sgd", "underdamped", "adam"]
        assert loads(str(side["preset"])) == preset
        keys = [k for k in one.files if k != "run_id"]
        assert {"positions", "events", "basin", "series_loss_mean"} <= set(keys)
        for key in keys:
            np.testing.assert_array_equal(side[f"cfg0/{key}"], one[key], err_msg=key)
        for i in range(1, 4):  # every group holds the plain run's arrays
            assert {k.split("/", 1)[1] for k in side.files if k.startswith(f"cfg{i}/")} \
                >= set(keys) - {"run_id"}
        assert not np.array_equal(side["cfg1/positions"], one["positions"])
    sidecar = json.loads((tmp_path / "side.npz.json").read_text())
    plain_sidecar = json.loads((tmp_path / "plain.npz.json").read_text())
    assert [c["label"] for c in sidecar["configurations"]] == list(
        ["as the base", "sgd", "underdamped", "adam"])
    first = sidecar["configurations"][0]
    assert first["escapes"] == plain_sidecar["escapes"]
    assert first["loss_mean"] == plain_sidecar["loss_mean"]
    with np.load(tmp_path / "side.npz") as side:
        assert str(side["run_id"]) == sidecar["run_id"]


@pytest.mark.parametrize("extra,key,fragment", [
    (_table("a") + _table("b", "lr = -1.0\n"), "compare[1].lr", "-1.0"),
    (_table("a") + _table("b", "learning_rate = 0.1\n"), "compare[1].learning_rate",
     "unknown key"),
    (_table("a") + _table("b", 'kind = "ghost"\n'), "compare[1].kind", "'ghost'"),
    (_table("a") + _table("b", "batch_size = 100\n"), "compare[1].batch_size", "100"),
    (_table("a") + _table("b", "beta1 = 1.0\n"), "compare[1].beta1", "must be < 1"),
    (_table("a") + '[[compare]]\nkind = "sgd"\n', "compare[1].label", "missing"),
    (_table("a") + _table("a", 'kind = "sgd"\n'), "compare[1].label", "'a'"),
    (_table("a") + _table("b", "particles = 10\n"), "compare[1].particles", "unknown key"),
    (_table("alone"), "compare", "1 configuration"),
    ("".join(_table(f"c{i}") for i in range(5)), "compare", "give 2 to 4"),
    ("compare = 3\n", "compare", "expected [[compare]] tables"),
])
def test_a_bad_configuration_is_refused_naming_its_key_and_value(extra, key, fragment):
    text = extra + BASE if extra.startswith("compare =") else BASE + extra
    with pytest.raises(PresetError) as caught:
        loads(text, "side.toml")
    message = str(caught.value)
    assert caught.value.key == key and fragment in message and "\n" not in message
    assert message.startswith("side.toml: ")


def test_an_override_of_the_base_reaches_every_configuration_that_does_not_set_it():
    preset = apply_sets(loads(BASE + SAME + OTHERS), ["dynamics.lr=0.005",
                                                      "dynamics.temperature=0.1"])
    lrs = [p.dynamics.lr for p in configurations(preset)]
    temperatures = [p.dynamics.temperature for p in configurations(preset)]
    assert lrs == [0.005, 0.005, 0.005, 0.02] and temperatures == [0.1, 0.0, 0.1, 0.1]
    assert loads(dumps(preset)) == preset
    # a base change that makes a configuration invalid is refused, naming it
    with pytest.raises(PresetError, match=r"\(with --set\): compare\[1\]: dynamics.batch_size = "
                       r"16: must be <= dynamics.dataset_size = 8$"):
        apply_sets(loads(BASE + _table("a") + _table("b", "dataset_size = 8\n")),
                   ["dynamics.batch_size=16", "dynamics.dataset_size=64"])


@pytest.mark.parametrize("path", COMPARE_PRESETS, ids=lambda p: p.stem)
def test_every_bundled_comparison_runs_each_configuration(tmp_path, path):
    preset = apply_sets(load(path), ["ensemble.particles=60", "run.steps=30",
                                     "run.record_every=5"])
    comparison = run_comparison(preset, out=tmp_path / "run.csv")
    assert 2 <= len(comparison.simulations) == len(preset.compare) <= 4
    assert all(sim.step == 30 and sim.structure is not None for sim in comparison.simulations)
    lines = (tmp_path / "run.csv").read_text().splitlines()
    assert lines[0].startswith("configuration,step,particle,x,y")
    frames = 30 // 5 + 1
    assert len(lines) == 1 + len(preset.compare) * frames * 60
    assert {line.split(",")[0] for line in lines[1:]} == {
        str(i) for i in range(len(preset.compare))}


def test_the_bundled_comparisons_exist_and_describe_what_to_watch():
    names = {p.stem for p in COMPARE_PRESETS}
    assert {"underdamped_vs_overdamped", "sgd_vs_adam_vs_langevin"} <= names
    for path in COMPARE_PRESETS:
        preset = load(path)
        assert "Drag" in preset.description
        assert len({p.dynamics.kind for p in configurations(preset)}) == len(preset.compare)


def test_engine_run_writes_one_group_per_configuration_and_refuses_checkpoints(tmp_path):
    path = tmp_path / "side.toml"
    path.write_text(BASE + SAME + _table("sgd", 'kind = "sgd"\n'))
    out = tmp_path / "out" / "side.npz"
    done = subprocess.run([sys.executable, "-m", "engine", "run", str(path), "--steps", "40",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with np.load(out) as arrays:
        assert list(arrays["compare_labels"]) == ["as the base", "sgd"]
        assert arrays["cfg0/positions"].shape == arrays["cfg1/positions"].shape == (5, 50, 2)
        assert "positions" not in arrays.files  # only the groups: nothing to mistake for one
    refused = subprocess.run([sys.executable, "-m", "engine", "run", str(path), "--checkpoint",
                              str(tmp_path / "c.ckpt"), "--out", str(out)], cwd=ROOT,
                             capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("compare: a side-by-side run has no checkpoints: "
                                           "run it without --checkpoint")
