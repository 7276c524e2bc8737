"""Snapshots of an ensemble: :class:`Frame`, read-only copies of a simulation's state at one
step, as the window, the CLI and tests read it (:meth:`engine.simulation.Simulation.snapshot`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics as dyn


@dataclass(frozen=True)
class Frame:
    """Read-only snapshot of the ensemble.

    Arrays have shape ``(N, 2)`` (positions, velocities) or ``(N,)``; all are float64 except
    ``alive`` (bool).  ``lyapunov`` is the running estimate γ̂ of Park & Yun (2025), eq. 4.1,
    per particle, and ``tangent_lyapunov`` the tangent-vector estimate of the top exponent
    (γ̂ bounds it above).  It carries no preset: the run's preset is the simulation's, which
    changes only when parameters do, not with every frame.
    """

    step: int
    time: float
    positions: np.ndarray
    velocities: np.ndarray | None
    loss: np.ndarray | None
    grad_norm: np.ndarray | None
    lyapunov: np.ndarray | None
    tangent_lyapunov: np.ndarray | None
    time_avg_loss: np.ndarray | None
    time_avg_grad_norm: np.ndarray | None
    alive: np.ndarray
    n_frozen: int
    effective_temperature: float


def readonly(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` that cannot be written to."""
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


def snapshot(sim, positions_only: bool = False, first: int | None = None) -> Frame:
    """A :class:`Frame` of read-only copies of ``sim``'s current state (see
    :meth:`engine.simulation.Simulation.snapshot`)."""
    if first is not None and not positions_only:
        raise ValueError("first applies to positions-only snapshots")
    count = sim.positions.shape[0] if first is None else min(int(first), len(sim.alive))
    alive = sim.alive[:count].astype(bool)
    common = dict(step=sim.step, time=sim.time,
                  positions=readonly(sim.positions[:count]), alive=readonly(alive),
                  n_frozen=len(sim.alive) - int(np.count_nonzero(sim.alive)),
                  effective_temperature=sim.effective_temperature())
    if positions_only:
        return Frame(velocities=None, loss=None, grad_norm=None, lyapunov=None,
                     tangent_lyapunov=None, time_avg_loss=None, time_avg_grad_norm=None,
                     **common)
    count = np.maximum(sim.acc[:, dyn.ACC_COUNT], 1.0)
    lyap, tangent = sim.running_lyapunov()
    started = sim.acc[:, dyn.ACC_COUNT] > 0
    out = sim.out
    return Frame(
        velocities=readonly(sim.velocities),
        loss=readonly(out[:, 0]), grad_norm=readonly(out[:, 1]),
        lyapunov=readonly(lyap), tangent_lyapunov=readonly(tangent),
        time_avg_loss=readonly(np.where(started, sim.acc[:, dyn.ACC_LOSS] / count, out[:, 0])),
        time_avg_grad_norm=readonly(np.where(started, sim.acc[:, dyn.ACC_GRAD] / count,
                                             out[:, 1])),
        **common)
