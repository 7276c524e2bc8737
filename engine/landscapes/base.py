"""The landscape protocol shared by built-ins and user expressions.

A landscape is a compiled scalar function ``func(x, y, p) -> (f, fx, fy, fxx, fxy, fyy)``: the
value, exact gradient and exact Hessian at one point, with the tunable parameters in the float64
array ``p``.  Parameters are runtime arguments, so moving a slider never recompiles anything.
The step kernels are built around ``func`` (see :mod:`engine.dynamics`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Bounds = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, eq=False)
class Landscape:
    """A 2D objective with exact derivatives.

    Attributes
    ----------
    name : str
        Built-in name, or ``"expr"`` for a user expression.
    func : numba dispatcher
        ``func(x, y, p) -> (f, fx, fy, fxx, fxy, fyy)`` for float64 scalars and ``p`` of shape
        ``(len(param_names),)``.
    param_names, default_params : tuple
        Names and default values of the entries of ``p``.
    default_bounds : Bounds
        ``((x_lo, x_hi), (y_lo, y_hi))`` used when a preset gives none.
    formula : str
        Human-readable formula for legends and tooltips.
    """

    name: str
    func: Callable
    param_names: tuple[str, ...]
    default_params: tuple[float, ...]
    default_bounds: Bounds
    formula: str
    notes: str = ""
    extras: dict = field(default_factory=dict)

    def param_vector(self, overrides: dict[str, float] | None = None) -> np.ndarray:
        """Parameter array in ``param_names`` order, defaults replaced by ``overrides``."""
        values = dict(zip(self.param_names, self.default_params))
        for key, value in (overrides or {}).items():
            if key not in values:
                raise KeyError(key)
            values[key] = float(value)
        return np.array([values[n] for n in self.param_names], dtype=np.float64)
