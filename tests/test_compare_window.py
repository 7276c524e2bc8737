"""The side-by-side view, offscreen: a [[compare]] preset opens with a coloured cloud per
configuration and a legend on the landscape, every configuration's series and escape rows in
the "Side by side" dock, the engines in lockstep and steered together; a plain preset ends it."""
import numpy as np
import pytest
from PyQt6.QtWidgets import QDockWidget

from engine.presets import apply_sets, configurations, load
from engine.presets import loads as load_preset_text
from tests.conftest import ROOT

pytestmark = pytest.mark.qt

COMPARE = ROOT / "presets" / "sgd_vs_adam_vs_langevin.toml"


def _wait(qtbot, condition, what, timeout=180_000):
    try:
        qtbot.waitUntil(condition, timeout=timeout)
    except qtbot.TimeoutError as exc:
        raise AssertionError(f"timed out waiting for {what}") from exc


def _legend_labels(window) -> list[str]:
    legend = window.landscape_view.plot.plotItem.legend
    return [label.text for _, label in legend.items]


def test_a_compare_preset_draws_every_configuration_side_by_side(qtbot, tmp_path):
    from app.main_window import MainWindow
    preset = apply_sets(load(COMPARE), ["ensemble.particles=300"])
    window = MainWindow(preset)
    qtbot.addWidget(window)
    window.show()
    try:
        side = window.side_by_side
        labels = [spec.label for spec in preset.compare]
        assert side is not None and side.labels == labels and len(side.followers) == 2
        dock = window.findChild(QDockWidget, "Side by side")
        assert dock is not None and dock.isVisible()
        # one cloud per configuration, each in a colour of its own, named in the legend
        colours = {int(window.landscape_view.scatter.colour)} | {int(c.colour)
                                                                  for c in side.clouds}
        assert len(colours) == 3
        assert _legend_labels(window)[-3:] == labels
        window.speed.spin.setValue(200)
        window.set_playing(True)
        view = side.view
        _wait(qtbot, lambda: all(s is not None and len(s["steps"]) > 3 for s in view.series)
              and all(e is not None for e in view.escapes), "every configuration's series")
        # the window's worker runs the first configuration, the others their own
        assert window.worker.state is not None and window.preset.dynamics.kind == "langevin"
        assert [p.dynamics.kind for p in side.presets] == ["langevin", "sgd", "adam"]
        for cloud in side.clouds:
            assert len(cloud) == 300 and np.isfinite(cloud.positions).all()
        for k in range(3):
            x, y = view.curves[(k, "loss_mean")].getData()
            assert len(x) > 3 and np.isfinite(y).all()
            x, y = view.curves[(k, "effective_temperature")].getData()
            assert len(x) > 3
        # T_eff per configuration: Langevin's T, SGD's minibatch noise, none for Adam
        t_eff = [view.curves[(k, "effective_temperature")].getData()[1][-1] for k in range(3)]
        assert t_eff == pytest.approx([0.25, 0.25, 0.0])
        # the escape table has a block of rows per configuration, numbered as the legend lines
        rows = {view.table.item(r, 0).text() for r in range(view.table.rowCount())}
        assert rows == {"■ 1", "■ 2", "■ 3"}
        assert [line.text().split(":")[0] for line in view.status] == [
            f"■ {k + 1}  {label}" for k, label in enumerate(labels)]
        # lockstep: nobody is more than a frame's worth of steps (and one in flight) ahead
        steps = side._steps()
        assert max(steps) - min(steps) <= 2 * 200, steps
        # a pause reaches every engine
        window.set_playing(False)
        qtbot.wait(500)
        paused = side._steps()
        qtbot.wait(500)
        assert side._steps() == paused
        # an export writes a file pair per configuration, each its own run
        window.export_trajectory(tmp_path / "run.npz")
        files = [tmp_path / name for name in ("run.npz", "run_cfg1.npz", "run_cfg2.npz")]
        _wait(qtbot, lambda: all(f.exists() for f in files), "the three exports", 60_000)
        for path, kind in zip(files, ("langevin", "sgd", "adam")):
            with np.load(path) as arrays:
                assert load_preset_text(str(arrays["preset"])).dynamics.kind == kind
            assert path.with_suffix(".npz.json").exists()
        # saving keeps every configuration, with a live edit of a key none overrides but
        # the SGD and Adam ones (T = 0 of their own)
        window._set("temperature", 0.3)
        _wait(qtbot, lambda: window.preset.dynamics.temperature == 0.3, "T = 0.3 applied", 60_000)
        window.save_preset(tmp_path / "saved.toml")
        saved = load(tmp_path / "saved.toml")
        assert [spec.label for spec in saved.compare] == labels
        assert [p.dynamics.temperature for p in configurations(saved)] == [0.3, 0.0, 0.0]
        assert [p.dynamics.kind for p in configurations(saved)] == ["langevin", "sgd", "adam"]
        # a plain preset ends the comparison: its engines, clouds, legend entries and dock go
        followers = side.followers
        assert window.open_preset(ROOT / "presets" / "double_well_kramers.toml")
        assert window.side_by_side is None and side.closed
        assert all(w._process is None for w in followers)
        assert window.findChild(QDockWidget, "Side by side") is None or not dock.isVisible()
        assert not set(labels) & set(_legend_labels(window))
        assert all(cloud.scene() is None for cloud in side.clouds)
        assert window.worker.submit.__func__ is type(window.worker).submit
    finally:
        window.shutdown()


def test_a_binned_cloud_is_drawn_at_its_occupied_cells_and_exports_are_named_per_run():
    from app.comparison import configuration_file, occupied_cells
    density = np.zeros((4, 8))  # rows = y over [−1, 1], columns = x over [0, 4]
    density[0, 0] = 3
    density[3, 5] = 1
    np.testing.assert_allclose(occupied_cells(density, (0.0, 4.0, -1.0, 1.0)),
                               [[0.25, -0.75], [2.75, 0.75]])
    assert configuration_file("/x/run.npz", 2) == "/x/run_cfg2.npz"
    assert configuration_file("run.csv", 1) == "run_cfg1.csv"
