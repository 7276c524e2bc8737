"""Screenshot of the Sweeps dock filling in (assets/sweeps_dock_<W>x<H>.png), on a real X server:

    xvfb-run -a -s '-screen 0 1366x768x24' env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python scripts/screenshot_sweeps_dock.py

The Arrhenius preset swept over T × η (6 × 5 cells, one seed, 200 particles × 10 000 steps) on
two local Dask workers; the shot is taken once --fraction of the cells are in, the live view
running the preset meanwhile.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "assets"))
    parser.add_argument("--fraction", type=float, default=0.5,
                        help="share of the points finished when the shot is taken")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from PyQt6.QtWidgets import QApplication, QDockWidget

    from app.main_window import MainWindow
    from engine.presets import load
    from scripts.screenshots import grab_screen
    app = QApplication.instance() or QApplication([])
    window = MainWindow(load(ROOT / "presets" / "arrhenius_sweep.toml"))
    window.show()
    window.set_playing(True)
    window.findChild(QDockWidget, "Sweeps").raise_()
    view = window.sweeps_view
    view.axis_keys[0].setCurrentText("dynamics.temperature")
    view.axis_values[0].setText("log:0.2:0.5:6")
    view.axis_keys[1].setCurrentText("dynamics.lr")
    view.axis_values[1].setText("0.002:0.01:5")
    view.seeds.setValue(1)
    view.particles.setValue(200)
    view.steps.setValue(10000)
    view.workers.setValue(args.workers)
    view.variable.setCurrentText("mfpt_steps (0→1)")
    view.log_colour.setChecked(True)
    assert view.start(), view.status.text()
    target = int(args.fraction * view.sweep.size)
    deadline = time.monotonic() + 540
    while len(view.results) < target and view.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    size = app.primaryScreen().size()
    out = Path(args.out) / f"sweeps_dock_{size.width()}x{size.height()}.png"
    grab_screen(app, out)
    print(f"{len(view.results)}/{view.sweep.size} points in")
    window.dispose()
    app.processEvents()


if __name__ == "__main__":
    main()
