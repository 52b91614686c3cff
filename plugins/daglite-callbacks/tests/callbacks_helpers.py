"""Module-level tasks and helpers for the daglite-callbacks tests.

Importable by name, so that the process backend's workers can unpickle the tasks.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from daglite_callbacks import ErrorValue, ReturnValue
from daglite_core import CACHE_MISS, task


@task
def cb_double(x: int) -> int:
    return x * 2


@task
def cb_add(x: int, y: int = 10) -> int:
    return x + y


@task
def cb_increment(value: ReturnValue[int]) -> int:
    return value + 1


@task
def cb_fails_on(x: int, bad: int = -1) -> int:
    if x == bad:
        msg = f"bad item {x}"
        raise ValueError(msg)
    return x


@task
def cb_explode(x: int) -> int:
    msg = f"exploded on {x}"
    raise RuntimeError(msg)


@task
def cb_pid_of(x: int) -> int:
    return os.getpid()


class Log:
    """Collects what callbacks saw (callbacks run in the session's process)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any]] = []

    def add(self, what: str, value: Any) -> None:
        self.entries.append((what, value))

    def names(self) -> list[str]:
        return [what for what, _ in self.entries]

    def of(self, what: str) -> list[Any]:
        return [value for name, value in self.entries if name == what]


def collector(log: Log, label: str) -> Any:
    """A success callback (a plain function) that records the result under ``label``."""

    def collect(results: ReturnValue[Any], sink: Log = log) -> None:
        sink.add(label, (results, os.getpid()))

    collect.__name__ = f"collect_{label}"
    collect.__qualname__ = f"collect_{label}"
    return collect


def error_collector(log: Log, label: str) -> Any:
    """An error callback taking anything, recording kwargs and error under ``label``."""

    def on_error(error: ErrorValue, sink: Log = log, **kwargs: Any) -> None:
        sink.add(label, (kwargs, error))

    on_error.__name__ = f"on_error_{label}"
    on_error.__qualname__ = f"on_error_{label}"
    return on_error


class DictStore:
    """A minimal in-memory cache store (the CacheStore protocol)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key, CACHE_MISS)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        self.data[key] = value


@attrs.frozen
class Point:
    """An attrs model used as ``model_validators=``."""

    x: int = attrs.field(converter=int)
    y: int = attrs.field(converter=int, default=0)


@task
def cb_fail_if(value: ReturnValue[int], bad: int) -> int:
    if value == bad:
        msg = f"bad value {value}"
        raise ValueError(msg)
    return value


@task
def cb_total_of(parts: ReturnValue[list[int]]) -> int:
    return sum(parts)


@task
def cb_rendezvous(x: int, folder: str, peers: int) -> int:
    """Mark this item started, then wait (up to 60 s) until ``peers`` items have started.

    If items ran one at a time, the first would never see its peers and fail: so a
    swarm whose items all succeed ran ``peers`` of them side by side.
    """
    import time
    from pathlib import Path

    Path(folder, f"started-{x}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).glob("started-*"))) < peers:
        if time.monotonic() > deadline:
            msg = f"item {x}: only {len(list(Path(folder).glob('started-*')))} of {peers} items started"
            raise TimeoutError(msg)
        time.sleep(0.01)
    return os.getpid()


@task
def cb_count_running(x: int, folder: str) -> int:
    """How many items were running (this one included) when this one started."""
    import time
    from pathlib import Path

    mine = Path(folder, f"running-{x}")
    mine.touch()
    seen = len(list(Path(folder).glob("running-*")))
    time.sleep(0.3)
    mine.unlink()
    return seen
