"""ErgoScope engine: SGD / Langevin ensembles on 2D landscapes, their diagnostics, and the CNN lab.

No Qt here.  Typical use::

    from engine import load_preset, Simulation
    sim = Simulation(load_preset("presets/double_well_kramers.toml"))
    sim.advance(10_000)
    frame = sim.snapshot()          # read-only numpy arrays

``load_preset`` is :func:`engine.presets.load`; both names are imported on first use, so
``import engine`` alone stays light.
"""
from __future__ import annotations

__all__ = ["load_preset", "Simulation", "PresetError"]


def __getattr__(name: str):
    if name == "load_preset":
        from .presets import load
        return load
    if name == "PresetError":
        from .presets import PresetError
        return PresetError
    if name == "Simulation":
        from .simulation import Simulation
        return Simulation
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
