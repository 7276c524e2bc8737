"""Live parameters: what a running simulation may change between chunks without a restart
(:meth:`engine.simulation.Simulation.update_params`), and the preset such a change gives."""
from __future__ import annotations

from dataclasses import replace

from .presets import Preset, PresetError, preset_from_dict, to_dict

LIVE_PARAMS = ("kind", "lr", "temperature", "batch_size", "momentum", "noise", "noise_scale",
               "particles", "landscape_params", "friction", "beta1", "beta2", "eps",
               "weight_decay")
# live parameters that only steer the steps to come: a record left pending by
# ``advance(defer_record=True)`` is still taken after they change (with the values of its step)
STEP_ONLY_PARAMS = frozenset({"kind", "lr", "temperature", "batch_size", "momentum", "noise",
                              "noise_scale", "friction", "beta1", "beta2", "eps",
                              "weight_decay"})


def preset_with(preset: Preset, **changes) -> Preset:
    """The validated ``preset`` with live parameter ``changes`` (keys in :data:`LIVE_PARAMS`;
    ``landscape_params`` a dict) applied; raises ``PresetError`` for invalid values."""
    unknown = set(changes) - set(LIVE_PARAMS)
    if unknown:
        raise PresetError("update_params", ", ".join(sorted(unknown)), "not a live parameter")
    data = to_dict(preset)
    for key, value in changes.items():
        if key == "particles":
            data["ensemble"]["particles"] = value
        elif key == "landscape_params":
            data["landscape"]["params"] = {**data["landscape"].get("params", {}), **value}
        else:
            data["dynamics"][key] = value
    return replace(preset_from_dict(data, "live parameters"), source=preset.source)
