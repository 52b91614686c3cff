"""The core's in-process backends: ``inline`` and ``thread``.

Every session imports this module (it checks its ``backend=`` against the provided
classes), most never map: ``concurrent.futures`` and ``queue`` are imported by the
thread backend when it starts a pool or streams, the protocols only for typing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import queue

    from ._protocols import ItemRunner, Outcome, WorkItem
    from ._settings import DagliteSettings


class InlineBackend:
    """Runs items one after the other in the calling thread."""

    name: ClassVar[str] = "inline"
    aliases: ClassVar[tuple[str, ...]] = ("sequential", "synchronous")

    def __init__(self, settings: DagliteSettings) -> None:
        self.settings = settings

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> list[Outcome]:
        return [runner(item) for item in items]

    def stream(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Iterator[tuple[int, Outcome]]:
        for position, item in enumerate(items):
            yield position, runner(item)

    def close(self) -> None:
        """Nothing to release."""


class ThreadBackend:
    """Runs items on a thread pool of ``settings.thread_workers`` threads, made once per session.

    Each map hands the pool one job per thread; the jobs take strided chunks of
    items (chunk ``k`` holds items ``k, k + C, k + 2C, ...``, about sixteen chunks
    per thread) from a shared counter until none is left. So the cost per item
    stays far below a ``submit`` per item, items that are slow together spread
    over every chunk, and a thread that finishes early takes the next chunk.

    Stopping: when the caller leaves (Ctrl-C, an error, or an ``iter_tasks`` closed
    early), items that have not started never start; items already running
    finish in the background (Python cannot interrupt a thread). A timed-out
    attempt's thread is abandoned (see ``@task(timeout=)``), so it never blocks a
    pool thread past its timeout.
    """

    name: ClassVar[str] = "thread"
    aliases: ClassVar[tuple[str, ...]] = ("threads", "threading")

    def __init__(self, settings: DagliteSettings) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.workers = settings.thread_workers
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="daglite-thread")

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> list[Outcome]:
        """Every item's outcome, in input order."""
        from concurrent.futures import wait

        work = _Chunks(runner, items, self.workers, None)
        futures = [self.pool.submit(work.drain) for _ in range(work.jobs)]
        try:
            # Waits in slices: a lock wait with no timeout may not see Ctrl-C at once.
            while wait(futures, WAKE).not_done:
                pass
            for future in futures:
                future.result()  # re-raise a KeyboardInterrupt/SystemExit from a body
        except BaseException:
            work.stopped = True
            raise
        return work.outcomes  # type: ignore[return-value]

    def stream(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Iterator[tuple[int, Outcome]]:
        """``(position, outcome)`` as each item finishes."""
        import queue

        done: queue.SimpleQueue[tuple[int, Outcome] | BaseException] = queue.SimpleQueue()
        work = _Chunks(runner, items, self.workers, done)
        for _ in range(work.jobs):
            self.pool.submit(work.drain)
        try:
            for _ in range(len(items)):
                while True:
                    try:
                        answer = done.get(timeout=WAKE)
                        break
                    except queue.Empty:
                        continue
                if isinstance(answer, BaseException):
                    raise answer
                yield answer
        finally:
            work.stopped = True

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Chunks:
    """One map's items on the thread pool: strided chunks taken from a shared counter."""

    def __init__(
        self, runner: ItemRunner, items: Sequence[WorkItem], workers: int, done: queue.SimpleQueue[Any] | None
    ) -> None:
        self.runner = runner
        self.items = items
        self.count = min(len(items), workers * CHUNKS_PER_THREAD)
        self.jobs = min(workers, self.count)
        self.next = itertools.count().__next__  # atomic under the GIL
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.done = done
        self.stopped = False

    def drain(self) -> None:
        """Run chunks until none is left or the map was stopped."""
        runner, items, outcomes, done, count = self.runner, self.items, self.outcomes, self.done, self.count
        n = len(items)
        try:
            while not self.stopped:
                k = self.next()
                if k >= count:
                    return
                for position in range(k, n, count):
                    if self.stopped:
                        return
                    outcome = runner(items[position])
                    outcomes[position] = outcome
                    if done is not None:
                        done.put((position, outcome))
        except BaseException as exc:  # a KeyboardInterrupt/SystemExit in a body: the caller re-raises it
            self.stopped = True
            if done is not None:
                done.put(exc)
            raise


CHUNKS_PER_THREAD = 16
WAKE = 0.2
"""Seconds between two checks for Ctrl-C while the caller waits for items."""
