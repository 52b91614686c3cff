"""The plugins at work in sessions: delays on a fake clock, retry_on, reporting, the summary."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time

import pytest

import daglite_core as d
from daglite_retry import RetryEvent, RetryPolicies, RetryPolicy, RetrySummary, exponential, fixed, reporter

from conftest import FakeClock


class Flaky:
    """A body failing ``failures`` times with ``exc``, then returning the attempt count."""

    def __init__(self, failures: int, exc: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"attempt {self.calls}")
        return self.calls


def events(caplog: pytest.LogCaptureFixture) -> list[RetryEvent]:
    return [r.daglite_retry for r in caplog.records if r.name == "daglite.retry" and isinstance(getattr(r, "daglite_retry", None), RetryEvent)]


# -- delays follow the formula (fake clock) ----------------------------------------------


def test_fixed_delay_on_a_fake_clock(clock: FakeClock) -> None:
    body = Flaky(3)
    task = d.task(name="fetch", retries=3)(body)
    with d.session(plugins=[RetryPolicies(default=fixed(1.5), sleep=clock.sleep)]):
        assert task() == 4
    assert clock.slept == [1.5, 1.5, 1.5]


def test_exponential_backoff_with_cap_on_a_fake_clock(clock: FakeClock) -> None:
    task = d.task(name="fetch")(Flaky(5))
    policy = exponential(0.5, base=2, max_delay=3.0, retries=5)
    with d.session(plugins=[RetryPolicies(default=policy, sleep=clock.sleep)]):
        assert task() == 6
    assert clock.slept == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_on_a_fake_clock(clock: FakeClock) -> None:
    draws = iter([0.0, 0.5, 0.25])
    task = d.task(name="fetch")(Flaky(3))
    policy = RetryPolicy(retries=3, delay=1.0, backoff=2.0, jitter=0.4)
    with d.session(plugins=[RetryPolicies(default=policy, sleep=clock.sleep, random=lambda: next(draws))]):
        assert task() == 4
    assert clock.slept == pytest.approx([1.0, 2.2, 4.1])


def test_jitter_draws_from_random_by_default(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    import random

    monkeypatch.setattr(random, "random", lambda: 0.75)
    task = d.task(name="fetch")(Flaky(1))
    with d.session(plugins=[RetryPolicies(default=fixed(1.0, jitter=2.0, retries=1), sleep=clock.sleep)]):
        task()
    assert clock.slept == [2.5]


def test_deadline_on_a_fake_clock(clock: FakeClock) -> None:
    body = Flaky(10)
    task = d.task(name="fetch")(body)
    with d.session(plugins=[RetryPolicies(default=fixed(10.0, retries=10, deadline=25.0), sleep=clock.sleep)]) as state:
        with pytest.raises(d.TaskError) as info:
            task()
    assert clock.slept == [10.0, 10.0]  # a third wait would end after 30 s > 25 s
    assert body.calls == 3 and info.value.attempts == 3
    (call,) = reporter.summary(state.id).calls
    assert call.outcome == "failed" and "deadline of 25 s" in call.reason and call.waited == 20.0


def test_the_core_sleeps_the_delay_without_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    task = d.task(name="fetch")(Flaky(2))
    with d.session(plugins=[RetryPolicies(default=exponential(0.25, retries=2))]):
        assert task() == 3
    assert slept == [0.25, 0.5]


def test_async_tasks_wait_with_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def blocking(seconds: float) -> None:
        raise AssertionError("time.sleep in an async task blocks its event loop")

    awaited: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(seconds: float) -> None:
        awaited.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(time, "sleep", blocking)
    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    body = Flaky(2)

    @d.task(name="afetch")
    async def afetch() -> int:
        return body()

    async def main() -> int:
        async with d.async_session(plugins=[RetryPolicies(default=fixed(0.75, retries=2))]):
            return await afetch()

    assert asyncio.run(main()) == 3
    assert awaited == [0.75, 0.75]


def test_an_async_wait_lets_other_coroutines_run() -> None:
    """A real (short) wait: another coroutine makes progress while the task waits to retry."""
    ticks: list[int] = []
    body = Flaky(1)

    @d.task(name="afetch")
    async def afetch() -> int:
        return body()

    async def ticker() -> None:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)

    async def main() -> tuple[int, list[int]]:
        async with d.async_session(plugins=[RetryPolicies(default=fixed(0.05, retries=1))]):
            result, _ = await asyncio.gather(afetch(), ticker())
            return result, list(ticks)

    result, seen = asyncio.run(main())
    assert result == 2 and seen == [0, 1, 2]


# -- which errors, which tasks --------------------------------------------------------------


def test_retry_on_stops_at_an_error_of_another_type(clock: FakeClock) -> None:
    body = Flaky(3, exc=ValueError)
    task = d.task(name="parse", retries=3)(body)
    with d.session(plugins=[RetryPolicies(default=fixed(1.0, retry_on=ConnectionError), sleep=clock.sleep)]):
        with pytest.raises(d.TaskError) as info:
            task()
    assert body.calls == 1 and clock.slept == [] and isinstance(info.value.error, ValueError)


def test_retry_on_subclass_and_predicate(clock: FakeClock) -> None:
    messages = iter(["refused", "reset by peer"])

    @d.task(name="fetch")
    def fetch() -> None:
        raise ConnectionRefusedError(next(messages))

    policy = fixed(1.0, retries=5, retry_on=ConnectionError, retry_if=lambda e: "refused" in str(e))
    with d.session(plugins=[RetryPolicies(default=policy, sleep=clock.sleep)]) as state:
        with pytest.raises(d.TaskError, match="reset by peer"):
            fetch()
    assert clock.slept == [1.0]
    (call,) = reporter.summary(state.id).calls
    assert call.attempts == 2 and call.reason == "retry_if(ConnectionRefusedError) is false"


def test_per_task_policies_exact_then_glob_then_default(clock: FakeClock) -> None:
    policies = RetryPolicies(
        {"fetch-*": fixed(2.0, retries=1), "fetch-0": fixed(5.0, retries=1)},
        default=fixed(1.0, retries=1),
        sleep=clock.sleep,
    )
    assert policies.policy_for("fetch-0").delay == 5.0
    assert policies.policy_for("fetch-7").delay == 2.0
    assert policies.policy_for("parse").delay == 1.0
    assert RetryPolicies({"a": fixed(1)}).policy_for("b") is None
    # A map item is looked up with and without its [index] suffix.
    assert policies.policy_for("fetch-0[3]", 3).delay == 5.0
    assert policies.policy_for("fetch-0[3]", None).delay == 2.0  # not a map item: glob only
    assert RetryPolicies({"parse": fixed(7)}).policy_for("parse[0]", 0).delay == 7.0  # type: ignore[union-attr]

    @d.task(name="fetch-{i}")
    def fetch(i: int) -> int:
        body = bodies[i]
        return body()

    bodies = {0: Flaky(1), 1: Flaky(1)}
    parse = d.task(name="parse")(Flaky(1))
    with d.session(plugins=[policies]):
        fetch(0)
        fetch(1)
        parse()
    assert clock.slept == [5.0, 2.0, 1.0]


def test_a_call_no_policy_covers_keeps_the_core_default(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    other = d.task(name="other", retries=2)(Flaky(2))
    plain = d.task(name="plain")(Flaky(1))
    with d.session(plugins=[RetryPolicies({"fetch": fixed(3.0)})]):
        assert other() == 3  # immediate retries, up to its own retries=2
        with pytest.raises(d.TaskError):
            plain()  # retries=0: not retried
    assert slept == []


def test_policy_retries_replace_the_tasks(clock: FakeClock) -> None:
    plain = d.task(name="plain")(Flaky(2))  # retries=0
    generous = d.task(name="generous", retries=5)(Flaky(5))
    with d.session(plugins=[RetryPolicies(default=fixed(1.0, retries=2), sleep=clock.sleep)]):
        assert plain() == 3
        with pytest.raises(d.TaskError) as info:
            generous()
    assert info.value.attempts == 3


def test_timeouts_are_not_retried_unless_asked(clock: FakeClock) -> None:
    calls = {"n": 0}

    @d.task(name="slow", timeout=0.05, retries=2)
    def slow() -> str:
        calls["n"] += 1
        if calls["n"] <= 2:
            time.sleep(1.0)  # the first call's attempt and the second call's first attempt time out
        return "done"

    with d.session(plugins=[RetryPolicies(default=fixed(1.0), sleep=clock.sleep)]):
        with pytest.raises(d.TaskTimeoutError):
            slow()
    assert calls["n"] == 1
    with d.session(plugins=[RetryPolicies(default=fixed(1.0, retry_timeouts=True), sleep=clock.sleep)]):
        assert slow() == "done"
    assert calls["n"] == 3 and clock.slept == [1.0]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_never_retried(exc: type[BaseException], clock: FakeClock) -> None:
    def body() -> None:
        raise exc

    task = d.task(name="stop", retries=3)(body)
    with d.session(plugins=[RetryPolicies(default=RetryPolicy(retries=3, retry_on=Exception), sleep=clock.sleep)]):
        with pytest.raises(exc):
            task()
    assert clock.slept == []


def test_without_the_plugin_retries_stay_immediate(monkeypatch: pytest.MonkeyPatch, retry_log: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    task = d.task(name="fetch", retries=2)(Flaky(2))
    with d.session():
        assert task() == 3
    assert slept == [] and events(retry_log) == []


def test_policies_pickle_with_their_sleep_and_random() -> None:
    policies = RetryPolicies({"a-*": fixed(1.0)}, default=exponential(), sleep=time.sleep)
    assert pickle.loads(pickle.dumps(policies)) == policies


def test_bad_policies_name_the_task() -> None:
    with pytest.raises(TypeError, match="the policy for task 'fetch' must be a RetryPolicy, got float"):
        RetryPolicies({"fetch": 1.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="default must be a RetryPolicy"):
        RetryPolicies(default=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="task names must be non-empty strings"):
        RetryPolicies({"": fixed(1)})


# -- reporting ----------------------------------------------------------------------------------


def test_each_retry_is_logged_with_attempt_error_and_delay(clock: FakeClock, retry_log: pytest.LogCaptureFixture) -> None:
    task = d.task(name="fetch")(Flaky(2))
    with d.session(plugins=[RetryPolicies(default=exponential(0.5, retries=3), sleep=clock.sleep)]):
        task()
    warnings = [r for r in retry_log.records if r.name == "daglite.retry" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings[:2]] == [
        "Task 'fetch' attempt 1 of 4 failed (ConnectionError: attempt 1); retrying in 0.5 s",
        "Task 'fetch' attempt 2 of 4 failed (ConnectionError: attempt 2); retrying in 1 s",
    ]
    first = warnings[0].daglite_retry  # type: ignore[attr-defined]
    assert (first.task, first.attempt, first.max_attempts, first.error_type, first.delay) == ("fetch", 1, 4, "ConnectionError", 0.5)


def test_core_default_retries_are_logged_too(retry_log: pytest.LogCaptureFixture) -> None:
    task = d.task(name="fetch", retries=1)(Flaky(5))
    with d.session() as state:
        with pytest.raises(d.TaskError):
            task()
    messages = [r.getMessage() for r in retry_log.records if r.name == "daglite.retry"]
    assert messages[0] == "Task 'fetch' attempt 1 of 2 failed (ConnectionError: attempt 1); retrying now"
    assert messages[1] == "Task 'fetch' attempt 2 of 2 failed (ConnectionError: attempt 2); not retrying: no retries left (1 allowed)"
    (call,) = reporter.summary(state.id).calls
    assert (call.attempts, call.outcome, call.error) == (2, "failed", "ConnectionError: attempt 2")


def test_a_first_failure_that_is_not_retried_is_not_news(retry_log: pytest.LogCaptureFixture) -> None:
    task = d.task(name="once")(Flaky(1))
    with d.session() as state:
        with pytest.raises(d.TaskError):
            task()
    assert [r for r in retry_log.records if r.levelno >= logging.INFO] == []
    assert reporter.summary(state.id).calls == ()


def test_retries_decided_by_another_plugin_are_still_logged(retry_log: pytest.LogCaptureFixture) -> None:
    class Other:
        @d.hookimpl
        def provide_retry_delay(self) -> float:
            return 0.0

    task = d.task(name="fetch")(Flaky(1))
    with d.session(plugins=[Other()]) as state:
        assert task() == 2
    messages = [r.getMessage() for r in retry_log.records if r.levelno == logging.WARNING]
    assert messages[0] == "Task 'fetch' attempt 1 failed (ConnectionError: attempt 1); retrying (decided by another plugin)"
    (call,) = reporter.summary(state.id).calls
    assert (call.attempts, call.outcome) == (2, "succeeded")


def test_session_summary_content_logged_and_as_data(clock: FakeClock, retry_log: pytest.LogCaptureFixture) -> None:
    fetch = d.task(name="fetch")(Flaky(2))
    parse = d.task(name="parse")(Flaky(9, exc=ValueError))
    steady = d.task(name="steady")(Flaky(0))
    policies = RetryPolicies({"parse": fixed(0.5, retries=1)}, default=exponential(1.0, retries=3), sleep=clock.sleep)
    with d.session(plugins=[policies]) as state:
        assert reporter.summary(state.id).calls == ()
        fetch()
        with pytest.raises(d.TaskError):
            parse()
        steady()
        live = reporter.summary(state.id)
    summary = reporter.summary(state.id)
    assert reporter.last_summary is summary and isinstance(summary, RetrySummary)
    assert summary.session_id == state.id
    assert [(c.task, c.attempts, c.outcome, c.waited) for c in summary.calls] == [("fetch", 3, "succeeded", 3.0), ("parse", 2, "failed", 0.5)]
    assert live.calls == summary.calls
    assert summary.retries == 3 and summary.waited == 3.5
    assert [c.task for c in summary.failed] == ["parse"]
    assert summary.failed[0].error == "ValueError: attempt 2" and summary.failed[0].reason == "no retries left (1 allowed)"
    assert list(summary.by_task()) == ["fetch", "parse"]
    assert str(summary).splitlines() == [
        "daglite-retry: 2 call(s) retried, 3 retries, 3.5 s waiting; 1 succeeded, 1 failed",
        "  fetch: 3 attempts, succeeded, waited 3 s",
        "  parse: 2 attempts, failed (ValueError: attempt 2), not retried: no retries left (1 allowed), waited 0.5 s",
    ]
    logged = [r for r in retry_log.records if isinstance(getattr(r, "daglite_retry", None), RetrySummary)]
    assert len(logged) == 1 and logged[0].getMessage() == str(summary) and logged[0].levelno == logging.WARNING


def test_no_summary_is_logged_when_nothing_retried(retry_log: pytest.LogCaptureFixture) -> None:
    with d.session() as state:
        d.task(name="steady")(Flaky(0))()
    assert retry_log.records == []
    assert str(reporter.summary(state.id)) == "daglite-retry: no task retried"


def test_summary_text_is_capped(clock: FakeClock) -> None:
    @d.task(name="item-{i}")
    def item(i: int) -> int:
        if i not in seen:
            seen.add(i)
            raise ConnectionError("once")
        return i

    seen: set[int] = set()
    with d.session(plugins=[RetryPolicies(default=fixed(0.0, retries=1))]) as state:
        assert d.map_tasks(item, range(25), backend="thread") == list(range(25))
    summary = reporter.summary(state.id)
    assert len(summary.calls) == 25
    lines = summary.text(limit=20).splitlines()
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"


def test_disabling_the_plugin_stops_reporting_but_not_policies(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, retry_log: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", "retry")
    task = d.task(name="fetch")(Flaky(1))
    with d.session(plugins=[RetryPolicies(default=fixed(2.0, retries=1), sleep=clock.sleep)]):
        assert task() == 2
    assert clock.slept == [2.0] and events(retry_log) == []

