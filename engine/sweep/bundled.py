"""Sweep files: a preset together with its sweep and its figures (``presets/sweeps/*.toml``).

A sweep file names a preset (relative to itself), the overrides, the grid, the seeds and the
figures drawn from the result, so a bundled phase diagram is one command::

    python -m engine sweep presets/sweeps/zhang_eta.toml --out assets/sweeps/zhang.nc

writes the dataset and, beside it, ``zhang_<figure>.png`` for each ``[[figure]]``.  Options on
the command line add to the file (``--grid`` another dimension, ``--set`` another override;
``--seeds`` replaces its seed count).  Format::

    name = "…"                              # required
    description = "…"
    preset = "PATH.toml"                    # required, relative to this file
    set = ['dynamics.kind="langevin"']      # --set overrides
    grid = ["dynamics.lr=0.005:0.04:8"]     # --grid axes (and/or vary = […], zipped)
    seeds = 2
    converged_tol = 1e-6

    [[figure]]
    name = "converged_fraction"             # the PNG is <out stem>_<name>.png
    kind = "heatmap"                        # heatmap (x, y), curve (x) or arrhenius (x = T)
    x = "dynamics.lr"
    y = "dynamics.temperature"
    var = "converged_fraction"
    log = false                             # log colour / y scale
    transition = 0                          # per-transition variables: which pair
    mark_critical_lr = true                 # a line at GD's critical step 2/λ_max
    contour_ratio = "η/B"                   # labelled contours of x / y
    multiply_by = "dynamics.lr"             # plot var × this grid key (steps → time η·steps)
    title = "…"
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..presets import Preset, PresetError, apply_sets, load, parse_toml, read_text

FIGURE_KINDS = ("heatmap", "curve", "arrhenius")
_TOP_KEYS = {"name", "description", "preset", "set", "grid", "vary", "seeds", "converged_tol",
             "figure"}
_FIGURE_KEYS = {"name", "kind", "x", "y", "var", "log", "transition", "mark_critical_lr",
                "contour_ratio", "multiply_by", "title"}


@dataclass(frozen=True)
class Figure:
    """One ``[[figure]]`` of a sweep file."""
    name: str
    kind: str
    x: str
    y: str | None = None
    var: str = "mfpt_steps"
    log: bool = False
    transition: int = 0
    mark_critical_lr: bool = False
    contour_ratio: str | None = None
    multiply_by: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class SweepFile:
    """A loaded sweep file: the preset with its overrides applied, the sweep's options and
    its figures."""
    path: Path
    name: str
    description: str
    preset: Preset
    grid: tuple[str, ...]
    vary: tuple[str, ...]
    seeds: int
    converged_tol: float | None
    figures: tuple[Figure, ...]


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` is a sweep file (a TOML file with a top-level ``preset`` string) rather
    than a preset."""
    try:
        data = parse_toml(read_text(path), str(path))
    except PresetError:
        return False
    return isinstance(data.get("preset"), str)


