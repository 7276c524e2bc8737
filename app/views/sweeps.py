"""Sweeps dock: a grid sweep of the current preset over one or two of its keys, run in the
background on the sweep executor (``engine.sweep``: a Dask LocalCluster of worker processes, or
``workers = 0`` in a thread of this process), its heatmap filling in point by point; a click on
a cell loads that configuration (its first seed) into the live view.

The sweep runs in a plain thread that only calls :func:`engine.sweep.run_sweep`; finished points
come back through a queue that a GUI-thread timer drains, so the GUI thread never runs a point.
Each sweep persists its points in a folder of its own (``engine.sweep.store``), deleted when the
dock starts the next one or closes.
"""
from __future__ import annotations

import math
import queue
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                             QPushButton, QSpinBox, QVBoxLayout, QWidget)

NONE_KEY = "—"
TRANSITION_VAR = "mfpt_steps"  # the first transition's measured MFPT (steps)
VARIABLES = ("converged_fraction", "time_avg_loss", "loss_final", "lyapunov",
             "effective_temperature", "tv_gibbs", "first_passage_mfpt_steps", TRANSITION_VAR)
# keys that set the run's size or identity rather than its physics
_NOT_SWEPT = {"ensemble.seed", "ensemble.particles", "run.steps", "run.record_every"}
DEFAULT_PARTICLES = 300


class SweepCancelled(Exception):
    """Raised in the sweep thread to stop a sweep the user cancelled."""


def numeric_keys(preset) -> dict[str, float]:
    """Every number of the preset a sweep could vary, as ``dotted.key → value``."""
    from engine.presets import to_dict

    found: dict[str, float] = {}

    def walk(table: dict, prefix: str) -> None:
        for name, value in table.items():
            key = f"{prefix}{name}"
            if isinstance(value, dict):
                walk(value, key + ".")
            elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and key not in _NOT_SWEPT and not key.startswith("ensemble.init"):
                found[key] = value
    walk(to_dict(preset), "")
    return found


