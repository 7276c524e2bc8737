import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import tomllib  # noqa: E402

from engine.cnn.config import is_cnn_document  # noqa: E402
from engine.presets import preset_from_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALL_PRESETS = sorted((ROOT / "presets").glob("*.toml"))
CNN_PRESETS = [p for p in ALL_PRESETS if is_cnn_document(tomllib.loads(p.read_text()))]
PRESETS = [p for p in ALL_PRESETS if p not in CNN_PRESETS]      # the 2D landscape presets


def make_preset(landscape=None, dynamics=None, ensemble=None, run=None, name="test"):
    """A validated preset from partial tables (defaults: double well, Langevin)."""
    data = {"name": name,
            "landscape": landscape or {"builtin": "double_well"},
            "dynamics": dynamics or {"kind": "langevin", "lr": 0.01, "temperature": 0.1},
            "ensemble": ensemble or {"particles": 100, "seed": 0},
            "run": run or {"steps": 100, "record_every": 10}}
    return preset_from_dict(data, "<test>")


@pytest.fixture
def preset_factory():
    return make_preset


def pytest_addoption(parser):
    parser.addoption("--compile-report", metavar="DIR", default=None,
                     help="append each numba compilation's CPU seconds, charged to the test "
                          "that ran, to DIR/<pid>.jsonl (summary: python tests/compile_report.py "
                          "DIR)")


def pytest_configure(config):
    folder = config.getoption("--compile-report")
    if folder:
        from compile_report import CompileReportPlugin
        config.pluginmanager.register(CompileReportPlugin(Path(folder).resolve()),
                                      "compile_report")
