"""Persistence of a sweep: one part per finished point, merged into an xarray Dataset.

While a sweep runs, every finished point is written at once, atomically, as
``OUT.parts/p<index>.json`` beside the output (JSON keeps floats exactly).  ``manifest.json``
there records what defines the points (preset, axes, seeds); the same command after a crash or
Ctrl-C finds the parts of the same sweep and runs only the missing points, and a folder of
another sweep is refused rather than mixed in.  At the end the parts are merged in point order
into one :class:`xarray.Dataset` (so the merged dataset does not depend on the order points
finished in) and written to ``OUT`` — netCDF through h5netcdf for ``.nc``, Zarr for ``.zarr`` —
atomically; the parts folder is removed when every point succeeded.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from ..export import atomic_write_text, prepare_output
from ..presets import PresetError
from .grid import SEED_DIM, Sweep, base_seed, point_seed, seed_key
from .point import STATE_VARS, TRANSITION_VARS

SUFFIXES = (".nc", ".zarr")
TRANSITION_DIM = "transition"
STATE_DIM = "state"
# the only variables that differ between identical sweeps
NOT_REPRODUCIBLE = ("wall_time_s", "cpu_time_s")


def parts_folder(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix not in SUFFIXES:
        raise PresetError("--out", str(out), "a grid sweep writes .nc (netCDF) or .zarr")
    prepare_output(out)  # folder created and writable, leftovers of a killed export removed
    return out


class PartStore:
    """The parts folder of one sweep (module docstring)."""

    def __init__(self, out: str | Path, sweep: Sweep):
        self.folder = parts_folder(out)
        self.sweep = sweep
        self.manifest = sweep.manifest_json()

    def open(self) -> dict[int, dict]:
        """Create the folder or check it holds this sweep; returns the points already done."""
        manifest = self.folder / "manifest.json"
        if self.folder.exists():
            try:
                found = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = None
            if found != json.loads(self.manifest):
                raise PresetError(str(self.folder), "", "holds the parts of another sweep (other "
                                  "preset, grid or seeds): remove it or choose another --out")
        else:
            self.folder.mkdir(parents=True)
            atomic_write_text(manifest, self.manifest + "\n")
        for leftover in self.folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)  # a part whose write was killed
        done = {}
        for path in sorted(self.folder.glob("p*.json")):
            try:
                index = int(path.stem[1:])
                part = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # unreadable: run that point again
                continue
            if 0 <= index < self.sweep.size and part.get("index") == index:
                done[index] = part["result"]
        return done

    def write(self, index: int, result: dict) -> None:
        text = json.dumps({"index": index, "result": _jsonable(result)}, allow_nan=False)
        atomic_write_text(self.folder / f"p{index:09d}.json", text + "\n")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _float(value) -> float:
    return math.nan if value is None else float(value)


def versions() -> dict:
    out = {}
    for name in ("ergoscope", "numpy", "numba", "dask", "distributed", "xarray"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def to_dataset(sweep: Sweep, results: dict[int, dict], errors: dict[int, str] | None = None):
    """Merge point results (index → :func:`engine.sweep.point.run_point`'s dict) into a
    Dataset with one dimension per axis plus ``seed`` (module docstring of the package)."""
    import xarray as xr

    dims, shape = sweep.dims, sweep.shape
    coords = {}
    for axis in sweep.axes:
        if len(axis.keys) == 1:
            coords[axis.name] = (axis.name, np.asarray(axis.column(axis.keys[0])))
        else:
            coords[axis.name] = (axis.name, np.arange(len(axis)))
            for key in axis.keys:
                coords[key] = (axis.name, np.asarray(axis.column(key)))
    coords[SEED_DIM] = (SEED_DIM, np.arange(sweep.seeds))
    pairs = sorted({(t["from"], t["to"]) for r in results.values() for t in r["transitions"]})
    n_states = max([len(r["states"]["occupation"]) for r in results.values()] + [0])
    coords["transition_from"] = (TRANSITION_DIM, np.array([p[0] for p in pairs], np.int64))
    coords["transition_to"] = (TRANSITION_DIM, np.array([p[1] for p in pairs], np.int64))
    coords[STATE_DIM] = (STATE_DIM, np.arange(n_states))

    size = sweep.size
    index = np.arange(size, dtype=np.int64)
    base = base_seed(sweep.preset)
    data = {"point_index": index, "point_seed": np.array([point_seed(base, i) for i in index],
                                                         dtype=np.int64),
            "completed": np.zeros(size, dtype=bool)}
    scalars = sweep.scalars
    flat = {name: np.full(size, np.nan) for name in scalars + NOT_REPRODUCIBLE}
    per_pair = {name: np.full((size, len(pairs)), np.nan) for name in TRANSITION_VARS}
    per_state = {name: np.full((size, n_states), np.nan) for name in STATE_VARS}
    column = {pair: j for j, pair in enumerate(pairs)}
    for i, result in results.items():
        data["completed"][i] = True
        for name in scalars:
            flat[name][i] = _float(result["scalars"].get(name))
        for name in NOT_REPRODUCIBLE:
            flat[name][i] = _float(result.get(name))
        for t in result["transitions"]:
            j = column[(t["from"], t["to"])]
            for name in TRANSITION_VARS:
                per_pair[name][i, j] = _float(t.get(name))
        for name in STATE_VARS:
            values = result["states"].get(name, [])
            per_state[name][i, :len(values)] = [_float(v) for v in values]
    variables = {name: (dims, array.reshape(shape)) for name, array in data.items()}
    variables.update({name: (dims, array.reshape(shape)) for name, array in flat.items()})
    variables.update({name: (dims + (TRANSITION_DIM,), a.reshape(shape + (len(pairs),)))
                      for name, a in per_pair.items()})
    variables.update({name: (dims + (STATE_DIM,), a.reshape(shape + (n_states,)))
                      for name, a in per_state.items()})
    manifest = sweep.manifest()
    attrs = {"title": f"ErgoScope sweep of {sweep.preset.name}",
             "preset_toml": manifest["preset"],
             "grid": json.dumps(manifest["axes"]), "seeds": sweep.seeds,
             "base_seed": base,
             "seeding": f"{seed_key(sweep.preset)} of point i = SeedSequence([base_seed, i]) "
                        "generate_state(1, uint64) >> 1; i = C-order index over the dims",
             "versions": json.dumps(versions(), sort_keys=True),
             "points": size, "points_completed": int(data["completed"].sum()),
             "converged_tol": sweep.converged_tol,
             "not_reproducible": ",".join(NOT_REPRODUCIBLE)}
    if errors:
        attrs["failed_points"] = json.dumps({str(k): v for k, v in sorted(errors.items())})
    ds = xr.Dataset(variables, coords=coords, attrs=attrs)
    for name, unit in (("mfpt_steps", "steps"), ("kramers_mfpt_steps", "steps"),
                       ("wall_time_s", "s"), ("cpu_time_s", "s"),
                       ("first_passage_mfpt_steps", "steps")):
        if name in ds:
            ds[name].attrs["units"] = unit
    if "converged" in ds:
        ds["converged"].attrs["description"] = "converged_fraction >= 0.5"
        ds["converged_fraction"].attrs["description"] = (
            "fraction of live particles whose final gradient norm <= converged_tol")
    return ds


def write_dataset(ds, out: str | Path) -> None:
    """Write ``ds`` to ``out`` (.nc via h5netcdf, .zarr) so that a reader never sees half of
    it: a temporary beside it, then a rename."""
    out = Path(out)
    directory = out.parent if str(out.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=directory))
    try:
        if out.suffix == ".nc":
            target = tmp / out.name
            ds.to_netcdf(target, engine="h5netcdf")
            os.replace(target, out)
        else:
            target = tmp / out.name
            ds.to_zarr(target, mode="w", zarr_format=2, consolidated=True)
            old = None
            if out.exists():
                old = tmp / "old"
                os.replace(out, old)
            os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_dataset(path: str | Path):
    """Read a sweep written by :func:`write_dataset` (loaded into memory)."""
    import xarray as xr

    path = Path(path)
    if path.suffix == ".zarr":
        with xr.open_zarr(path, consolidated=True) as ds:
            return ds.load()
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def tidy_rows(ds) -> tuple[list[str], list[list]]:
    """One row per point: its coordinates, seed, scalars, and per transition / state the
    variables as ``<name>_<from>to<to>`` / ``<name>_<state>`` columns."""
    dims = [d for d in ds["completed"].dims]
    coord_names = [c for c in ds.coords if set(ds[c].dims) <= set(dims) and ds[c].dims]
    scalars = [name for name in ds.data_vars if ds[name].dims == ds["completed"].dims
               and name not in ("point_index", "point_seed", "completed")
               and name not in NOT_REPRODUCIBLE]
    columns = coord_names + ["point_index", "point_seed", "completed"] + scalars \
        + list(NOT_REPRODUCIBLE)
    pairs = list(zip(ds["transition_from"].values.tolist(), ds["transition_to"].values.tolist()))
    for name in TRANSITION_VARS:
        columns += [f"{name}_{a}to{b}" for a, b in pairs]
    for name in STATE_VARS:
        columns += [f"{name}_{s}" for s in ds[STATE_DIM].values.tolist()]
    shape = ds["completed"].shape
    rows = []
    for position in np.ndindex(*shape):
        where = dict(zip(dims, position))
        row = []
        for c in coord_names:
            row.append(ds[c].isel({d: where[d] for d in ds[c].dims}).item())
        for name in ["point_index", "point_seed", "completed"] + scalars \
                + list(NOT_REPRODUCIBLE):
            row.append(ds[name].values[position].item())
        for name in TRANSITION_VARS:
            row += ds[name].values[position].tolist()
        for name in STATE_VARS:
            row += ds[name].values[position].tolist()
        rows.append(row)
    return columns, rows


def write_csv(ds, path: str | Path) -> None:
    """The tidy table of :func:`tidy_rows`, atomically (NaN as an empty cell)."""
    columns, rows = tidy_rows(ds)

    def cell(v) -> str:
        if isinstance(v, bool):
            return str(int(v))
        if isinstance(v, float):
            return "" if not math.isfinite(v) else repr(v)
        return str(v)

    lines = [",".join(columns)] + [",".join(cell(v) for v in row) for row in rows]
    prepare_output(path)
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
