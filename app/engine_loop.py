"""The engine loop: owns the Simulation in the engine process and hands frames to the window.

It runs in a process of its own (:mod:`app.worker` starts it), so the window's paint code shares
neither its GIL nor its thread pool's hand-offs: at 10⁴ particles in 30 ms batches the engine kept
31.9–32.0 M particle-steps/s beside the window against 28.4–29.0 as a thread of the window's
process (3 runs each), the machine busy 169 % of its 200 % against 155 %.  Nothing here imports Qt.

Commands from the window arrive on a queue and are applied between compiled chunks.  The loop
advances in chunks of about ``CHUNK_SECONDS`` so commands take effect quickly at any N, and sends a
frame only after the window has drawn the previous one (``consumed``), so nothing queues up; a
batch of ``steps_per_frame`` steps starts once the previous batch's frame is handed over.

Messages sent (``send(kind, payload)``)
---------------------------------------
("frame", FrameBundle)          its ``structure`` is the current one (the sender may strip it)
("loaded", (EngineState, Preset)) a (re)load succeeded: the preset it runs, once per load
("applied", Preset)             a live edit was applied: the running preset, once per edit
("failed", (what, message))     a load, change or export failed; the session is intact
("busy", message)               why the engine pauses now (compiling a kernel on its first use)
("exported", path)              a trajectory file and its JSON sidecar were written
"""
from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from engine.diagnostics.binning import histogram2d
from engine.diagnostics.structure import Structure, StructureError, analyse
from engine.presets import Preset, PresetError
from engine.reporters import MeasureReporter
from engine.simulation import Frame, Simulation, equivalent_langevin, simulation_class

CHUNK_SECONDS = 0.015  # engine work between command checks and frames
RECORD_PIECE_SECONDS = 0.008  # record work between command checks (a record: 35–80 ms at 10⁶)
MEASURE_BINS = 64
MAX_FPS = 75.0
FRAME_OVERDUE = 0.024  # s: show progress at least this often during long batches
PROGRESS_PERIOD = 1 / 30  # s: … and sooner when waiting for one more chunk would pass this
INPUT_FRAME_WAIT = 0.03  # s the worker waits for the GUI to be free to show input at once
SLOW_INTERVAL = 0.2  # s between refreshes of series and measure (their plots redraw ≤ 5 Hz)
ESCAPES_INTERVAL = 0.5  # s between escape summaries, at least
RASTER_EVENTS = 3000  # latest escape events the raster shows
DENSITY_THRESHOLD = 20_000  # above this N the landscape view shows a binned density image
DENSITY_BINS = 256  # a multiple of MEASURE_BINS: one binning pass serves both
TRAIL_PARTICLES = 5


