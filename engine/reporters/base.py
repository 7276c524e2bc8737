"""Reporters: what watches a run, separate from what steps it.

A reporter receives the simulation at the steps it asked for (OpenMM's ``Simulation.step`` +
reporters pattern): :meth:`engine.simulation.Simulation.advance` stops at every recording step
and hands the simulation to each attached reporter whose :meth:`Reporter.due` says so.  A
reporter reads the state (positions, losses, …) and keeps its own bounded statistics; it never
changes the run, so attaching one changes no number of the trajectory.

Every simulation has two reporters of its own: ``sim.recorder``
(:class:`~engine.reporters.recording.HistoryReporter`, the history, due at each recording step)
and ``sim.escapes`` (:class:`~engine.reporters.escapes.EscapeReporter`, fed the core-set entries
the kernels write after every kernel call, since they happen between recording steps).
"""
from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def due(self, step: int) -> bool:
        """Whether :meth:`report` wants the state at ``step`` (a recording step)."""

    def report(self, sim) -> None:
        """Read what it needs from ``sim`` (an :class:`engine.simulation.Simulation`)."""


class Delegated:
    """An attribute of the simulation stored on one of its reporters: ``Delegated("escapes",
    "log")`` on the class makes ``sim.x`` read and write ``sim.escapes.log``.  A run's declared
    state (:mod:`engine.state`) keeps its names while the reporter holds the value."""

    def __init__(self, holder: str, field: str):
        self.holder = holder
        self.field = field

    def __get__(self, sim, owner=None):
        if sim is None:
            return self
        return getattr(getattr(sim, self.holder), self.field)

    def __set__(self, sim, value) -> None:
        setattr(getattr(sim, self.holder), self.field, value)
