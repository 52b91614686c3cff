"""The two tricks the hot paths use to build records, each written once.

* :func:`fast_constructor`: a frozen, slotted attrs record built by writing its
  slots through their descriptors. attrs' frozen ``__init__`` writes each field
  with ``object.__setattr__`` (a descriptor lookup per field); calling the slots'
  own setters gives the same object for about two thirds of the cost. Used for
  :class:`~daglite_core.TaskMetadata` (one per observed call), ``WorkItem`` (one
  per map item) and ``Outcome`` (one per failed process-map item).
* :func:`uuid_from_int`: a :class:`uuid.UUID` from its 128-bit value without
  ``UUID.__init__``'s parsing (task ids, ids coming back from workers), and
  :func:`new_id`, the ids of sessions, calls and maps.

Both produce objects equal to what the ordinary constructors produce; the tests
check it (``tests/test_records.py``). ``import daglite_core`` does not load this
module (``uuid`` and its C extension cost ~0.6 ms): the first session, id or
observed call does; generated code itself comes from :mod:`._codegen`.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs

from ._codegen import define

R = TypeVar("R")

_new = object.__new__
_UUID = uuid.UUID
_set_uuid_int = uuid.UUID.__dict__["int"].__set__
_set_uuid_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown


def uuid_from_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without the argument parsing (``value`` must fit 128 bits)."""
    made: uuid.UUID = _new(_UUID)
    _set_uuid_int(made, value)
    _set_uuid_safe(made, _UNKNOWN)
    return made


_PREFIX = int.from_bytes(os.urandom(8), "big") << 64
_COUNTER = itertools.count(1)


def _reseed() -> None:
    """A new prefix in a forked child: it inherits the parent's prefix *and* counter."""
    global _PREFIX
    _PREFIX = int.from_bytes(os.urandom(8), "big") << 64


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_reseed)


def id_state() -> tuple[int, Iterator[int]]:
    """The process' id prefix and counter, for a loop that makes many ids inline.

    ``prefix | next(counter)`` is what :func:`new_id` wraps in a UUID. Read it per
    use, not at import: a forked child gets a new prefix.
    """
    return _PREFIX, _COUNTER


def new_id() -> uuid.UUID:
    """Return a unique id: a random per-process 64-bit prefix and a counter.

    ``uuid4()`` reads ``os.urandom`` on every call (about 2 µs, more than the rest
    of a task call); this is unique within the process and, with overwhelming
    probability, across processes. Sessions, calls and maps take their ids here;
    it lives with :func:`uuid_from_int` rather than with ``TaskMetadata`` so that
    opening a session does not create that attrs class.
    """
    return uuid_from_int(_PREFIX | next(_COUNTER))


def fast_constructor(cls: type[R]) -> Callable[..., R]:
    """A function ``(field, ...) -> cls`` taking the fields positionally, in order.

    Fields with a plain default may be left out, as with the class itself. Only
    for frozen slotted attrs classes without validators, converters, factories
    or ``__attrs_post_init__``; anything else is refused (``TypeError``) rather
    than built wrongly. The function's source is registered with :mod:`linecache`
    so tracebacks and debuggers show it.
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    problems = [
        f.name for f in fields
        if f.validator is not None or f.converter is not None or isinstance(f.default, attrs.Factory)  # type: ignore[arg-type]
    ]
    if problems or hasattr(cls, "__attrs_post_init__") or "__slots__" not in cls.__dict__:
        msg = f"fast_constructor({cls.__qualname__}): not a plain frozen slotted record ({problems or 'slots/post-init'})"
        raise TypeError(msg)
    namespace: dict[str, Any] = {"_new": _new, "_cls": cls}
    params, body = [], []
    for f in fields:
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is attrs.NOTHING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(obj, {f.name})")
    name = f"make_{cls.__name__}"
    source = "\n".join([f"def {name}({', '.join(params)}):", "    obj = _new(_cls)", *body, "    return obj", ""])
    made: Callable[..., R] = define(source, name, f"fast constructor {cls.__module__}.{cls.__qualname__}", namespace)
    made.__doc__ = f"``{cls.__qualname__}(...)`` built by writing its slots (see :func:`fast_constructor`)."
    return made
