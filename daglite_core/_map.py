"""Fan-out: ``map_tasks``, ``iter_tasks``/``aiter_tasks`` and ``gather_tasks``, and the runner backends call per item."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import _lifecycle
from ._context import FRAME, SESSION, SessionState, current_state, frame_parent_id
from ._errors import MapError
from ._execute import IN_MAP, collect, execute, runs_fast
from ._metadata import TaskMetadata
from ._process._worker import WorkerRunner, replay
from ._protocols import Outcome, Outcomes, RemoteBatch, WorkItem, WorkItems, new_outcome
from ._records import new_id
from ._task import BaseTask, make_task

if TYPE_CHECKING:
    from ._protocols import Backend

T = TypeVar("T")


class MapRunner:
    """Runs items of one fan-out: the :class:`daglite_core.ItemRunner` given to backends.

    :ivar map_id: the fan-out's id (every item's ``TaskMetadata.map_id``).
    :ivar parent_id: the id of the task whose body started the fan-out, or ``None``.
    """

    def __init__(self, task: BaseTask[..., Any], state: SessionState, backend: str, map_id: Any) -> None:
        self.task = task
        self.state = state
        self.backend = backend
        self.map_id = map_id
        self.parent_id = frame_parent_id(FRAME.get())
        self.timeout = task.timeout
        self.retries = task.retries
        self.fast = runs_fast(task, state)
        self.progress = _Progress(state, map_id, not self.fast) if state.plugins.hook.map_progress else None
        self.relayed_items: dict[int, TaskMetadata] = {}
        """Metadata of items a worker reported started compactly, until they end (see ``replay``)."""

    def __call__(self, item: WorkItem) -> Outcome:
        progress = self.progress
        if progress is not None:
            progress.started.append(0)
        session = SESSION.set(self.state)
        in_map = IN_MAP.set(True)
        try:
            outcome = new_outcome(True, execute(self.task, self.state, item, self.backend, self.parent_id, self.map_id, self.fast))
        except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
            outcome = Outcome(False, error=exc)
        finally:
            IN_MAP.reset(in_map)
            SESSION.reset(session)
        if progress is not None:
            progress.ended(outcome.ok)
        return outcome

    def remote(self) -> WorkerRunner:
        """A picklable runner for worker processes."""
        return WorkerRunner.for_session(self)

    def replay(self, events: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Fire events recorded by a remote runner on this session's plugins, in order."""
        if events:
            replay(self, events)

    def absorb(self, batch: RemoteBatch) -> Outcomes:
        """Replay a worker batch's events to this session's plugins; return its outcomes."""
        self.replay(batch.events)
        outcomes = Outcomes.of(batch.outcomes)
        progress = self.progress
        if progress is not None:
            progress.absorbed(len(outcomes), len(outcomes.failures))
        return outcomes

    def fail(self, item: WorkItem, error: BaseException) -> Outcome:
        """The outcome of an item lost with its worker (died, or killed on timeout)."""
        call = _lifecycle.Call(
            self.task, self.state, item.args, {}, item.index, self.backend, self.parent_id, self.map_id
        )
        call.started = time.perf_counter()
        call.attempt = self.retries
        if self.progress is not None:
            self.progress.absorbed(1, 1)
        try:
            call.fail(error)
        except Exception as exc:  # noqa: BLE001 - Call.fail always raises the TaskError
            return Outcome(False, error=exc)
        raise AssertionError("unreachable")  # pragma: no cover


class _Progress:
    """A fan-out's item counts for ``map_progress``: cheap to bump from any thread.

    ``bytearray.append`` and ``len`` are atomic under the GIL, so items finishing
    in several threads count without a lock; reports are throttled to one per
    :data:`PROGRESS_INTERVAL` (a non-blocking lock keeps two threads from
    reporting at once).
    """

    __slots__ = ("done", "failed", "lock", "map_id", "next", "notify", "per_item", "started")

    def __init__(self, state: SessionState, map_id: Any, per_item: bool) -> None:
        self.notify = state.plugins.notify
        self.map_id = map_id
        self.per_item = per_item
        self.started = bytearray()
        self.done = bytearray()
        self.failed = bytearray()
        self.lock = threading.Lock()
        self.next = time.perf_counter() + PROGRESS_INTERVAL

    def ended(self, ok: bool) -> None:
        if not ok:
            self.failed.append(0)
        self.done.append(0)
        if time.perf_counter() >= self.next:
            self.report(throttled=True)

    def absorbed(self, count: int, failed: int) -> None:
        """Count ``count`` items that finished elsewhere, ``failed`` of them failed
        (started with them: nothing else is known)."""
        self.started.extend(bytes(count))
        self.done.extend(bytes(count))
        self.failed.extend(bytes(failed))
        if time.perf_counter() >= self.next:
            self.report(throttled=True)

    def report(self, throttled: bool = False) -> None:
        if throttled:
            if not self.lock.acquire(blocking=False):
                return
            self.next = time.perf_counter() + PROGRESS_INTERVAL
            self.lock.release()
        self.notify("map_progress", self.map_id, len(self.started), len(self.done), len(self.failed), self.per_item)


