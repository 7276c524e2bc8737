"""Atomic writers for trajectories (DESIGN §9): NPZ, long-format CSV, JSON sidecars."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write text via a temp file in the same folder and a rename; a failure leaves no file."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (strings allowed) as an uncompressed ``.npz``, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    _atomic_write_bytes(Path(path), buffer.getvalue())


def write_csv(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Long format: one row per (recorded step, particle) with every per-particle field."""
    steps = np.asarray(arrays["steps"])
    positions = np.asarray(arrays["positions"])
    n_frames, n_particles = positions.shape[:2]
    columns = {"step": np.repeat(steps, n_particles),
               "particle": np.tile(np.arange(n_particles), n_frames),
               "x": positions[..., 0].ravel(), "y": positions[..., 1].ravel()}
    for key in ("loss", "lyapunov", "basin", "ghost_mass", "f_ghost"):
        if key in arrays and np.asarray(arrays[key]).shape[:2] == (n_frames, n_particles):
            columns[key] = np.asarray(arrays[key]).ravel()
    buffer = io.StringIO()
    buffer.write(",".join(columns) + "\n")
    table = np.column_stack([c.astype(np.float64) for c in columns.values()])
    formats = ["%d", "%d"] + ["%.17g"] * (len(columns) - 2)
    if "basin" in columns:
        formats[list(columns).index("basin")] = "%d"
    np.savetxt(buffer, table, fmt=formats, delimiter=",")
    atomic_write_text(Path(path), buffer.getvalue())


def write_json(path: str | Path, data: dict) -> None:
    """Strict JSON (NaN and ±inf become null), written atomically."""
    text = json.dumps(_finite(data), indent=2, default=_json_default, allow_nan=False)
    atomic_write_text(Path(path), text + "\n")


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")
