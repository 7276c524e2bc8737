"""The engine worker: owns the Simulation in its own thread and hands frames to the GUI.

Commands from the GUI go into a queue and are applied between compiled chunks.  The worker
advances in chunks of about ``CHUNK_SECONDS`` so commands take effect quickly at any N, and emits
``frame_ready`` only after the GUI has drawn the previous frame: the newest frame wins, nothing
queues up.

Signals
-------
frame_ready(object)   a :class:`FrameBundle`
loaded(object)        the new Preset after a (re)load succeeded
failed(str, str)      (what, message) — a load, change or export failed; the session is intact
exported(str)         path written
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from engine.diagnostics.measure import (EmpiricalMeasure, gibbs_cells, kl_divergence,
                                        total_variation)
from engine.diagnostics.structure import Structure, analyse
from engine.export import write_csv, write_npz
from engine.presets import Preset, PresetError
from engine.simulation import Frame, Simulation

CHUNK_SECONDS = 0.02
MEASURE_BINS = 64


@dataclass(frozen=True)
class FrameBundle:
    """What a view needs for one redraw: the snapshot, ensemble series and run rates."""

    frame: Frame
    series: dict
    structure: Structure | None
    steps_per_second: float
    playing: bool
    bounds: np.ndarray  # [x0, x1, y0, y1] of the simulation
    generation: int  # increments when a new simulation replaces the old one


class EngineWorker(QObject):
    frame_ready = pyqtSignal(object)
    loaded = pyqtSignal(object)
    failed = pyqtSignal(str, str)
    exported = pyqtSignal(str)

    def __init__(self, preset: Preset):
        super().__init__()
        self._commands: queue.Queue = queue.Queue()
        self._consumed = threading.Event()
        self._consumed.set()
        self._stop = threading.Event()
        self.sim: Simulation | None = None
        self.structure: Structure | None = None
        self.playing = False
        self.steps_per_frame = 20
        self.generation = 0
        self._pending_preset = preset
        self._rate = 0.0
        self._steps_per_second = 0.0
        self._single_steps = 0
        self._escapes_at = 0.0
        self._escapes: dict | None = None
        self._escapes_at = 0.0
        self._escapes: dict | None = None

    # -- called from the GUI thread ----------------------------------------------------------
    def submit(self, name: str, *args) -> None:
        self._commands.put((name, args))

    def frame_consumed(self) -> None:
        self._consumed.set()

    def stop(self) -> None:
        self._stop.set()

    # -- worker thread -----------------------------------------------------------------------
    def run(self) -> None:
        self._load(self._pending_preset)
        force_emit = True
        while not self._stop.is_set():
            try:
                changed = self._drain()
            except Exception as exc:  # noqa: BLE001 - never let a bad command kill the worker
                self.failed.emit("command", f"{type(exc).__name__}: {exc}")
                changed = True
            force_emit = force_emit or changed
            sim = self.sim
            if sim is None:
                time.sleep(0.01)
                continue
            target = self.steps_per_frame if self.playing else self._single_steps
            self._single_steps = 0
            if target > 0:
                self._advance(sim, target)
                force_emit = True
            if force_emit and self._consumed.is_set():
                self._consumed.clear()
                force_emit = False
                self.frame_ready.emit(self._bundle(sim))
            elif not self.playing or not self._consumed.is_set():
                time.sleep(0.004)

    def _advance(self, sim: Simulation, total: int) -> None:
        done = 0
        started = time.perf_counter()
        per_chunk = max(1, int(self._rate * CHUNK_SECONDS / max(sim.positions.shape[0], 1)))
        while done < total and not self._stop.is_set():
            chunk = min(total - done, per_chunk)
            t0 = time.perf_counter()
            sim.advance(chunk)
            dt = time.perf_counter() - t0
            if dt > 0:
                rate = chunk * sim.positions.shape[0] / dt
                self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate
                per_chunk = max(1, int(self._rate * CHUNK_SECONDS / sim.positions.shape[0]))
            done += chunk
            if not self._commands.empty():
                break  # apply the user's change now rather than after the whole frame
        elapsed = time.perf_counter() - started
        self._steps_per_second = done / elapsed if elapsed > 0 else 0.0

    def _reset_measure(self) -> None:
        sim = self.sim
        d = sim.preset.dynamics
        self.measure = EmpiricalMeasure(sim.bounds, MEASURE_BINS, burn_in=sim.step)
        temperature = sim.effective_temperature() if d.kind != "gd" else 0.0
        self.gibbs = gibbs_cells(sim.evaluate, sim.bounds, MEASURE_BINS, temperature)
        self.measure_series = {"steps": [], "tv": [], "kl": []}

    def _update_measure(self, sim: Simulation) -> dict:
        if sim.step > self.measure.burn_in:
            self.measure.add(sim.step, sim.positions[sim.alive.astype(bool)])
            density = self.measure.density()
            self.measure_series["steps"].append(sim.step)
            self.measure_series["tv"].append(total_variation(density, self.gibbs))
            self.measure_series["kl"].append(kl_divergence(density, self.gibbs))
        return {"empirical": self.measure.density(), "gibbs": self.gibbs,
                "bounds": sim.bounds.copy(),
                **{k: np.asarray(v) for k, v in self.measure_series.items()}}

    def _bundle(self, sim: Simulation) -> FrameBundle:
        series = sim.history.scalar_series()
        series["_measure"] = self._update_measure(sim)
        now = time.monotonic()
        if sim.structure is not None and now - self._escapes_at > 0.5:
            from engine.api import escape_summary
            self._escapes_at = now
            events = sim.events()
            self._escapes = {"summary": escape_summary(sim), "events": events[-3000:]}
        series["_escapes"] = self._escapes
        return FrameBundle(sim.snapshot(), series, self.structure,
                           self._steps_per_second, self.playing,
                           sim.bounds.copy(), self.generation)

    def _drain(self) -> bool:
        changed = False
        live: dict = {}
        while True:
            try:
                name, args = self._commands.get_nowait()
            except queue.Empty:
                break
            if name == "set":  # coalesce slider floods: latest value per key wins
                key, value = args
                if key == "landscape_params":
                    live.setdefault(key, {}).update(value)
                else:
                    live[key] = value
                continue
            if live:
                self._apply_live(live)
                live = {}
            changed = True
            getattr(self, f"_cmd_{name}")(*args)
        if live:
            self._apply_live(live)
            changed = True
        return changed

    def _apply_live(self, changes: dict) -> None:
        if self.sim is None:
            return
        try:
            self.sim.update_params(**changes)
        except PresetError as exc:
            self.failed.emit("parameter", str(exc))
            return
        if "landscape_params" in changes:
            self._analyse()
        if set(changes) & {"landscape_params", "temperature", "kind", "lr", "batch_size",
                           "momentum", "noise_scale", "noise"}:
            self._reset_measure()  # a new invariant measure: pool afresh
            if self.sim.structure is not None and "landscape_params" not in changes:
                self.sim.restart_escapes()
                d = self.sim.preset.dynamics
                self.structure = self.structure.at(d.temperature if d.kind != "gd" else 0.0,
                                                   d.lr)
                self.sim.structure = self.structure

    def _analyse(self) -> None:
        try:
            self.structure = analyse(self.sim.preset, resolution=256, sim=self.sim)
        except Exception as exc:  # noqa: BLE001 - analysis is optional decoration
            self.structure = None
            self.failed.emit("structure analysis", str(exc))
            return
        self.sim.attach_structure(self.structure)  # basins and escape events from now on
        self._escapes_at = 0.0

    def _load(self, preset: Preset) -> None:
        try:
            sim = Simulation(preset)
            sim.advance(0)
        except (PresetError, ValueError) as exc:
            self.failed.emit("load", str(exc))
            return
        self.sim = sim
        self.generation += 1
        self._rate = 0.0
        self._analyse()
        self._reset_measure()
        self.loaded.emit(sim.preset)

    def _cmd_load(self, preset: Preset) -> None:
        self._load(preset)

    def _cmd_play(self, playing: bool) -> None:
        self.playing = bool(playing)

    def _cmd_step(self, n: int) -> None:
        self._single_steps += int(n)

    def _cmd_speed(self, steps: int) -> None:
        self.steps_per_frame = max(1, int(steps))

    def _cmd_reset(self) -> None:
        if self.sim is not None:
            self.sim.reset()
            self._reset_measure()

    def _cmd_seed(self, seed: int) -> None:
        if self.sim is not None:
            self._load(self.sim.preset.with_changes(ensemble={"seed": int(seed)}))

    def _cmd_export(self, path: str) -> None:
        if self.sim is None:
            return
        target = Path(path)
        try:
            arrays = self.sim.trajectory_arrays()
            if target.suffix == ".csv":
                write_csv(target, arrays)
            else:
                write_npz(target, arrays)
        except Exception as exc:  # noqa: BLE001 - reported to the user, session untouched
            self.failed.emit("export", f"{target}: {exc}")
            return
        self.exported.emit(str(target))


def positions_density(positions: np.ndarray, bounds: np.ndarray, bins: int) -> np.ndarray:
    """2D histogram of positions over the bounds, shape ``(bins, bins)`` (rows = y)."""
    from engine.diagnostics.binning import histogram2d
    return histogram2d(positions, bounds, bins)
