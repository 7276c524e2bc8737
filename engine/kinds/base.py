"""What a kind of dynamics is to the engine: its parameters, how a preset is checked for it,
how it maps onto a step kernel, and what it reports (equivalent Langevin temperature and step,
the edge of stability).

A kind is an instance of a :class:`Kind` subclass in its own module of :mod:`engine.kinds`,
registered with :func:`register`; everything else (preset validation, the simulation, the
escape predictions, the window's controls) asks the registry instead of testing names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..dynamics import StepConfig

if TYPE_CHECKING:  # the registry is imported by engine.presets: no import of it at run time
    from ..presets import DynamicsSpec, Preset

Fail = Callable[[str, str], Exception]  # (dotted key, message) → the error to raise

# the DynamicsSpec fields a kind may use; the window enables the controls of those it uses
PARAMETERS = ("lr", "temperature", "batch_size", "dataset_size", "noise", "noise_scale",
              "noise_cov", "momentum", "ghosts", "ghost_init", "friction", "beta1", "beta2",
              "eps", "weight_decay")


class Kind:
    """A kind of dynamics.  Subclasses set the class attributes and override what differs."""

    name: str = ""
    summary: str = ""
    #: DynamicsSpec fields that change what this kind does (others are ignored by it)
    uses: frozenset[str] = frozenset({"lr"})

    def validate(self, dynamics: "DynamicsSpec", landscape_builtin: str | None, boundary: str,
                 fail: Fail) -> None:
        """Raise ``fail(key, message)`` for settings this kind cannot honour."""

    def step_config(self, d: "DynamicsSpec") -> StepConfig:
        """The runtime flags of the fused step kernel (:mod:`engine.step_kernels`)."""
        return StepConfig(d.lr, d.temperature, d.momentum, False, False, d.batch_size)

    def controls(self, data_defined: bool) -> frozenset[str]:
        """The parameters that matter for this kind on this landscape (``data_defined``: a
        finite sum over real data, e.g. the classifier) — the controls the window enables."""
        return self.uses

    def equivalent_langevin(self, d: "DynamicsSpec", data_defined: bool) -> tuple[float, float]:
        """``(T, η)`` of the overdamped Langevin dynamics with the same drift and noise
        covariance per step: where escape times and Laplace weights are predicted (T = 0: no
        prediction).  ``data_defined``: the landscape is a finite sum over real data (its
        minibatch noise has no closed form).

        The default is a noisy step with heavy-ball momentum β (β = 0: plain): over many steps
        ``w`` moves by ``(η g + noise)/(1 − β)``, so ``(T/(1 − β), η/(1 − β))``."""
        return d.temperature / (1.0 - d.momentum), d.lr / (1.0 - d.momentum)

    def stable_step(self, lambda_max: float, d: "DynamicsSpec") -> float | None:
        """The largest η at which the noiseless map is stable at a minimum whose Hessian's
        top eigenvalue is ``lambda_max`` (the edge of stability): ``2(1 + β)/λ_max`` with
        heavy-ball momentum β; None without curvature."""
        return 2.0 * (1.0 + d.momentum) / lambda_max if lambda_max > 0 else None

    def stability(self, hessian, d: "DynamicsSpec") -> dict | None:
        """What ``engine info`` reports of this kind's edge of stability at a minimum with
        Hessian ``hessian`` (2×2), beside GD's ``gd_stable_below_lr``; None: nothing more."""
        return None

    def simulation_class(self, preset: "Preset") -> type:
        from ..simulation import Simulation
        return Simulation


_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind`` to the registry (a new module of engine.kinds calls this once)."""
    if not kind.name or kind.name in _REGISTRY:
        raise ValueError(f"kind name {kind.name!r} is empty or taken")
    unknown = set(kind.uses) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"kind {kind.name!r} uses unknown parameters {sorted(unknown)}")
    _REGISTRY[kind.name] = kind
    return kind


def kind_named(name: str) -> Kind:
    return _REGISTRY[name]


def kind_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)
