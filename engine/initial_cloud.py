"""Where the particles of a run start: the preset's initial cloud, drawn from each particle's own
random stream (so changing N never moves the other particles)."""
from __future__ import annotations

import numpy as np

from .preset_resources import PURPOSE_INIT
from .presets import Preset
from .rng import ZIGGURAT_F, ZIGGURAT_X, draw_normals, draw_uniforms, particle_states


def initial_positions(preset: Preset, bounds: np.ndarray, first: int, count: int) -> np.ndarray:
    """``(count, 2)`` starting positions of particles ``first … first + count − 1``: uniform in
    ``bounds`` with ``ensemble.init_uniform``, else normal around ``init_mean`` with
    ``init_std`` per axis (clipped into the bounds unless the boundary is ``none``)."""
    e = preset.ensemble
    states = particle_states(e.seed, first, count, PURPOSE_INIT)
    lo = bounds[[0, 2]]
    hi = bounds[[1, 3]]
    if e.init_uniform:
        return lo + draw_uniforms(states, 2) * (hi - lo)
    z = draw_normals(states, 2, ZIGGURAT_X, ZIGGURAT_F)
    pos = np.asarray(e.init_mean) + z * np.asarray(e.init_std)
    if preset.landscape.boundary != "none":
        pos = np.clip(pos, lo, hi)
    return pos
