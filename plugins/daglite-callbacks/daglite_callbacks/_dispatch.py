"""Dispatching callbacks after a final outcome, and the failing-callback policy.

Policies (see the README):

* **Order.** Callbacks are dispatched in the order given. ``dispatch="sequential"``
  (the default) runs them one after the other in the calling thread (or on the
  calling event loop), so each sees the effects of the previous ones;
  ``dispatch="concurrent"`` starts them all at once, in that order, on threads of
  the session's process (on the running loop for async callbacks, sync ones in
  threads) and waits for all of them.
* **Every callback runs**, whatever happens to the others.
* **A failing callback never changes the outcome.** By default each failure is
  logged once on the ``daglite.callbacks`` logger (naming the task, the callback
  and the error) and the original result is returned (or the original error
  raised). In strict mode the first failure is raised as :class:`CallbackError`
  chained to it, carrying the original outcome; strict mode is the signature's
  ``strict=`` when given, else the active session's
  ``DagliteSettings.strict_hooks`` (``DAGLITE_STRICT_HOOKS=1``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from daglite_core import active_session

from ._errors import CallbackError, TaskOutcome
from ._outbox import _CURRENT, Delivery

if TYPE_CHECKING:
    from ._node import Node, Prepared

logger = logging.getLogger("daglite.callbacks")

DISPATCH_MODES = ("sequential", "concurrent")

Preparer = Callable[["Node"], "Prepared"]


def _one(callback: Node, prepare: Preparer, delivery: Delivery | None = None) -> Exception | None:
    if delivery is not None:
        return _one_durable(callback, prepare, delivery)
    token = _CURRENT.set(None) if _CURRENT.get() is not None else None
    try:
        outcome = callback.outcome_sync(prepare(callback), None)
    except Exception as exc:  # noqa: BLE001 - a callback's failure is reported, not raised here
        return exc
    finally:
        if token is not None:
            _CURRENT.reset(token)
    return None if outcome.ok else outcome.error


def _one_durable(callback: Node, prepare: Preparer, delivery: Delivery) -> Exception | None:
    token = _CURRENT.set(delivery)  # delivery_key() inside (not Delivery.current(): the hot path)
    try:
        try:
            prepared = prepare(callback)
        except Exception as exc:  # noqa: BLE001 - rejected input: the delivery happened and failed
            delivery.finish(exc)
            return exc
        outcome = callback.outcome_sync(prepared, None, delivery)
    except Exception as exc:  # noqa: BLE001 - e.g. a strict CallbackError of its own callbacks
        delivery.finish(exc)
        return exc
    except BaseException:
        delivery.release()  # interrupted: it did not finish, a resume runs it
        raise
    finally:
        _CURRENT.reset(token)
    if not delivery.finished:  # its outcome path marks it (this is the safety net)
        delivery.finish(outcome.error)
    return None if outcome.ok else outcome.error


async def _aone(callback: Node, prepare: Preparer, delivery: Delivery | None = None) -> Exception | None:
    token = _CURRENT.set(delivery) if delivery is not None or _CURRENT.get() is not None else None
    try:
        try:
            prepared = prepare(callback)
        except Exception as exc:  # noqa: BLE001 - as in _one
            if delivery is not None:
                delivery.finish(exc)
            return exc
        if callback.is_async:
            outcome = await callback.outcome_async(prepared, None, delivery)
        else:
            outcome = await asyncio.to_thread(callback.outcome_sync, prepared, None, delivery)
    except Exception as exc:  # noqa: BLE001 - as in _one
        if delivery is not None:
            delivery.finish(exc)
        return exc
    except BaseException:
        if delivery is not None:
            delivery.release()
        raise
    finally:
        if token is not None:
            _CURRENT.reset(token)
    return None if outcome.ok else outcome.error


def dispatch_sync(
    callbacks: Sequence[Node], prepare: Preparer, mode: str, deliveries: Sequence[Delivery | None] | None = None
) -> list[Exception | None]:
    """Run every callback; return each one's failure (or ``None``), in the order given.

    ``deliveries`` (one per callback, ``None`` for one not recorded) are the outbox
    rows to mark done as each callback finishes.
    """
    marks: Sequence[Delivery | None] = deliveries if deliveries is not None else [None] * len(callbacks)
    if mode == "sequential" or len(callbacks) < 2:
        return [_one(cb, prepare, d) for cb, d in zip(callbacks, marks, strict=True)]
    with ThreadPoolExecutor(len(callbacks), thread_name_prefix="daglite-callback") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _one, cb, prepare, d) for cb, d in zip(callbacks, marks, strict=True)]
        return [f.result() for f in futures]


async def dispatch_async(
    callbacks: Sequence[Node], prepare: Preparer, mode: str, deliveries: Sequence[Delivery | None] | None = None
) -> list[Exception | None]:
    """:func:`dispatch_sync` on the running loop (sync callbacks in threads)."""
    marks: Sequence[Delivery | None] = deliveries if deliveries is not None else [None] * len(callbacks)
    if mode == "sequential" or len(callbacks) < 2:
        return [await _aone(cb, prepare, d) for cb, d in zip(callbacks, marks, strict=True)]
    return list(await asyncio.gather(*(_aone(cb, prepare, d) for cb, d in zip(callbacks, marks, strict=True))))


def deliver_recorded(delivery: Delivery, node: Node, inputs: tuple[Any, ...]) -> Exception | None:
    """Run one callback taken from the outbox (a resume); report its failure on the logger."""
    prepare: Preparer
    if inputs[0] == "success":
        value = inputs[1]

        def prepare(cb: Node) -> Prepared:
            return cb.prepare({}, result=value)
    else:
        received, error = dict(inputs[1]), inputs[2]

        def prepare(cb: Node) -> Prepared:
            return cb.prepare(received, error=error, call_wins=False)

    failure = _one(node, prepare, delivery)
    if failure is not None:
        logger.error(
            "Resumed %s callback %r (delivery %s) failed: %s: %s",
            inputs[0], node.name, delivery.key, type(failure).__name__, failure, exc_info=failure,
        )
    return failure


def settle(
    node: Node,
    kind: str,
    callbacks: Sequence[Node],
    failures: Sequence[Exception | None],
    outcome: TaskOutcome,
) -> None:
    """Apply the failing-callback policy: log each failure once, or raise in strict mode."""
    failed = [(cb.name, err) for cb, err in zip(callbacks, failures, strict=True) if err is not None]
    if not failed:
        return
    strict = node.strict if node.strict is not None else active_session().settings.strict_hooks
    if strict:
        raise CallbackError(node.name, kind, outcome, failed) from failed[0][1]
    for name, error in failed:
        logger.error(
            "%s callback %r of %r failed (the %s stands): %s: %s",
            kind.capitalize(), name, node.name,
            "result" if outcome.ok else "original error", type(error).__name__, error,
            exc_info=error,
        )
