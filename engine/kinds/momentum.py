"""Heavy ball: ``v ← βv − η∇f(w) + √(2ηT) ξ``, ``w ← w + v``.

Over many steps ``w`` moves by ``(η g + noise)/(1 − β)``, so its escapes are predicted at
``T/(1 − β)`` and ``η/(1 − β)``; the noiseless map is stable at a minimum for
``η < 2(1 + β)/λ_max`` (both :class:`engine.kinds.base.Kind`'s defaults)."""
from __future__ import annotations

from .base import Kind, register


class HeavyBall(Kind):
    name = "momentum"
    summary = "heavy-ball momentum β, optional temperature T"
    uses = frozenset({"lr", "temperature", "momentum"})


register(HeavyBall())
