"""The controls of parameters that only some kinds of dynamics have: the adaptive methods'
moment decays β1, β2, their ε and weight decay λ (adam, rmsprop, adamw), underdamped Langevin's
friction γ.  The window shows each only while the current kind uses it
(:meth:`engine.kinds.Kind.controls`), and sends a change to the running engine like its other
sliders."""
from __future__ import annotations

from .sliders import ValueSlider

# the DynamicsSpec fields with a control here, in the order the panel shows them
KIND_PARAMETERS = ("friction", "beta1", "beta2", "eps", "weight_decay")


def kind_parameter_sliders() -> dict[str, ValueSlider]:
    """A slider per :data:`KIND_PARAMETERS` key, over the range a user would explore, at most
    five decades on a log scale (so ≥ 40 px per decade in the panel).  A preset may hold a
    value outside it: the control then shows the nearest end, and the run keeps its value until
    the control is moved."""
    return {
        "friction": ValueSlider("friction γ", 0.01, 100.0, 1.0, log=True, decimals=3,
                                tooltip="underdamped Langevin (BAOAB, mass 1): "
                                        "dv = −∇f dt − γ v dt + √(2γT) dW"),
        "beta1": ValueSlider("momentum decay β1", 0.0, 0.999, 0.9, decimals=3,
                             tooltip="adam, adamw: m ← β1 m + (1 − β1) g"),
        "beta2": ValueSlider("second-moment decay β2", 0.0, 0.9999, 0.999, decimals=4,
                             tooltip="adam, adamw, rmsprop: v ← β2 v + (1 − β2) g²"),
        "eps": ValueSlider("ε", 1e-10, 1e-5, 1e-8, log=True, decimals=10,
                           tooltip="adam, adamw, rmsprop: the step is η m̂ / (√v̂ + ε)"),
        "weight_decay": ValueSlider("weight decay λ", 1e-4, 10.0, 0.0, log=True, zero=True,
                                    decimals=5,
                                    tooltip="adam, rmsprop: λ x added to the gradient; adamw: "
                                            "x ← x − η λ x outside the adaptive step; "
                                            "leftmost = 0"),
    }
