"""Fan-out: ``map_tasks`` and ``gather_tasks``, and the runner backends call per item."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from contextvars import ContextVar, copy_context
from typing import Any, TypeVar

from . import _lifecycle
from ._context import FRAME, SESSION, Frame, SessionState, current_state
from ._errors import MapError
from ._metadata import new_id
from ._protocols import Outcome, RemoteBatch, WorkItem
from ._task import BaseTask, make_task

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


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def execute(
    task: BaseTask[..., Any],
    state: SessionState,
    item: WorkItem,
    backend: str,
    parent_id: Any,
    fast: bool,
) -> Any:
    """Run one item through the task lifecycle in this thread; return its value."""
    if fast:
        token = FRAME.set(Frame(task, item.args, {}, None, item.index, backend))
        try:
            return task.func(*item.args)
        except Exception as exc:
            raise _lifecycle.fast_error(task, exc, item.args, {}) from exc
        finally:
            FRAME.reset(token)
    call = _lifecycle.Call(task, state, item.args, {}, item.index, backend, parent_id)
    if task.is_generator:
        if task.is_async:
            return run_coroutine(_collect(_lifecycle.run_astream(call)))
        return list(_lifecycle.run_stream(call))
    if task.is_async:
        return run_coroutine(_lifecycle.run_async(call))
    return _lifecycle.run_sync(call)


def _parent_id(frame: Frame | None) -> Any:
    return frame.metadata.id if frame is not None and frame.metadata is not None else None


class ItemRunner:
    """Runs items of one ``map_tasks`` call (see :class:`daglite_core.Backend`)."""

    def __init__(self, task: BaseTask[..., Any], state: SessionState, backend: str) -> None:
        self.task = task
        self.state = state
        self.backend = backend
        self.parent_id = _parent_id(FRAME.get())
        self.timeout = task.timeout
        self.retries = task.retries
        self.fast = task._plain and not state.observed and not task.is_async and not task.is_generator

    def __call__(self, item: WorkItem) -> Outcome:
        session = SESSION.set(self.state)
        in_map = IN_MAP.set(True)
        try:
            return Outcome(True, execute(self.task, self.state, item, self.backend, self.parent_id, self.fast))
        except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
            return Outcome(False, error=exc)
        finally:
            IN_MAP.reset(in_map)
            SESSION.reset(session)

    def remote(self) -> Any:
        """A picklable runner for worker processes."""
        from ._remote import RemoteRunner

        return RemoteRunner.for_session(self)

    def absorb(self, batch: RemoteBatch) -> list[Outcome]:
        """Replay a worker batch's events to this session's plugins; return its outcomes."""
        if batch.events:
            from ._remote import replay

            replay(self.state, batch.events)
        return batch.outcomes

    def fail(self, item: WorkItem, error: BaseException) -> Outcome:
        """The outcome of an item lost with its worker (died, or killed on timeout)."""
        call = _lifecycle.Call(self.task, self.state, item.args, {}, item.index, self.backend, self.parent_id)
        call.started = time.perf_counter()
        call.attempt = self.retries
        try:
            call.fail(error)
        except Exception as exc:  # noqa: BLE001 - Call.fail always raises the TaskError
            return Outcome(False, error=exc)
        raise AssertionError("unreachable")  # pragma: no cover


def _items(task: BaseTask[..., Any], iterables: Sequence[Iterable[Any]]) -> list[WorkItem]:
    # No iterables: no items, as ``zip()`` gives (daglite 0.9 returned [] too).
    try:
        return [WorkItem(i, args) for i, args in enumerate(zip(*iterables, strict=True))]
    except ValueError as exc:
        msg = f"map_tasks({task.name!r}): the iterables have different lengths ({exc})"
        raise ValueError(msg) from exc


def _finish(state: SessionState, task: BaseTask[..., Any], map_id: str, backend: str, started: float, outcomes: Sequence[Outcome]) -> list[Any]:
    failed = {i: o.error for i, o in enumerate(outcomes) if not o.ok}
    state.plugins.notify(
        "after_map", map_id, task.name, len(outcomes), backend, len(failed), time.perf_counter() - started
    )
    if failed:
        error = MapError(task.name, failed, len(outcomes))  # type: ignore[arg-type]
        raise error from error.error
    return [o.value for o in outcomes]


def map_tasks(task: Callable[..., T] | BaseTask[..., T], *iterables: Iterable[Any], backend: str | None = None) -> list[T]:
    """Call ``task`` once per item of ``zip(*iterables)`` on a backend; results in input order.

    ``backend`` defaults to the task's ``backend``, then the session's. Each
    item's :class:`TaskMetadata` has ``map_index`` set to its position, and its name
    gets an ``[i]`` suffix unless the template uses ``{map_index}``. Iterables of
    different lengths are a ``ValueError`` (never silently truncated). Plain
    callables are wrapped with ``task()``; async and generator tasks work on every
    backend (a generator item's result is the list of its items).

    Every item runs even when some fail; then a :class:`MapError` names every
    failing index and keeps each error. ``before_map``/``after_map`` fire around
    the items.

    Nested maps: a ``map_tasks`` called inside a mapped item runs inline, whatever
    backend it names, so that pools are never oversubscribed or deadlocked.
    """
    t = make_task(task)
    items = _items(t, iterables)
    state = current_state()
    name = "inline" if IN_MAP.get() else backend or t.backend or state.backend
    runner_backend = state.get_backend(name)
    map_id = new_id().hex
    state.plugins.notify("before_map", map_id, t.name, len(items), runner_backend.name)
    started = time.perf_counter()
    runner = ItemRunner(t, state, runner_backend.name)
    outcomes = runner_backend.run(runner, items) if items else []
    return _finish(state, t, map_id, runner_backend.name, started, outcomes)


async def gather_tasks(
    task: Callable[..., Any] | BaseTask[..., Any],
    *iterables: Iterable[Any],
    backend: str | None = None,
    max_concurrency: int | None = None,
) -> list[Any]:
    """The async ``map_tasks``: await every item; results in input order.

    With ``backend=None`` (or ``"inline"``) an async task's items run concurrently
    on the running event loop, at most ``max_concurrency`` at a time. Any other
    backend, or a sync task, runs :func:`map_tasks` in a thread so the loop stays
    free. Failures raise :class:`MapError` as in :func:`map_tasks`.
    """
    import asyncio

    t = make_task(task)
    if max_concurrency is not None and max_concurrency < 1:
        msg = f"gather_tasks({t.name!r}): max_concurrency must be >= 1, got {max_concurrency}"
        raise ValueError(msg)
    if not t.is_async or backend not in (None, "inline"):
        return await asyncio.to_thread(map_tasks, t, *iterables, backend=backend)
    items = _items(t, iterables)
    state = current_state()
    parent_id = _parent_id(FRAME.get())
    map_id = new_id().hex
    state.plugins.notify("before_map", map_id, t.name, len(items), "inline")
    started = time.perf_counter()
    limit = asyncio.Semaphore(max_concurrency or len(items) or 1)

    async def one(item: WorkItem) -> Outcome:
        async with limit:
            call = _lifecycle.Call(t, state, item.args, {}, item.index, "inline", parent_id)
            in_map = IN_MAP.set(True)
            try:
                if t.is_generator:
                    return Outcome(True, await _collect(_lifecycle.run_astream(call)))
                return Outcome(True, await _lifecycle.run_async(call))
            except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
                return Outcome(False, error=exc)
            finally:
                IN_MAP.reset(in_map)

    outcomes = await asyncio.gather(*(one(item) for item in items))
    return _finish(state, t, map_id, "inline", started, outcomes)
