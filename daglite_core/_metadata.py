"""The record of one task call, given to every node hook."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

import attrs

_PREFIX = int.from_bytes(os.urandom(8), "big") << 64
_COUNTER = itertools.count(1)


def new_id() -> uuid.UUID:
    """Return a unique id: a random per-process 64-bit prefix and a counter.

    ``uuid4()`` reads ``os.urandom`` on every call (about 2 µs, more than the rest
    of a task call); this is unique within the process and, with overwhelming
    probability, across processes.
    """
    new = object.__new__(uuid.UUID)
    _set(new, "int", _PREFIX | next(_COUNTER))
    _set(new, "is_safe", _UNKNOWN)
    return new


_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


@attrs.frozen(slots=True, weakref_slot=False)
class TaskMetadata:
    """What a node hook learns about one task call.

    :ivar id: unique per call.
    :ivar name: the resolved name (placeholders filled; ``[i]`` suffix in a map
        unless the template uses ``{map_index}``).
    :ivar backend: the backend that ran the call: ``inline`` for a direct call.
    :ivar inputs: the bound arguments, defaults applied.
    :ivar description: the task's description (default: its docstring).
    :ivar map_index: the item's position in a ``map_tasks`` call, else ``None``.
    :ivar parent_id: the id of the task whose body made this call, else ``None``.
    :ivar is_async: whether the task is a coroutine or async generator function.
    :ivar is_generator: whether the task is a (sync or async) generator function.
    """

    id: uuid.UUID
    name: str
    backend: str
    inputs: dict[str, Any] = attrs.field(hash=False)
    description: str = ""
    map_index: int | None = None
    parent_id: uuid.UUID | None = None
    is_async: bool = False
    is_generator: bool = False
