"""``python -m app [PRESET]``: open the ErgoScope window."""
from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from PyQt6.QtWidgets import QApplication

    from engine.presets import PresetError, load

    from .main_window import PRESET_DIR, MainWindow
    path = Path(argv[0]) if argv else PRESET_DIR / "double_well_kramers.toml"
    try:
        preset = load(path)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ErgoScope")
    window = MainWindow(preset)
    window.show()
    window.set_playing(True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
