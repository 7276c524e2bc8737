"""What the GUI benchmarks share: an offscreen Qt application, the running window on a preset,
and an event pump that runs Qt's own event loop, as the app does."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PyQt6.QtCore import QEventLoop, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from engine.presets import Preset, load  # noqa: E402

APP = QApplication.instance() or QApplication([])


def default_preset() -> Preset:
    return load(ROOT / "presets" / "double_well_kramers.toml")


def particle_counts(text: str) -> list[int]:
    """``"1e4,1e6"`` → ``[10000, 1000000]`` (the benchmarks' ``--sizes``)."""
    return [int(float(s)) for s in text.split(",")]


def pump(seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Run the event loop for ``seconds`` or until ``until()`` (checked every millisecond).

    A blocking event loop, as ``app.exec()`` runs the window: the earlier pump called
    ``processEvents`` every 0.5 ms, 2000 wake-ups a second that cost the GUI process CPU the
    app does not spend, and the benchmarks counted it as the window's cost to the engine.
    """
    if until is not None and until():
        return
    loop = QEventLoop()
    QTimer.singleShot(max(int(seconds * 1000), 0), loop.quit)
    poll = QTimer()
    if until is not None:
        poll.timeout.connect(lambda: until() and loop.quit())
        poll.start(1)
    loop.exec()
    poll.stop()


def open_window(preset: Preset) -> MainWindow:
    """The full window (1600×1000) on ``preset``, after its first frame, playing."""
    window = MainWindow(preset)
    window.resize(1600, 1000)
    window.show()
    pump(180, lambda: window.frames_drawn >= 1)
    window.set_playing(True)
    return window


def close_window(window: MainWindow) -> None:
    window.dispose()
    APP.processEvents()
