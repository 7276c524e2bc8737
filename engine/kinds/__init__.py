"""The registry of dynamics kinds (see :mod:`engine.kinds.base`).  Importing this package
registers the bundled kinds, in the order the window lists them."""
from . import gd, sgd, langevin, momentum, ghost, underdamped, adaptive  # noqa: F401
from .base import PARAMETERS, Kind, kind_named, kind_names, register

__all__ = ["PARAMETERS", "Kind", "kind_named", "kind_names", "register"]
