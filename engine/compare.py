"""Side by side: the ``[[compare]]`` configurations of a preset run together.

Every configuration is the base preset with a few dynamics keys overridden
(:func:`engine.presets.configuration`), so all of them share the landscape, the ensemble seed
and hence the initial cloud and every particle's noise stream: differences between their clouds
come from the dynamics alone.  :class:`Comparison` holds one :class:`Simulation` per
configuration and advances them in lockstep; :func:`run_comparison` is ``engine run`` on such a
preset, writing one file whose arrays are grouped per configuration (docs/contracts.md § 3).
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from .presets import Preset, PresetError, configurations, dumps
from .simulation import Simulation, equivalent_langevin

GROUP = "cfg{index}/"  # the prefix of configuration ``index``'s arrays in a comparison's NPZ
LOCKSTEP_STEPS = 1000  # steps each configuration takes before the next one catches up


class Comparison:
    """One simulation per configuration of ``preset`` (which must have ``[[compare]]``).

    ``escapes`` analyses the landscape once and attaches its structure to every simulation at
    that configuration's equivalent Langevin temperature and step, so each tracks basins and
    escape events against its own Eyring–Kramers prediction.
    """

    def __init__(self, preset: Preset, escapes: bool = True):
        if not preset.compare:
            raise PresetError(preset.source, "compare", "this preset has no [[compare]] tables")
        self.preset = preset
        self.labels = tuple(spec.label for spec in preset.compare)
        self.simulations = tuple(Simulation(p) for p in configurations(preset))
        if escapes:
            from .diagnostics.structure import StructureError, analyse
            first = self.simulations[0]
            try:
                structure = analyse(first.preset, sim=first)
            except StructureError as exc:
                raise PresetError(preset.source, "landscape", str(exc)) from None
            for sim in self.simulations:
                sim.attach_structure(structure.at(*equivalent_langevin(sim.preset)))

    @property
    def step(self) -> int:
        return min(sim.step for sim in self.simulations)

    def advance(self, steps: int,
                progress: Callable[[int, int], None] | None = None) -> None:
        """Advance every configuration by ``steps``, each at most :data:`LOCKSTEP_STEPS` ahead
        of the others (a run is a pure function of its preset: the cut changes no bit)."""
        done = 0
        while done < steps:
            chunk = min(LOCKSTEP_STEPS, steps - done)
            for sim in self.simulations:
                sim.advance(chunk)
            done += chunk
            if progress is not None:
                progress(done, steps)
        if progress is not None and steps == 0:
            progress(0, 0)

    def trajectory_arrays(self) -> dict[str, np.ndarray]:
        """Each configuration's export arrays under ``cfg<i>/``, with ``compare_labels (K,)``
        and ``preset`` (the comparison preset's TOML)."""
        arrays: dict[str, np.ndarray] = {"compare_labels": np.array(self.labels),
                                         "preset": np.array(dumps(self.preset))}
        for index, sim in enumerate(self.simulations):
            prefix = GROUP.format(index=index)
            arrays.update({prefix + key: value for key, value in sim.trajectory_arrays().items()})
        return arrays

    def summary(self) -> dict:
        """The JSON sidecar: the comparison's name and each configuration's
        :func:`engine.api.summary` with its label."""
        from .api import summary
        return {"preset": self.preset.name, "steps": self.step,
                "configurations": [{"label": label, "group": GROUP.format(index=i),
                                    **summary(sim)}
                                   for i, (label, sim) in enumerate(zip(self.labels,
                                                                        self.simulations))]}


def run_comparison(preset: Preset, out: str | Path | None = None, steps: int | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   escapes: bool = True) -> Comparison:
    """:func:`engine.api.run_preset` for a preset with ``[[compare]]``: every configuration for
    ``steps`` (default ``preset.run.steps``); ``out`` (``.npz``: the arrays grouped per
    configuration; ``.csv``: the long format with a ``configuration`` column) and its JSON
    sidecar are published together."""
    from .export import compare_csv_bytes, npz_bytes, prepare_output, publish_pair
    if out is not None:
        out = prepare_output(out)
        if out.suffix not in (".npz", ".csv"):
            raise ValueError(f"{out}: the output must end in .npz or .csv")
    comparison = Comparison(preset, escapes=escapes)
    comparison.advance(preset.run.steps if steps is None else int(steps), progress)
    if out is not None:
        run_id = uuid.uuid4().hex
        if out.suffix == ".csv":
            data = compare_csv_bytes([sim.trajectory_arrays() for sim in comparison.simulations])
        else:
            arrays = comparison.trajectory_arrays()
            arrays["run_id"] = np.array(run_id)
            data = npz_bytes(arrays)
        publish_pair(out, data, {"run_id": run_id, "file": out.name, **comparison.summary()})
    return comparison
