"""Reporters that watch a run (see :mod:`engine.reporters.base`): the history
(:mod:`~engine.reporters.recording`), escape tracking (:mod:`~engine.reporters.escapes`) and the
empirical measure (:mod:`~engine.reporters.measure`)."""
from .base import Delegated, Reporter
from .escapes import EscapeReporter
from .measure import MeasureReporter
from .recording import HistoryReporter

__all__ = ["Delegated", "EscapeReporter", "HistoryReporter", "MeasureReporter", "Reporter"]
