"""``swarm([a, b, c], max_concurrency=N, stop_after_n_failures=k)``: items side by side."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from daglite_core import BaseTask, MapError, active_session, iter_tasks

from ._chain import container_backend
from ._errors import SignatureError, SwarmError, TaskOutcome
from ._node import MISSING, Node, Prepared, as_node
from ._params import Names
from ._run import INLINE, positional

THREADED = frozenset({"thread", "threads", "threading"})


def _positive(where: str, option: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{where}: {option} must be an int >= 1 or None, got {value!r}"
        raise SignatureError(msg)


class _Book:
    """Outcomes of one swarm call, filled from several threads."""

    def __init__(self, size: int, stop_after: int | None) -> None:
        self.outcomes: list[TaskOutcome | None] = [None] * size
        self.cancelled: list[int] = []
        self.failed = 0
        self.aborted = False
        self.stop_after = stop_after
        self.lock = threading.Lock()

    def may_start(self, index: int) -> bool:
        with self.lock:
            if self.aborted:
                return False
            if self.stop_after is not None and self.failed >= self.stop_after:
                self.cancelled.append(index)
                return False
            return True

    def record(self, index: int, outcome: TaskOutcome) -> None:
        with self.lock:
            self.outcomes[index] = outcome
            self.failed += not outcome.ok


class Swarm(Node):
    """Items run side by side with the call's kwargs; results in item order.

    Policies:

    * Each item gets the call's kwargs merged with its own bound kwargs; the
      item's bound kwargs win (they are the item's specifics).
    * On the ``inline`` backend ``run()`` runs items one after the other in the
      calling thread and ``arun()`` runs them on the event loop, at most
      ``max_concurrency`` at a time. On ``thread`` at most
      ``max_concurrency`` (default: the session's ``workers``) items run at a time,
      each a one-item map; on ``process`` and other backends signature items of
      one task run as one streamed map (see :meth:`_run_grouped`). Callbacks
      always run in the session's process.
    * Success callbacks fire once, after every item succeeded, with the list of
      results in item order. When any item fails, error callbacks fire once with
      the call's kwargs and a :class:`SwarmError` naming every failed item, which
      is then raised. Each item's own callbacks fire as it finishes.
    * ``stop_after_n_failures=k``: once ``k`` items failed, items not started yet
      are cancelled (never run, no callbacks) and named in the error; running
      items finish.
    * In strict mode an item's failing callback raises its :class:`CallbackError`:
      no further item starts and the swarm calls nothing back.
    """

    def __init__(
        self,
        items: Sequence[Any],
        *,
        max_concurrency: int | None = None,
        stop_after_n_failures: int | None = None,
        name: str | None = None,
        success_callbacks: Iterable[Any] = (),
        error_callbacks: Iterable[Any] = (),
        dispatch: str = "sequential",
        strict: bool | None = None,
        backend: str | None = None,
        durable: Any = None,
    ) -> None:
        nodes = [as_node(item, f"item {i} of a swarm") for i, item in enumerate(items)]
        if not nodes:
            msg = "swarm() needs at least one item"
            raise SignatureError(msg)
        label = name or f"swarm({', '.join(n.name for n in nodes)})"
        _positive(f"Swarm {label!r}", "max_concurrency", max_concurrency)
        _positive(f"Swarm {label!r}", "stop_after_n_failures", stop_after_n_failures)
        self.items = tuple(nodes)
        self.max_concurrency = max_concurrency
        self.stop_after_n_failures = stop_after_n_failures
        self.backend = backend
        self._name_given = name
        self._init_node(label, success_callbacks, error_callbacks, dispatch, strict, durable)

    def __repr__(self) -> str:
        return f"<Swarm {self.name!r} of {len(self.items)} items>"

    def frozen_options(self) -> bool:
        return self.backend is None or isinstance(self.backend, str)

    def __reduce__(self) -> tuple[Any, ...]:
        from ._signature import _rebuild

        options = {
            "max_concurrency": self.max_concurrency,
            "stop_after_n_failures": self.stop_after_n_failures,
            "name": self._name_given,
            "backend": self.backend,
            **self.node_options(),
        }
        return (_rebuild, (Swarm, (self.items,), options))

    @property
    def is_async(self) -> bool:
        return any(item.is_async for item in self.items)

    def children(self) -> Sequence[Node]:
        return self.items

    def accepted(self) -> Names:
        return Names.intersection(item.accepted() for item in self.items)

    def received(self) -> Names:
        # Error callbacks get the swarm's call kwargs: any name every item accepts.
        return self.accepted()

    def guaranteed(self) -> frozenset[str]:
        return frozenset()

    def result_type(self) -> Any:
        return list

    def check_receives_result(self, where: str, result_type: Any) -> None:
        for i, item in enumerate(self.items):
            item.check_receives_result(f"{where} (its item {i})", result_type)

    def check_receives_error(self, where: str, received: Names, guaranteed: frozenset[str]) -> None:
        for i, item in enumerate(self.items):
            item.check_receives_error(f"{where} (its item {i})", received, guaranteed)

    def guard(self, kind: str, reason: str) -> None:
        for item in self.items:
            item.guard(kind, reason)

    def prepare(
        self, call: Mapping[str, Any], *, result: Any = MISSING, error: Any = MISSING, call_wins: bool = True
    ) -> Prepared:
        parts = tuple(item.prepare(call, result=result, error=error, call_wins=False) for item in self.items)
        return Prepared(dict(call), parts)

    def _finish(self, prepared: Prepared, book: _Book) -> TaskOutcome:
        errors = {i: o.error for i, o in enumerate(book.outcomes) if o is not None and not o.ok}
        if errors:
            error = SwarmError(self.name, errors, book.cancelled, [item.name for item in self.items])  # type: ignore[arg-type]
            return TaskOutcome(False, error=error, kwargs=prepared.kwargs)
        return TaskOutcome(True, [o.value for o in book.outcomes if o is not None], kwargs=prepared.kwargs)

    def _run_item(self, book: _Book, prepared: Prepared, index: int, backend: str) -> None:
        if not book.may_start(index):
            return
        try:
            outcome = self.items[index].outcome_sync(prepared.parts[index], backend)
        except BaseException:
            book.aborted = True  # e.g. a strict-mode CallbackError: start nothing more, re-raise
            raise
        book.record(index, outcome)

    def body_sync(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        backend = container_backend(self.backend, backend)
        book = _Book(len(self.items), self.stop_after_n_failures)
        if backend in INLINE:
            for index in range(len(self.items)):
                self._run_item(book, prepared, index, backend)
            return self._finish(prepared, book)
        session_workers = active_session().settings.workers
        rest = range(len(self.items)) if backend in THREADED else self._run_grouped(book, prepared, backend, session_workers)
        if not rest:
            return self._finish(prepared, book)
        workers = min(self.max_concurrency or session_workers, len(rest))
        pending = iter(rest)
        take = threading.Lock()

        def worker() -> None:
            while True:
                with take:
                    index = next(pending, None)
                if index is None:
                    return
                self._run_item(book, prepared, index, backend)

        with ThreadPoolExecutor(workers, thread_name_prefix="daglite-swarm") as pool:
            futures = [pool.submit(contextvars.copy_context().run, worker) for _ in range(workers)]
            for future in futures:
                future.result()
        return self._finish(prepared, book)

    def _run_grouped(self, book: _Book, prepared: Prepared, backend: str, workers: int) -> list[int]:
        """Run signature items as streamed maps, one per task; return the other items' indexes.

        A backend such as ``process`` runs one map at a time, so one-item maps
        from several threads would run one after another. Items of one task go in
        one ``iter_tasks`` call instead (the pool runs them side by side; each
        item's callbacks fire as it finishes). At most ``max_concurrency`` items
        are in flight: when it is below the pool's size, or when
        ``stop_after_n_failures`` is set, they go in waves of that many (a wave
        finishes before the next starts; failures are counted between waves).
        """
        groups: dict[int, tuple[BaseTask[..., Any], list[tuple[int, tuple[Any, ...]]]]] = {}
        rest: list[int] = []
        for index, item in enumerate(self.items):
            task = getattr(item, "task", None)
            args = positional(task, prepared.parts[index].kwargs) if isinstance(task, BaseTask) else None
            if task is None or not args or task.is_generator:
                rest.append(index)
                continue
            groups.setdefault(id(task), (task, []))[1].append((index, args))
        width = min(self.max_concurrency or workers, workers)
        for task, members in groups.values():
            size = len(members) if width >= workers and self.stop_after_n_failures is None else width
            for start in range(0, len(members), size):
                wave = [(index, args) for index, args in members[start:start + size] if book.may_start(index)]
                if wave:
                    self._stream_wave(book, prepared, task, wave, backend)
        return rest

    def _stream_wave(
        self,
        book: _Book,
        prepared: Prepared,
        task: BaseTask[..., Any],
        wave: list[tuple[int, tuple[Any, ...]]],
        backend: str,
    ) -> None:
        columns = [list(column) for column in zip(*(args for _, args in wave), strict=True)]
        try:
            for position, value in iter_tasks(task, *columns, backend=backend, ordered=False):
                self._act_item(book, prepared, wave[position][0], TaskOutcome(True, value))
        except MapError as exc:
            for position, error in exc.errors.items():
                self._act_item(book, prepared, wave[position][0], TaskOutcome(False, error=error))  # type: ignore[arg-type]

    def _act_item(self, book: _Book, prepared: Prepared, index: int, result: TaskOutcome) -> None:
        kwargs = prepared.parts[index].kwargs
        outcome = TaskOutcome(result.ok, result.value, result.error, kwargs)
        try:
            self.items[index].act_sync(outcome)
        except BaseException:
            book.aborted = True
            raise
        book.record(index, outcome)

    async def body_async(self, prepared: Prepared, backend: str | None) -> TaskOutcome:
        backend = container_backend(self.backend, backend)
        if backend not in INLINE:
            return await asyncio.to_thread(self.body_sync, prepared, backend)
        book = _Book(len(self.items), self.stop_after_n_failures)
        limit = asyncio.Semaphore(self.max_concurrency or len(self.items))

        async def one(index: int) -> None:
            async with limit:
                if not book.may_start(index):
                    return
                try:
                    outcome = await self.items[index].outcome_async(prepared.parts[index], backend)
                except BaseException:
                    book.aborted = True
                    raise
                book.record(index, outcome)

        await asyncio.gather(*(one(i) for i in range(len(self.items))))
        return self._finish(prepared, book)


def swarm(
    items: Sequence[Any],
    /,
    *,
    max_concurrency: int | None = None,
    stop_after_n_failures: int | None = None,
    name: str | None = None,
    success_callbacks: Iterable[Any] = (),
    error_callbacks: Iterable[Any] = (),
    dispatch: str = "sequential",
    strict: bool | None = None,
    backend: str | None = None,
    durable: Any = None,
) -> Swarm:
    """Build a :class:`Swarm` of signatures (or tasks, functions, names, chains, swarms).

    Calling it returns the items' results in item order (see :class:`Swarm`).
    """
    return Swarm(
        items,
        max_concurrency=max_concurrency,
        stop_after_n_failures=stop_after_n_failures,
        name=name,
        success_callbacks=success_callbacks,
        error_callbacks=error_callbacks,
        dispatch=dispatch,
        strict=strict,
        backend=backend,
        durable=durable,
    )
