"""Module-level tasks for the dask backend's tests (workers import them by name)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from daglite_core import active_session, map_tasks, task

CALLS: list[Any] = []
"""Side effects of :func:`record` (in-process workers share this list)."""

GATE = threading.Event()
"""Set by a plugin in the session's thread; awaited by :func:`wait_for_gate` in a worker."""


@task
def inc(x: int) -> int:
    return x + 1


@task
def record(x: int) -> int:
    CALLS.append(x)
    return x


@task(name="fail_some")
def fail_some(x: int) -> int:
    if x in (2, 5):
        raise ValueError(f"bad item {x}")
    return x


@task
def fan_out(xs: list[int]) -> list[int]:
    """A task whose body maps (its items' parent)."""
    return map_tasks(inc, xs, backend="dask")


@task
async def async_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@task
def count_to(n: int) -> Iterator[int]:
    yield from range(n)


@task
async def acount_to(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@task
def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(timeout=0.3)
def overrun(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def wait_for_gate(x: int) -> bool:
    """True when the session saw this item start while it ran."""
    return GATE.wait(10)


@task
def make_lock(x: int) -> Any:
    return threading.Lock()


@task
def inner_lock(x: int) -> Any:
    return threading.Lock()


@task
def calls_inner(x: int) -> int:
    inner_lock(x)
    return x


@task
def identity(x: Any) -> Any:
    return x


@task
def where(x: int) -> tuple[int, str, str | None, int]:
    """The worker's pid, the session's cache_mode and an environment variable, as seen by the item."""
    return os.getpid(), active_session().settings.cache_mode, os.environ.get("DAGLITE_TEST_MARK"), x


@task
def die_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@task(cache=True)
def cached_square(x: int, log_dir: str) -> int:
    """Leaves one file per run of its body in ``log_dir``."""
    with open(os.path.join(log_dir, f"{x}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    return x * x


@task(dataset="squares/{x}.json")
def saved_square(x: int) -> int:
    return x * x


@task
def slow_record(x: int) -> int:
    time.sleep(0.2)
    CALLS.append(x)
    return x
