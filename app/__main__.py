"""``python -m app [PRESET] [--run]``: open the ErgoScope window on any preset it can show."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_STARTED = time.monotonic()
DEFAULT_PRESET = Path(__file__).resolve().parents[1] / "presets" / "double_well_kramers.toml"

EPILOG = """\
A 2D landscape preset (tables landscape/dynamics/ensemble/run) plays at once on the Landscape
tab.  A CNN-lab preset (tables data/model/training) opens the CNN lab tab with the experiment
loaded; the 2D side then holds the default preset, paused, and training starts when you press
Train (or at once with --run).  A preset that cannot be shown (missing file, broken TOML,
invalid values) prints one line "error: FILE: why" and exits with status 2.  While the window
is open, File > Open, the preset gallery and dropping a .toml file on the window open others.

examples:
  python -m app                                   # the default preset
  python -m app presets/zhang_sin_lr004.toml      # a 2D preset, playing
  python -m app presets/cnn_smoke.toml --run      # a CNN-lab preset, training at once
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app", description="Open the ErgoScope window on a preset.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", nargs="?", type=Path, default=DEFAULT_PRESET,
                   help="a preset file, 2D landscape or CNN lab (default: "
                        "presets/double_well_kramers.toml)")
    p.add_argument("--run", action="store_true",
                   help="with a CNN-lab preset, start training at once instead of waiting for "
                        "Train (a 2D preset always starts playing)")
    return p


def build_window(argv: list[str] | None = None):
    """The shown window for these command-line arguments (``argv`` without the program name),
    or the exit status when there is none to show: 2 after a one-line error for a preset the
    window cannot open (or argparse's usage error), 0 after ``--help``.  It does not enter the
    Qt event loop."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return int(exc.code or 0)
    from PyQt6.QtWidgets import QApplication

    from engine.cnn.config import CnnPreset
    from engine.presets import PresetError, load

    from .main_window import MainWindow, load_any
    try:
        preset = load_any(args.preset)
        landscape = load(DEFAULT_PRESET) if isinstance(preset, CnnPreset) else preset
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ErgoScope")
    window = MainWindow(landscape)
    window.show()
    if isinstance(preset, CnnPreset):
        window.show_cnn_preset(preset)        # the 2D side stays paused: the CPU is the CNN's
        if args.run:
            window.start_cnn(window.cnn_view.configured_preset(),
                             window.cnn_view.device.currentText())
    else:
        window.set_playing(True)
    return window


def _smoke_report(window, linger_ms: int = 1500) -> None:
    """``ERGOSCOPE_SMOKE=1``: print one line when the window is on screen ("window shown"), when
    the engine announces a pause ("busy: …", e.g. compiling) and when the first frame arrives
    ("first frame"), each with the seconds since ``python -m app`` started; quit ``linger_ms`` after
    the first frame (time to paint it and for a screenshot).  Used by tests/test_x11_smoke.py."""
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication
    start = _STARTED

    def say(text: str) -> None:
        print(f"{text} {time.monotonic() - start:.2f} s", flush=True)

    QTimer.singleShot(0, lambda: say("window shown"))
    window.worker.busy.connect(lambda message: say(f"busy: {message}"))
    seen = []

    def first(_bundle) -> None:
        if not seen:
            seen.append(True)
            say("first frame")
            QTimer.singleShot(linger_ms, QApplication.instance().quit)
    window.worker.frame_ready.connect(first)
    window.cnn_worker.frame_ready.connect(first)


def main(argv: list[str] | None = None) -> int:
    window = build_window(argv)
    if isinstance(window, int):
        return window
    from PyQt6.QtWidgets import QApplication
    if os.environ.get("ERGOSCOPE_SMOKE"):
        _smoke_report(window, int(float(os.environ.get("ERGOSCOPE_SMOKE_LINGER", "1.5")) * 1000))
    return QApplication.instance().exec()


if __name__ == "__main__":
    sys.exit(main())
