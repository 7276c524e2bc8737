"""The Transitions view (app/views/transitions.py): it computes off the GUI thread and shows the
committor, its isolines, the path, the current and the rates of engine.paths."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app.views.transitions import TransitionsView, arrow_segments  # noqa: E402
from tests.conftest import make_preset  # noqa: E402


def _double_well(temperature=0.25):
    return make_preset(landscape={"builtin": "double_well", "params": {"kappa": 1.0},
                                  "bounds": [[-2.0, 2.0], [-1.5, 1.5]]},
                       dynamics={"kind": "langevin", "lr": 0.01, "temperature": temperature},
                       ensemble={"particles": 10, "seed": 0})


def test_arrow_segments_follow_the_current():
    x = np.linspace(0, 1, 40)
    y = np.linspace(0, 2, 40)
    current = np.zeros((40, 40, 2))
    current[..., 0] = 1.0                       # uniform current along +x
    segments = arrow_segments(x, y, current, count=10)
    tails, heads = segments[0::2], segments[1::2]
    assert len(tails) == 100
    np.testing.assert_allclose(heads[:, 1], tails[:, 1])
    assert np.all(heads[:, 0] > tails[:, 0])
    assert np.all(heads[:, 0] - tails[:, 0] <= 0.8 * (x[4] - x[0]) + 1e-12)


def test_view_computes_off_the_gui_thread_and_shows_the_report(qtbot):
    view = TransitionsView(grid=64)
    qtbot.addWidget(view)
    view.set_minima(2)
    view.set_preset(_double_well())
    assert view.busy() or view.report is not None
    qtbot.waitUntil(lambda: view.report is not None, timeout=60000)
    report, arrays = view.report, view.arrays
    assert report["highest"]["f"] == pytest.approx(1.0, abs=1e-9)   # the saddle (0, 0)
    assert arrays["committor"].shape == (64, 64)
    assert view.image.image.shape == (64, 64)
    assert view.path.getData()[0].size == len(report["path"])
    tpt = report["rates"]["tpt"]["mfpt_time"]
    assert view.table.item(0, 1).text() == f"{tpt:.4g}"
    assert view.table.item(3, 0).text() == "–"     # no run seen yet
    # a frame of a run with escapes fills the measured row
    summary = {"transitions": [{"from": 0, "to": 1, "transitions": 12, "mfpt_steps": 6500.0}]}
    frame = type("F", (), {})()
    bundle = type("B", (), {"frame": frame, "escapes": {"summary": summary},
                            "structure": None})()
    view.show_frame(bundle)
    assert view.table.item(3, 0).text() == "6,500 (12)"
    # the same landscape and temperature: nothing recomputed; another temperature: recomputed
    view.set_preset(_double_well())
    assert not view.busy()
    view.set_preset(_double_well(0.3))
    assert view.busy()
    qtbot.waitUntil(lambda: not view.busy() and view.report["temperature"] == 0.3,
                    timeout=60000)
    # the empirical committor of a short cloud against the exact one, on demand
    view.check()
    qtbot.waitUntil(lambda: view.check_result is not None, timeout=120000)
    assert "empirical vs exact committor" in view.check_label.text()
    assert view.check_result["cells_compared"] > 0


def test_view_says_why_when_there_is_nothing_to_show(qtbot):
    view = TransitionsView(grid=32)
    qtbot.addWidget(view)
    view.set_preset(make_preset(landscape={"builtin": "double_well"},
                                dynamics={"kind": "gd", "lr": 0.01}))
    qtbot.waitUntil(lambda: not view.busy(), timeout=60000)
    qtbot.wait(100)
    assert view.report is None and "no transitions" in view.status.text()
