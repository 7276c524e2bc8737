"""What a run derives from its preset alone: the compiled landscape, its box and the noise
data of the finite-sum model (none of it is run state: a checkpoint re-derives it)."""
from __future__ import annotations

import numpy as np

from .landscapes import BUILTINS, Landscape, compile_expression
from .presets import DynamicsSpec, Preset, PresetError

# the purposes of the per-particle random streams (engine.rng.particle_states); engine.ghost_
# simulation and engine.kind_simulations use 3 and 4
PURPOSE_STEPS, PURPOSE_INIT, PURPOSE_DATA = 0, 1, 2
_LANDSCAPES: dict[tuple, Landscape] = {}


def landscape_for(preset: Preset) -> Landscape:
    """The compiled landscape of a preset (expressions compiled once per text and parameter set)."""
    spec = preset.landscape
    if spec.builtin == "sine_classifier":
        from .ghost import classifier_for
        try:
            return classifier_for(spec.params, preset.dynamics.dataset_size, preset.ensemble.seed)
        except ValueError as exc:
            raise PresetError(preset.source, "landscape.params", str(exc)) from None
    if spec.builtin is not None:
        return BUILTINS[spec.builtin]
    key = (spec.expr, tuple(spec.params), spec.max_operations)
    if key not in _LANDSCAPES:
        from .landscapes import ExpressionError
        from .landscapes.expression import MAX_OPERATIONS
        try:
            _LANDSCAPES[key] = compile_expression(spec.expr, spec.params,
                                                  max_operations=spec.max_operations
                                                  or MAX_OPERATIONS)
        except ExpressionError as exc:
            raise PresetError(preset.source, "landscape.expr", str(exc)) from None
    return _LANDSCAPES[key]


def bounds_of(preset: Preset, landscape: Landscape) -> np.ndarray:
    """``[x_lo, x_hi, y_lo, y_hi]`` of the preset, or the landscape's defaults."""
    b = preset.landscape.bounds or landscape.default_bounds
    return np.array([b[0][0], b[0][1], b[1][0], b[1][1]], dtype=np.float64)


def make_dataset(spec: DynamicsSpec, seed: int) -> np.ndarray:
    """The ``n`` noise vectors ``a_i`` (or shifts ``s_i``), shape ``(n, 2)``.

    Centred exactly, and whitened so their population covariance (1/n) equals ``noise_cov``
    exactly; the minibatch noise covariance is then exactly ``σ² Σ (n − B)/(B (n − 1))``.
    """
    n = spec.dataset_size
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, PURPOSE_DATA])))
    data = rng.standard_normal((n, 2))
    data -= data.mean(axis=0)
    cov = data.T @ data / n
    target = np.array(spec.noise_cov, dtype=np.float64)
    if n >= 3 and np.linalg.det(cov) > 1e-12:
        data = data @ np.linalg.inv(np.linalg.cholesky(cov)).T
        evals, evecs = np.linalg.eigh(target)
        root = evecs @ np.diag(np.sqrt(np.clip(evals, 0, None))) @ evecs.T
        data = data @ root
    return np.ascontiguousarray(data)