def equal_chunk(remaining: int, longest: int) -> int:
    """The next chunk when ``remaining`` steps are cut into equal chunks of at most
    ``longest``: 143 steps at most 70 at a time go as 48 + 48 + 47, not 70 + 70 + 3.  A short
    tail costs a kernel call of its own and, coming right after a progress frame, found the
    frame-rate cap closed: the loop slept ≈ 6 % of its time at 10⁴ particles."""
    return -(-remaining // -(-remaining // longest))


@dataclass(frozen=True)
class FrameBundle:
    """What a view needs for one redraw: the snapshot, ensemble series and run rates."""

    frame: Frame  # positions of the first TRAIL_PARTICLES only when ``density`` is given
    density: np.ndarray | None  # (DENSITY_BINS, DENSITY_BINS) counts over bounds, rows = y
    series: dict | None  # ensemble series (history); None when not due this frame
    measure: dict | None  # empirical measure, Gibbs cells, TV/KL series; None when not due
    escapes: dict | None  # escape summary and recent events; None when not due
    structure: Structure | None
    steps_per_second: float
    bounds: np.ndarray  # [x0, x1, y0, y1] of the simulation
    state: "EngineState"  # N, playing, generation … as of this frame (not the preset)
    probe: dict | None = None  # the followed particle (app.probe.Probe.payload), if any


@dataclass(frozen=True)
class EngineState:
    """What the window knows of the engine beyond a frame (sent with every frame and load).
    The preset is not part of it: it travels once per change ("loaded", "applied")."""

    generation: int  # increments when a new simulation replaces the old one
    step: int
    particles: int
    steps_per_frame: int
    playing: bool
    events: int  # escape events recorded so far
    param_names: tuple[str, ...]  # the landscape's parameters, in order
    params: tuple[float, ...]
    structural: tuple[str, ...]  # parameters that define the dataset (not live sliders)


class EngineLoop:
    """The engine side of a window.

    Parameters
    ----------
    preset : loaded first
    commands : queue of ``(name, args)`` (``get_nowait``); names are the ``_cmd_*`` methods and
        ``"set"`` (a live parameter change, coalesced)
    consumed : event set by the window once it has drawn the last frame
    stop : event that ends :meth:`run`
    send : ``send(kind, payload)``, see the module docstring
    """

    def __init__(self, preset: Preset, commands, consumed, stop,
                 send: Callable[[str, object], None]):
        self._commands = commands
        self._consumed = consumed
        self._consumed.set()
        self._stop = stop
        self._send = send
        self.sim: Simulation | None = None
        self.structure: Structure | None = None
        self.playing = False
        self.steps_per_frame = 20
        self.generation = 0
        self._pending_preset = preset
        self._rate = 0.0
        self._chunk_seconds = 0.0  # running mean duration of a chunk
        self._chunk_steps = 0  # steps in the last chunk
        self._steps_per_second = 0.0
        self._single_steps = 0
        self._escapes_at = 0.0
        self._slow_at = 0.0
        # a temperature-like change restarts the escape statistics, after the frame that shows
        # the change (≈ 14 ms at 10⁶ particles that frame does not need) and before anything
        # that steps or reads them
        self._escapes_restart_due = False
        self._emitted_at = 0.0
        self.probe = None  # app.probe.Probe: one particle from a clicked start point
        self.rung = 0  # the replica-exchange rung the cloud shows (0: the lowest, target T)

    def run(self) -> None:
        """Advance in short chunks.  A batch of ``steps_per_frame`` steps ends in a frame; the
        next batch starts as soon as that frame is handed over (the GUI paints frame k while
        the engine computes batch k + 1), so the speed setting means steps per shown frame at
        any N.  Long batches also emit progress frames when one is overdue, so large ensembles
        still animate."""
        self._load(self._pending_preset)
        force_emit = True
        pending = 0
        frame_owed = False  # a batch finished and its frame is not handed over yet
        progress_shown = False  # the running batch already handed over a progress frame
        rate_steps, rate_since = 0, time.perf_counter()
        while not self._stop.is_set():
            try:
                changed = self._drain()
            except Exception as exc:  # noqa: BLE001 - never let a bad command kill the worker
                self._send("failed", ("command", f"{type(exc).__name__}: {exc}"))
                changed = True
            force_emit = force_emit or changed
            sim = self.sim
            if sim is None:
                time.sleep(0.01)
                continue
            if self.playing and pending == 0 and (not frame_owed or progress_shown):
                # a batch longer than a frame was shown by its progress frames: its end does
                # not hold the engine until the GUI is free (≈ 20 % idle at 10⁴ otherwise)
                pending = self.steps_per_frame
                progress_shown = frame_owed = False
            elif not self.playing and pending and not self._single_steps:
                pending = 0
            pending += self._single_steps
            self._single_steps = 0
            if changed and self._consumed.wait(INPUT_FRAME_WAIT):
                # show the input now, not after the next chunk (and the record it may start
                # with, ≈ 35–80 ms at 10⁶ particles); the escape summary waits for the next frame
                self._emit(sim, input_frame=True)
                force_emit = frame_owed = False
            self._restart_escapes_if_due()
            if sim.record_pending:  # its own units of work: input is read between its pieces
                sim.flush_record(RECORD_PIECE_SECONDS)
                continue
            if pending > 0:
                if not sim.kernel_ready():
                    self._send("busy", "compiling the step kernel for these settings "
                                       "(first use, a few seconds)…")
                done = self._advance_chunk(sim, pending)
                pending -= done
                rate_steps += done
                force_emit = True
                frame_owed = pending == 0
            now = time.perf_counter()
            if now - rate_since > 0.5:
                self._steps_per_second = rate_steps / (now - rate_since)
                rate_steps, rate_since = 0, now
            since = now - self._emitted_at
            # at 10⁶ particles a chunk is one step of 12–17 ms that cannot be cut shorter: two
            # of them before a progress frame made 24–34 ms, under 30 fps half of the time
            due = (pending == 0 or since >= FRAME_OVERDUE
                   or (self._chunk_steps == 1 and since + self._chunk_seconds > PROGRESS_PERIOD))
            wait = 1 / MAX_FPS - (now - self._emitted_at)
            if force_emit and due and self._consumed.is_set() and wait <= 0:
                if not self._commands.empty():
                    # input came during the chunk: the next pass applies it and shows it in
                    # this frame's place (at 10⁶ particles a frame costs ≈ 10 ms, and the GUI
                    # drawing it would hold the input frame back)
                    continue
                self._emit(sim)
                progress_shown = pending > 0
                force_emit = frame_owed = False
            elif pending == 0 and self.playing and frame_owed and progress_shown:
                continue  # the batch was shown by its progress frames: start the next one now
            elif pending == 0:  # waiting for the GUI, the frame-rate cap, or a command
                if force_emit and not self._consumed.is_set():
                    self._consumed.wait(0.005)
                else:
                    time.sleep(min(max(wait, 0.0005), 0.002) if force_emit else 0.002)

    def _emit(self, sim: Simulation, input_frame: bool = False) -> None:
        """Hand the GUI a frame (it sets ``_consumed`` again once drawn)."""
        self._consumed.clear()
        self._emitted_at = time.perf_counter()
        self._send("frame", self._bundle(sim, input_frame))

    def _advance_chunk(self, sim: Simulation, limit: int) -> int:
        """One compiled chunk of about ``CHUNK_SECONDS``; returns the steps taken."""
        n = max(sim.positions.shape[0], 1)
        chunk = equal_chunk(limit, max(1, int(self._rate * CHUNK_SECONDS / n)))
        t0 = time.perf_counter()
        # a record due at the chunk's end waits until the commands that came meanwhile are
        # applied: at 10⁶ particles it takes longer than the step
        sim.advance(chunk, defer_record=True)
        if self.probe is not None:  # the followed particle keeps step with the ensemble
            self.probe.advance(chunk)
        dt = time.perf_counter() - t0
        if dt > 0:
            rate = chunk * n / dt
            self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate
            self._chunk_seconds = (dt if self._chunk_seconds == 0
                                   else 0.8 * self._chunk_seconds + 0.2 * dt)
        self._chunk_steps = chunk
        return chunk

    def _reset_measure(self) -> None:
        self.measure = MeasureReporter(self.sim, MEASURE_BINS, burn_in=self.sim.step)

    def _update_measure(self, sim: Simulation, summarise: bool,
                        density: np.ndarray | None) -> dict | None:
        if sim.step > self.measure.burn_in:  # frozen particles keep their place
            if density is not None:
                self.measure.add_counts(sim.step, density, sim.positions.shape[0])
            else:
                self.measure.add(sim.step, sim.positions)
        if not summarise:
            return None
        self.measure.note_distances(sim.step)
        return {"empirical": self.measure.density(), "gibbs": self.measure.gibbs,
                "bounds": sim.bounds.copy(),
                **{k: np.asarray(v) for k, v in self.measure.series.items()}}

    def _bundle(self, sim: Simulation, input_frame: bool = False) -> FrameBundle:
        """The frame of the current state; ``input_frame`` (the answer to a command while
        running) leaves out the escape summary, ≈ 12 ms at 10⁶ particles, which the next frame
        brings."""
        now = time.monotonic()
        slow = not self.playing or now - self._slow_at >= SLOW_INTERVAL
        if slow:
            self._slow_at = now
        series = sim.history.scalar_series() if slow else None
        escapes = None
        if not (input_frame and self.playing):  # a frame that may carry the escape summary:
            self._restart_escapes_if_due()       # never from the superseded statistics
        if slow and sim.structure is not None and now >= self._escapes_at and not (
                input_frame and self.playing):
            from engine.api import escape_summary
            escapes = {"summary": escape_summary(sim), "events": sim.recent_events(RASTER_EVENTS)}
            # the summary's occupation reads every particle (≈ 12 ms at 10⁶): at most every
            # ESCAPES_INTERVAL and never over 10 % of the loop
            spent = time.monotonic() - now
            self._escapes_at = now + max(ESCAPES_INTERVAL, 10 * spent)
        n = sim.positions.shape[0]
        shown = sim.rung_view(self.rung) if hasattr(sim, "rung_view") else sim.positions
        # Large clouds travel as one density image binned here, not as N positions: no N-sized
        # copy, and the same pass feeds the empirical measure (2 cores: GUI work is engine time)
        density = (histogram2d(shown, sim.bounds, DENSITY_BINS)
                   if n > DENSITY_THRESHOLD else None)
        frame = sim.snapshot(positions_only=True,
                             first=TRAIL_PARTICLES if density is not None else None)
        if shown is not sim.positions:  # a hotter rung shown; the measure stays the lowest's
            frame = replace(frame, positions=shown[:len(frame.positions)].copy())
            density_of_lowest = None
        else:
            density_of_lowest = density
        return FrameBundle(frame, density, series,
                           self._update_measure(sim, slow, density_of_lowest),
                           escapes, self.structure, self._steps_per_second, sim.bounds.copy(),
                           self._state(sim),
                           None if self.probe is None else self.probe.payload())

    def _state(self, sim: Simulation) -> EngineState:
        landscape = sim.landscape
        return EngineState(self.generation, sim.step, sim.positions.shape[0],
                           self.steps_per_frame, self.playing, sim.event_count(),
                           tuple(landscape.param_names), tuple(float(p) for p in sim.params),
                           tuple(landscape.extras.get("structural", ())))

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
            self._restart_escapes_if_due()
            getattr(self, f"_cmd_{name}")(*args)
        if live:
            self._apply_live(live)
            changed = True
        return changed

    def _apply_live(self, changes: dict) -> None:
        if self.sim is None:
            return
        try:
            if "kind" in changes:
                preset = self.sim.preset_with(**changes)
                if simulation_class(preset) is not type(self.sim):
                    # another step kernel and state (e.g. ghost ↔ langevin on the classifier):
                    # a new run of this kind from the initial cloud, the controls follow it
                    self._load(preset)
                    return
            self.sim.update_params(**changes)
        except PresetError as exc:
            self._send("failed", ("parameter", str(exc)))
            return
        self._send("applied", self.sim.preset)
        if self.probe is not None and not self.probe.update_params(changes):
            self.probe = None
        if "landscape_params" in changes:
            self._analyse()
        if set(changes) & {"landscape_params", "temperature", "kind", "lr", "batch_size",
                           "momentum", "noise_scale", "noise"}:
            self._reset_measure()  # a new invariant measure: pool afresh
            if self.sim.structure is not None and "landscape_params" not in changes:
                self._escapes_restart_due = True
                equivalent = equivalent_langevin(self.sim.preset)
                self.structure = self.structure.at(*equivalent)
                self.sim.structure = self.structure

    def _restart_escapes_if_due(self) -> None:
        if self._escapes_restart_due and self.sim is not None:
            self.sim.restart_escapes()
        self._escapes_restart_due = False

    @staticmethod
    def _structure_of(sim: Simulation) -> tuple[Structure | None, str]:
        """The landscape's structure, or None and why; raises :class:`StructureError` only
        when the landscape is finite nowhere in its box."""
        try:
            return analyse(sim.preset, resolution=256, sim=sim), ""
        except StructureError:
            raise
        except Exception as exc:  # noqa: BLE001 - analysis is optional decoration
            return None, f"{type(exc).__name__}: {exc}"

    def _analyse(self) -> None:
        try:
            structure, problem = self._structure_of(self.sim)
        except StructureError as exc:
            structure, problem = None, str(exc)
        self._attach(structure, problem)

    def _attach(self, structure: Structure | None, problem: str) -> None:
        self.structure = structure
        if structure is None:
            self._send("failed", ("structure analysis", problem))
            return
        self.sim.attach_structure(structure)  # basins and escape events from now on
        self._escapes_at = 0.0

    def _load(self, preset: Preset) -> None:
        self._send("busy", f"loading {preset.name!r}: a landscape's first use compiles its "
                           "step kernel (a few seconds)…")
        try:
            sim = Simulation(preset)
            sim.compile(escapes=True)  # here, not on the first Play; basins come next
            # a landscape finite nowhere in its box is refused here, before it replaces the
            # running session (any other analysis failure only costs the basins)
            structure, problem = self._structure_of(sim)
        except StructureError as exc:
            self._send("failed", ("load", f"{preset.source}: landscape: {exc}"))
            return
        except (PresetError, ValueError) as exc:
            self._send("failed", ("load", str(exc)))
            return
        self.sim = sim
        self.probe = None
        self._escapes_restart_due = False
        self.generation += 1
        self._rate = self._chunk_seconds = 0.0
        self._attach(structure, problem)
        self._reset_measure()
        self._send("loaded", (self._state(sim), sim.preset))

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
            if self.probe is not None:
                self.probe.reset()

    def _cmd_probe(self, x: float, y: float) -> None:
        """Follow one particle from (x, y) with the ensemble's dynamics, beside it."""
        if self.sim is None:
            return
        from .probe import Probe
        try:
            self.probe = Probe(self.sim.preset, (x, y), self.structure, self.sim.step)
        except (PresetError, ValueError) as exc:
            self.probe = None
            self._send("failed", ("follow a particle", str(exc)))

    def _cmd_rung(self, rung: int) -> None:
        self.rung = max(0, int(rung))

    def _cmd_probe_clear(self) -> None:
        self.probe = None

    def _cmd_seed(self, seed: int) -> None:
        if self.sim is not None:
            self._load(self.sim.preset.with_changes(ensemble={"seed": int(seed)}))

    def _cmd_export(self, path: str, float32: bool = False, every: int = 1) -> None:
        """The trajectory as NPZ or CSV with its JSON sidecar (:func:`engine.api.summary`),
        published together like ``python -m engine run --out``.  ``every`` keeps every k-th
        recorded frame of the per-particle arrays (the last one always); ``float32`` stores
        their floating-point values in single precision (half the size)."""
        if self.sim is None:
            return
        import uuid

        from engine.api import summary
        from engine.export import csv_bytes, npz_bytes, prepare_output, publish_pair
        target = Path(path)
        try:
            folder = target.parent if str(target.parent) else Path(".")
            if not folder.is_dir():  # the window writes into a folder that its dialog showed
                raise FileNotFoundError(f"directory {folder} does not exist")
            target = prepare_output(target)
            arrays = thinned_trajectory(self.sim.trajectory_arrays(), int(every), bool(float32))
            run_id = uuid.uuid4().hex
            arrays["run_id"] = np.array(run_id)
            data = csv_bytes(arrays) if target.suffix == ".csv" else npz_bytes(arrays)
            info = {"run_id": run_id, "file": target.name, **summary(self.sim),
                    "export": {"every": int(every), "float32": bool(float32),
                               "frames": int(len(arrays["steps"]))}}
            publish_pair(target, data, info)
        except Exception as exc:  # noqa: BLE001 - reported to the user, session untouched
            self._send("failed", ("export", f"{target}: {exc}"))
            return
        self._send("exported", str(target))


def thinned_trajectory(arrays: dict[str, np.ndarray], every: int = 1,
                       float32: bool = False) -> dict[str, np.ndarray]:
    """``arrays`` of :meth:`Simulation.trajectory_arrays` with the per-frame arrays (those
    whose first axis is the recorded steps) cut to every ``every``-th frame, the last frame
    kept, and their floats (and the series') in float32 when ``float32``.  Events, the preset
    and counts stay as they are."""
    steps = np.asarray(arrays["steps"])
    frames = steps.shape[0]
    keep = np.arange(0, frames, max(1, every))
    if frames and keep[-1] != frames - 1:
        keep = np.append(keep, frames - 1)
    out = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if key not in ("events", "events_total") and value.ndim and value.shape[0] == frames \
                and not key.startswith("series_"):
            value = value[keep]
        if float32 and value.dtype == np.float64:
            value = value.astype(np.float32)
        out[key] = value
    return out



STOP_FLUSH = 2.0  # s the engine waits, when stopping, for its last messages to be written

# how a frame's structure travels (the grids weigh about 1 MB pickled)
NEW, UNCHANGED, SAME_GRIDS = "new", "unchanged", "same grids"
GRIDS = ("grid_x", "grid_y", "values", "basins")


def serve(preset: Preset, commands, consumed, stop, connection) -> None:
    """Entry point of the engine process: an :class:`EngineLoop` whose messages go down
    ``connection`` (a pipe's sending end).  A frame travels as ``(bundle, how)``: ``how`` is
    ``UNCHANGED`` (structure stripped: the last one stands), ``SAME_GRIDS`` (a new temperature:
    the grids stripped, the last ones stand) or ``NEW``."""
    last_structure: list = [None]
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def transmit(kind: str, payload) -> None:
        if kind == "frame":
            structure, last = payload.structure, last_structure[0]
            last_structure[0] = structure
            if structure is last:
                payload = (replace(payload, structure=None), UNCHANGED)
            elif (structure is not None and last is not None
                  and all(getattr(structure, grid) is getattr(last, grid) for grid in GRIDS)):
                # the same landscape at a new temperature (Structure.at): its grids stay behind
                light = replace(structure, **{grid: None for grid in GRIDS})
                payload = (replace(payload, structure=light), SAME_GRIDS)
            else:
                payload = (payload, NEW)
        connection.send((kind, payload))

    def sender() -> None:
        """Writes the messages in order.  The loop does not wait on the pipe: a frame of 10⁴
        positions fills it several times over, and each refill waits for the window's reader
        thread to get the GIL from a painting GUI thread."""
        try:
            while (message := outbox.get()) is not None:
                transmit(*message)
        except (BrokenPipeError, EOFError, ConnectionResetError, OSError):
            stop.set()  # the window is gone
        finally:
            # closed here, not by the loop: closing under a blocked write made that write
            # fail later on a missing handle (a window that reads nothing, then drains)
            connection.close()

    def send(kind: str, payload) -> None:
        outbox.put((kind, payload))  # a bundle holds copies only: the loop may step on

    parent = os.getppid()

    def exit_with_parent() -> None:  # a killed window must not leave an engine spinning
        while not stop.is_set():
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(1.0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    writer = threading.Thread(target=sender, name="engine-sender", daemon=True)
    writer.start()
    try:
        EngineLoop(preset, commands, consumed, stop, send).run()
    finally:
        outbox.put(None)
        # a writer still blocked after this (a window that reads nothing) ends with the process
        writer.join(STOP_FLUSH)
