"""Replica exchange (parallel tempering; Swendsen & Wang 1986, Geyer 1991, Hukushima & Nemoto
1996) for the kinds ``langevin`` and ``underdamped``: ``[ensemble] replicas`` in a preset
(:mod:`engine.replica_spec`).

The ensemble is N independent chains of K rungs at temperatures ``T_0 ≤ … ≤ T_{K−1}`` (``T_0``
the preset's ``dynamics.temperature``).  Every rung takes the kind's own steps at its own
temperature, in the kind's compiled kernel (one call per rung and swap interval, over all N
chains; no per-step or per-particle Python).  Every ``m = swap_every`` steps each chain tries
to exchange the positions of neighbouring rungs ``(k, k+1)``, the pairs with ``k`` even at even
swap numbers ``step/m`` and those with ``k`` odd at odd ones (the deterministic even–odd scheme,
Okabe et al. 2001; Syed et al. 2022), accepting with the Metropolis probability

    min(1, exp((1/T_k − 1/T_{k+1}) (f_k − f_{k+1})))

which leaves the product of the rungs' Gibbs laws invariant.  Velocities stay with their rung
(BAOAB's are Maxwell at the rung's T, independent of x, so exchanging positions alone is exact).
The uniforms come from one xoshiro stream per chain (:mod:`engine.rng`), and swaps happen at
global multiples of m, so a run is bitwise the same however ``advance`` is cut and whatever the
thread count, and a checkpoint resumes it bit for bit.

``positions`` (and every per-particle field of the base class: tangent, accumulators, escape
tracking) are the lowest rung's, so every diagnostic reads the target temperature; the hotter
rungs run without diagnostics.  Round trips are counted per walker (the configuration that moves
between rungs): from the lowest rung to the highest and back.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numba import njit

from . import dynamics as dyn
from .kind_simulations import UnderdampedSimulation
from .rng import ZIGGURAT_F, ZIGGURAT_X, draw_normals, next_uniform, particle_states
from .schedules import scheduled
from .simulation import Simulation

# stream tags of the rungs above the lowest and of the swaps (engine.simulation's are 0–2,
# engine.ghost_simulation's 3, engine.kind_simulations' 4)
PURPOSE_RUNG_STEPS, PURPOSE_SWAPS, PURPOSE_RUNG_VELOCITY = 0x52450001, 0x52450002, 0x52450003
RUNG_STRIDE = 2**32  # rung k ≥ 1 of chain i draws from stream index (k − 1)·RUNG_STRIDE + i
_NO_CORES = np.full((1, 1), -1, dtype=np.int32)
# the per-particle state the step kernels read, rebound to a hotter rung while it steps
_BOUND = ("positions", "velocities", "alive", "rng", "tangent", "acc", "last_core",
          "diagnostics", "_cores")
PARTICLE_FIELDS = ("swap_rng",)
# (K − 1, N, …) arrays of the hotter rungs, (K, N) walker bookkeeping, counters
CHAIN_FIELDS = ("hot_positions", "hot_velocities", "hot_alive", "hot_rng", "walkers", "heading",
                "bottom_step")  # resized along their second axis with N
RUN_FIELDS = CHAIN_FIELDS + ("pair_counts", "round_trips")


@njit(cache=True, nogil=True)
def _exchange_rows(lowest, hot, k, i):
    """Exchange the positions of rungs ``k`` and ``k + 1`` of chain ``i`` (rung 0 is
    ``lowest``, rung ``j ≥ 1`` is ``hot[j − 1]``)."""
    for c in range(2):
        upper = hot[k, i, c]
        if k == 0:
            hot[k, i, c] = lowest[i, c]
            lowest[i, c] = upper
        else:
            hot[k, i, c] = hot[k - 1, i, c]
            hot[k - 1, i, c] = upper


@njit(cache=True, nogil=True)
def swap_neighbours(lowest, hot, energies, alive_low, alive_hot, betas, parity, swap_rng,
                    walkers, heading, bottom_step, step, pair_counts, round_trips):
    """One swap sweep of every chain: the neighbour pairs ``(k, k+1)`` with ``k ≡ parity
    (mod 2)``, each accepted with probability ``min(1, exp((β_k − β_{k+1})(f_k − f_{k+1})))``
    (one uniform per pair from the chain's stream, drawn whether or not both are alive).

    ``energies[k, i]``: f of rung k of chain i; ``pair_counts[k] = (attempts, accepted)``;
    ``walkers[k, i]``: the walker at rung k; ``heading[w, i]``: +1 after walker w last visited
    the lowest rung, −1 after the highest, 0 before either; ``bottom_step[w, i]``: the step of
    its last arrival at the lowest rung; ``round_trips = (count, total steps)``."""
    n_rungs = betas.shape[0]
    top = n_rungs - 1
    for i in range(lowest.shape[0]):
        s0, s1, s2, s3 = swap_rng[i, 0], swap_rng[i, 1], swap_rng[i, 2], swap_rng[i, 3]
        for k in range(parity, top, 2):
            u, s0, s1, s2, s3 = next_uniform(s0, s1, s2, s3)
            below_alive = alive_low[i] if k == 0 else alive_hot[k - 1, i]
            if not (below_alive and alive_hot[k, i]):
                continue
            pair_counts[k, 0] += 1
            log_ratio = (betas[k] - betas[k + 1]) * (energies[k, i] - energies[k + 1, i])
            if log_ratio >= 0.0 or u < math.exp(log_ratio):
                pair_counts[k, 1] += 1
                _exchange_rows(lowest, hot, k, i)
                w = walkers[k, i]
                walkers[k, i] = walkers[k + 1, i]
                walkers[k + 1, i] = w
        swap_rng[i, 0], swap_rng[i, 1], swap_rng[i, 2], swap_rng[i, 3] = s0, s1, s2, s3
        w = walkers[0, i]
        if heading[w, i] == -1:
            round_trips[0] += 1
            round_trips[1] += step - bottom_step[w, i]
        if heading[w, i] != 1:
            heading[w, i] = 1
            bottom_step[w, i] = step
        w = walkers[top, i]
        if heading[w, i] == 1:
            heading[w, i] = -1


class ReplicaExchange:
    """The replica-exchange layer over a kind's simulation class (a mixin placed before it:
    :class:`LangevinReplicaExchange`, :class:`UnderdampedReplicaExchange`)."""

    _rung_ratio: float | None = None  # while a hotter rung steps: its T_k / T_0

    # -- the ladder ---------------------------------------------------------------------------
    @property
    def rungs(self) -> int:
        return self.preset.ensemble.replicas.rungs

    def rung_temperatures(self) -> np.ndarray:
        """The rungs' temperatures at the current step (the lowest is the scheduled T)."""
        d = self.preset.dynamics
        return self.preset.ensemble.replicas.ladder(d.temperature,
                                                    scheduled(d, self.step).temperature)

    def scheduled_dynamics(self):
        d = super().scheduled_dynamics()
        if self._rung_ratio is None:
            return d
        return replace(d, temperature=d.temperature * self._rung_ratio)

    def preset_with(self, **changes):
        """As the base class's, with the ladder scaled along when T changes (ratios kept)."""
        new_t = changes.get("temperature")
        old = self.preset
        if isinstance(new_t, bool) or not isinstance(new_t, (int, float)) or not new_t > 0:
            return super().preset_with(**changes)
        ladder = old.ensemble.replicas.scaled(old.dynamics.temperature, float(new_t))
        self.preset = replace(old, ensemble=replace(old.ensemble, replicas=ladder))
        try:
            return super().preset_with(**changes)
        finally:
            self.preset = old

    # -- state ---------------------------------------------------------------------------------
    def _init_state(self) -> None:
        hot = self.rungs - 1
        self.hot_positions = np.zeros((hot, 0, 2))
        self.hot_velocities = np.zeros((hot, 0, 2))
        self.hot_alive = np.zeros((hot, 0), dtype=np.uint8)
        self.hot_rng = np.zeros((hot, 0, 4), dtype=np.uint64)
        self.walkers = np.zeros((hot + 1, 0), dtype=np.int64)
        self.heading = np.zeros((hot + 1, 0), dtype=np.int8)
        self.bottom_step = np.zeros((hot + 1, 0), dtype=np.int64)
        self.pair_counts = np.zeros((hot, 2), dtype=np.int64)
        self.round_trips = np.zeros(2, dtype=np.int64)
        super()._init_state()

    def _new_particles(self, first: int, count: int) -> dict[str, np.ndarray]:
        rows = super()._new_particles(first, count)
        rows["swap_rng"] = particle_states(self.preset.ensemble.seed, first, count,
                                           PURPOSE_SWAPS)
        return rows

    def _rung_streams(self, first: int, count: int, purpose: int) -> np.ndarray:
        """``(K − 1, count, 4)`` streams of chains ``first …`` on the hotter rungs."""
        seed = self.preset.ensemble.seed
        return np.stack([particle_states(seed, k * RUNG_STRIDE + first, count, purpose)
                         for k in range(self.rungs - 1)])

    def _rung_velocities(self, first: int, count: int) -> np.ndarray:
        """The hotter rungs' starting velocities, ``(K − 1, count, 2)`` (zero: no inertia)."""
        return np.zeros((self.rungs - 1, count, 2))

    def _resize(self, n: int) -> None:
        old = self.positions.shape[0]
        super()._resize(n)
        if n < old:
            for name in CHAIN_FIELDS:
                setattr(self, name, np.ascontiguousarray(getattr(self, name)[:, :n]))
            return
        count = n - old
        hot = self.rungs - 1
        walkers = np.repeat(np.arange(hot + 1)[:, None], count, axis=1)
        heading = np.zeros((hot + 1, count), dtype=np.int8)
        heading[0] = 1  # each chain's lowest walker starts at the bottom
        new = {"hot_positions": np.broadcast_to(self.positions[old:], (hot, count, 2)),
               "hot_velocities": self._rung_velocities(old, count),
               "hot_alive": np.ones((hot, count), dtype=np.uint8),
               "hot_rng": self._rung_streams(old, count, PURPOSE_RUNG_STEPS),
               "walkers": walkers, "heading": heading,
               "bottom_step": np.full((hot + 1, count), self.step, dtype=np.int64)}
        for name, rows in new.items():
            setattr(self, name, np.ascontiguousarray(
                np.concatenate([getattr(self, name), rows], axis=1)))

    # -- stepping ------------------------------------------------------------------------------
    def _kernel_chunk(self, chunk: int, capacity: int,
                      step0: int) -> tuple[np.ndarray, np.ndarray]:
        """The rungs step ``chunk`` steps in pieces that end at the swap steps; the lowest
        rung's escape events are handed to the log piece by piece (none are returned)."""
        if chunk == 0:
            return super()._kernel_chunk(0, capacity, step0)
        every = self.preset.ensemble.replicas.swap_every
        done = 0
        while done < chunk:
            start = step0 + done
            piece = min(chunk - done, every - start % every)
            event_buffer, event_count = super()._kernel_chunk(piece, capacity, start)
            self._collect_events(event_buffer, event_count, capacity)
            self._advance_hot_rungs(piece, start)
            done += piece
            if (start + piece) % every == 0:
                self._swap(start + piece)
        n_blocks = -(-self.positions.shape[0] // dyn.BLOCK)
        return self.escapes.buffers(n_blocks, 0)

    def kernel_ready(self) -> bool:
        """Whether the lowest rung's copy of the step loop and the hotter rungs' (no
        diagnostics or escape tracking) are both compiled."""
        if not super().kernel_ready():
            return False
        saved = self.diagnostics, self._cores
        self.diagnostics, self._cores = False, _NO_CORES
        try:
            return super().kernel_ready()
        finally:
            self.diagnostics, self._cores = saved

    def compile(self, escapes: bool | None = None) -> None:
        """Compile the lowest rung's step loop and the hotter rungs' (zero steps of each)."""
        super().compile(escapes)
        self._advance_hot_rungs(0, self.step)

    def _advance_hot_rungs(self, piece: int, start: int) -> None:
        """Rungs 1 … K − 1 take ``piece`` steps in the kind's own kernel at their temperature,
        with no diagnostics or escape tracking (scratch tangents and accumulators)."""
        n = self.positions.shape[0]
        saved = {name: getattr(self, name) for name in _BOUND}
        ratios = self.preset.ensemble.replicas.ratios(self.preset.dynamics.temperature)
        try:
            self.diagnostics = False
            self._cores = _NO_CORES
            self.tangent = np.zeros((n, saved["tangent"].shape[1]))
            self.acc = dyn.new_accumulators(n)
            self.last_core = np.full(n, -1, dtype=np.int32)
            for k in range(1, self.rungs):
                self.positions = self.hot_positions[k - 1]
                self.velocities = self.hot_velocities[k - 1]
                self.alive = self.hot_alive[k - 1]
                self.rng = self.hot_rng[k - 1]
                self._rung_ratio = float(ratios[k])
                super()._kernel_chunk(piece, 0, start)
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
            self._rung_ratio = None

    def _swap(self, step: int) -> None:
        # one compiled pass, no thread hand-off: every m steps, so small ensembles pay no
        # dispatch latency per swap
        energies = self.evaluate(self.rung_positions())[:, 0].reshape(self.rungs, -1)
        parity = (step // self.preset.ensemble.replicas.swap_every) % 2
        swap_neighbours(self.positions, self.hot_positions, energies, self.alive,
                        self.hot_alive, 1.0 / self.rung_temperatures(), parity, self.swap_rng,
                        self.walkers, self.heading, self.bottom_step, step, self.pair_counts,
                        self.round_trips)

    # -- outputs -------------------------------------------------------------------------------
    def rung_positions(self) -> np.ndarray:
        """``(K, N, 2)``: every rung's positions, the lowest first (a copy)."""
        return np.concatenate([self.positions[None], self.hot_positions])

    def rung_view(self, rung: int) -> np.ndarray:
        """``(N, 2)`` positions of ``rung`` (0: the lowest; past the top: the lowest), a view
        that the next step changes (what a live view shows of another rung)."""
        return self.hot_positions[rung - 1] if 0 < rung < self.rungs else self.positions

    def swap_acceptance(self) -> np.ndarray:
        """Accepted fraction of the swaps tried so far, per neighbour pair ``(k, k+1)``
        (NaN before the first try)."""
        attempts, accepted = self.pair_counts[:, 0], self.pair_counts[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(attempts > 0, accepted / np.maximum(attempts, 1), np.nan)

    def mean_round_trip_steps(self) -> float:
        """Mean steps of a walker's round trip lowest → highest → lowest rung (NaN: none)."""
        count, total = self.round_trips
        return float(total / count) if count else math.nan

    def replica_summary(self) -> dict:
        """The ladder, each neighbour pair's swap statistics and the round trips so far."""
        temperatures = self.rung_temperatures()
        acceptance = self.swap_acceptance()
        pairs = [{"rungs": [k, k + 1],
                  "temperatures": [float(temperatures[k]), float(temperatures[k + 1])],
                  "attempts": int(self.pair_counts[k, 0]),
                  "accepted": int(self.pair_counts[k, 1]),
                  "acceptance": float(acceptance[k])} for k in range(self.rungs - 1)]
        return {"temperatures": temperatures.tolist(),
                "swap_every": self.preset.ensemble.replicas.swap_every, "pairs": pairs,
                "round_trips": int(self.round_trips[0]),
                "mean_round_trip_steps": self.mean_round_trip_steps()}

    def _extend_record(self, per_particle: dict | None, scalars: dict) -> None:
        super()._extend_record(per_particle, scalars)
        if per_particle is not None:
            per_particle["rung_positions"] = self.rung_positions()
        for k, rate in enumerate(self.swap_acceptance()):
            scalars[f"swap_acceptance_{k}"] = rate
        scalars["round_trips"] = float(self.round_trips[0])


class LangevinReplicaExchange(ReplicaExchange, Simulation):
    """Kind ``langevin`` with ``[ensemble] replicas``."""

    PARTICLE_FIELDS = Simulation.PARTICLE_FIELDS + PARTICLE_FIELDS
    RUN_FIELDS = Simulation.RUN_FIELDS + RUN_FIELDS


class UnderdampedReplicaExchange(ReplicaExchange, UnderdampedSimulation):
    """Kind ``underdamped`` with ``[ensemble] replicas``: the hotter rungs' velocities start
    from the Maxwell law at their own temperature."""

    PARTICLE_FIELDS = UnderdampedSimulation.PARTICLE_FIELDS + PARTICLE_FIELDS
    RUN_FIELDS = UnderdampedSimulation.RUN_FIELDS + RUN_FIELDS

    def _rung_velocities(self, first: int, count: int) -> np.ndarray:
        if not count:
            return super()._rung_velocities(first, count)
        states = self._rung_streams(first, count, PURPOSE_RUNG_VELOCITY)
        temperatures = self.rung_temperatures()[1:]
        return np.stack([math.sqrt(t) * draw_normals(s, 2, ZIGGURAT_X, ZIGGURAT_F)
                         for t, s in zip(temperatures, states)]).reshape(-1, count, 2)