PROGRESS_INTERVAL = 0.1
"""Seconds between two ``map_progress`` reports of one fan-out."""


def _items(task: BaseTask[..., Any], iterables: Sequence[Iterable[Any]]) -> Sequence[WorkItem]:
    # No iterables: no items, as ``zip()`` gives (daglite 0.9 returned [] too).
    try:
        return WorkItems(list(zip(*iterables, strict=True)))
    except ValueError as exc:
        msg = f"map_tasks({task.name!r}): the iterables have different lengths ({exc})"
        raise ValueError(msg) from exc


def base_name(task: BaseTask[..., Any]) -> str:
    """A task's name for grouping its calls: its name, or its function's when the name is a template."""
    if not task._name_fields:
        return task.name
    return str(getattr(task.func, "__name__", task.name))


class Fanout:
    """One fan-out from its ``before_map`` to its ``after_map``: the shared part of
    :func:`map_tasks`, :func:`iter_tasks` and :func:`gather_tasks`."""

    def __init__(self, task: BaseTask[..., Any], iterables: Sequence[Iterable[Any]], backend: str | None) -> None:
        self.task = task
        self.items = _items(task, iterables)
        self.state = state = current_state()
        name = "inline" if IN_MAP.get() else backend or task.backend or state.backend
        self.backend: Backend = state.get_backend(name)
        self.backend_name = self.backend.name
        self.map_id = new_id()
        self.runner = MapRunner(task, state, self.backend_name, self.map_id)
        self.started = 0.0

    def begin(self) -> None:
        """Fire ``before_map``."""
        t, runner = self.task, self.runner
        self.state.plugins.notify(
            "before_map", self.map_id, base_name(t), len(self.items), self.backend_name, runner.parent_id, t.name
        )
        self.started = time.perf_counter()

    def finish(self, failed: int) -> None:
        """Fire the last ``map_progress`` (when implemented) and ``after_map``."""
        if self.runner.progress is not None:
            self.runner.progress.report()
        t = self.task
        self.state.plugins.notify(
            "after_map", self.map_id, base_name(t), len(self.items), self.backend_name, failed,
            time.perf_counter() - self.started, self.runner.parent_id, t.name,
        )

    def run(self) -> Outcomes:
        """Every item's outcome, in input order (``before_map``/``after_map`` around)."""
        self.begin()
        outcomes = Outcomes()
        try:
            if self.items:
                outcomes = Outcomes.of(self.backend.run(self.runner, self.items))
        finally:
            self.finish(len(outcomes.failures))
        return outcomes

    def stream(self) -> Iterator[tuple[int, Outcome]]:
        """``(index, outcome)`` as items finish (``before_map``/``after_map`` around).

        Closing the iterator early stops the items that have not started (the
        backend's ``stream`` decides how; see each backend).
        """
        self.begin()
        failed = 0
        try:
            if self.items:
                stream = getattr(self.backend, "stream", None)
                pairs = stream(self.runner, self.items) if stream is not None else enumerate(self.backend.run(self.runner, self.items))
                try:
                    for position, outcome in pairs:
                        if not outcome.ok:
                            failed += 1
                        yield position, outcome  # items are numbered by position
                finally:
                    close = getattr(pairs, "close", None)
                    if close is not None:
                        close()
        finally:
            self.finish(failed)

    def error(self, failed: dict[int, BaseException]) -> MapError:
        return MapError(self.task.name, failed, len(self.items))


def _raise_failed(fan: Fanout, failed: dict[int, BaseException]) -> None:
    if failed:
        error = fan.error(failed)
        raise error from error.error


def map_tasks(task: Callable[..., T] | BaseTask[..., T], *iterables: Iterable[Any], backend: str | None = None) -> list[T]:
    """Call ``task`` once per item of ``zip(*iterables)`` on a backend; results in input order.

    ``backend`` defaults to the task's ``backend``, then the session's. Each
    item's :class:`TaskMetadata` has ``map_index`` set to its position, ``map_id``
    to the fan-out's id and ``parent_id`` to the task whose body called
    ``map_tasks``; its name gets an ``[i]`` suffix unless the template uses
    ``{map_index}``. Iterables of different lengths are a ``ValueError`` (never
    silently truncated). Plain callables are wrapped with ``task()``; async and
    generator tasks work on every backend (a generator item's result is the list
    of its items).

    Every item runs even when some fail; then a :class:`MapError` names every
    failing index and keeps each error. ``before_map``/``after_map`` fire around
    the items.

    Nested maps: a ``map_tasks`` called inside a mapped item runs inline, whatever
    backend it names, so that pools are never oversubscribed or deadlocked.
    """
    fan = Fanout(make_task(task), iterables, backend)
    outcomes = fan.run()
    _raise_failed(fan, {i: o.error for i, o in outcomes.failures.items()})  # type: ignore[misc]
    return outcomes.values


