"""The simulation's face of recording (a mixin of :class:`engine.simulation.Simulation`): records
taken now or left pending, and the arrays exported from the history.  The history and the record
in progress belong to a :class:`~engine.reporters.recording.HistoryReporter`
(``self.recorder``); ``history`` keeps its name among the declared state."""
from __future__ import annotations

import numpy as np

from .reporters.base import Delegated
from .reporters.recording import HistoryReporter


class Recording:
    """Records of a run into its history, and the arrays exported from it."""

    recorder: HistoryReporter
    history = Delegated("recorder", "history")

    @property
    def record_pending(self) -> bool:
        """Whether ``advance(defer_record=True)`` left a record to take."""
        return self.recorder.pending

    def flush_record(self, seconds: float | None = None) -> bool:
        """Take the record that ``advance(defer_record=True)`` left pending, if any; returns
        whether none is pending any more.

        With ``seconds``, stop after the first piece (:data:`engine.reporters.recording.
        RECORD_SLICE` particles) that ends past that budget; the next call goes on.  At 10⁶
        particles a record takes 35–80 ms, and the window reads input between its pieces.  Live
        changes of :data:`engine.live_params.STEP_ONLY_PARAMS` leave a record in progress as it
        is; everything that would change what it reads finishes it first.
        """
        return self.recorder.flush(self, seconds)

    def _record(self, parameters: dict[str, float] | None = None) -> None:
        self.recorder.record(self, parameters)

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        """Hook for subclasses to add recorded fields (``per_particle`` is None when no
        per-particle frame is due)."""

    def trajectory_arrays(self) -> dict[str, np.ndarray]:
        """The export fields (README, "Headless use") the history holds, plus ensemble series."""
        self.flush_record()
        from .presets import dumps
        arrays = self.history.particle_arrays()
        arrays["preset"] = np.array(dumps(self.preset))
        arrays["events"] = self.events()
        # events beyond the log's capacity are counted here though no longer listed
        arrays["events_total"] = np.array(self.event_count(), dtype=np.int64)
        for key, value in self.history.scalar_series().items():
            if key != "steps":
                arrays[f"series_{key}"] = value
        arrays["series_steps"] = self.history.scalar_series()["steps"]
        return arrays
