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
from typing import TYPE_CHECKING

from daglite_core import active_session

from ._errors import CallbackError, TaskOutcome

if TYPE_CHECKING:
    from ._node import Node, Prepared

logger = logging.getLogger("daglite.callbacks")

DISPATCH_MODES = ("sequential", "concurrent")

Preparer = Callable[["Node"], "Prepared"]


def _one(callback: Node, prepare: Preparer) -> Exception | None:
    try:
        outcome = callback.outcome_sync(prepare(callback), None)
    except Exception as exc:  # noqa: BLE001 - a callback's failure is reported, not raised here
        return exc
    return None if outcome.ok else outcome.error


async def _aone(callback: Node, prepare: Preparer) -> Exception | None:
    try:
        if callback.is_async:
            outcome = await callback.outcome_async(prepare(callback), None)
        else:
            outcome = await asyncio.to_thread(callback.outcome_sync, prepare(callback), None)
    except Exception as exc:  # noqa: BLE001 - as in _one
        return exc
    return None if outcome.ok else outcome.error


def dispatch_sync(callbacks: Sequence[Node], prepare: Preparer, mode: str) -> list[Exception | None]:
    """Run every callback; return each one's failure (or ``None``), in the order given."""
    if mode == "sequential" or len(callbacks) < 2:
        return [_one(cb, prepare) for cb in callbacks]
    with ThreadPoolExecutor(len(callbacks), thread_name_prefix="daglite-callback") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _one, cb, prepare) for cb in callbacks]
        return [f.result() for f in futures]


async def dispatch_async(callbacks: Sequence[Node], prepare: Preparer, mode: str) -> list[Exception | None]:
    """:func:`dispatch_sync` on the running loop (sync callbacks in threads)."""
    if mode == "sequential" or len(callbacks) < 2:
        return [await _aone(cb, prepare) for cb in callbacks]
    return list(await asyncio.gather(*(_aone(cb, prepare) for cb in callbacks)))


def settle(
    node: Node,
    kind: str,
    callbacks: Sequence[Node],
    failures: Sequence[Exception | None],
    outcome: TaskOutcome,
) -> None:
    """Apply the failing-callback policy: log each failure once, or raise in strict mode."""
    failed = [(cb.name, err) for cb, err in zip(callbacks, failures) if err is not None]
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
