"""Task bodies and plugins shared by the areas (module level, so process workers import them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from daglite_core import hookimpl, task


def add(x: int, y: int) -> int:
    """The plain function every call case wraps."""
    return x + y


def cached_add(x: int, y: int) -> int:
    """The body of the cache-hit case (its own function: cache keys track the code)."""
    return x + y


def head(x: Any) -> Any:
    """The body of the ndarray-argument cache hit: its key is the cost."""
    return x[0]


def inc(x: int) -> int:
    """The fan-out item function."""
    return x + 1


def nap(seconds: float) -> float:
    """Sleep ``seconds`` (a slow item when > 0): the stragglers workload."""
    if seconds:
        time.sleep(seconds)
    return seconds


def count(n: int) -> Iterator[int]:
    """A plain generator of ``n`` items."""
    yield from range(n)


add_task = task(add)
inc_task = task(inc)
count_task = task(count)
nap_task = task(nap)


class Observer:
    """A no-op observer plugin: before + after node execute."""

    @hookimpl
    def before_node_execute(self, metadata: Any, reporter: Any) -> None:
        """Observe the start."""

    @hookimpl
    def after_node_execute(self, metadata: Any, reporter: Any, duration: float, result: Any) -> None:
        """Observe the end."""


class IterationObserver(Observer):
    """:class:`Observer` that also implements ``node_iteration``."""

    @hookimpl
    def node_iteration(self, metadata: Any, reporter: Any, index: int) -> None:
        """Observe one yielded item."""
