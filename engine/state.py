"""The state of a run, declared once (``Simulation.PARTICLE_FIELDS``, ``RUN_FIELDS``): resizing,
checkpointing and restoring walk the declared lists, so none of them can forget a field.  Fields
that a reporter holds (the history, the escape log, the core sets) are declared by the names the
simulation reads them under (:class:`engine.reporters.base.Delegated`)."""
from __future__ import annotations

import numpy as np

CHECKPOINT_VERSION = 3  # bumped whenever the declared state fields change meaning


def _copied(value):
    """A copy of a state field that later steps cannot change: arrays and objects with a
    ``copy`` method (the escape log, the history) are copied, immutable values shared."""
    if isinstance(value, np.ndarray) or hasattr(value, "copy"):
        return value.copy()
    return value


class DeclaredState:
    """Resize, checkpoint and restore derived from the class's declared state fields (a mixin
    of :class:`engine.simulation.Simulation`; it provides ``_new_particles``,
    ``_derive_from_preset`` and ``flush_record``)."""

    PARTICLE_FIELDS: tuple[str, ...] = ()
    RUN_FIELDS: tuple[str, ...] = ()

    def _resize(self, n: int) -> None:
        old = self.positions.shape[0]
        if n < old:
            for name in self.PARTICLE_FIELDS:
                setattr(self, name, np.ascontiguousarray(getattr(self, name)[:n]))
        else:
            rows = self._new_particles(old, n - old)
            if set(rows) != set(self.PARTICLE_FIELDS):
                raise RuntimeError(f"{type(self).__name__}._new_particles gives {sorted(rows)}, "
                                   f"not the declared {sorted(self.PARTICLE_FIELDS)}")
            for name in self.PARTICLE_FIELDS:
                setattr(self, name, np.ascontiguousarray(
                    np.concatenate([getattr(self, name), rows[name]])))
        self.out = None

    def checkpoint(self) -> dict:
        """Everything needed to resume bitwise: copies of every declared state field
        (:attr:`PARTICLE_FIELDS`, :attr:`RUN_FIELDS`, history and escape tracking included) and
        the preset.  ``restore`` of it into any simulation of the same class — a fresh one
        included — continues as this one would."""
        self.flush_record()
        state = {"version": CHECKPOINT_VERSION, "class": type(self).__name__,
                 "preset": self.preset}
        for name in self.PARTICLE_FIELDS + self.RUN_FIELDS:
            state[name] = _copied(getattr(self, name))
        return state

    def restore(self, state: dict) -> None:
        """Continue from ``checkpoint()``'s state (this object's own earlier state or another
        simulation's of the same class).  Raises ``ValueError`` for a checkpoint of another
        class or version, or one that lacks a declared field."""
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')!r} is not this "
                             f"engine's ({CHECKPOINT_VERSION})")
        if state.get("class") != type(self).__name__:
            raise ValueError(f"a {state.get('class')} checkpoint cannot be restored into a "
                             f"{type(self).__name__} (load its preset instead)")
        missing = [name for name in self.PARTICLE_FIELDS + self.RUN_FIELDS if name not in state]
        if missing:
            raise ValueError(f"checkpoint lacks {', '.join(missing)}")
        self.flush_record()
        self.preset = state["preset"]
        self._derive_from_preset()
        for name in self.PARTICLE_FIELDS + self.RUN_FIELDS:
            setattr(self, name, _copied(state[name]))
        self.out = None
        self.recorder.drop_pending()
