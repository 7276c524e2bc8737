"""Checkpoint files: a run's complete state on disk, to resume it bit for bit (headless).

:meth:`engine.simulation.Simulation.checkpoint` gives the state as a dict of its declared fields;
here it is written as one uncompressed NPZ (atomically: :func:`engine.export.write_npz`) and read
back with ``allow_pickle=False`` — a checkpoint file never runs code.  Arrays are stored as
arrays; everything else (numbers, tuples, the escape log's and the history's own fields) as a
JSON tree in the ``__meta__`` entry whose leaves name the arrays.  The structure analysis is not
stored: it is a pure function of the preset and the landscape parameters, so a resumed run
analyses again at the same resolution (the core sets themselves are stored).

A file written by another engine version or another checkpoint format, or a corrupt one, is
refused with a :class:`CheckpointError` (a ``ValueError``) whose message is one line naming the
file.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .diagnostics.escapes import EscapeLog
from .history import History
from .simulation import Simulation
from .state import CHECKPOINT_VERSION

FORMAT = "ergoscope-checkpoint"
_OBJECTS = {"EscapeLog": EscapeLog, "History": History}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed (one line, naming the file)."""


def engine_version() -> str:
    try:
        from importlib.metadata import version
        return version("ergoscope")
    except Exception:  # noqa: BLE001 - a source tree without installed metadata
        return "unknown"


# -- encoding -------------------------------------------------------------------------------------
def _encode(value, key: str, arrays: dict) -> object:
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, (bool, np.bool_)):
        return {"bool": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"float": repr(float(value))}  # repr round-trips every float, nan and inf too
    if value is None or isinstance(value, str):
        return {"value": value}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        if value and all(type(v) is float for v in value):
            arrays[key] = np.asarray(value, dtype=np.float64)
            return {kind + "_of_floats": key}
        if value and all(type(v) is int for v in value):
            arrays[key] = np.asarray(value, dtype=np.int64)
            return {kind + "_of_ints": key}
        return {kind: [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{key}: dict keys must be strings")
        return {"dict": {k: _encode(v, f"{key}.{k}", arrays) for k, v in value.items()}}
    name = type(value).__name__
    if _OBJECTS.get(name) is type(value):
        return {"object": name, "fields": _encode(dict(value.__dict__), key, arrays)}
    raise TypeError(f"{key}: cannot store a {name} in a checkpoint")


def _decode(node, arrays) -> object:
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError("malformed metadata")
    if "object" in node:
        cls = _OBJECTS[node["object"]]
        twin = cls.__new__(cls)
        twin.__dict__ = _decode(node["fields"], arrays)
        return twin
    (tag, payload), = node.items()
    if tag == "array":
        return np.array(arrays[payload])  # a writable copy, not a view into the file
    if tag == "bool":
        return bool(payload)
    if tag == "int":
        return int(payload)
    if tag == "float":
        return float(payload)
    if tag == "value":
        return payload
    if tag in ("list_of_floats", "tuple_of_floats"):
        values = [float(v) for v in arrays[payload]]
        return values if tag == "list_of_floats" else tuple(values)
    if tag in ("list_of_ints", "tuple_of_ints"):
        values = [int(v) for v in arrays[payload]]
        return values if tag == "list_of_ints" else tuple(values)
    if tag in ("list", "tuple"):
        values = [_decode(v, arrays) for v in payload]
        return values if tag == "list" else tuple(values)
    if tag == "dict":
        return {k: _decode(v, arrays) for k, v in payload.items()}
    raise ValueError(f"unknown entry {tag!r}")


# -- files ----------------------------------------------------------------------------------------
def save_checkpoint(sim: Simulation, path: str | Path) -> None:
    """Write ``sim``'s complete state to ``path`` (NPZ), atomically."""
    from .export import write_npz
    from .presets import dumps
    state = sim.checkpoint()
    preset = state.pop("preset")
    structure = state.pop("structure")
    arrays: dict[str, np.ndarray] = {}
    fields = {name: _encode(value, name, arrays) for name, value in state.items()}
    meta = {"format": FORMAT, "version": CHECKPOINT_VERSION, "engine": engine_version(),
            "preset": dumps(preset), "source": preset.source, "fields": fields,
            # the analysis is redone on resume, at the resolution of the stored core grids
            "structure_resolution": len(sim._grid_x) if structure is not None else None}
    if any(key.startswith("__") for key in arrays):
        raise ValueError("reserved array name")
    arrays["__meta__"] = np.array(json.dumps(meta))
    write_npz(Path(path), arrays)


def load_checkpoint(path: str | Path) -> Simulation:
    """The simulation a checkpoint file holds, ready to ``advance``; raises
    :class:`CheckpointError` for a file of another version or format, or a corrupt one."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:  # closed even when np.load fails part-way
            with np.load(handle, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("__meta__")[()]))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one kind of error here
        raise CheckpointError(f"{path}: not a readable ErgoScope checkpoint "
                              f"({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an ErgoScope checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION or meta.get("engine") != engine_version():
        raise CheckpointError(
            f"{path}: checkpoint of engine {meta.get('engine')} (format "
            f"{meta.get('version')}); this is engine {engine_version()} (format "
            f"{CHECKPOINT_VERSION}): resume it with the version that wrote it")
    try:
        from .presets import loads
        preset = loads(meta["preset"], str(meta.get("source", path)))
        state = {name: _decode(node, arrays) for name, node in meta["fields"].items()}
        state.update(preset=preset, structure=None)
        sim = Simulation(preset, diagnostics=bool(state.get("diagnostics", True)))
        sim.restore(state)
    except Exception as exc:  # noqa: BLE001 - corrupt contents: refused, never half-resumed
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(exc).__name__}: "
                              f"{_one_line(exc)})") from None
    resolution = meta.get("structure_resolution")
    if resolution:
        from .diagnostics.structure import analyse
        sim.structure = analyse(sim.preset, resolution=int(resolution), sim=sim)
    return sim


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


def advance_with_checkpoints(sim: Simulation, steps: int, path: str | Path, every: int | None,
                             progress: Callable[[int, int], None] | None = None) -> None:
    """``sim.advance(steps)``, writing a checkpoint to ``path`` at every multiple of ``every``
    steps (of the run's own step count, so a resumed run keeps the cadence) and at the end.
    Chunking does not change a run, so this is the same run as one ``advance``."""
    steps = int(steps)
    done = 0
    while done < steps:
        chunk = steps - done
        if every:
            chunk = min(chunk, every - sim.step % every)
        sim.advance(chunk, progress=None if progress is None else
                    (lambda d, _t, base=done: progress(base + d, steps)))
        done += chunk
        if every and sim.step % every == 0 and done < steps:
            save_checkpoint(sim, path)
    save_checkpoint(sim, path)


def resume(path: str | Path, steps: int) -> Simulation:
    """The run of a checkpoint file, its preset's ``run.steps`` set to the total the run will
    have after ``steps`` more (so its export equals that of the uninterrupted run)."""
    sim = load_checkpoint(path)
    sim.preset = replace(sim.preset, run=replace(sim.preset.run, steps=sim.step + int(steps)))
    return sim
