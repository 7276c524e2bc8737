"""Atomic writers for trajectories (README, "Headless use"): NPZ, long-format CSV, JSON sidecars."""
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


def _temporary_for(path: Path) -> str:
    """A fresh, fsync-ready temporary beside ``path``: ``.<name>.<random>.tmp``."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"{path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; give the usual permissions
    return tmp


def _write_synced(tmp: str, data: bytes) -> None:
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = _temporary_for(path)
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sidecar_of(path: str | Path) -> Path:
    """The JSON summary beside a trajectory file: ``out.npz`` → ``out.npz.json``."""
    path = Path(path)
    return path.with_suffix(path.suffix + ".json")


def prepare_output(path: str | Path) -> Path:
    """Check an output path before a run starts: create its folder, check it is writable, and
    remove what an interrupted export of the same path left behind (its temporaries, and a
    sidecar whose trajectory file is missing).  Errors name the path."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{path}: cannot create the folder {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: the folder {directory} is not writable")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file name")
    sidecar = sidecar_of(path)
    for name in (path.name, sidecar.name):
        for leftover in directory.glob(f".{glob_escape(name)}.*.tmp"):
            leftover.unlink(missing_ok=True)
    if sidecar.exists() and not path.exists():
        sidecar.unlink(missing_ok=True)  # the half of a pair an interrupted publish left
    return path


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def publish_pair(path: str | Path, data: bytes, summary: dict) -> None:
    """Publish a trajectory file and its JSON sidecar so that, whenever the process is killed,
    the trajectory file never exists without its own sidecar beside it.

    Both are written to temporaries first; then the old trajectory file is removed, the new
    sidecar renamed into place, and the new trajectory file last.  A kill can leave a sidecar
    alone (never a trajectory file with a stale or missing sidecar); :func:`prepare_output`
    removes it, and the temporaries, before the next run."""
    path = Path(path)
    sidecar = sidecar_of(path)
    text = json.dumps(_finite(summary), indent=2, default=_json_default, allow_nan=False) + "\n"
    tmp_data = tmp_json = None
    try:
        tmp_data = _temporary_for(path)
        _write_synced(tmp_data, data)
        tmp_json = _temporary_for(sidecar)
        _write_synced(tmp_json, text.encode("utf-8"))
        path.unlink(missing_ok=True)
        os.replace(tmp_json, sidecar)
        tmp_json = None
        os.replace(tmp_data, path)
        tmp_data = None
        _sync_folder(path.parent if str(path.parent) else Path("."))
    finally:
        for tmp in (tmp_data, tmp_json):
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


def _sync_folder(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders that cannot be opened (some platforms)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` (strings allowed) as the bytes of an uncompressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def csv_bytes(arrays: dict[str, np.ndarray]) -> bytes:
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
    return buffer.getvalue().encode("utf-8")


def compare_csv_bytes(groups: list[dict[str, np.ndarray]]) -> bytes:
    """The long format of :func:`csv_bytes` for a side-by-side run: each configuration's rows
    after the first column ``configuration`` (its index in ``[[compare]]``)."""
    lines: list[bytes] = []
    for index, arrays in enumerate(groups):
        header, _, rows = csv_bytes(arrays).partition(b"\n")
        if not lines:
            lines.append(b"configuration," + header + b"\n")
        prefix = f"{index},".encode()
        lines.extend(prefix + row + b"\n" for row in rows.splitlines())
    return b"".join(lines)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text via a temp file in the same folder and a rename; a failure leaves no file."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (strings allowed) as an uncompressed ``.npz``, atomically."""
    _atomic_write_bytes(Path(path), npz_bytes(arrays))


def write_csv(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """The long-format table of :func:`csv_bytes`, atomically."""
    _atomic_write_bytes(Path(path), csv_bytes(arrays))


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