@overload
def iter_tasks(
    task: Callable[..., T] | BaseTask[..., T], *iterables: Iterable[Any], backend: str | None = ..., ordered: Literal[True] = ...
) -> Generator[T, None, None]: ...
@overload
def iter_tasks(
    task: Callable[..., T] | BaseTask[..., T], *iterables: Iterable[Any], backend: str | None = ..., ordered: Literal[False]
) -> Generator[tuple[int, T], None, None]: ...
@overload
def iter_tasks(
    task: Callable[..., Any] | BaseTask[..., Any], *iterables: Iterable[Any], backend: str | None = ..., ordered: bool
) -> Generator[Any, None, None]: ...
def iter_tasks(
    task: Callable[..., T] | BaseTask[..., T], *iterables: Iterable[Any], backend: str | None = None, ordered: bool = True
) -> Generator[Any, None, None]:
    """The streaming :func:`map_tasks`: results as soon as they are ready.

    ``ordered=True`` yields each value in input order, as soon as it and every
    item before it have finished. ``ordered=False`` yields ``(index, value)``
    pairs in the order items finish. Every item runs (as in ``map_tasks``); at
    the end a :class:`MapError` names every failing index. With ``ordered=True``
    nothing is yielded past the first failed index (so the values never shift
    against the inputs): the other items still run, then the error is raised.

    The task, the arguments and the backend are checked when this is called; the
    items start (and ``before_map`` fires) on the first ``next()``. Closing the
    iterator early (``break``) stops items that have not started yet; items
    already running finish (process workers running them are killed).
    """
    fan = Fanout(make_task(task), iterables, backend)
    return _ordered(fan) if ordered else _unordered(fan)


def _unordered(fan: Fanout) -> Generator[tuple[int, Any], None, None]:
    failed: dict[int, BaseException] = {}
    for index, outcome in fan.stream():
        if outcome.ok:
            yield index, outcome.value
        else:
            failed[index] = outcome.error  # type: ignore[assignment]
    _raise_failed(fan, failed)


def _ordered(fan: Fanout) -> Generator[Any, None, None]:
    failed: dict[int, BaseException] = {}
    waiting: dict[int, Outcome] = {}
    following = 0  # the next index to yield; -1 once it failed (nothing more is yielded)
    for index, outcome in fan.stream():
        if not outcome.ok:
            failed[index] = outcome.error  # type: ignore[assignment]
        if following < 0:
            continue  # past a failure nothing more is yielded; the items still run
        waiting[index] = outcome
        while following in waiting:
            ready = waiting.pop(following)
            if not ready.ok:
                following = -1
                waiting.clear()
                break
            yield ready.value
            following += 1
    _raise_failed(fan, failed)


async def aiter_tasks(
    task: Callable[..., Any] | BaseTask[..., Any], *iterables: Iterable[Any], backend: str | None = None, ordered: bool = True
) -> AsyncIterator[Any]:
    """:func:`iter_tasks` for ``async for``: the items run in a helper thread, so the loop stays free.

    Same arguments, order and errors as :func:`iter_tasks`. The session and the
    running task are carried into the helper thread.
    """
    import asyncio

    stream = iter_tasks(task, *iterables, backend=backend, ordered=ordered)
    done = object()
    context = copy_context()

    def step() -> Any:
        return context.run(next, stream, done)

    try:
        while True:
            value = await asyncio.to_thread(step)
            if value is done:
                return
            yield value
    finally:
        await asyncio.to_thread(context.run, stream.close)


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
    fan = Fanout(t, iterables, "inline")
    fan.begin()
    state, runner = fan.state, fan.runner
    limit = asyncio.Semaphore(max_concurrency or len(fan.items) or 1)

    progress = runner.progress

    async def one(item: WorkItem) -> Outcome:
        async with limit:
            if progress is not None:
                progress.started.append(0)
            call = _lifecycle.Call(t, state, item.args, {}, item.index, "inline", runner.parent_id, fan.map_id)
            in_map = IN_MAP.set(True)
            try:
                if t.is_generator:
                    outcome = Outcome(True, await collect(_lifecycle.run_astream(call)))
                else:
                    outcome = Outcome(True, await _lifecycle.run_async(call))
            except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
                outcome = Outcome(False, error=exc)
            finally:
                IN_MAP.reset(in_map)
            if progress is not None:
                progress.ended(outcome.ok)
            return outcome

    outcomes: list[Outcome] = []
    try:
        outcomes = await asyncio.gather(*(one(item) for item in fan.items))
    finally:
        fan.finish(sum(1 for o in outcomes if not o.ok))
    _raise_failed(fan, {i: o.error for i, o in enumerate(outcomes) if not o.ok})  # type: ignore[misc]
    return [o.value for o in outcomes]
