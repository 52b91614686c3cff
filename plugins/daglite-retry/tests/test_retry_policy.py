"""RetryPolicy on its own: the delay formula and the rules, in the documented order."""

from __future__ import annotations

import pickle

import pytest
from retry_helpers import is_transient

from daglite_retry import RetryPolicy, exponential, fixed


def test_fixed_delay_is_the_same_before_every_retry() -> None:
    policy = fixed(2.5)
    assert [policy.delay_for(k) for k in (1, 2, 3, 10)] == [2.5, 2.5, 2.5, 2.5]


def test_exponential_backoff_doubles_up_to_the_cap() -> None:
    policy = exponential(0.5, base=2, max_delay=3.0)
    assert [policy.delay_for(k) for k in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exponential_without_cap_grows_and_never_overflows() -> None:
    policy = exponential(1.0, base=3, max_delay=None)
    assert [policy.delay_for(k) for k in (1, 2, 3)] == [1.0, 3.0, 9.0]
    assert policy.delay_for(5000) == float("inf")
    assert exponential(1.0, max_delay=60).delay_for(5000) == 60.0


def test_jitter_adds_up_to_jitter_seconds_before_the_cap() -> None:
    policy = RetryPolicy(delay=1.0, backoff=2.0, jitter=0.4, max_delay=4.1)
    assert policy.delay_for(1, 0.0) == 1.0
    assert policy.delay_for(1, 0.5) == pytest.approx(1.2)
    assert policy.delay_for(2, 0.25) == pytest.approx(2.1)
    assert policy.delay_for(3, 0.5) == pytest.approx(4.1)  # 4.2 capped


def test_retry_count_is_the_tasks_unless_the_policy_gives_one() -> None:
    error = ValueError("x")
    own = RetryPolicy()
    assert own.decide(error, 2, task_retries=2).delay == 0.0
    assert own.decide(error, 3, task_retries=2).delay is None
    assert own.decide(error, 3, task_retries=2).reason == "no retries left (2 allowed)"
    replaced = RetryPolicy(retries=1)
    assert replaced.decide(error, 1, task_retries=0).delay == 0.0  # more than the task's
    assert replaced.decide(error, 2, task_retries=5).delay is None  # fewer than the task's
    assert replaced.decide(error, 1, task_retries=5).max_retries == 1


def test_retry_on_types_and_predicate() -> None:
    policy = RetryPolicy(retries=3, retry_on=(ConnectionError, TimeoutError), retry_if=is_transient)
    assert policy.decide(ConnectionError("refused"), 1, 0).delay == 0.0
    not_listed = policy.decide(ValueError("refused"), 1, 0)
    assert not_listed.delay is None
    assert not_listed.reason == "ValueError is not in retry_on (ConnectionError, TimeoutError)"
    said_no = policy.decide(ConnectionError("reset"), 1, 0)
    assert said_no.delay is None and said_no.reason == "retry_if(ConnectionError) is false"
    # Subclasses count: ConnectionRefusedError is a ConnectionError.
    assert policy.decide(ConnectionRefusedError("refused"), 1, 0).delay == 0.0


def test_timeouts_are_retried_only_when_asked() -> None:
    error = TimeoutError("attempt timed out after 1 s")
    assert RetryPolicy(retries=2).decide(error, 1, 0, timed_out=True).reason == "the attempt timed out (retry_timeouts=False)"
    assert RetryPolicy(retries=2, retry_timeouts=True).decide(error, 1, 0, timed_out=True).delay == 0.0
    # retry_timeouts=True: retry_on does not apply to the timeout itself.
    only_conn = RetryPolicy(retries=2, retry_timeouts=True, retry_on=ConnectionError)
    assert only_conn.decide(error, 1, 0, timed_out=True).delay == 0.0
    # The body's own TimeoutError is an ordinary error, retried by default.
    assert RetryPolicy(retries=2).decide(error, 1, 0, timed_out=False).delay == 0.0


def test_deadline_counts_elapsed_time_and_the_next_delay() -> None:
    policy = fixed(10.0, retries=10, deadline=25.0)
    assert policy.decide(ValueError(), 1, 0, elapsed=0.1).delay == 10.0
    assert policy.decide(ValueError(), 2, 0, elapsed=10.2).delay == 10.0
    late = policy.decide(ValueError(), 3, 0, elapsed=20.3)
    assert late.delay is None and "deadline of 25 s" in late.reason


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": -1}, "delay must be a finite number >= 0"),
        ({"jitter": float("nan")}, "jitter must be a finite number >= 0"),
        ({"max_delay": float("inf")}, "max_delay must be a finite number >= 0 or None"),
        ({"deadline": -0.5}, "deadline must be"),
        ({"backoff": 0}, "backoff must be > 0"),
        ({"retries": -1}, "retries must be an int >= 0 or None"),
        ({"retries": True}, "retries must be an int >= 0 or None"),
        ({"retry_on": ()}, "retry_on is empty"),
    ],
)
def test_bad_options_are_value_errors_naming_the_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_on", [KeyboardInterrupt, "ValueError", (ValueError, 3)])
def test_retry_on_accepts_exception_classes_only(retry_on: object) -> None:
    with pytest.raises(TypeError, match="retry_on must be Exception subclasses"):
        RetryPolicy(retry_on=retry_on)  # type: ignore[arg-type]


def test_retry_if_must_be_callable() -> None:
    with pytest.raises(TypeError, match="retry_if must be callable"):
        RetryPolicy(retry_if="yes")  # type: ignore[arg-type]


def test_delay_for_counts_retries_from_one() -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        fixed(1).delay_for(0)


def test_policies_pickle() -> None:
    policy = exponential(0.1, jitter=0.2, retries=4, retry_on=(ConnectionError,), retry_if=is_transient, deadline=30)
    assert pickle.loads(pickle.dumps(policy)) == policy