def _strings(data: dict, key: str, source: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PresetError(source, key, "must be a list of strings")
    return tuple(value)


def _figure(table, position: int, source: str) -> Figure:
    where = f"figure[{position}]"
    if not isinstance(table, dict):
        raise PresetError(source, where, "must be a table ([[figure]])")
    for key in table:
        if key not in _FIGURE_KEYS:
            raise PresetError(source, f"{where}.{key}",
                              f"unknown key (allowed: {', '.join(sorted(_FIGURE_KEYS))})")
    for key in ("name", "kind", "x"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise PresetError(source, f"{where}.{key}", "required (a string)")
    if table["kind"] not in FIGURE_KINDS:
        raise PresetError(source, f"{where}.kind", f"= {table['kind']!r}: one of "
                                                   f"{', '.join(FIGURE_KINDS)}")
    if table["kind"] == "heatmap" and not isinstance(table.get("y"), str):
        raise PresetError(source, f"{where}.y", "a heatmap needs y (a grid key)")
    if not all(c.isalnum() or c in "_-" for c in table["name"]):
        raise PresetError(source, f"{where}.name", f"= {table['name']!r}: letters, digits, "
                                                   "_ and - only (it names a file)")
    types = {"y": str, "var": str, "log": bool, "transition": int, "mark_critical_lr": bool,
             "contour_ratio": str, "multiply_by": str, "title": str}
    for key, kind in types.items():
        if key in table and (not isinstance(table[key], kind)
                             or (kind is int and isinstance(table[key], bool))):
            raise PresetError(source, f"{where}.{key}", f"= {table[key]!r}: must be a "
                                                        f"{kind.__name__}")
    return Figure(**table)


def load_sweep_file(path: str | Path) -> SweepFile:
    """Read and validate a sweep file; the preset it names is loaded with its overrides."""
    path = Path(path)
    source = str(path)
    data = parse_toml(read_text(path), source)
    for key in data:
        if key not in _TOP_KEYS:
            raise PresetError(source, key, f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")
    for key in ("name", "preset"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PresetError(source, key, "required (a string)")
    preset_path = (path.parent / data["preset"]).resolve()
    preset = apply_sets(load(preset_path), list(_strings(data, "set", source)))
    seeds = data.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise PresetError(source, "seeds", f"= {seeds!r}: must be an integer >= 1")
    tol = data.get("converged_tol")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))):
        raise PresetError(source, "converged_tol", f"= {tol!r}: must be a number")
    figures = data.get("figure", [])
    if not isinstance(figures, list):
        raise PresetError(source, "figure", "must be an array of tables ([[figure]])")
    loaded = tuple(_figure(t, i, source) for i, t in enumerate(figures))
    names = [f.name for f in loaded]
    if len(set(names)) != len(names):
        raise PresetError(source, "figure", "two figures have the same name")
    return SweepFile(path, data["name"], str(data.get("description", "")), preset,
                     _strings(data, "grid", source), _strings(data, "vary", source), seeds,
                     None if tol is None else float(tol), loaded)


def critical_lr(preset: Preset) -> float:
    """GD's critical step 2/λ_max over the landscape's minima (``engine info``'s
    ``gd_stable_below_lr``, the smallest of them)."""
    from ..api import structure_info
    limits = [m["gd_stable_below_lr"] for m in structure_info(preset)["minima"]
              if m.get("gd_stable_below_lr") is not None]
    if not limits:
        raise PresetError(preset.source, "landscape", "no minimum with a GD step limit")
    return float(min(limits))


def figure_path(out: str | Path, figure: Figure) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}_{figure.name}.png")


def draw_figures(spec: SweepFile, dataset, out: str | Path) -> list[Path]:
    """Draw every figure of ``spec`` from ``dataset`` (a Dataset or a path) beside ``out``."""
    from .plot import arrhenius_plot, as_dataset, check_names, phase_diagram

    ds = as_dataset(dataset)
    written = []
    for figure in spec.figures:
        target = figure_path(out, figure)
        if figure.kind == "arrhenius":
            written.append(arrhenius_plot(ds, figure.x, target, figure.transition,
                                          title=figure.title))
            continue
        check_names(ds, figure.x, figure.y, figure.var, str(spec.path))
        data, var = ds, figure.var
        if figure.multiply_by is not None:
            check_names(ds, figure.multiply_by, None, figure.var, str(spec.path))
            var = f"{figure.var} × {figure.multiply_by}"
            data = ds.assign({var: ds[figure.var] * ds[figure.multiply_by]})
        marks = {"2/λ_max": critical_lr(spec.preset)} if figure.mark_critical_lr else None
        contours = None
        if figure.contour_ratio is not None:
            contours = (figure.contour_ratio, lambda x, y: np.asarray(x) / np.asarray(y))
        written.append(phase_diagram(data, figure.x, figure.y if figure.kind == "heatmap"
                                     else None, var, target, transition=figure.transition,
                                     log_color=figure.log, marks=marks, title=figure.title,
                                     contours=contours))
    return written
