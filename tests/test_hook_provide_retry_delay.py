"""The ``provide_retry_delay`` hook: the core asks it between attempts and applies the answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin


class Decider:
    """Answers ``provide_retry_delay`` from a list (one answer per question) and records the questions."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked: list[dict[str, Any]] = []

    @d.hookimpl
    def provide_retry_delay(
        self, metadata: d.TaskMetadata, error: BaseException, attempt: int, retries: int, timed_out: bool, elapsed: float
    ) -> Any:
        self.asked.append({"name": metadata.name, "error": error, "attempt": attempt, "retries": retries, "timed_out": timed_out, "elapsed": elapsed})
        return self.answers.pop(0) if self.answers else None


class Failing:
    """A body that fails ``failures`` times with ``exc``, then returns the attempt count."""

    def __init__(self, failures: int, exc: type[BaseException] = ValueError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return self.calls


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``time.sleep`` replaced by a recorder (the core sleeps through the ``time`` module)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_hook_provide_retry_delay_absent_keeps_immediate_retries(sleeps: list[float]) -> None:
    body = Failing(2)
    task = d.task(retries=2, name="flaky")(body)
    recorder = RecordingPlugin()
    with d.session(plugins=[recorder]):
        assert task() == 3
    assert sleeps == []
    assert [c["attempt"] for c in recorder.of("before_node_retry")] == [1, 2]


def test_hook_provide_retry_delay_delays_are_slept_between_attempts(sleeps: list[float]) -> None:
    body = Failing(2)
    task = d.task(retries=2, name="flaky")(body)
    decider, recorder = Decider(0.5, 1.25), RecordingPlugin(hooks=["before_node_execute", "after_node_execute", "before_node_retry", "after_node_retry"])
    with d.session(plugins=[recorder, decider]):
        assert task() == 3
    assert sleeps == [0.5, 1.25]
    assert [(q["attempt"], q["retries"], q["timed_out"], q["name"]) for q in decider.asked] == [
        (1, 2, False, "flaky"), (2, 2, False, "flaky"),
    ]
    assert [str(q["error"]) for q in decider.asked] == ["attempt 1", "attempt 2"]
    assert all(q["elapsed"] >= 0 for q in decider.asked)
    # The decision comes before the retry's hooks; the last attempt's success after them.
    assert recorder.names() == [
        "before_node_execute",
        "before_node_retry", "after_node_retry",
        "before_node_retry", "after_node_retry",
        "after_node_execute",
    ]


def test_hook_provide_retry_delay_false_stops_retrying(sleeps: list[float]) -> None:
    body = Failing(5)
    task = d.task(retries=3, name="flaky")(body)
    recorder = RecordingPlugin()
    with d.session(plugins=[recorder, Decider(0, False)]), pytest.raises(d.TaskError) as info:
        task()
    assert body.calls == 2
    assert info.value.attempts == 2 and str(info.value.error) == "attempt 2"
    assert [c["attempt"] for c in recorder.of("before_node_retry")] == [1]
    assert len(recorder.of("on_node_error")) == 1
    assert sleeps == []  # a delay of 0 retries at once, without sleeping


def test_hook_provide_retry_delay_retries_beyond_the_tasks_count(sleeps: list[float]) -> None:
    """A plain ``retries=0`` task (the cheapest call path) is retried when a policy says so."""
    body = Failing(2)
    task = d.task(name="plain")(body)
    decider = Decider(0.1, 0.2)
    with d.session(plugins=[decider]):
        assert task() == 3
    assert [(q["attempt"], q["retries"]) for q in decider.asked] == [(1, 0), (2, 0)]
    assert sleeps == [0.1, 0.2]


def test_hook_provide_retry_delay_none_means_the_core_default(sleeps: list[float]) -> None:
    body = Failing(5)
    task = d.task(retries=1, name="flaky")(body)
    decider = Decider()  # always None
    with d.session(plugins=[decider]), pytest.raises(d.TaskError):
        task()
    assert body.calls == 2
    assert [q["attempt"] for q in decider.asked] == [1, 2]  # asked for the last failure too
    assert sleeps == []


def test_hook_provide_retry_delay_first_answer_wins() -> None:
    task = d.task(name="flaky")(Failing(1))
    first, second = Decider(None), Decider(0)  # second registered last: asked first
    with d.session(plugins=[first, second]):
        assert task() == 2
    assert len(second.asked) == 1 and len(first.asked) == 0


def test_hook_provide_retry_delay_async_tasks_wait_with_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocking(seconds: float) -> None:
        raise AssertionError("an async task must not block its event loop with time.sleep")

    awaited: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        awaited.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(time, "sleep", blocking)
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    attempts = {"n": 0}

    @d.task(name="aflaky")
    async def aflaky() -> int:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("refused")
        return attempts["n"]

    async def main() -> int:
        async with d.async_session(plugins=[Decider(0.3, 0.6)]):
            return await aflaky()

    assert asyncio.run(main()) == 3
    assert awaited == [0.3, 0.6]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_hook_provide_retry_delay_not_asked_for_interrupts(exc: type[BaseException]) -> None:
    task = d.task(retries=3, name="stop")(Failing(1, exc))
    decider = Decider(0)
    with d.session(plugins=[decider]), pytest.raises(exc):
        task()
    assert decider.asked == []


def test_hook_provide_retry_delay_not_asked_for_generator_tasks() -> None:
    @d.task
    def items() -> Any:
        yield 1
        raise ValueError("mid-stream")

    decider = Decider(0)
    with d.session(plugins=[decider]), pytest.raises(d.TaskError):
        list(items())
    assert decider.asked == []


def test_hook_provide_retry_delay_tells_a_timeout_from_a_raised_timeout_error() -> None:
    calls = {"n": 0}

    @d.task(timeout=0.05, name="slow")
    def slow() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(1.0)  # the attempt times out
        if calls["n"] == 2:
            raise TimeoutError("the body's own")
        return "done"

    decider = Decider(0, 0)
    with d.session(plugins=[decider]):
        assert slow() == "done"
    assert [q["timed_out"] for q in decider.asked] == [True, False]
    assert isinstance(decider.asked[0]["error"], TimeoutError)


class Broken:
    """A policy that raises, or answers something that is not a delay."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @d.hookimpl
    def provide_retry_delay(self) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer", [RuntimeError("policy bug"), -1.0, "soon", float("nan"), float("inf")])
def test_hook_provide_retry_delay_broken_answer_is_reported_and_the_default_applies(
    answer: Any, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    body = Failing(1)
    task = d.task(retries=1, name="flaky")(body)
    with d.session(plugins=[Broken(answer)]):
        assert task() == 2  # the core's default: one immediate retry
    assert sleeps == []
    messages = [r.getMessage() for r in caplog.records if r.name == "daglite"]
    assert len(messages) == 1
    assert "'Broken'" in messages[0] and "'provide_retry_delay'" in messages[0]


def test_hook_provide_retry_delay_broken_answer_raises_in_strict_mode() -> None:
    task = d.task(retries=1, name="flaky")(Failing(1))
    with d.session(plugins=[Broken(-3)], settings=d.DagliteSettings(strict_hooks=True)), pytest.raises(d.PluginError) as info:
        task()
    assert info.value.hook == "provide_retry_delay"


def test_hook_provide_retry_delay_interrupted_wait_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupted)
    body = Failing(1)
    task = d.task(retries=1, name="flaky")(body)
    recorder = RecordingPlugin()
    with d.session(plugins=[recorder, Decider(5.0)]), pytest.raises(KeyboardInterrupt):
        task()
    assert body.calls == 1
    assert len(recorder.of("on_node_error")) == 1  # what before_node_execute opened is closed


def test_hook_provide_retry_delay_on_the_thread_backend(sleeps: list[float]) -> None:
    fails = {0: 0, 1: 0}

    @d.task(name="item")
    def item(i: int) -> int:
        fails[i] += 1
        if fails[i] == 1:
            raise ValueError(f"item {i}")
        return i

    decider = Decider(0, 0)
    with d.session(plugins=[decider]):
        assert d.map_tasks(item, [0, 1], backend="thread") == [0, 1]
    assert sorted(q["attempt"] for q in decider.asked) == [1, 1]
