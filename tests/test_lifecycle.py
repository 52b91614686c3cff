"""The lifecycle: node hooks in order, retries, timeouts, for every task kind."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin


def flaky(failures: int):
    """A function failing ``failures`` times, then returning the attempt count."""
    attempts = {"n": 0}

    def body() -> int:
        attempts["n"] += 1
        if attempts["n"] <= failures:
            raise ValueError(f"attempt {attempts['n']}")
        return attempts["n"]

    return body, attempts


def test_hook_before_node_execute_and_after_node_execute() -> None:
    recorder = RecordingPlugin()

    @d.task
    def double(x: int) -> int:
        return 2 * x

    with d.session(plugins=[recorder]):
        assert double(4) == 8
    before, after = recorder.of("before_node_execute"), recorder.of("after_node_execute")
    assert len(before) == len(after) == 1
    assert after[0]["result"] == 8 and after[0]["duration"] >= 0
    assert after[0]["metadata"] is before[0]["metadata"]
    assert before[0]["reporter"] is not None


def test_hook_on_node_error_gets_the_original_error() -> None:
    recorder = RecordingPlugin()

    @d.task
    def fails() -> None:
        raise ValueError("nope")

    with d.session(plugins=[recorder]), pytest.raises(d.TaskError):
        fails()
    (call,) = recorder.of("on_node_error")
    assert isinstance(call["error"], ValueError) and str(call["error"]) == "nope"
    assert "after_node_execute" not in recorder.names()


def test_hook_before_node_retry_and_after_node_retry_order() -> None:
    recorder = RecordingPlugin()
    body, attempts = flaky(2)
    task = d.task(retries=3)(body)
    with d.session(plugins=[recorder]):
        assert task() == 3
    node = [n for n in recorder.names() if "node" in n]
    assert node == [
        "before_node_execute",
        "before_node_retry", "after_node_retry",
        "before_node_retry", "after_node_retry",
        "after_node_execute",
    ]
    assert [c["attempt"] for c in recorder.of("before_node_retry")] == [1, 2]
    assert [c["succeeded"] for c in recorder.of("after_node_retry")] == [False, True]
    assert str(recorder.of("before_node_retry")[0]["error"]) == "attempt 1"


def test_retries_n_means_at_most_n_plus_one_attempts() -> None:
    body, attempts = flaky(10)
    task = d.task(retries=2)(body)
    with pytest.raises(d.TaskError) as info:
        task()
    assert attempts["n"] == 3
    assert info.value.attempts == 3
    assert str(info.value) == "Task 'body' failed after 3 attempts: ValueError: attempt 3"
    assert str(info.value.__cause__) == "attempt 3"


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_are_never_retried_or_wrapped(exc: type[BaseException]) -> None:
    recorder = RecordingPlugin()
    calls = []

    @d.task(retries=3)
    def stop() -> None:
        calls.append(1)
        raise exc

    with d.session(plugins=[recorder]), pytest.raises(exc):
        stop()
    assert calls == [1]
    assert [type(c["error"]) for c in recorder.of("on_node_error")] == [exc]


def test_async_task_retries_through_the_same_lifecycle() -> None:
    recorder = RecordingPlugin()
    body, attempts = flaky(1)

    @d.task(retries=1)
    async def task() -> int:
        return body()

    with d.session(plugins=[recorder]):
        assert asyncio.run(task()) == 2
    assert [c["attempt"] for c in recorder.of("before_node_retry")] == [1]


class TestTimeouts:
    def test_sync_timeout_is_enforced_and_the_thread_abandoned(self) -> None:
        release = threading.Event()

        @d.task(timeout=0.2)
        def stuck() -> str:
            release.wait(30)
            return "late"

        started = time.monotonic()
        with pytest.raises(d.TaskTimeoutError) as info:
            stuck()
        assert time.monotonic() - started < 10  # generous: the contract is T + 0.5 s
        assert "Task 'stuck' failed" in str(info.value) and "timed out after 0.2 s" in str(info.value)
        assert isinstance(info.value.__cause__, TimeoutError)
        release.set()

    def test_async_timeout_cancels_the_coroutine(self) -> None:
        cancelled = []

        @d.task(timeout=0.2)
        async def stuck() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        with pytest.raises(d.TaskTimeoutError):
            asyncio.run(stuck())
        assert cancelled == [True]

    def test_timeout_is_per_attempt_and_retried(self) -> None:
        recorder = RecordingPlugin()
        attempts = []

        @d.task(timeout=0.2, retries=1)
        def slow_then_fast() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                time.sleep(1)
            return "ok"

        with d.session(plugins=[recorder]):
            assert slow_then_fast() == "ok"
        assert len(attempts) == 2
        assert isinstance(recorder.of("before_node_retry")[0]["error"], TimeoutError)

    def test_a_body_raising_its_own_timeout_error_is_not_a_task_timeout(self) -> None:
        @d.task(timeout=5)
        async def raises() -> None:
            raise TimeoutError("socket")

        with pytest.raises(d.TaskError) as info:
            asyncio.run(raises())
        assert type(info.value) is d.TaskError

    def test_timed_body_sees_the_session_and_parent(self) -> None:
        recorder = RecordingPlugin(hooks=["before_node_execute"])

        @d.task(timeout=5)
        def outer() -> int:
            return inner()

        @d.task
        def inner() -> int:
            return 1

        with d.session(plugins=[recorder]):
            outer()
        outer_md, inner_md = (c["metadata"] for c in recorder.calls)
        assert inner_md.parent_id == outer_md.id


class TestStreams:
    def test_hook_node_iteration_fires_per_item(self) -> None:
        recorder = RecordingPlugin()

        @d.task
        def count(n: int):
            yield from range(n)

        with d.session(plugins=[recorder]):
            assert list(count(3)) == [0, 1, 2]
        assert [c["index"] for c in recorder.of("node_iteration")] == [0, 1, 2]
        assert recorder.names()[1] == "before_node_execute"
        assert recorder.of("after_node_execute")[0]["result"] is None

    def test_nothing_runs_until_iterated(self) -> None:
        ran = []

        @d.task
        def gen():
            ran.append(1)
            yield 1

        items = gen()
        assert ran == []
        assert list(items) == [1] and ran == [1]

    def test_early_close_fires_after_node_execute(self) -> None:
        recorder = RecordingPlugin()
        closed = []

        @d.task
        def forever():
            try:
                i = 0
                while True:
                    yield i
                    i += 1
            finally:
                closed.append(True)

        with d.session(plugins=[recorder]):
            for item in forever():
                if item == 2:
                    break
        assert closed == [True]
        assert len(recorder.of("after_node_execute")) == 1
        assert not recorder.of("on_node_error")

    def test_error_in_a_stream_is_a_task_error_after_the_items(self) -> None:
        recorder = RecordingPlugin()

        @d.task
        def broken():
            yield 1
            raise ValueError("mid-stream")

        got = []
        with d.session(plugins=[recorder]), pytest.raises(d.TaskError, match="mid-stream"):
            for item in broken():
                got.append(item)
        assert got == [1]
        assert len(recorder.of("on_node_error")) == 1

    def test_async_stream_fires_the_same_hooks(self) -> None:
        recorder = RecordingPlugin()

        @d.task
        async def count(n: int):
            for i in range(n):
                yield i

        async def consume() -> list[int]:
            return [i async for i in count(2)]

        with d.session(plugins=[recorder]):
            assert asyncio.run(consume()) == [0, 1]
        assert [n for n in recorder.names() if "node" in n] == [
            "before_node_execute", "node_iteration", "node_iteration", "after_node_execute",
        ]
