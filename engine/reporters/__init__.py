"""Reporters that watch a run (see :mod:`engine.reporters.base`)."""
from .base import Reporter
from .measure import MeasureReporter

__all__ = ["MeasureReporter", "Reporter"]
