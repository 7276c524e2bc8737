"""The registry of dynamics kinds: each kind declares its parameters, validation, kernel flags
and predictions in its own module, and a new kind is one module."""
import subprocess
import sys

import pytest

from engine.kinds import PARAMETERS, kind_named, kind_names
from engine.presets import DynamicsSpec, PresetError, loads
from engine.simulation import equivalent_langevin
from tests.conftest import ROOT, make_preset


def test_the_bundled_kinds_are_registered_in_order():
    assert kind_names() == ("gd", "sgd", "langevin", "momentum", "ghost", "underdamped", "adam",
                            "rmsprop", "adamw")
    for name in kind_names():
        kind = kind_named(name)
        assert kind.name == name and kind.summary and "lr" in kind.uses
        assert set(kind.uses) <= set(PARAMETERS)


def test_each_kind_validates_what_it_cannot_honour():
    with pytest.raises(PresetError, match="dynamics.kind = 'ghost' needs a classifier"):
        make_preset(dynamics={"kind": "ghost"})
    with pytest.raises(PresetError, match="dynamics.momentum"):
        make_preset(landscape={"builtin": "sine_classifier"},
                    dynamics={"kind": "sgd", "momentum": 0.5})
    make_preset(dynamics={"kind": "sgd", "momentum": 0.5})  # the noise model has momentum


def test_predictions_follow_each_kind():
    spec = DynamicsSpec(kind="langevin", lr=0.02, temperature=0.2, momentum=0.5)
    assert equivalent_langevin(spec) == pytest.approx((0.4, 0.04))  # a heavy ball too
    assert equivalent_langevin(DynamicsSpec(kind="gd", temperature=0.2))[0] == 0.0
    classifier_sgd = make_preset(landscape={"builtin": "sine_classifier"},
                                 dynamics={"kind": "sgd", "temperature": 0.0})
    assert equivalent_langevin(classifier_sgd)[0] == 0.0  # real data: no closed form
    assert kind_named("momentum").stable_step(10.0, spec) == pytest.approx(0.3)
    assert kind_named("gd").stable_step(10.0, spec) == pytest.approx(0.2)


def test_controls_follow_the_kind_and_the_landscape():
    assert kind_named("gd").controls(False) == {"lr"}
    assert "noise_scale" in kind_named("sgd").controls(False)
    assert not {"noise_scale", "momentum"} & kind_named("sgd").controls(True)


_PLUGIN = """
from engine.dynamics import StepConfig
from engine.kinds import Kind, register
from engine.presets import loads
from engine.simulation import Simulation, equivalent_langevin

class HalfTemperature(Kind):
    name = "half_langevin"
    summary = "Langevin at half the preset's temperature"
    uses = frozenset({"lr", "temperature"})
    def step_config(self, d):
        return StepConfig(d.lr, d.temperature / 2, 0.0, False, False, d.batch_size)
    def equivalent_langevin(self, d, data_defined):
        return d.temperature / 2, d.lr

register(HalfTemperature())
preset = loads('name = "p"\\n[landscape]\\nbuiltin = "quadratic"\\n[dynamics]\\n'
               'kind = "half_langevin"\\nlr = 0.01\\ntemperature = 0.5\\n'
               '[ensemble]\\nparticles = 4000\\n', "plugin.toml")
sim = Simulation(preset)
sim.advance(3000)
print(float(sim.positions[:, 0].var()), equivalent_langevin(preset)[0])
"""


def test_a_new_kind_is_one_module_and_runs():
    result = subprocess.run([sys.executable, "-c", _PLUGIN], capture_output=True, text=True,
                            timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True)
    variance, temperature = map(float, result.stdout.split())
    assert temperature == 0.25
    # quadratic f = (x² + y²)/2 (a = b = 1): stationary Var x = T/(1 − η/2) at T = 0.25;
    # 4000 particles after 3000 steps (≫ 1/η relaxation): relative s.e. √(2/4000) ≈ 2.2 %
    expected = 0.25 / (1 - 0.01 / 2)
    assert variance == pytest.approx(expected, rel=4 * (2 / 4000) ** 0.5)
