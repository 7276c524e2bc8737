"""The controls of the parameters only some kinds have (issue 26 items 1–2): β1, β2, ε and the
weight decay for adam / rmsprop / adamw, the friction γ for underdamped.  Each kind shows exactly
the ones it uses (engine.kinds' ``controls``), and moving one changes the running engine's
parameter, as the other sliders do."""
import pytest

from app.widgets.kind_controls import KIND_PARAMETERS
from app.widgets.sliders import STEPS
from engine.kinds import kind_named, kind_names
from tests.conftest import ROOT
from tests.test_app import _wait, window  # noqa: F401 - the window fixture

pytestmark = pytest.mark.qt


def _shown(win) -> set[str]:
    return {key for key in KIND_PARAMETERS if not win.sliders[key].isHidden()}


def test_each_kind_shows_exactly_its_own_controls(qtbot, window):
    shown_by_kind = {}
    for kind in kind_names():
        window._enable_for_kind(kind, False)
        shown_by_kind[kind] = _shown(window)
        assert shown_by_kind[kind] == kind_named(kind).controls(False) & set(KIND_PARAMETERS), kind
    assert shown_by_kind["langevin"] == shown_by_kind["gd"] == set()
    assert shown_by_kind["underdamped"] == {"friction"}
    assert shown_by_kind["adam"] == shown_by_kind["adamw"] == {"beta1", "beta2", "eps",
                                                                "weight_decay"}
    assert shown_by_kind["rmsprop"] == {"beta2", "eps", "weight_decay"}  # no first moment
    # and the loaded run's kind again: the double well's Langevin shows none
    window._show_dynamics(window.preset)
    assert _shown(window) == set()


@pytest.mark.parametrize("kind, key, position", [("adam", "beta1", STEPS // 2),
                                                  ("underdamped", "friction", STEPS // 4)])
def test_moving_a_kind_s_control_changes_the_running_simulation(qtbot, window, tmp_path, kind,
                                                                key, position):
    text = (ROOT / "presets" / "double_well_kramers.toml").read_text()
    path = tmp_path / f"{kind}.toml"
    path.write_text(text.replace('kind = "langevin"', f'kind = "{kind}"'))
    before = window.worker.generation
    assert window.open_preset(path)
    _wait(qtbot, lambda: window.worker.generation > before and window.frames_drawn > 0
          and window.preset.dynamics.kind == kind, 180_000, f"the {kind} run")
    assert _shown(window) == kind_named(kind).controls(False) & set(KIND_PARAMETERS)
    slider = window.sliders[key]
    old = getattr(window.preset.dynamics, key)
    slider.slider.setValue(position)  # as a drag would
    new = slider.value()
    assert new != pytest.approx(old)
    _wait(qtbot, lambda: getattr(window.preset.dynamics, key) == new, 60_000,
          f"{key} = {new} in the running {kind} engine")
    assert window.last_error == ""
