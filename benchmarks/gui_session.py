"""What the GUI benchmarks share: an offscreen Qt application, the running window on a preset,
and an event pump that leaves the engine worker its share of the GIL."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
    """Process events for ``seconds`` or until ``until()``; a bare processEvents spin would
    starve the worker of the GIL, so it sleeps between rounds."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and not (until and until()):
        APP.processEvents()
        time.sleep(0.0005)


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
