"""Render a screenshot of the window for every bundled preset into assets/ (offscreen or Xvfb).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--steps-wait 4]
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
    parser.add_argument("--seconds", type=float, default=4.0, help="run time before the shot")
    parser.add_argument("--out", default=str(ROOT / "assets"))
    args = parser.parse_args()
    from PyQt6.QtWidgets import QApplication

    from app.main_window import MainWindow, bundled_presets
    from engine.presets import load
    app = QApplication.instance() or QApplication([])
    for path in bundled_presets():
        window = MainWindow(load(path))
        window.resize(1600, 1000)
        window.show()
        window.set_playing(True)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline or window.frames_drawn < 3:
            app.processEvents()
            time.sleep(0.01)
        target = Path(args.out) / f"screenshot_{path.stem}.png"
        window.save_screenshot(target)
        print(target, window.frames_drawn, "frames", window.last_error or "")
        window.dispose()
        app.processEvents()


if __name__ == "__main__":
    main()
