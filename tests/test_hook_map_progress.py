"""``map_progress``: item counts while a fan-out runs, and plugins that count map items
(``daglite_map_progress = True``) instead of watching each one."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
BACKENDS = ["inline", "thread", "process"]


@d.task
def plain(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * 2


@d.task
def slow(x: int) -> int:
    time.sleep(0.01)
    return x


@d.task
def outer(n: int) -> int:
    return plain(n)


class Counter:
    """Counts map items; watches every other call."""

    daglite_map_progress = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.errors: list[str] = []
        self.progress: list[tuple[Any, int, int, int, bool]] = []

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata) -> None:
        with self.lock:
            self.started.append(metadata.name)

    @d.hookimpl
    def on_node_error(self, metadata: d.TaskMetadata) -> None:
        with self.lock:
            self.errors.append(metadata.name)

    @d.hookimpl
    def map_progress(self, map_id: Any, started: int, done: int, failed: int, per_item: bool) -> None:
        with self.lock:
            self.progress.append((map_id, started, done, failed, per_item))


def settings() -> d.DagliteSettings:
    return d.DagliteSettings(max_workers=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hook_map_progress_counts_items_that_keep_the_fast_path(backend: str) -> None:
    class Maps:
        def __init__(self) -> None:
            self.ids: list[Any] = []

        @d.hookimpl
        def before_map(self, map_id: Any) -> None:
            self.ids.append(map_id)

    counter, maps = Counter(), Maps()
    with d.session(backend=backend, plugins=[counter, maps], settings=settings()) as state:
        assert state.observed and not state.items_observed
        with pytest.raises(d.MapError):
            d.map_tasks(plain, [1, -2, 3, -4, 5])
        assert outer(7) == 14  # direct and nested calls are still watched one by one
    (map_id,) = maps.ids
    assert counter.started == ["outer", "plain"]  # no map item
    assert sorted(counter.errors) == ["plain[1]", "plain[3]"]  # failures still per item
    final = counter.progress[-1]
    assert final == (map_id, 5, 5, 2, False)


@pytest.mark.parametrize("backend", ["inline", "thread"])
def test_hook_map_progress_reports_while_items_run(backend: str) -> None:
    counter = Counter()
    with d.session(backend=backend, plugins=[counter], settings=settings()):
        d.map_tasks(slow, range(60))
    dones = [p[2] for p in counter.progress]
    assert len(dones) >= 2 and dones == sorted(dones) and dones[-1] == 60
    assert dones[0] < 60  # a report came before the map ended


def test_hook_map_progress_with_an_item_observer_is_per_item() -> None:
    counter = Counter()
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[counter, recorder], settings=settings()) as state:
        assert state.items_observed
        d.map_tasks(plain, [1, 2])
    assert sorted(counter.started) == ["plain[0]", "plain[1]"]
    assert counter.progress[-1][1:] == (2, 2, 0, True)


def test_hook_map_progress_alone_keeps_every_call_fast() -> None:
    class OnlyProgress:
        def __init__(self) -> None:
            self.last: tuple[int, int, int] | None = None

        @d.hookimpl
        def map_progress(self, started: int, done: int, failed: int) -> None:
            self.last = (started, done, failed)

    plugin = OnlyProgress()
    with d.session(backend="thread", plugins=[plugin], settings=settings()) as state:
        assert not state.observed
        d.map_tasks(plain, range(10))
    assert plugin.last == (10, 10, 0)


def test_items_of_non_plain_tasks_still_reach_counting_plugins() -> None:
    @d.task(retries=1)
    def sturdy(x: int) -> int:
        return x

    counter = Counter()
    with d.session(backend="thread", plugins=[counter], settings=settings()):
        d.map_tasks(sturdy, [1, 2])
    assert sorted(counter.started) == ["sturdy[0]", "sturdy[1]"]
    assert counter.progress[-1][1:] == (2, 2, 0, True)


def test_gather_tasks_reports_progress() -> None:
    import asyncio

    @d.task
    async def half(x: int) -> float:
        return x / 2

    counter = Counter()

    async def main() -> None:
        async with d.async_session(plugins=[counter]):
            await d.gather_tasks(half, [1, 2, 3])

    asyncio.run(main())
    assert counter.progress[-1][1:] == (3, 3, 0, True)
