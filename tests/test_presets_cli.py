"""Preset validation, round trips, --set overrides and the headless CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from engine.presets import PresetError, apply_sets, dumps, load, loads, parse_set
from tests.conftest import PRESETS, ROOT

MINIMAL = 'name = "m"\n[landscape]\nbuiltin = "double_well"\n'


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_bundled_presets_load_and_round_trip_exactly(path):
    preset = load(path)
    assert preset.description
    again = loads(dumps(preset))
    assert again == preset
    assert dumps(again) == dumps(preset)


@pytest.mark.parametrize("text,key,fragment", [
    (MINIMAL + "[dynamics]\nlr = -0.1\n", "dynamics.lr", "-0.1"),
    (MINIMAL + "[dynamics]\nlr = \"fast\"\n", "dynamics.lr", "expected a number"),
    (MINIMAL + "[dynamics]\nkind = \"lbfgs\"\n", "dynamics.kind", "'lbfgs'"),
    (MINIMAL + "[dynamics]\nlearning_rate = 0.1\n", "dynamics.learning_rate", "unknown key"),
    (MINIMAL + "[dynamics]\nbatch_size = 100\ndataset_size = 10\n", "dynamics.batch_size",
     "100"),
    (MINIMAL + "[ensemble]\nparticles = 0\n", "ensemble.particles", "0"),
    (MINIMAL + "[ensemble]\nparticles = 1.5\n", "ensemble.particles", "integer"),
    (MINIMAL + "bogus = 1\n", "landscape.bogus", "unknown key"),
    ('name = "m"\n[landscape]\nbuiltin = "nope"\n', "landscape.builtin", "'nope'"),
    ('name = "m"\n[landscape]\nbuiltin = "double_well"\nparams = {kapa = 1}\n',
     "landscape.params.kapa", "unknown parameter"),
    ('name = "m"\n[landscape]\nbuiltin = "double_well"\nbounds = [[1, 0], [0, 1]]\n',
     "landscape.bounds[0]", "lower bound"),
    ('name = "m"\n[landscape]\nexpr = "x**2 +"\n', "landscape.expr", "ends too early"),
    ('[landscape]\nbuiltin = "double_well"\n', "name", "missing"),
])
def test_invalid_presets_name_file_key_and_value(text, key, fragment):
    with pytest.raises(PresetError) as info:
        loads(text, "my.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"my.toml: {key}")
    assert fragment in str(info.value)


def test_toml_syntax_error_names_the_line():
    with pytest.raises(PresetError, match="line 3"):
        loads('name = "x"\n[landscape]\nbuiltin = \n', "broken.toml")


def test_missing_file_is_a_preset_error(tmp_path):
    with pytest.raises(PresetError, match="file not found"):
        load(tmp_path / "nope.toml")


def test_set_values_are_toml_and_bare_words_strings():
    assert parse_set("dynamics.temperature=0.2") == (["dynamics", "temperature"], 0.2)
    assert parse_set("dynamics.kind=sgd") == (["dynamics", "kind"], "sgd")
    assert parse_set("landscape.bounds=[[-1,1],[-2,2]]")[1] == [[-1, 1], [-2, 2]]
    preset = load(ROOT / "presets" / "double_well_kramers.toml")
    changed = apply_sets(preset, ["dynamics.kind=sgd", "dynamics.temperature=0.3"])
    assert changed.dynamics.kind == "sgd" and changed.dynamics.temperature == 0.3
    with pytest.raises(PresetError, match="dynamics.lr"):
        apply_sets(preset, ["dynamics.lr=0"])
    expr = apply_sets(preset, ["landscape.expr=x**2+y**2", "landscape.params={}"])
    assert expr.landscape.expr == "x**2+y**2" and expr.landscape.builtin is None


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_run_writes_npz_csv_and_summary(tmp_path):
    out = tmp_path / "dw.npz"
    result = _cli("run", "presets/double_well_kramers.toml", "--steps", "200", "--seed", "3",
                  "--set", "ensemble.particles=50", "--set", "run.record_every=50",
                  "--out", str(out))
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    assert data["positions"].shape == (5, 50, 2)
    assert data["basin"].shape == (5, 50) and data["events"].shape[1] == 4
    assert data["loss"].shape == (5, 50) and data["lyapunov"].shape == (5, 50)
    np.testing.assert_array_equal(data["steps"], [0, 50, 100, 150, 200])
    preset = loads(str(data["preset"]))
    assert preset.ensemble.seed == 3 and preset.run.steps == 200
    summary = json.loads((tmp_path / "dw.npz.json").read_text())
    assert summary["steps"] == 200
    csv = tmp_path / "dw.csv"
    result = _cli("run", "presets/double_well_kramers.toml", "--steps", "100", "--set",
                  "ensemble.particles=10", "--set", "run.record_every=50", "--out", str(csv))
    assert result.returncode == 0, result.stderr
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape == (30, 7)
    assert csv.read_text().splitlines()[0] == "step,particle,x,y,loss,lyapunov,basin"
    assert set(rows[:, 6]) <= {0, 1}


def test_cli_bad_input_exits_2_with_one_clear_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[landscape]\nexpr = "x**2 + __import__(1)"\n')
    result = _cli("run", str(bad), "--out", str(tmp_path / "o.npz"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "bad.toml: landscape.expr" in result.stderr and "__import__" in result.stderr
    assert not (tmp_path / "o.npz").exists()
    result = _cli("run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o.npz"))
    assert result.returncode == 2 and "file not found" in result.stderr
    result = _cli("run", "presets/double_well_kramers.toml", "--set", "dynamics.lr=-1",
                  "--out", str(tmp_path / "o.npz"))
    assert result.returncode == 2 and "dynamics.lr" in result.stderr


def test_cli_info_reports_minima_saddles_and_kramers():
    result = _cli("info", "presets/double_well_kramers.toml")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    xs = sorted(m["x"] for m in info["minima"])
    assert xs == pytest.approx([-1.0, 1.0], abs=1e-9)
    np.testing.assert_allclose(info["minima"][0]["hessian"], [[8.0, 0.0], [0.0, 2.0]],
                               atol=1e-9)
    assert info["minima"][0]["weight"] == pytest.approx(0.5)
    (saddle,) = info["saddles"]
    assert saddle["f"] == pytest.approx(1.0) and sorted(saddle["connects"]) == [0, 1]
    # (2π/4)·√(8/16)·e^5 = 164.8456 time units, /η = 16484.6 steps
    assert info["kramers"][0]["mfpt_time"] == pytest.approx(
        np.pi / 2 * np.sqrt(0.5) * np.exp(5.0), rel=1e-9)
    assert info["kramers"][0]["mfpt_steps"] == pytest.approx(
        info["kramers"][0]["mfpt_time"] / 0.01)


def test_cli_sweep_tabulates_measured_and_kramers_times(tmp_path):
    out = tmp_path / "arr.csv"
    result = _cli("sweep", "presets/arrhenius_sweep.toml", "--vary",
                  "dynamics.temperature=0.4,0.5", "--steps", "3000", "--set",
                  "ensemble.particles=300", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    header = lines[0].split(",")
    assert {"dynamics.temperature", "mfpt_steps", "kramers_mfpt_steps"} <= set(header)
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    assert {float(r["dynamics.temperature"]) for r in rows} == {0.4, 0.5}
    # Arrhenius: the higher temperature escapes faster, in the measurement and in the theory
    by_t = {float(r["dynamics.temperature"]): r for r in rows if r["from"] == "0"}
    assert float(by_t[0.5]["mfpt_steps"]) < float(by_t[0.4]["mfpt_steps"])
    assert float(by_t[0.5]["kramers_mfpt_steps"]) < float(by_t[0.4]["kramers_mfpt_steps"])


def test_cli_sweep_varies_keys_together_at_the_equivalent_temperature(tmp_path):
    out = tmp_path / "scaling.json"
    result = _cli("sweep", "presets/batch_size_temperature.toml",
                  "--vary", "dynamics.lr=0.01,0.02,0.01", "--vary", "dynamics.batch_size=4,8,8",
                  "--steps", "2000", "--set", "ensemble.particles=200", "--out", str(out),
                  "--quiet")
    assert result.returncode == 0, result.stderr
    table = json.loads(out.read_text())
    assert table["vary"] == ["dynamics.lr", "dynamics.batch_size"]
    temperature = {(r["dynamics.lr"], r["dynamics.batch_size"]): r["temperature"]
                   for r in table["rows"]}
    # T = η σ² (n − B)/(2B(n − 1)), σ² = 200, n = 4096: η/B fixed keeps it, B doubled halves it
    for (lr, batch), t in temperature.items():
        assert t == pytest.approx(lr * 200 * (4096 - batch) / (2 * batch * 4095), rel=1e-12)
    assert set(temperature) == {(0.01, 4), (0.02, 8), (0.01, 8)}

    mismatched = _cli("sweep", "presets/batch_size_temperature.toml", "--vary",
                      "dynamics.lr=0.01,0.02", "--vary", "dynamics.batch_size=4",
                      "--out", str(tmp_path / "x.csv"))
    assert mismatched.returncode == 2
    assert "dynamics.batch_size=4" in mismatched.stderr and "1 values" in mismatched.stderr
    assert not (tmp_path / "x.csv").exists()


def test_cli_sweep_keeps_observed_transitions_that_have_no_prediction(tmp_path):
    # basins 0 and 2 of the Gaussian mixture share no saddle: no Kramers time, yet particles
    # pass between them (≈ 55 times in 2000 steps of 5000 particles, seed 2 of the preset)
    out = tmp_path / "mixture.csv"
    result = _cli("sweep", "presets/gaussian_mixture_gibbs.toml", "--vary",
                  "dynamics.temperature=1.0", "--steps", "2000", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    unpredicted = [r for r in rows if r["kramers_mfpt_steps"] == ""]
    assert unpredicted and all(r["barrier"] == "" and int(r["transitions"]) > 0
                               for r in unpredicted)
    assert any(r["kramers_mfpt_steps"] != "" for r in rows)
