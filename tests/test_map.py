"""map_tasks / gather_tasks on the in-process backends."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin

BACKENDS = ["inline", "thread"]


@d.task
def inc(x: int) -> int:
    return x + 1


@d.task(name="item-{map_index}")
def labelled(x: int) -> int:
    return x


@d.task
def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_in_input_order_with_map_index(backend: str) -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[recorder], settings=d.DagliteSettings(max_workers=2)):
        assert d.map_tasks(inc, range(20), backend=backend) == list(range(1, 21))
    mds = sorted((c["metadata"] for c in recorder.calls), key=lambda m: m.map_index)
    assert [m.map_index for m in mds] == list(range(20))
    assert mds[3].name == "inc[3]" and mds[3].backend == backend


def test_template_with_map_index_gets_no_suffix() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[recorder]):
        d.map_tasks(labelled, [5, 6])
    assert [c["metadata"].name for c in recorder.calls] == ["item-0", "item-1"]


def test_several_iterables_are_zipped_and_must_match() -> None:
    assert d.map_tasks(lambda a, b: a * b, [1, 2], [3, 4]) == [3, 8]
    with pytest.raises(ValueError, match="map_tasks\\('<lambda>'\\): the iterables have different lengths"):
        d.map_tasks(lambda a, b: a, [1, 2], [3])
    assert d.map_tasks(inc) == []  # no iterables: no items, as zip() gives


def test_plain_callables_are_wrapped() -> None:
    def double(x: int) -> int:
        return 2 * x

    assert d.map_tasks(double, [1, 2]) == [2, 4]
    assert d.map_tasks(inc, []) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_failures_name_every_failing_index_and_other_items_complete(backend: str) -> None:
    done = []

    @d.task
    def work(x: int) -> int:
        if x in (1, 3):
            raise ValueError(f"bad {x}")
        done.append(x)
        return x

    with pytest.raises(d.MapError) as info:
        d.map_tasks(work, range(5), backend=backend)
    error = info.value
    assert error.failed_indexes == [1, 3]
    assert sorted(done) == [0, 2, 4]
    assert "failed for 2 of 5 items (indexes [1, 3])" in str(error)
    assert "[1] ValueError: bad 1" in str(error) and "[3] ValueError: bad 3" in str(error)
    assert all(isinstance(e, d.TaskError) and isinstance(e.error, ValueError) for e in error.errors.values())
    assert isinstance(error, d.TaskError) and error.__cause__ is error.errors[1]


def test_hook_before_map_and_after_map_give_the_total() -> None:
    recorder = RecordingPlugin(hooks=["before_map", "after_map"])
    with d.session(plugins=[recorder]), pytest.raises(d.MapError):
        d.map_tasks(fail_on_odd, range(4), backend="thread")
    before, after = recorder.calls
    assert (before.hook, before["total"], before["task_name"], before["backend"]) == ("before_map", 4, "fail_on_odd", "thread")
    assert (after.hook, after["total"], after["failed"]) == ("after_map", 4, 2)
    assert before["map_id"] == after["map_id"] and after["duration"] >= 0


def test_hook_on_report_receives_reporter_events() -> None:
    received: list[tuple[str, Any, Any]] = []

    class Sender:
        @d.hookimpl
        def after_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter) -> None:
            reporter.report("done", metadata.map_index)

    class Receiver:
        @d.hookimpl
        def on_report(self, event: str, data: Any, metadata: d.TaskMetadata | None) -> None:
            received.append((event, data, threading.current_thread().name))

    with d.session(plugins=[Sender(), Receiver()], backend="thread"):
        d.map_tasks(inc, range(3))
    assert sorted(r[1] for r in received) == [0, 1, 2]
    assert {r[0] for r in received} == {"done"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_and_generator_tasks_on_every_backend(backend: str) -> None:
    @d.task
    async def aplus(x: int) -> int:
        await asyncio.sleep(0)
        return x + 10

    @d.task
    def upto(n: int):
        yield from range(n)

    @d.task
    async def aupto(n: int):
        for i in range(n):
            yield i

    assert d.map_tasks(aplus, [1, 2], backend=backend) == [11, 12]
    assert d.map_tasks(upto, [2, 3], backend=backend) == [[0, 1], [0, 1, 2]]
    assert d.map_tasks(aupto, [1], backend=backend) == [[0]]


def test_map_of_an_async_task_inside_a_running_loop() -> None:
    @d.task
    async def aplus(x: int) -> int:
        return x + 1

    async def main() -> list[int]:
        return d.map_tasks(aplus, [1, 2])

    assert asyncio.run(main()) == [2, 3]


def test_nested_map_runs_inline_and_never_deadlocks() -> None:
    recorder = RecordingPlugin(hooks=["before_map"])

    @d.task
    def fan(n: int) -> list[int]:
        return d.map_tasks(inc, range(n), backend="thread")

    with d.session(plugins=[recorder], settings=d.DagliteSettings(max_workers=2)):
        assert d.map_tasks(fan, [2, 2, 2, 2], backend="thread") == [[1, 2]] * 4
    assert [c["backend"] for c in recorder.calls].count("inline") == 4


def test_parent_id_crosses_the_thread_backend() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])

    @d.task
    def outer() -> list[int]:
        return d.map_tasks(inc, [1, 2], backend="thread")

    with d.session(plugins=[recorder]):
        outer()
    outer_md = next(c["metadata"] for c in recorder.calls if c["metadata"].name == "outer")
    children = [c["metadata"] for c in recorder.calls if c["metadata"].name != "outer"]
    assert len(children) == 2 and all(m.parent_id == outer_md.id for m in children)


def test_top_level_items_have_no_parent() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(plugins=[recorder]):
        d.map_tasks(inc, [1], backend="thread")
    assert recorder.calls[0]["metadata"].parent_id is None


def test_thread_pool_is_made_once_per_session_and_shut_down() -> None:
    with d.session(backend="thread", settings=d.DagliteSettings(max_workers=2)) as state:
        d.map_tasks(inc, [1])
        backend = state.get_backend("threads")
        d.map_tasks(inc, [2])
        assert state.get_backend("thread") is backend
    assert backend.pool._shutdown  # type: ignore[attr-defined]


def test_timeout_on_the_thread_backend() -> None:
    release = threading.Event()

    @d.task(timeout=0.2)
    def maybe_stuck(x: int) -> int:
        if x == 1:
            release.wait(30)
        return x

    started = time.monotonic()
    with pytest.raises(d.MapError) as info:
        d.map_tasks(maybe_stuck, [0, 1, 2], backend="thread")
    assert time.monotonic() - started < 10
    assert isinstance(info.value.errors[1], d.TaskTimeoutError)
    release.set()


class TestGather:
    def test_items_run_concurrently_on_the_loop_with_a_limit(self) -> None:
        running, peak = [0], [0]

        @d.task
        async def slow(x: int) -> int:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            await asyncio.sleep(0.01)
            running[0] -= 1
            return x

        async def main() -> list[int]:
            return await d.gather_tasks(slow, range(10), max_concurrency=3)

        assert asyncio.run(main()) == list(range(10))
        assert peak[0] == 3

    def test_failures_and_map_index(self) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])

        @d.task
        async def check(x: int) -> int:
            if x == 2:
                raise ValueError("two")
            return x

        async def main() -> list[int]:
            async with d.async_session(plugins=[recorder]):
                return await d.gather_tasks(check, range(4))

        with pytest.raises(d.MapError) as info:
            asyncio.run(main())
        assert info.value.failed_indexes == [2]
        assert sorted(c["metadata"].map_index for c in recorder.calls) == [0, 1, 2, 3]

    def test_backend_is_honoured(self) -> None:
        threads = []

        @d.task
        def where(x: int) -> int:
            threads.append(threading.current_thread().name)
            return x

        async def main() -> list[int]:
            return await d.gather_tasks(where, [1, 2], backend="thread")

        assert asyncio.run(main()) == [1, 2]
        assert all(name.startswith("daglite-thread") for name in threads)

    def test_bad_limit(self) -> None:
        with pytest.raises(ValueError, match="max_concurrency must be >= 1"):
            asyncio.run(d.gather_tasks(inc, [1], max_concurrency=0))


SQUARE_RUNS: list[int] = []


@d.task(cache=True, dataset="sq/{map_index}.json")
def square(x: int) -> int:
    SQUARE_RUNS.append(x)  # a global: closure values are part of the cache key
    return x * x


def test_cache_and_datasets_from_thread_workers() -> None:
    from core_stores import Providers

    providers = Providers()
    runs = SQUARE_RUNS
    runs.clear()

    with d.session(plugins=[providers], backend="thread", settings=d.DagliteSettings(max_workers=4)):
        assert d.map_tasks(square, range(40)) == [x * x for x in range(40)]
        assert d.map_tasks(square, range(40)) == [x * x for x in range(40)]
    assert sorted(runs) == list(range(40))
    assert len(providers.cache.data) == 40
    assert providers.datasets.data["sq/7.json"] == "49" and len(providers.datasets.data) == 40


def test_current_metadata_names_the_backend_even_without_hooks() -> None:
    @d.task
    def probe(x: int) -> tuple[str, int | None]:
        md = d.current_metadata()
        assert md is not None
        return md.backend, md.map_index

    assert d.map_tasks(probe, [5, 6], backend="thread") == [("thread", 0), ("thread", 1)]
    assert probe(1) == ("inline", None)


def test_a_mutating_closure_gets_one_cache_key_across_threads() -> None:
    from core_stores import MemoryCache

    store, seen = MemoryCache(), []

    def record(x: int) -> int:
        seen.append(x)  # the closure's value changes while threads hash it
        return x

    cached = d.task(cache=store)(record)
    with d.session(backend="thread", settings=d.DagliteSettings(max_workers=4)):
        d.map_tasks(cached, [1] * 16)
        d.map_tasks(cached, [1] * 16)
    assert len(store.data) == 1
