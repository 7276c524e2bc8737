"""The CNN-lab worker: trains a :class:`CnnExperiment` epoch by epoch in its own thread.

Frames are emitted at most every ``FRAME_INTERVAL`` seconds and only after the GUI has drawn the
previous one (the newest wins).  ``cancel()`` may be called from any thread; the experiment
stops after the epoch in progress and what was trained so far stays viewable and exportable.

Signals
-------
frame_ready(object)   a :class:`engine.cnn.trainer.CnnFrame`
progress(int, int)    epochs done, epochs in total
finished(object)      the summary dict (engine.cnn.report.summarise); also after a cancel
failed(str, str)      (what, message) — the experiment could not be built or crashed
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, pyqtSignal, pyqtSlot

from engine.cnn.config import CnnPreset

if TYPE_CHECKING:  # torch is imported on the first experiment, not when the window opens (≈ 1 s)
    from engine.cnn.trainer import CnnExperiment

FRAME_INTERVAL = 0.1


class CnnWorker(QObject):
    frame_ready = pyqtSignal(object)
    progress = pyqtSignal(int, int)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str, str)

    def __init__(self):
        super().__init__()
        self.experiment: CnnExperiment | None = None
        self.cancelled = False
        self.seconds = 0.0
        self._cancel = threading.Event()
        self._consumed = threading.Event()
        self._consumed.set()
        self.running = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def frame_consumed(self) -> None:
        self._consumed.set()

    @pyqtSlot(object, str)
    def start(self, preset: CnnPreset, device: str) -> None:
        self._cancel.clear()
        self.running.set()
        self.cancelled = False
        try:
            from engine.cnn.report import summarise
            from engine.cnn.trainer import CnnExperiment
            start = time.perf_counter()
            experiment = CnnExperiment(preset, device)
            self.experiment = experiment
            last = 0.0
            while not experiment.done and not self._cancel.is_set():
                experiment.advance(1)
                self.progress.emit(experiment.epoch, experiment.epochs)
                now = time.perf_counter()
                if (now - last >= FRAME_INTERVAL and self._consumed.is_set()) or experiment.done:
                    last = now
                    self._consumed.clear()
                    self.frame_ready.emit(experiment.frame())
            self.cancelled = not experiment.done
            self.seconds = time.perf_counter() - start
            metrics = experiment.metrics()
            if metrics["test_loss"].shape[0] == 0:
                raise ValueError("cancelled before the first epoch")
            self.finished.emit(summarise(metrics, preset, experiment.arms,
                                         len(experiment.run_ids), self.seconds,
                                         str(experiment.device)))
        except Exception as exc:  # noqa: BLE001 - shown to the user; the GUI keeps running
            self.failed.emit("CNN experiment", f"{type(exc).__name__}: {exc}")
        finally:
            self.running.clear()
