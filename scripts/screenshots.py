"""Render a screenshot of the window for every bundled preset into assets/ (offscreen or Xvfb).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--only NAME]

Also ``assets/screenshot_measure_view.png``: the empirical-measure dock on the Gaussian mixture
at T = 1 after 4000 steps (``--only measure_view`` renders just that one).

``--screen`` instead shoots the whole screen of a real X server, the window at the size it
opens with there (fitted to the screen), as a newcomer sees it::

    xvfb-run -s '-screen 0 1366x768x24' env QT_QPA_PLATFORM=xcb \
        .venv/bin/python scripts/screenshots.py --screen

writes ``assets/screen_<W>x<H>_<name>.png`` for six presets (two of them side by side:
``[[compare]]``), the CNN lab after training the smoke preset, and the click-to-place gesture
(one particle followed from a clicked point).
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
    parser.add_argument("--cnn-epochs", type=int, default=150,
                        help="epochs trained before the shot of a CNN-lab preset")
    parser.add_argument("--only", default="", help="substring of the preset file names to shoot")
    parser.add_argument("--min-steps", type=int, default=1000,
                        help="steps run before the shot (a first run compiles its kernel first)")
    parser.add_argument("--screen", action="store_true",
                        help="shoot the whole screen of a real X server (see the docstring)")
    args = parser.parse_args()
    if args.screen:
        shoot_screens(args)
        return
    from PyQt6.QtWidgets import QApplication

    from app.main_window import MainWindow, bundled_presets, load_any
    from engine.presets import load
    app = QApplication.instance() or QApplication([])
    default = load(ROOT / "presets" / "double_well_kramers.toml")
    if args.only in "measure_view":
        shoot_measure_view(app, args)
    for path in bundled_presets():
        if args.only not in path.stem:
            continue
        preset = load_any(path)
        if not hasattr(preset, "landscape"):
            shoot_cnn(app, MainWindow(default), path, args)
            continue
        window = MainWindow(preset)
        window.resize(1600, 1000)
        window.show()
        window.set_playing(True)
        run_until(app, window, args.min_steps, args.seconds)
        target = Path(args.out) / f"screenshot_{path.stem}.png"
        window.save_screenshot(target)
        print(target, window.frames_drawn, "frames,", window.worker.state.step, "steps",
              window.last_error or "")
        window.dispose()
        app.processEvents()


def run_until(app, window, steps: int, seconds: float = 0.0) -> None:
    """Pump the window until it has run ``steps`` steps and ``seconds`` seconds (a first run
    compiles its kernel first; gives up 120 s after ``seconds``), then let it settle."""
    start = time.monotonic()
    while time.monotonic() < start + seconds + 120.0:
        state = window.worker.state
        if (time.monotonic() >= start + seconds and window.frames_drawn >= 3
                and state is not None and state.step >= steps):
            break
        app.processEvents()
        time.sleep(0.01)
    settle = time.monotonic() + 0.5   # let the window show the latest frames
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.01)


def shoot_measure_view(app, args) -> None:
    """The empirical measure converging to the Gibbs density (README, "Empirical measure")."""
    from PyQt6.QtWidgets import QDockWidget

    from app.main_window import MainWindow
    from engine.presets import load
    window = MainWindow(load(ROOT / "presets" / "gaussian_mixture_gibbs.toml"))  # T = 1
    window.resize(1600, 1000)
    window.show()
    window.findChild(QDockWidget, "Empirical measure vs Gibbs").raise_()
    window.set_playing(True)
    run_until(app, window, 4000)
    target = Path(args.out) / "screenshot_measure_view.png"
    window.save_screenshot(target)
    print(target, window.frames_drawn, "frames,", window.worker.state.step, "steps",
          window.last_error or "")
    window.dispose()
    app.processEvents()


def shoot_cnn(app, window, path: Path, args) -> None:
    """Train the CNN-lab preset for a while (all runs, ``--cnn-epochs``) and shoot the tab."""
    window.resize(1600, 1000)
    window.show()
    window.open_preset(path)
    view = window.cnn_view
    view.epochs.setValue(min(view.epochs.value(), args.cnn_epochs))
    view.device.setCurrentText("cpu")
    view.start_button.click()
    while window.cnn_summary is None and not window.last_error:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
    target = Path(args.out) / f"screenshot_{path.stem}.png"
    window.save_screenshot(target)
    print(target, view.frames_shown, "frames", window.last_error or "")
    window.dispose()
    app.processEvents()


SCREEN_PRESETS = ("double_well_kramers", "gaussian_mixture_gibbs", "zhang_sin_lr004",
                  "adam_edge_of_stability", "underdamped_vs_overdamped",
                  "sgd_vs_adam_vs_langevin")
# (steps before the shot, steps per frame) of the stories that need a long run
SCREEN_STEPS = {"double_well_kramers": (20_000, 500), "adam_edge_of_stability": (3_000, 50),
                "underdamped_vs_overdamped": (20_000, 200),
                "sgd_vs_adam_vs_langevin": (12_000, 200)}


def grab_screen(app, target: Path) -> None:
    """The whole screen (the root window of the X server), as a newcomer sees it."""
    for _ in range(30):
        app.processEvents()
        time.sleep(0.02)
    screen = app.primaryScreen()
    size = screen.size()
    assert screen.grabWindow(0).save(str(target), "PNG"), target
    print(target, f"{size.width()}×{size.height()}")


def shoot_screens(args) -> None:
    from PyQt6.QtWidgets import QApplication, QDockWidget

    from app.main_window import MainWindow
    from engine.presets import load
    app = QApplication.instance() or QApplication([])
    size = app.primaryScreen().size()
    tag = f"{size.width()}x{size.height()}"
    out = Path(args.out)
    for name in SCREEN_PRESETS:
        if args.only not in name:
            continue
        window = MainWindow(load(ROOT / "presets" / f"{name}.toml"))
        window.show()
        window.set_playing(True)
        if name == "gaussian_mixture_gibbs":  # the dock its story is about
            window.findChild(QDockWidget, "Empirical measure vs Gibbs").raise_()
        if name == "double_well_kramers":
            window.findChild(QDockWidget, "Escapes").raise_()
        steps, speed = SCREEN_STEPS.get(name, (args.min_steps, None))
        if speed is not None:
            window.speed.spin.setValue(speed)
        run_until(app, window, steps, args.seconds)
        grab_screen(app, out / f"screen_{tag}_{name}.png")
        window.dispose()
        app.processEvents()
    # the click-to-place gesture: a click on the landscape starts one followed particle
    if args.only in "follow_a_particle":
        shoot_follow(app, args, out, tag)
    if args.only in "cnn_lab":
        shoot_cnn_screen(app, out, tag)


def shoot_follow(app, args, out: Path, tag: str) -> None:
    from PyQt6.QtCore import QPointF, Qt
    from PyQt6.QtTest import QTest

    from app.main_window import MainWindow
    from engine.presets import load
    window = MainWindow(load(ROOT / "presets" / "double_well_kramers.toml"))
    window.show()
    run_until(app, window, 0, 1.0)
    view = window.landscape_view
    scene = view.plot.plotItem.vb.mapViewToScene(QPointF(-0.2, 1.1))
    QTest.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, view.plot.mapFromScene(scene))
    window.set_playing(True)
    run_until(app, window, 3000, args.seconds)
    grab_screen(app, out / f"screen_{tag}_follow_a_particle.png")
    window.dispose()
    app.processEvents()


def shoot_cnn_screen(app, out: Path, tag: str) -> None:
    """The CNN lab after training the smoke preset, its ghosts removed at epoch 20."""
    from app.main_window import MainWindow
    from engine.presets import load
    window = MainWindow(load(ROOT / "presets" / "double_well_kramers.toml"))
    window.show()
    window.open_preset(ROOT / "presets" / "cnn_smoke.toml")
    view = window.cnn_view
    view.device.setCurrentText("cpu")
    # the ghost-removal control in use: the ghost arm loses its ghost logits at epoch 20
    view.schedule.setCurrentIndex(view.schedule.findData("remove"))
    view.off_epoch.setValue(20)
    view.start_button.click()
    while window.cnn_summary is None and not window.last_error:
        app.processEvents()
        time.sleep(0.01)
    grab_screen(app, out / f"screen_{tag}_cnn_lab.png")
    window.dispose()
    app.processEvents()


if __name__ == "__main__":
    main()
