"""The window's handle on the engine process.

:class:`EngineWorker` starts :func:`app.engine_loop.serve` in a process of its own and turns its
messages into Qt signals, so the engine's hot loop shares neither the GIL nor a scheduler slot of
the GUI thread's process.  Commands go down a queue and are applied between compiled chunks; the
window answers each frame with :meth:`frame_consumed` (latest frame wins, nothing queues up).

:attr:`EngineWorker.state` mirrors the engine: its parameters, step, particle count, speed and
event count, as of the last frame or load the engine sent.  The preset is not part of it: the
engine sends it once per load and per applied live edit, and :attr:`EngineWorker.presets` (an
:class:`app.preset_controller.PresetController`) keeps it.

Signals
-------
frame_ready(object)   a :class:`FrameBundle`
loaded(object)        the new Preset after a (re)load succeeded
applied(object)       the running Preset after a live edit was applied
failed(str, str)      (what, message) — a load, change or export failed; the session is intact
busy(str)             why the engine pauses now (compiling a kernel on its first use)
exported(str)         path written
"""
from __future__ import annotations

import multiprocessing
import threading
from dataclasses import replace

from PyQt6.QtCore import QObject, pyqtSignal

from engine.presets import Preset

from .engine_loop import GRIDS, SAME_GRIDS, UNCHANGED, EngineState, FrameBundle, serve
from .preset_controller import PresetController

__all__ = ["EngineWorker", "EngineState", "FrameBundle"]

# spawn, not fork: the window's process runs Qt's threads, which a forked child must not inherit
_CONTEXT = multiprocessing.get_context("spawn")
STOP_WAIT = 5.0  # s the engine process gets to finish its chunk before it is terminated


class EngineWorker(QObject):
    frame_ready = pyqtSignal(object)
    loaded = pyqtSignal(object)
    applied = pyqtSignal(object)
    failed = pyqtSignal(str, str)
    exported = pyqtSignal(str)
    busy = pyqtSignal(str)  # a long pause is coming (compiling); cleared by the next frame

    def __init__(self, presets: PresetController | Preset):
        super().__init__()
        if isinstance(presets, Preset):
            presets = PresetController(presets)
        # the one copy of the preset (on the GUI thread): the engine's messages reach it queued
        self.presets = presets
        self.loaded.connect(presets.loaded)
        self.applied.connect(presets.applied)
        self.state: EngineState | None = None
        self._process = None
        self._stopping = False
        self._structure = None

    # -- the engine's mirror -----------------------------------------------------------------
    @property
    def generation(self) -> int:
        return 0 if self.state is None else self.state.generation

    @property
    def steps_per_frame(self) -> int:
        return 20 if self.state is None else self.state.steps_per_frame

    @property
    def preset(self) -> Preset:
        return self.presets.preset

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine process on the preset (the last one run, edits included, after a
        crash)."""
        self._commands = _CONTEXT.Queue()
        self._consumed = _CONTEXT.Event()
        self._stop = _CONTEXT.Event()
        receiving, sending = _CONTEXT.Pipe(duplex=False)
        self._process = _CONTEXT.Process(
            target=serve, args=(self.presets.preset, self._commands, self._consumed, self._stop,
                                sending), name="ergoscope-engine", daemon=True)
        self._process.start()
        sending.close()  # the child holds the only sending end: its exit ends our reads
        self._stopping = False
        self._reader = threading.Thread(target=self._receive, args=(receiving, self._process),
                                        name="engine-frames", daemon=True)
        self._reader.start()

    def submit(self, name: str, *args) -> None:
        if self._process is not None:  # after stop() nothing listens
            self._commands.put((name, args))

    def frame_consumed(self) -> None:
        self._consumed.set()

    def stop(self) -> None:
        """End the engine process (waits up to ``STOP_WAIT`` for its current chunk)."""
        if self._process is None:
            return
        self._stopping = True
        self._stop.set()
        self._process.join(STOP_WAIT)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_WAIT)
        self._reader.join(STOP_WAIT)
        self._commands.close()
        self._commands.cancel_join_thread()  # commands never read are not worth a hang
        self._process = None

    # -- the receiving thread ----------------------------------------------------------------
    def _receive(self, connection, process) -> None:
        """Turn the engine's messages into signals (queued to the GUI thread) until it ends."""
        while True:
            try:
                kind, payload = connection.recv()
            except (EOFError, OSError):
                break
            if kind == "frame":
                bundle, how = payload
                if how == UNCHANGED:  # the same object as before: views compare by identity
                    bundle = replace(bundle, structure=self._structure)
                else:
                    if how == SAME_GRIDS:  # the same grid arrays as before, at a new temperature
                        grids = {grid: getattr(self._structure, grid) for grid in GRIDS}
                        bundle = replace(bundle, structure=replace(bundle.structure, **grids))
                    self._structure = bundle.structure
                self.state = bundle.state
                self.frame_ready.emit(bundle)
            elif kind == "loaded":
                self.state, preset = payload
                self.loaded.emit(preset)
            elif kind == "applied":
                self.applied.emit(payload)
            elif kind == "failed":
                self.failed.emit(*payload)
            elif kind == "busy":
                self.busy.emit(payload)
            elif kind == "exported":
                self.exported.emit(payload)
        connection.close()
        process.join(STOP_WAIT)
        if not self._stopping:
            self.failed.emit("engine", f"the engine process ended unexpectedly (exit code "
                                       f"{process.exitcode}); restarted on "
                                       f"{self.presets.preset.name!r}")
            self.start()
