"""The window's preset, kept in one place.

The engine process runs a :class:`~engine.presets.Preset` and tells the window when it changes:
once per load (``"loaded"``) and once per accepted live edit (``"applied"``), never with each
frame.  :class:`PresetController` holds the latest of them; the window, its panels and its views
ask it for the preset instead of keeping copies of their own, so they cannot disagree.  It lives
on the GUI thread: :class:`app.worker.EngineWorker` hands it the engine's messages as queued
signals.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from engine.presets import Preset


class PresetController(QObject):
    """The preset the engine runs, as of the last load or applied edit.

    Signals
    -------
    changed(object, bool)   the new Preset, and whether it started a new run (a load) rather
                            than editing the running one
    """

    changed = pyqtSignal(object, bool)

    def __init__(self, preset: Preset):
        super().__init__()
        self._preset = preset
        self.loads = 0  # loads the engine confirmed
        self.edits = 0  # live edits the engine applied since the last load

    @property
    def preset(self) -> Preset:
        return self._preset

    @pyqtSlot(object)
    def loaded(self, preset: Preset) -> None:
        """The engine runs ``preset`` from its initial cloud now."""
        self._preset = preset
        self.loads += 1
        self.edits = 0
        self.changed.emit(preset, True)

    @pyqtSlot(object)
    def applied(self, preset: Preset) -> None:
        """The engine accepted a live edit: the running simulation's preset is ``preset``."""
        self._preset = preset
        self.edits += 1
        self.changed.emit(preset, False)