def default_range(value: float) -> str:
    """A grid spec around the current value: five values from half to twice it."""
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = max(1, value // 2), max(value * 2, value + 4)
        return f"{low}:{high}:5" if (high - low) % 4 == 0 else \
            ",".join(str(v) for v in sorted({low, value, high}))
    if value > 0:
        return f"log:{value / 2:.4g}:{value * 2:.4g}:5"
    return "0:1:5"


def point_value(result: dict, var: str) -> float:
    """``var`` of a point's result (:func:`engine.sweep.point.run_point`)."""
    if var == TRANSITION_VAR:
        for transition in result["transitions"]:
            if (transition["from"], transition["to"]) == (0, 1):
                return float(transition["mfpt_steps"])
        return math.nan
    return float(result["scalars"].get(var, math.nan))


class SweepsView(QWidget):
    """The dock's widget.  ``presets`` (the window's PresetController) gives the preset a sweep
    starts from; ``load_requested(preset)`` asks the window to run a clicked cell's preset."""

    load_requested = pyqtSignal(object)
    finished = pyqtSignal(bool)  # the sweep ended; True when every point succeeded

    def __init__(self, parent=None):
        super().__init__(parent)
        self.presets = None
        self.sweep = None
        self.results: dict[int, dict] = {}
        self.failures: dict[int, str] = {}
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._folder: Path | None = None
        self._range: tuple[float, float] | None = None
        self._requested = None  # the last cell preset this dock asked the window to load
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.axis_keys: list[QComboBox] = []
        self.axis_values: list[QLineEdit] = []
        for label in ("x", "y"):
            row = QHBoxLayout()
            key = QComboBox()
            key.setToolTip("a key of the current preset")
            values = QLineEdit()
            values.setToolTip("v1,v2,… or start:stop:count or log:start:stop:count")
            key.currentTextChanged.connect(lambda text, edit=values: self._key_picked(text, edit))
            row.addWidget(key, 2)
            row.addWidget(values, 3)
            form.addRow(label, row)
            self.axis_keys.append(key)
            self.axis_values.append(values)
        sizes = QHBoxLayout()
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 64)
        self.seeds.setValue(2)
        self.particles = QSpinBox()
        self.particles.setRange(1, 1_000_000)
        self.steps = QSpinBox()
        self.steps.setRange(1, 10_000_000)
        self.workers = QSpinBox()
        self.workers.setRange(0, 256)
        self.workers.setValue(2)
        self.workers.setToolTip("Dask worker processes (0: one after another in a thread of "
                                "this process)")
        for text, box in (("seeds", self.seeds), ("particles", self.particles),
                          ("steps", self.steps), ("workers", self.workers)):
            sizes.addWidget(QLabel(text))
            sizes.addWidget(box)
        form.addRow(sizes)
        self.variable = QComboBox()
        self.variable.addItems(VARIABLES)
        self.variable.setItemText(VARIABLES.index(TRANSITION_VAR), "mfpt_steps (0→1)")
        self.variable.currentIndexChanged.connect(self._recolour)
        self.log_colour = QCheckBox("log scale")
        self.log_colour.toggled.connect(self._recolour)
        colour = QHBoxLayout()
        colour.addWidget(self.variable, 1)
        colour.addWidget(self.log_colour)
        form.addRow("colour", colour)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run sweep")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        layout.addWidget(self.plot, 1)
        self.status = QLabel("Pick one or two keys and their values, then Run sweep. Click a "
                             "cell to load it into the live view.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self._colormap = pg.colormap.get("viridis")
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._drain)

    # -- keys from the preset ------------------------------------------------------------------
    def preset_loaded(self, preset) -> None:
        """The window runs ``preset`` now: offer its keys, unless it is the cell this dock
        asked for (the sweep's controls stay as they were)."""
        if preset != self._requested and not self.running:
            self.refresh_keys()

    def refresh_keys(self) -> None:
        """Offer the current preset's numeric keys (keeping the chosen ones where they exist)."""
        if self.presets is None:
            return
        preset = self.presets.preset
        before, before_preset = getattr(self, "_values", {}), getattr(self, "_preset", None)
        self._values, self._preset = numeric_keys(preset), preset
        keys = sorted(self._values)
        for i, box in enumerate(self.axis_keys):
            chosen, typed = box.currentText(), self.axis_values[i].text()
            box.blockSignals(True)
            box.clear()
            box.addItems(([NONE_KEY] if i else []) + keys)
            box.blockSignals(False)
            preferred = chosen if chosen in keys or chosen == NONE_KEY else \
                ("dynamics.lr" if i == 0 else
                 "dynamics.temperature" if "dynamics.temperature" in keys else NONE_KEY)
            if preferred in keys or preferred == NONE_KEY:
                box.setCurrentText(preferred)
            key = box.currentText()
            self._key_picked(key, self.axis_values[i])
            if key == chosen and key in before and before[key] == self._values.get(key):
                self.axis_values[i].setText(typed)  # the user's values around the same value
        if before_preset is None or (before_preset.ensemble.particles,
                                     before_preset.run.steps) != (preset.ensemble.particles,
                                                                  preset.run.steps):
            self.particles.setValue(min(preset.ensemble.particles, DEFAULT_PARTICLES))
            self.steps.setValue(preset.run.steps)

    def _key_picked(self, key: str, edit: QLineEdit) -> None:
        values = getattr(self, "_values", {})
        edit.setEnabled(key != NONE_KEY)
        edit.setText(default_range(values[key]) if key in values else "")

    # -- running ---------------------------------------------------------------------------
    def build(self):
        """The sweep the controls describe (every point validated: PresetError on a bad
        value)."""
        from engine.presets import apply_sets
        from engine.sweep import build_sweep

        grids = []
        for box, edit in zip(self.axis_keys, self.axis_values):
            if box.currentText() and box.currentText() != NONE_KEY:
                grids.append(f"{box.currentText()}={edit.text().strip()}")
        preset = apply_sets(self.presets.preset, [f"ensemble.particles={self.particles.value()}",
                                                  f"run.steps={self.steps.value()}"])
        return build_sweep(preset, grids=grids, seeds=self.seeds.value())

    def start(self) -> bool:
        """Start the sweep in the background; False (reason in the status line) when the
        controls do not describe one or a sweep is running."""
        from engine.presets import PresetError

        if self.running:
            return False
        try:
            sweep = self.build()
        except PresetError as exc:
            self.status.setText(f"<span style='color:#c0392b'>{exc}</span>")
            return False
        self._discard_folder()
        self._folder = Path(tempfile.mkdtemp(prefix="ergoscope-sweep-"))
        self.sweep, self.results, self.failures = sweep, {}, {}
        self._cancel.clear()
        self._queue = queue.Queue()
        self._set_ticks()
        self._redraw()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self._thread = threading.Thread(target=self._run, args=(sweep, self._folder,
                                                                self.workers.value(),
                                                                self._queue),
                                        name="ergoscope-sweep", daemon=True)
        self._thread.start()
        self._timer.start()
        self._show_status()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, sweep, folder: Path, workers: int, out: queue.Queue) -> None:
        """The sweep thread: runs the points, hands each result to the GUI through ``out``."""
        from engine.sweep import run_sweep

        def on_point(index: int, result: dict) -> None:
            out.put(("point", index, result))
            if self._cancel.is_set():
                raise SweepCancelled

        try:
            outcome = run_sweep(sweep, folder / "sweep.nc", workers=workers, on_point=on_point,
                                on_error=lambda i, message: out.put(("error", i, message)))
            out.put(("done", outcome.ok, None))
        except SweepCancelled:
            out.put(("done", False, "cancelled"))
        except Exception as exc:  # shown in the status line; the dock stays usable
            out.put(("done", False, f"{type(exc).__name__}: {exc}"))

    def cancel(self) -> None:
        """Stop after the point that finishes next (a running Dask cluster is closed)."""
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.status.setText(self.status.text() + " — cancelling after the next point…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sweep thread ends (tests, closing); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel a running sweep and wait up to ``timeout`` s for its thread (a daemon: a
        point still running after that ends with the process)."""
        self._cancel.set()
        self.wait(timeout)
        self._timer.stop()
        self._discard_folder()

    def stop_with(self, window: QWidget) -> None:
        """Stop the sweep and delete its folder when ``window`` closes."""
        window.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Close:
            self.shutdown()
        return False

    def follow_tab(self, dock: QWidget, shown: bool) -> None:
        """Hide ``dock`` on a tab this dock does not apply to, restore it on coming back."""
        if not shown and dock.isVisible():
            self._hidden_dock = dock
            dock.hide()
        elif shown and getattr(self, "_hidden_dock", None) is dock:
            self._hidden_dock = None
            dock.show()

    def _discard_folder(self) -> None:
        if self._folder is not None and not self.running:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    # -- results -------------------------------------------------------------------------
    def _drain(self) -> None:
        changed = False
        while True:
            try:
                kind, index, payload = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "point":
                self.results[index] = payload
                changed = True
            elif kind == "error":
                self.failures[index] = payload
                changed = True
            else:
                self._timer.stop()
                self.run_button.setEnabled(True)
                self.cancel_button.setEnabled(False)
                self._redraw()
                self._show_status(payload)
                self.finished.emit(bool(index))
                return
        if changed:
            self._redraw()
            self._show_status()

    def _shape(self) -> tuple[int, int]:
        shape = self.sweep.shape[:-1]
        return (shape[0], shape[1] if len(shape) > 1 else 1)

    def cell_values(self) -> np.ndarray:
        """The chosen variable per cell, shape (nx, ny): the mean over the seeds finished so
        far (NaN where none has)."""
        if self.sweep is None:
            return np.full((1, 1), np.nan)
        var = VARIABLES[self.variable.currentIndex()]
        total = np.zeros(self._shape())
        count = np.zeros(self._shape())
        for index, result in self.results.items():
            position = self.sweep.position(index)[:-1]
            cell = (position[0], position[1] if len(position) > 1 else 0)
            value = point_value(result, var)
            if math.isfinite(value):
                total[cell] += value
                count[cell] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def _recolour(self) -> None:
        self._redraw()
        self._show_status()

    def _redraw(self) -> None:
        values = self.cell_values()
        if self.log_colour.isChecked():
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(values > 0, np.log10(np.where(values > 0, values, 1)), np.nan)
        finite = values[np.isfinite(values)]
        rgba = np.zeros(values.shape + (4,), dtype=np.ubyte)
        rgba[..., :3] = 60  # cells still running: dark grey
        rgba[..., 3] = 255
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            scaled = (values - low) / (high - low) if high > low else np.full(values.shape, .5)
            colours = self._colormap.map(np.nan_to_num(scaled).ravel(), mode="byte")
            colours = colours.reshape(values.shape + (colours.shape[-1],))
            done = np.isfinite(values)
            rgba[done, :3] = colours[done, :3]
            self._range = (low, high)
        else:
            self._range = None
        self.image.setImage(rgba, autoLevels=False)
        self.image.setRect(-0.5, -0.5, values.shape[0], values.shape[1])
        self.plot.setRange(xRange=(-0.5, values.shape[0] - 0.5),
                           yRange=(-0.5, values.shape[1] - 0.5), padding=0)

    def _set_ticks(self) -> None:
        axes = self.sweep.axes

        def ticks(axis) -> list:
            return [[(k, f"{value[0]:.4g}" if isinstance(value[0], float) else str(value[0]))
                     for k, value in enumerate(axis.values)]]
        self.plot.getAxis("bottom").setTicks(ticks(axes[0]))
        self.plot.setLabel("bottom", axes[0].name)
        if len(axes) > 1:
            self.plot.getAxis("left").setTicks(ticks(axes[1]))
            self.plot.setLabel("left", axes[1].name)
        else:
            self.plot.getAxis("left").setTicks([[(0, "")]])
            self.plot.setLabel("left", "")

    def _show_status(self, end: str | None = None) -> None:
        if self.sweep is None:
            return
        done, total = len(self.results), self.sweep.size
        text = f"{done}/{total} points"
        if self.failures:
            first = min(self.failures)
            text += (f", {len(self.failures)} failed ({self.sweep.label(first)}: "
                     f"{self.failures[first]})")
        if self._range is not None:
            var = self.variable.currentText()
            low, high = self._range
            if self.log_colour.isChecked():
                low, high = 10 ** low, 10 ** high
            text += f" · {var}: {low:.4g} (dark) … {high:.4g} (yellow)"
        if end is not None:
            text += f" · {end}"
        elif self.running:
            text += " · running"
        self.status.setText(text + ". Click a cell to load it.")

    # -- clicking a cell -------------------------------------------------------------------
    def cell_index(self, ix: int, iy: int = 0) -> int:
        """The point index of cell (ix, iy)'s first seed."""
        position = (ix, iy)[:len(self.sweep.axes)] + (0,)
        return int(np.ravel_multi_index(position, self.sweep.shape))

    def cell_preset(self, ix: int, iy: int = 0):
        """The preset of cell (ix, iy) with the seed of its first replicate: what its point
        #0 ran, at the sweep's particles and steps."""
        from engine.presets import apply_sets
        return apply_sets(self.sweep.preset, self.sweep.assignments(self.cell_index(ix, iy)))

    def _clicked(self, event) -> None:
        if self.sweep is None:
            return
        point = self.plot.getPlotItem().vb.mapSceneToView(event.scenePos())
        ix, iy = int(round(point.x())), int(round(point.y()))
        nx, ny = self._shape()
        if 0 <= ix < nx and 0 <= iy < ny:
            self._requested = self.cell_preset(ix, iy)
            self.load_requested.emit(self._requested)
            self.status.setText(f"Loaded {self.sweep.label(self.cell_index(ix, iy))} into the "
                                "live view.")
