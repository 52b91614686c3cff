"""The record of one task call, given to every node hook."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from ._records import fast_constructor


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
    :ivar map_id: the id of the fan-out (``map_tasks``, ``iter_tasks``, ``gather_tasks``)
        that ran this call as one of its items, else ``None``; the same id as the
        ``map_id`` of that fan-out's ``before_map``/``after_map``.
    :ivar session_id: the id of the session the call ran in (the one given to
        ``before_session_start``); calls outside any session carry the process
        default state's id.

    Every id is a :class:`uuid.UUID`. A map item's ``parent_id`` is the id of the
    task whose body called ``map_tasks`` (``None`` when it was called at top
    level), so a run's whole call tree can be rebuilt from the hooks' metadata.
    One exception: a map item that ran on the fast path has no metadata and no
    id (only plugins with ``daglite_map_progress`` let map items keep the fast
    path while they watch), so a call or map its body makes has that map's
    ``map_id`` as ``parent_id``.
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
    map_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None


make_metadata = fast_constructor(TaskMetadata)
"""``TaskMetadata(...)`` for the lifecycle's hot path (fields positionally, in order): the
same object, built by writing the slots (see :func:`~daglite_core._records.fast_constructor`;
it refuses the class if it ever gains validators, converters or a post-init)."""
