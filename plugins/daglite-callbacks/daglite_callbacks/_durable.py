"""Which outbox a node's callbacks go through, and recording them there.

``durable=`` of :func:`sign`, :func:`chain` and :func:`swarm`:

* ``True``: the default outbox (:func:`default_outbox`); ``False``: never durable;
  an :class:`Outbox` or a path: that outbox.
* ``None`` (default): inherited. A node running as a durable callback (or called
  while one runs, e.g. a chain's step) records its own callbacks in that outbox,
  so a durable call's whole callback tree is durable; otherwise ``DAGLITE_CALLBACKS_DURABLE=1`` makes every node durable in
  the default outbox, and by default nothing is.

Recording never loses an outcome: a callback that cannot be pickled, or an outbox
that cannot be written, is logged on ``daglite.callbacks`` and the callback is
dispatched in the process as without durability.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._errors import SignatureError, TaskOutcome
from ._journal import ATOMS
from ._outbox import _CURRENT, Delivery, Outbox, OutboxError, default_outbox

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["durable_spec", "env_durable", "record", "resolve_outbox"]

logger = logging.getLogger("daglite.callbacks")

_TRUE = ("1", "true", "yes", "on")


def env_durable() -> bool:
    """``DAGLITE_CALLBACKS_DURABLE`` (default off)."""
    return os.environ.get("DAGLITE_CALLBACKS_DURABLE", "").strip().lower() in _TRUE


def durable_spec(where: str, value: Any) -> bool | Outbox | None:
    """Check ``durable=``: ``None``, a bool, an :class:`Outbox`, or a path (made an outbox)."""
    if value is None or isinstance(value, (bool, Outbox)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Outbox(value)
    msg = f"{where}: durable must be True, False, None (inherit), an Outbox or a path, got {type(value).__name__} {value!r}"
    raise SignatureError(msg)


def resolve_outbox(spec: bool | Outbox | None, delivery: Delivery | None) -> Outbox | None:
    """The outbox a node's callbacks are recorded in, or ``None`` (see the module docstring)."""
    if spec is None:
        if delivery is None:
            delivery = _CURRENT.get()  # a chain step or nested call inside a durable callback
        if delivery is not None:
            return delivery.outbox
        return default_outbox() if env_durable() else None
    if spec is False:
        return None
    if spec is True:
        return default_outbox()
    return spec


def _inputs(outcome: TaskOutcome) -> tuple[Any, ...]:
    """What a callback of ``outcome`` is given, as recorded: the result, or the failing call's kwargs and error."""
    return ("success", outcome.value) if outcome.ok else ("error", dict(outcome.kwargs), outcome.error)


def record(
    parent: str,
    outbox: Outbox,
    kind: str,
    callbacks: Sequence[Node],
    outcome: TaskOutcome,
    then: Delivery | None,
) -> Sequence[Delivery | None]:
    """Record ``callbacks`` of ``outcome``; one delivery per callback (``None``: not recorded).

    ``then`` (the delivery of ``parent`` itself, when it runs as a durable
    callback) is marked done in the same event, or right after when it belongs
    to another outbox.
    """
    where: Sequence[int]
    items: Sequence[tuple[str, bytes, bool, bytes | tuple[str, Any]]]
    try:  # the hot path: everything pickles (written out: no comprehension, no call for the input)
        tail: bytes | tuple[str, Any]
        if outcome.ok and type(outcome.value) in ATOMS:
            tail = ("success", outcome.value)  # carried as it is in the signed record: one pickle less
        else:
            tail = pickle.dumps(_inputs(outcome), protocol=pickle.HIGHEST_PROTOCOL)
        recorded: list[tuple[str, bytes, bool, bytes | tuple[str, Any]]] = []
        for cb in callbacks:
            blob, cached = cb.pickle_state()
            recorded.append((cb.name, blob, cached, tail))
        items, where = recorded, ()
    except Exception:  # noqa: BLE001 - _picklable says which callback and why
        items, where = _picklable(parent, outbox, kind, callbacks, outcome)
    same = then is not None and then.outbox is outbox
    marks: Sequence[Delivery | None] = ()
    if items or same:
        try:
            marks = outbox.record(parent, kind, items, then if same else None, outcome.error)
        except OutboxError as exc:
            logger.error("%s; the %s callbacks of %r run without durability", exc, kind, parent)
    if then is not None:
        then.finish(outcome.error)  # a no-op when recorded together above
    if len(marks) == len(callbacks):
        return marks
    placed: list[Delivery | None] = [None] * len(callbacks)  # some (or all) callbacks run without durability
    for i, delivery in zip(where, marks, strict=True):
        placed[i] = delivery
    return placed


def _picklable(
    parent: str, outbox: Outbox, kind: str, callbacks: Sequence[Node], outcome: TaskOutcome
) -> tuple[list[tuple[str, bytes, bool, bytes]], list[int]]:
    """The items of the callbacks that can be recorded, and their positions; each one that cannot is logged."""
    items: list[tuple[str, bytes, bool, bytes]] = []
    where: list[int] = []
    failure: Exception | None = None
    try:
        tail = pickle.dumps(_inputs(outcome), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - reported per callback below
        tail, failure = b"", exc
    for i, cb in enumerate(callbacks):
        try:
            if failure is not None:
                raise failure
            items.append((cb.name, *cb.pickle_state(), tail))
        except Exception as exc:  # noqa: BLE001 - never lose the outcome: dispatch it without durability
            logger.error(
                "%s callback %r of %r cannot be recorded in the outbox %s (%s: %s); it runs without durability",
                kind.capitalize(), cb.name, parent, outbox.path, type(exc).__name__, exc,
            )
            continue
        where.append(i)
    return items, where
