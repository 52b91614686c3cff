"""A process-wide counter of changes to signatures, chains and swarms.

A durable callback is pickled into the outbox on every outcome it reacts to.
Pickling a node costs several microseconds (its ``__reduce__`` rebuilds options,
takes a kwargs snapshot, pickles its callbacks), so a node keeps its pickle and
reuses it while nothing changed. "Nothing changed" is this counter: any change to
*any* node (an attribute set, a callback attached, a bound kwarg updated or
removed) bumps it, which invalidates every cached pickle at once. Coarse, but
nodes are configured up front and called many times, and a nested callback's
change (which its parent's pickle contains) cannot be missed.

Values that can change without the node knowing (a list bound as a kwarg and then
appended to) are not covered by the counter; :meth:`Node.pickled` therefore caches
only nodes whose whole tree binds immutable values (see :func:`frozen_value`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["bump", "current", "frozen_value"]

_counter = [0]

_ATOMS = (type(None), bool, int, float, complex, str, bytes)


def bump() -> None:
    """Record that some node changed (every cached pickle is stale now)."""
    _counter[0] += 1


def current() -> int:
    """The current generation."""
    return _counter[0]


def frozen_value(value: Any) -> bool:
    """Whether ``value`` cannot change in place (atoms, and tuples/frozensets of them)."""
    if type(value) in _ATOMS:
        return True
    if type(value) in (tuple, frozenset):
        return all(frozen_value(item) for item in value)
    return False
