"""Reporters: what watches a run, separate from what steps it.

A reporter receives the simulation at the steps it asked for (OpenMM's ``Simulation.step`` +
reporters pattern): :meth:`engine.simulation.Simulation.advance` stops at every recording step
and hands the simulation to each attached reporter whose :meth:`Reporter.due` says so.  A
reporter reads the state (positions, losses, …) and keeps its own bounded statistics; it never
changes the run, so attaching one changes no number of the trajectory.
"""
from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def due(self, step: int) -> bool:
        """Whether :meth:`report` wants the state at ``step`` (a recording step)."""

    def report(self, sim) -> None:
        """Read what it needs from ``sim`` (an :class:`engine.simulation.Simulation`)."""
