"""The record of one task call, given to every node hook."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any

import attrs

_PREFIX = int.from_bytes(os.urandom(8), "big") << 64
_COUNTER = itertools.count(1)


def _reseed() -> None:
    """A new prefix in a forked child: it inherits the parent's prefix *and* counter."""
    global _PREFIX
    _PREFIX = int.from_bytes(os.urandom(8), "big") << 64


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_reseed)


def new_id() -> uuid.UUID:
    """Return a unique id: a random per-process 64-bit prefix and a counter.

    ``uuid4()`` reads ``os.urandom`` on every call (about 2 µs, more than the rest
    of a task call); this is unique within the process and, with overwhelming
    probability, across processes.
    """
    new = _new(_UUID)
    _set_int(new, _PREFIX | next(_COUNTER))
    _set_safe(new, _UNKNOWN)
    return new


# The UUID's slots are written through their descriptors: UUID.__setattr__ refuses
# writes, and object.__setattr__ costs a descriptor lookup per field (0.75 -> 0.4 µs).
_new = object.__new__
_UUID = uuid.UUID
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safe = uuid.UUID.__dict__["is_safe"].__set__
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
    :ivar map_id: the id of the fan-out (``map_tasks``, ``iter_tasks``, ``gather_tasks``)
        that ran this call as one of its items, else ``None``; the same id as the
        ``map_id`` of that fan-out's ``before_map``/``after_map``.
    :ivar session_id: the id of the session the call ran in (the one given to
        ``before_session_start``); calls outside any session carry the process
        default state's id.

    Every id is a :class:`uuid.UUID`. A map item's ``parent_id`` is the id of the
    task whose body called ``map_tasks`` (``None`` when it was called at top
    level), so a run's whole call tree can be rebuilt from the hooks' metadata.
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


# The slots' own setters, in field order (attrs' frozen __setattr__ refuses writes).
(_s_id, _s_name, _s_backend, _s_inputs, _s_description, _s_map_index, _s_parent_id, _s_is_async,
 _s_is_generator, _s_map_id, _s_session_id) = (TaskMetadata.__dict__[f.name].__set__ for f in attrs.fields(TaskMetadata))


def make_metadata(
    id: uuid.UUID,  # noqa: A002 - the field's name
    name: str,
    backend: str,
    inputs: dict[str, Any],
    description: str,
    map_index: int | None,
    parent_id: uuid.UUID | None,
    is_async: bool,
    is_generator: bool,
    map_id: uuid.UUID | None,
    session_id: uuid.UUID | None,
) -> TaskMetadata:
    """``TaskMetadata(...)`` for the lifecycle's hot path: the same object, built faster.

    attrs' frozen ``__init__`` writes each field through ``object.__setattr__`` (a
    descriptor lookup per field, ~1.1 µs for eleven); this calls the slots' setters
    directly (~0.7 µs). It is only equivalent because the class has no validators,
    converters or ``__attrs_post_init__``: keep it so, or build with ``TaskMetadata(...)``.
    """
    metadata = _new(TaskMetadata)
    _s_id(metadata, id)
    _s_name(metadata, name)
    _s_backend(metadata, backend)
    _s_inputs(metadata, inputs)
    _s_description(metadata, description)
    _s_map_index(metadata, map_index)
    _s_parent_id(metadata, parent_id)
    _s_is_async(metadata, is_async)
    _s_is_generator(metadata, is_generator)
    _s_map_id(metadata, map_id)
    _s_session_id(metadata, session_id)
    return metadata
