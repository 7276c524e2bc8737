"""The engine loop without a window: commands in, frames out (an instant consumer)."""
import multiprocessing
from contextlib import contextmanager
import queue
import threading
import time

import numpy as np

from app.engine_loop import DENSITY_THRESHOLD, STOP_FLUSH, EngineLoop, serve
from engine.presets import load
from engine.simulation import Simulation
from tests.conftest import ROOT


@contextmanager
def _running(loop: EngineLoop, stop: threading.Event):
    """``loop.run`` on a thread for the ``with`` block; stopped and joined after it."""
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def _wait(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_temperature_change_restarts_escape_statistics_after_the_frame_showing_it():
    # the restart (≈ 14 ms at 10⁶ particles) waits until the frame answering the edit is out,
    # but comes before the next step: the statistics start exactly at the step of the edit
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": 3000}, run={"record_every": 50})
    messages, commands, consumed, stop = [], queue.Queue(), threading.Event(), threading.Event()

    def send(kind, payload):
        messages.append((kind, payload))
        if kind == "frame":
            consumed.set()   # drawn at once

    def after_edit():
        """The frames that follow the engine's acknowledgement of T = 0.25."""
        kinds = list(messages)
        edits = [i for i, (k, p) in enumerate(kinds)
                 if k == "applied" and p.dynamics.temperature == 0.25]
        return [p for k, p in kinds[edits[0]:] if k == "frame"] if edits else []

    loop = EngineLoop(preset, commands, consumed, stop, send)
    with _running(loop, stop):
        commands.put(("play", (True,)))
        _wait(lambda: loop.sim is not None and loop.sim.step >= 300)
        assert loop.sim.escape_start == 0 and loop.sim.event_count() > 0
        commands.put(("set", ("temperature", 0.25)))
        _wait(lambda: any(f.escapes is not None for f in after_edit()))
    sim = loop.sim
    first = after_edit()[0]
    assert sim.escape_start == first.state.step >= 300
    events = sim.events()
    assert len(events) == 0 or events[:, 0].min() > sim.escape_start


def test_frames_carry_no_preset_and_each_change_is_reported_once():
    # the window keeps the preset in one place (app.preset_controller): the engine sends it
    # once per load and once per applied edit, never with a frame
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": 500})
    messages, commands, consumed, stop = [], queue.Queue(), threading.Event(), threading.Event()

    def send(kind, payload):
        messages.append((kind, payload))
        if kind == "frame":
            consumed.set()

    def count(kind):
        return sum(k == kind for k, _ in list(messages))

    loop = EngineLoop(preset, commands, consumed, stop, send)
    with _running(loop, stop):
        commands.put(("play", (True,)))
        _wait(lambda: count("frame") >= 5)
        commands.put(("set", ("temperature", 0.3)))
        _wait(lambda: count("applied") == 1)
        commands.put(("set", ("lr", 0.002)))
        _wait(lambda: count("applied") == 2)
        frames_then = count("frame")
        _wait(lambda: count("frame") >= frames_then + 5)
    loaded = [p for k, p in messages if k == "loaded"]
    applied = [p for k, p in messages if k == "applied"]
    assert len(loaded) == 1 and loaded[0][1] == preset
    assert [p.dynamics.temperature for p in applied] == [0.3, 0.3]
    assert applied[1].dynamics.lr == 0.002 and applied[-1] == loop.sim.preset
    for kind, payload in messages:
        if kind == "frame":
            assert not hasattr(payload.frame, "preset") and not hasattr(payload.state, "preset")


def test_the_engine_stops_promptly_while_the_window_reads_no_frame():
    # a frame of 2·10⁴ positions (320 kB) is several pipe buffers: the loop hands it to its
    # sender thread instead of waiting for the window's reader, so a window that reads
    # nothing (busy, or hung) holds up neither the loop nor its shutdown
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": DENSITY_THRESHOLD})
    receive, transmit = multiprocessing.Pipe(duplex=False)
    commands, consumed, stop = queue.Queue(), threading.Event(), threading.Event()
    thread = threading.Thread(target=serve, args=(preset, commands, consumed, stop, transmit),
                              daemon=True)
    thread.start()
    try:
        kind = None
        while kind != "loaded":      # the first frame follows at once; it stays unread
            assert receive.poll(180), "no message from the engine"
            kind, _ = receive.recv()
        time.sleep(1.0)
        stop.set()
        thread.join(STOP_FLUSH + 5.0)
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
        try:    # read until the sender has written everything and closed its end
            while receive.poll(30):
                receive.recv()
        except EOFError:
            pass
        else:
            raise AssertionError("the engine's sender never closed its end of the pipe")


def test_a_step_too_long_to_split_is_shown_before_a_second_one_makes_the_frame_late(
        monkeypatch):
    # at 10⁶ particles one step takes 12–17 ms and a chunk cannot be cut shorter: waiting for
    # a second step before the progress frame made frames 24–34 ms apart (under 30 fps)
    original = Simulation.advance

    def slow(self, n_steps, **kwargs):
        time.sleep(0.02 * n_steps)     # 20 ms a step: two of them pass 1/30 s
        return original(self, n_steps, **kwargs)

    monkeypatch.setattr(Simulation, "advance", slow)
    preset = load(ROOT / "presets" / "double_well_kramers.toml").with_changes(
        ensemble={"particles": 200})
    steps, commands, consumed, stop = [], queue.Queue(), threading.Event(), threading.Event()

    def send(kind, payload):
        if kind == "frame":
            steps.append(payload.state.step)
            consumed.set()   # drawn at once

    loop = EngineLoop(preset, commands, consumed, stop, send)
    with _running(loop, stop):
        commands.put(("speed", (10,)))
        commands.put(("play", (True,)))
        _wait(lambda: len(steps) > 0 and steps[-1] >= 150)
    gaps = np.diff([s for s in steps if s >= 20])    # after the rate estimate has settled
    assert np.median(gaps) == 1, gaps
