"""The core's in-process backends: ``inline`` and ``thread``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

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

    def close(self) -> None:
        """Nothing to release."""


class ThreadBackend:
    """Runs items on a thread pool of ``settings.thread_workers`` threads, made once per session.

    Items are handed to the pool in chunks (about four per thread) so that the cost
    per item stays well below a ``submit`` per item, while uneven items still
    balance across threads. A timed-out attempt's thread is abandoned (see
    ``@task(timeout=)``), so it never blocks a pool thread past its timeout.
    """

    name: ClassVar[str] = "thread"
    aliases: ClassVar[tuple[str, ...]] = ("threads", "threading")

    def __init__(self, settings: DagliteSettings) -> None:
        self.workers = settings.thread_workers
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="daglite-thread")

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> list[Outcome]:
        size = max(1, min(256, math.ceil(len(items) / (self.workers * 4))))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        futures = [self.pool.submit(_run_chunk, runner, chunk) for chunk in chunks]
        return [outcome for future in futures for outcome in future.result()]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _run_chunk(runner: ItemRunner, chunk: Sequence[WorkItem]) -> list[Outcome]:
    return [runner(item) for item in chunk]
