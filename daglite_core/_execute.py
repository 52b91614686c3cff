"""Running one item of a fan-out in this thread: the lifecycle driver for its task kind.

Shared by the in-process backends (through :class:`~daglite_core._map.MapRunner`)
and by process workers (:mod:`daglite_core._process._worker`), so an item runs
the same way wherever it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Coroutine
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING, Any, TypeVar

from . import _lifecycle
from ._context import SessionState
from ._fast import run_fast

if TYPE_CHECKING:
    from ._protocols import WorkItem
    from ._task import BaseTask

T = TypeVar("T")

IN_MAP: ContextVar[bool] = ContextVar("daglite_in_map", default=False)
"""True while a mapped item runs: a nested ``map_tasks`` then runs inline."""


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even when this thread runs a loop.

    With no running loop it is ``asyncio.run(coro)``; inside one (sync code called
    from async code) the coroutine runs on a fresh loop in a helper thread that
    sees this context (session, running task), so the running loop is never
    re-entered.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: list[tuple[bool, Any]] = []
    context = copy_context()

    def target() -> None:
        try:
            box.append((True, context.run(asyncio.run, coro)))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            box.append((False, exc))

    thread = threading.Thread(target=target, name="daglite-async-bridge")
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def runs_fast(task: BaseTask[..., Any], state: SessionState) -> bool:
    """Whether ``task``'s items run on the fast path in ``state``: the one predicate.

    A plain sync task (no cache, dataset, retries or timeout) in a scope where no
    plugin observes successful map items one by one (plugins with
    ``daglite_map_progress`` count them through ``map_progress`` instead) runs
    its body with no lifecycle at all; a
    failure goes on in the lifecycle when a plugin listens to failures (see
    :func:`~daglite_core._lifecycle.after_fast_failure`). ``SyncTask.__call__``
    applies the same rule to direct calls, where every observer counts.
    """
    return task._plain and not state.items_observed and not task.is_async and not task.is_generator


def execute(
    task: BaseTask[..., Any],
    state: SessionState,
    item: WorkItem,
    backend: str,
    parent_id: Any,
    map_id: Any,
    fast: bool,
) -> Any:
    """Run one item through the task lifecycle in this thread; return its value."""
    if fast:
        return run_fast(task, state, item.args, {}, item.index, backend, parent_id, map_id)
    if task._plain and not task.is_async and not task.is_generator:
        return _lifecycle.call_plain(task, state, item.args, {}, item.index, backend, parent_id, map_id)
    call = _lifecycle.Call(task, state, item.args, {}, item.index, backend, parent_id, map_id)
    if task.is_generator:
        if task.is_async:
            return run_coroutine(collect(_lifecycle.run_astream(call)))
        return list(_lifecycle.run_stream(call))
    if task.is_async:
        return run_coroutine(_lifecycle.run_async(call))
    return _lifecycle.run_sync(call)
