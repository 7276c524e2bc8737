"""Minibatches of a data-defined landscape's own samples (the classifier): what the kernel
that draws them (:mod:`engine.ghost`) can and cannot honour."""
from __future__ import annotations

from .base import Fail


def check_data_minibatches(d, boundary: str, fail: Fail) -> None:
    """Minibatch SGD on a classifier's data (kind ghost, or sgd on the classifier) runs in the
    ghost kernel, which has no momentum, no walls and no analytic noise model (its minibatch
    noise is the data's): refuse those settings rather than ignore them."""
    from ..presets import DynamicsSpec
    what = f"kind {d.kind!r} on the classifier (minibatches of its data)"
    if d.momentum != 0.0:
        raise fail("dynamics.momentum", f"= {d.momentum!r}: {what} has no momentum; use 0 "
                   "(or kind 'momentum', heavy ball on the full-data gradient)")
    if boundary == "wall":
        raise fail("landscape.boundary", f"= 'wall': {what} supports 'reflect', 'periodic' "
                   "or 'none'")
    default = DynamicsSpec()
    for key in ("noise", "noise_scale", "noise_cov"):
        value = getattr(d, key)
        if value != getattr(default, key):
            shown = [list(row) for row in value] if key == "noise_cov" else value
            raise fail(f"dynamics.{key}", f"= {shown!r}: {what} draws its minibatch noise "
                       f"from the data; the analytic noise model does not apply (leave "
                       f"{key} at its default)")
