"""Success and error callbacks: injection, checks when attaching, dispatch, policies."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from daglite_callbacks import (
    CallbackError,
    CycleError,
    ErrorValue,
    ReturnValue,
    SignatureError,
    chain,
    sign,
)
from daglite_core import DagliteSettings, TaskError, session, task
from daglite_core.testing import RecordingPlugin

from callbacks_helpers import (
    DictStore,
    Log,
    cb_add,
    cb_double,
    cb_explode,
    collector,
    error_collector,
)

LAX = DagliteSettings(strict_hooks=False)
STRICT = DagliteSettings(strict_hooks=True)


# -- success callbacks: injection -------------------------------------------------------


def test_success_callback_gets_the_result_in_its_return_value_parameter() -> None:
    got: list[tuple[int, str]] = []

    def report(label: str, total: ReturnValue[int]) -> None:
        got.append((total, label))

    assert sign(cb_add, x=1, success_callbacks=[sign(report, label="sum")])(y=2) == 3
    assert got == [(3, "sum")]


def test_success_callback_without_marker_gets_daglite_results() -> None:
    got: list[Any] = []

    def report(daglite_results: int, scale: int = 1) -> None:
        got.append(daglite_results * scale)

    sign(cb_double, x=2, success_callbacks=[sign(report, scale=10)])()
    assert got == [40]


def test_first_marked_parameter_wins_over_daglite_results() -> None:
    got: list[Any] = []

    def report(daglite_results: int = 0, value: ReturnValue[int] = 0) -> None:
        got.append((daglite_results, value))

    sign(cb_double, x=2, success_callbacks=[report])()
    assert got == [(0, 4)]


def test_tasks_and_names_are_accepted_as_callbacks() -> None:
    from callbacks_helpers import cb_increment

    log = Log()
    inc = sign(cb_increment, success_callbacks=[collector(log, "inc")])
    assert sign(cb_double, x=3, success_callbacks=[inc, "cb_increment"])() == 6
    assert [v for v, _ in log.of("inc")] == [7]


# -- checks when attaching ----------------------------------------------------------------


def test_success_callback_with_neither_marker_nor_daglite_results_is_rejected() -> None:
    def plain(x: int) -> None:
        pass

    with pytest.raises(SignatureError, match=r"success callback 'plain' of 'cb_double'.*ReturnValue\[T\].*'daglite_results'"):
        sign(cb_double, success_callbacks=[sign(plain, x=1)])


def test_bound_kwarg_colliding_with_the_result_target_is_rejected() -> None:
    def report(total: ReturnValue[int]) -> None:
        pass

    with pytest.raises(SignatureError, match=r"'report' of 'cb_double'.*bound kwarg 'total' collides"):
        sign(cb_double, success_callbacks=[sign(report, total=1)])


def test_binding_the_result_target_after_attaching_is_rejected() -> None:
    def report(total: ReturnValue[int]) -> None:
        pass

    callback = sign(report)
    sign(cb_double, success_callbacks=[callback])
    with pytest.raises(SignatureError, match=r"'report'.*cannot bind 'total'.*result of 'cb_double'"):
        callback.kwargs.update(total=5)


def test_required_parameters_that_would_stay_unfilled_are_rejected() -> None:
    def report(total: ReturnValue[int], channel: str, level: int = 1) -> None:
        pass

    with pytest.raises(SignatureError, match=r"required parameter\(s\) \['channel'\] of 'report' would stay unfilled"):
        sign(cb_double, success_callbacks=[report])
    sign(cb_double, success_callbacks=[sign(report, channel="ops")])  # bound: fine


def test_declared_result_type_must_fit_the_return_value_type() -> None:
    def wants_text(text: ReturnValue[str]) -> None:
        pass

    def wants_float(number: ReturnValue[float]) -> None:
        pass

    with pytest.raises(SignatureError, match=r"declared int but 'text' of 'wants_text' is ReturnValue\[str\]"):
        sign(cb_double, success_callbacks=[wants_text])
    sign(cb_double, success_callbacks=[wants_float])  # int fits float


def test_error_callback_that_cannot_accept_the_task_kwargs_is_rejected() -> None:
    def on_error(x: int, daglite_error: Exception) -> None:
        pass

    with pytest.raises(SignatureError, match=r"error callback 'on_error' of 'cb_add'.*cannot accept argument\(s\) \['y'\]"):
        sign(cb_add, error_callbacks=[on_error])
    sign(cb_double, error_callbacks=[on_error])


def test_error_callback_of_a_kwargs_task_must_take_kwargs() -> None:
    @task
    def flexible(**options: Any) -> int:
        return len(options)

    def on_error(daglite_error: Exception) -> None:
        pass

    with pytest.raises(SignatureError, match=r"must take \*\*kwargs too"):
        sign(flexible, error_callbacks=[on_error])


def test_error_callback_required_parameters_must_be_filled() -> None:
    def on_error(x: int, ticket: str, daglite_error: Exception) -> None:
        pass

    with pytest.raises(SignatureError, match=r"\['ticket'\] of 'on_error' would stay unfilled"):
        sign(cb_double, error_callbacks=[on_error])
    sign(cb_double, error_callbacks=[sign(on_error, ticket="T-1")])


def test_error_callback_bound_kwarg_colliding_with_the_error_target_is_rejected() -> None:
    def on_error(x: int, problem: ErrorValue) -> None:
        pass

    with pytest.raises(SignatureError, match=r"bound kwarg 'problem' collides with the parameter that receives the error"):
        sign(cb_double, error_callbacks=[sign(on_error, problem=None)])


# -- error callbacks: what they get --------------------------------------------------------


def test_error_callback_gets_the_failing_call_kwargs_bound_kwargs_and_the_error() -> None:
    @task
    def divide(a: int, b: int, rounding: str = "floor") -> float:
        return a / b

    got: list[Any] = []

    def on_error(a: int, b: int, rounding: str, alert: str, err: ErrorValue) -> None:
        got.append((a, b, rounding, alert, err))

    sig = sign(divide, a=1, error_callbacks=[sign(on_error, alert="page")])
    with pytest.raises(TaskError) as info:
        sig(b=0)
    [(a, b, rounding, alert, err)] = got
    assert (a, b, rounding, alert) == (1, 0, "floor", "page")  # defaults applied, as the task got them
    assert err is info.value  # the very error the caller gets
    assert isinstance(err.error, ZeroDivisionError)


def test_error_callback_bound_kwargs_win_over_the_failing_call_kwargs() -> None:
    got: list[Any] = []

    def on_error(x: int, daglite_error: Exception) -> None:
        got.append(x)

    with pytest.raises(TaskError):
        sign(cb_explode, x=1, error_callbacks=[sign(on_error, x=99)])()
    assert got == [99]


def test_error_callback_without_error_parameter_gets_only_kwargs() -> None:
    got: list[Any] = []

    def on_error(**kwargs: Any) -> None:
        got.append(kwargs)

    with pytest.raises(TaskError):
        sign(cb_explode, x=7, error_callbacks=[on_error])()
    assert got == [{"x": 7}]


# -- cycles -------------------------------------------------------------------------------


def test_a_signature_cannot_be_its_own_callback() -> None:
    def relay(daglite_results: int) -> int:
        return daglite_results

    sig = sign(relay)
    with pytest.raises(CycleError, match="'relay' is reachable from it"):
        sig.on_success(sig)


def test_cycles_through_callbacks_are_rejected_at_signing_time() -> None:
    def relay(daglite_results: int) -> int:
        return daglite_results

    first = sign(relay)
    second = sign(relay, success_callbacks=[first])
    third = sign(relay, success_callbacks=[second])
    with pytest.raises(CycleError):
        first.on_success(third)
    assert first.success_callbacks == ()  # nothing attached


def test_cycles_through_a_chain_are_rejected() -> None:
    def relay(daglite_results: int) -> int:
        return daglite_results

    step = sign(relay)
    pipeline = chain([sign(cb_double), step])
    with pytest.raises(CycleError):
        step.on_success(pipeline)


def test_a_shared_callback_is_a_template_run_once_per_parent_outcome() -> None:
    log = Log()
    shared = sign(collector(log, "seen"))
    first = sign(cb_double, x=1, success_callbacks=[shared])
    second = sign(cb_double, x=5, success_callbacks=[shared])
    first()
    second()
    first()
    assert [v for v, _ in log.of("seen")] == [2, 10, 2]


# -- dispatch: once per final outcome, callbacks are tasks ------------------------------------------


def test_callbacks_fire_once_after_retries_that_end_in_success() -> None:
    attempts: list[int] = []

    @task(retries=2)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            msg = "not yet"
            raise OSError(msg)
        return x

    log = Log()
    sig = sign(flaky, x=1, success_callbacks=[collector(log, "ok")], error_callbacks=[error_collector(log, "err")])
    assert sig() == 1
    assert len(attempts) == 3
    assert log.names() == ["ok"]


def test_error_callbacks_fire_once_after_the_last_retry() -> None:
    @task(retries=2)
    def always_fails(x: int) -> int:
        raise OSError(x)

    log = Log()
    with pytest.raises(TaskError, match="after 3 attempts"):
        sign(always_fails, x=1, error_callbacks=[error_collector(log, "err")])()
    [(kwargs, error)] = log.of("err")
    assert kwargs == {"x": 1}
    assert error.attempts == 3


def test_a_cache_hit_counts_as_success_with_the_cached_value() -> None:
    runs: list[int] = []

    @task(cache=DictStore())
    def expensive(x: int) -> int:
        runs.append(x)
        return x * 100

    log = Log()
    recorder = RecordingPlugin(hooks=["on_cache_hit"])
    sig = sign(expensive, x=2, success_callbacks=[collector(log, "ok")])
    with session(plugins=[recorder]):
        assert sig() == 200
        assert sig() == 200
    assert runs == [2]
    assert len(recorder.calls) == 1
    assert [v for v, _ in log.of("ok")] == [200, 200]


def test_callbacks_are_tasks_that_fire_hooks_and_have_their_own_callbacks() -> None:
    log = Log()
    recorder = RecordingPlugin(hooks=["after_node_execute"])

    @task
    def plus_one(daglite_results: int) -> int:
        return daglite_results + 1

    second = sign(plus_one, success_callbacks=[collector(log, "end")])
    first = sign(plus_one, success_callbacks=[second])
    with session(plugins=[recorder]):
        assert sign(cb_double, x=1, success_callbacks=[first])() == 2
    assert [c["metadata"].name for c in recorder.calls] == ["cb_double", "plus_one", "plus_one", "collect_end"]
    assert [v for v, _ in log.of("end")] == [4]


def test_callbacks_run_in_the_order_given_by_default() -> None:
    log = Log()
    sign(cb_double, x=1, success_callbacks=[collector(log, name) for name in "abcde"])()
    assert log.names() == list("abcde")


def test_concurrent_dispatch_runs_the_callbacks_at_the_same_time() -> None:
    barrier = threading.Barrier(3, timeout=30)  # a deadlock guard: sequential dispatch would break it
    threads: list[str] = []

    def meet(daglite_results: int) -> None:
        threads.append(threading.current_thread().name)
        barrier.wait()

    sig = sign(cb_double, x=1, dispatch="concurrent", success_callbacks=[meet, meet, meet])
    assert sig() == 2
    assert len(set(threads)) == 3


def test_concurrent_async_dispatch_gathers_on_the_loop() -> None:
    arrived: list[int] = []
    both = asyncio.Event

    async def main() -> int:
        gate = both()

        async def first(daglite_results: int) -> None:
            arrived.append(1)
            await gate.wait()  # released only by the second callback: needs concurrency

        async def second(daglite_results: int) -> None:
            arrived.append(2)
            gate.set()

        @task
        async def source(x: int) -> int:
            return x

        sig = sign(source, x=3, dispatch="concurrent", success_callbacks=[first, second])
        result: int = await asyncio.wait_for(sig(), timeout=30)
        return result

    assert asyncio.run(main()) == 3
    assert arrived == [1, 2]


# -- sync and async mixed -----------------------------------------------------------------


def test_sync_callback_under_an_async_signature_runs_in_a_thread() -> None:
    where: dict[str, str] = {}

    def on_done(daglite_results: int) -> None:
        where["callback"] = threading.current_thread().name

    @task
    async def source(x: int) -> int:
        where["task"] = threading.current_thread().name
        return x

    assert asyncio.run(sign(source, x=1, success_callbacks=[on_done])()) == 1
    assert where["callback"] != where["task"]


def test_async_callback_under_a_sync_signature_and_inside_a_running_loop() -> None:
    got: list[int] = []

    async def on_done(daglite_results: int) -> None:
        await asyncio.sleep(0)
        got.append(daglite_results)

    sig = sign(cb_double, x=2, success_callbacks=[on_done])
    assert sig() == 4

    async def inside_a_loop() -> int:
        result: int = sig.run()  # a sync call from async code: the callback gets its own loop
        return result

    assert asyncio.run(inside_a_loop()) == 4
    assert got == [4, 4]


def test_async_error_callback_of_an_async_task() -> None:
    got: list[Any] = []

    @task
    async def broken(x: int) -> int:
        raise ValueError(x)

    async def on_error(x: int, daglite_error: Exception) -> None:
        got.append((x, type(daglite_error).__name__))

    with pytest.raises(TaskError):
        asyncio.run(sign(broken, x=5, error_callbacks=[on_error])())
    assert got == [(5, "TaskError")]


# -- generator tasks ----------------------------------------------------------------------


def test_a_generator_task_result_is_the_list_of_its_items() -> None:
    @task
    def count(n: int) -> Any:
        yield from range(n)

    @task
    async def acount(n: int) -> Any:
        for i in range(n):
            yield i

    log = Log()
    assert sign(count, n=3, success_callbacks=[collector(log, "sync")])() == [0, 1, 2]
    assert asyncio.run(sign(acount, n=2, success_callbacks=[collector(log, "async")])()) == [0, 1]
    assert [v for v, _ in log.of("sync")] == [[0, 1, 2]]
    assert [v for v, _ in log.of("async")] == [[0, 1]]


# -- failing callbacks ------------------------------------------------------------------------------


def _boom(daglite_results: Any) -> None:
    msg = "callback broke"
    raise RuntimeError(msg)


def test_a_failing_success_callback_is_logged_once_and_the_result_stands(caplog: pytest.LogCaptureFixture) -> None:
    log = Log()
    sig = sign(cb_double, x=4, success_callbacks=[_boom, collector(log, "after")])
    with caplog.at_level(logging.ERROR, logger="daglite.callbacks"), session(settings=LAX):
        assert sig() == 8
    records = [r for r in caplog.records if r.name == "daglite.callbacks"]
    assert len(records) == 1
    assert "'_boom'" in records[0].getMessage() and "'cb_double'" in records[0].getMessage()
    assert [v for v, _ in log.of("after")] == [8]  # the other callbacks still ran


def test_a_failing_error_callback_never_replaces_the_original_error(caplog: pytest.LogCaptureFixture) -> None:
    def broken_handler(x: int, daglite_error: Exception) -> None:
        msg = "handler broke"
        raise RuntimeError(msg)

    sig = sign(cb_explode, x=1, error_callbacks=[broken_handler])
    with (
        caplog.at_level(logging.ERROR, logger="daglite.callbacks"),
        session(settings=LAX),
        pytest.raises(TaskError, match="exploded on 1"),
    ):
        sig()
    [record] = [r for r in caplog.records if r.name == "daglite.callbacks"]
    assert "'broken_handler'" in record.getMessage() and "'cb_explode'" in record.getMessage()


def test_strict_session_raises_callback_error_with_the_original_result() -> None:
    log = Log()
    sig = sign(cb_double, x=4, success_callbacks=[_boom, collector(log, "after")])
    with session(settings=STRICT), pytest.raises(CallbackError) as info:
        sig()
    error = info.value
    assert error.task_name == "cb_double" and error.callback_name == "_boom" and error.kind == "success"
    assert error.outcome.ok and error.outcome.value == 8
    assert isinstance(error.__cause__, TaskError)
    assert "callback broke" in str(error)
    assert [v for v, _ in log.of("after")] == [8]  # every callback ran first


def test_strict_error_callback_failure_keeps_the_original_error_attached() -> None:
    def broken_handler(x: int) -> None:
        msg = "handler broke"
        raise RuntimeError(msg)

    with session(settings=STRICT), pytest.raises(CallbackError) as info:
        sign(cb_explode, x=2, error_callbacks=[broken_handler])()
    assert info.value.kind == "error"
    assert not info.value.outcome.ok
    assert isinstance(info.value.outcome.error, TaskError)
    assert "exploded on 2" in str(info.value.outcome.error)


def test_strict_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    with session(settings=DagliteSettings()), pytest.raises(CallbackError):
        sign(cb_double, x=1, success_callbacks=[_boom])()
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "0")
    with session(settings=DagliteSettings()):
        assert sign(cb_double, x=1, success_callbacks=[_boom])() == 2


def test_the_signature_strict_option_overrides_the_session(caplog: pytest.LogCaptureFixture) -> None:
    with session(settings=STRICT), caplog.at_level(logging.ERROR, logger="daglite.callbacks"):
        assert sign(cb_double, x=1, strict=False, success_callbacks=[_boom])() == 2
    with session(settings=LAX), pytest.raises(CallbackError):
        sign(cb_double, x=1, strict=True, success_callbacks=[_boom])()


def test_a_failing_callback_of_a_callback_is_reported_by_its_own_parent(caplog: pytest.LogCaptureFixture) -> None:
    def middle(daglite_results: int) -> int:
        return daglite_results

    sig = sign(cb_double, x=1, success_callbacks=[sign(middle, success_callbacks=[_boom])])
    with caplog.at_level(logging.ERROR, logger="daglite.callbacks"), session(settings=LAX):
        assert sig() == 2
    [record] = [r for r in caplog.records if r.name == "daglite.callbacks"]
    assert "'middle'" in record.getMessage()  # reported once, by the callback that owns it


def test_system_exit_aborts_without_callbacks() -> None:
    @task
    def leave(x: int) -> int:
        raise SystemExit(x)

    log = Log()
    sig = sign(leave, x=3, success_callbacks=[collector(log, "ok")], error_callbacks=[error_collector(log, "err")])
    with pytest.raises(SystemExit):
        sig()
    assert log.entries == []


def test_on_success_and_on_error_attach_later_with_the_same_checks() -> None:
    log = Log()
    sig = sign(cb_double, x=2)
    assert sig.on_success(collector(log, "late")) is sig
    sig.on_error(error_collector(log, "err"))
    assert [cb.name for cb in sig.success_callbacks] == ["collect_late"]
    assert [cb.name for cb in sig.error_callbacks] == ["on_error_err"]
    assert sig() == 4
    assert [v for v, _ in log.of("late")] == [4]
    with pytest.raises(SignatureError):
        sig.on_success(sign(cb_add))  # no result parameter


def test_a_single_callback_needs_no_list() -> None:
    log = Log()
    sig = sign(cb_double, x=1, success_callbacks=collector(log, "one"), error_callbacks=error_collector(log, "err"))
    assert sig() == 2
    assert log.names() == ["one"]


def test_callbacks_start_after_the_core_reported_the_final_outcome() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def once_flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            msg = "first attempt fails"
            raise OSError(msg)
        return x

    def after(daglite_results: int) -> None:
        pass

    def on_error(x: int) -> None:
        pass

    recorder = RecordingPlugin()
    with session(plugins=[recorder]):
        sign(once_flaky, x=1, success_callbacks=[after])()
        with pytest.raises(TaskError):
            sign(cb_explode, x=1, error_callbacks=[on_error])()
    events = [
        (c.hook, c["metadata"].name)
        for c in recorder.calls
        if c.hook in {"before_node_execute", "before_node_retry", "after_node_retry", "after_node_execute", "on_node_error"}
    ]
    assert events == [
        ("before_node_execute", "once_flaky"),
        ("before_node_retry", "once_flaky"),
        ("after_node_retry", "once_flaky"),
        ("after_node_execute", "once_flaky"),
        ("before_node_execute", "after"),
        ("after_node_execute", "after"),
        ("before_node_execute", "cb_explode"),
        ("on_node_error", "cb_explode"),
        ("before_node_execute", "on_error"),
        ("after_node_execute", "on_error"),
    ]


def test_a_timeout_is_a_failure_that_fires_error_callbacks_once() -> None:
    from daglite_core import TaskTimeoutError

    release = threading.Event()

    @task(timeout=0.05)
    def stuck(x: int) -> int:
        release.wait(30)  # released below; the abandoned attempt then ends
        return x

    log = Log()
    try:
        with pytest.raises(TaskTimeoutError):
            sign(stuck, x=1, error_callbacks=[error_collector(log, "err")])()
    finally:
        release.set()
    [(kwargs, error)] = log.of("err")
    assert kwargs == {"x": 1} and isinstance(error, TaskTimeoutError)


def test_a_chain_as_success_callback_gets_the_result_in_its_first_step() -> None:
    log = Log()
    follow_up = chain([cb_increment_sig(), cb_increment_sig()], success_callbacks=[collector(log, "end")])
    assert sign(cb_double, x=2, success_callbacks=[follow_up])() == 4
    assert [v for v, _ in log.of("end")] == [6]


def cb_increment_sig() -> Any:
    from callbacks_helpers import cb_increment

    return sign(cb_increment)
