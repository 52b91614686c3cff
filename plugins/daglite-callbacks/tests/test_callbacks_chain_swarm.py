"""chain() and swarm(): data flow, failures, cancellation, on inline, thread and process backends."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from daglite_callbacks import (
    Chain,
    ReturnValue,
    SignatureError,
    Swarm,
    SwarmError,
    chain,
    sign,
    swarm,
)
from daglite_core import BackendError, DagliteSettings, TaskError, session, task
from daglite_core.testing import RecordingPlugin

from callbacks_helpers import (
    Log,
    cb_add,
    cb_count_running,
    cb_double,
    cb_explode,
    cb_fail_if,
    cb_fails_on,
    cb_increment,
    cb_pid_of,
    cb_rendezvous,
    cb_total_of,
    collector,
    error_collector,
)

BACKENDS = ["inline", "thread", "process"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    try:
        with session(backend=name, settings=DagliteSettings(strict_hooks=True, max_workers=2)):
            pass
    except BackendError:
        pytest.skip(f"backend {name!r} is not provided by the installed daglite-core")
    yield name


def _session(backend: str, *plugins: object) -> Any:
    return session(backend=backend, plugins=list(plugins), settings=DagliteSettings(strict_hooks=True, max_workers=2))


# -- chain --------------------------------------------------------------------------------


def test_chain_passes_each_result_on_and_returns_the_last(backend: str) -> None:
    log = Log()
    recorder = RecordingPlugin(hooks=["after_node_execute"])
    pipeline = chain(
        [sign(cb_add, y=1), cb_increment, sign(cb_increment, success_callbacks=[collector(log, "step3")])],
        success_callbacks=[collector(log, "chain")],
    )
    assert isinstance(pipeline, Chain)
    with _session(backend, recorder):
        assert pipeline(x=1) == 4
    assert [v for v, _ in log.of("step3")] == [4]
    assert [v for v, _ in log.of("chain")] == [4]
    assert all(pid == os.getpid() for _, (_, pid) in log.entries)  # callbacks run in the session's process
    steps = [c["metadata"] for c in recorder.calls if c["metadata"].name.startswith(("cb_add", "cb_increment"))]
    assert len(steps) == 3
    expected = "inline" if backend == "inline" else backend
    assert {md.backend for md in steps} == {expected}


def test_a_failing_step_stops_the_chain(backend: str) -> None:
    log = Log()
    after = sign(collector(log, "never"))
    pipeline = chain(
        [sign(cb_add, y=0), sign(cb_fail_if, bad=5), after],
        error_callbacks=[error_collector(log, "chain_error")],
    )
    with _session(backend), pytest.raises(TaskError, match="Task 'cb_fail_if.*bad value 5") as info:
        pipeline(x=5)
    assert log.of("never") == []
    [(kwargs, error)] = log.of("chain_error")
    assert kwargs == {"value": 5, "bad": 5}  # the failing step's kwargs
    assert error is info.value


def test_the_failing_step_own_error_callbacks_fire_too() -> None:
    @task
    def reject(value: ReturnValue[int]) -> int:
        msg = f"rejected {value}"
        raise ValueError(msg)

    log = Log()
    pipeline = chain(
        [cb_double, sign(reject, error_callbacks=[error_collector(log, "step")])],
        error_callbacks=[error_collector(log, "chain")],
    )
    with pytest.raises(TaskError, match="rejected 2"):
        pipeline(x=1)
    assert log.names() == ["step", "chain"]  # the step's own first, then the chain's, once each
    assert [kwargs for kwargs, _ in log.of("chain")] == [{"value": 2}]


def test_chain_steps_are_checked_when_the_chain_is_built() -> None:
    def no_target(x: int) -> int:
        return x

    with pytest.raises(SignatureError, match=r"step 2 'no_target' of 'chain\(cb_double, no_target\)'.*no parameter to receive the result"):
        chain([cb_double, no_target])
    with pytest.raises(SignatureError, match="at least one step"):
        chain([])


def test_chain_error_callbacks_must_accept_every_step_kwargs() -> None:
    def on_error(x: int) -> None:
        pass

    with pytest.raises(SignatureError, match=r"cannot accept argument\(s\) \['value'\]"):
        chain([cb_double, cb_increment], error_callbacks=[on_error])


def test_a_later_step_input_rejected_by_its_validator_is_that_step_failure() -> None:
    def only_small(kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs["value"] > 5:
            msg = "too big"
            raise ValueError(msg)
        return kwargs

    log = Log()
    pipeline = chain(
        [cb_double, sign(cb_increment, model_validators=only_small)],
        error_callbacks=[error_collector(log, "chain")],
    )
    assert pipeline(x=2) == 5
    with pytest.raises(Exception, match="too big"):
        pipeline(x=3)
    [(kwargs, _)] = log.of("chain")
    assert kwargs == {"value": 6}


def test_async_chain_mixes_sync_and_async_steps() -> None:
    @task
    async def ahalf(value: ReturnValue[int]) -> int:
        await asyncio.sleep(0)
        return value // 2

    pipeline = chain([cb_double, ahalf, cb_increment])
    assert pipeline.is_async
    assert asyncio.run(pipeline(x=5)) == 6
    assert pipeline.run(x=5) == 6


# -- swarm --------------------------------------------------------------------------------


def test_swarm_returns_results_in_item_order_and_calls_back_once(backend: str) -> None:
    log = Log()
    group = swarm(
        [sign(cb_add, y=i) for i in range(6)],
        max_concurrency=3,
        success_callbacks=[collector(log, "all")],
        error_callbacks=[error_collector(log, "err")],
    )
    assert isinstance(group, Swarm)
    recorder = RecordingPlugin(hooks=["after_node_execute"])
    with _session(backend, recorder):
        assert group(x=100) == [100, 101, 102, 103, 104, 105]
    [(results, pid)] = log.of("all")
    assert results == [100, 101, 102, 103, 104, 105] and pid == os.getpid()
    assert log.of("err") == []
    ran = [c["metadata"] for c in recorder.calls if c["metadata"].name.startswith("cb_add")]
    assert len(ran) == 6 and {md.backend for md in ran} == {backend}


def test_swarm_items_run_on_the_backend_and_callbacks_in_the_session_process(backend: str) -> None:
    log = Log()
    group = swarm([sign(cb_pid_of, success_callbacks=[collector(log, "item")]) for _ in range(3)])
    with _session(backend):
        pids = group(x=0)
    if backend == "process":
        assert os.getpid() not in pids
    else:
        assert set(pids) == {os.getpid()}
    assert {pid for _, pid in log.of("item")} == {os.getpid()}


def test_swarm_failure_names_every_failed_item_and_calls_back_once(backend: str) -> None:
    log = Log()
    group = swarm(
        [sign(cb_fails_on, x=i, bad=i if i % 2 else -1) for i in range(4)],  # items 1 and 3 fail
        success_callbacks=[collector(log, "all")],
        error_callbacks=[error_collector(log, "err")],
        name="odd-ones",
    )
    with _session(backend), pytest.raises(SwarmError) as info:
        group()
    error = info.value
    assert error.failed_indexes == [1, 3]
    assert error.cancelled == []
    assert "[1] 'cb_fails_on'" in str(error) and "bad item 1" in str(error)
    assert "[3] 'cb_fails_on'" in str(error) and "bad item 3" in str(error)
    assert "Swarm 'odd-ones': 2 of 4 items failed" in str(error)
    assert log.of("all") == []
    [(kwargs, seen)] = log.of("err")
    assert kwargs == {} and seen is error


def test_swarm_call_kwargs_merge_with_item_bound_kwargs_which_win() -> None:
    group = swarm([sign(cb_add, y=1), sign(cb_add, y=2), sign(cb_add, x=0, y=3)])
    assert group(x=10) == [11, 12, 3]


def test_swarm_error_callbacks_get_the_call_kwargs() -> None:
    log = Log()
    group = swarm([sign(cb_fails_on, bad=1), sign(cb_fails_on, bad=2)], error_callbacks=[error_collector(log, "err")])
    with pytest.raises(SwarmError):
        group(x=1)
    [(kwargs, _)] = log.of("err")
    assert kwargs == {"x": 1}


def test_stop_after_n_failures_cancels_items_not_yet_started(backend: str) -> None:
    log = Log()
    items = [sign(cb_explode, x=i, error_callbacks=[error_collector(log, f"item{i}")]) for i in range(5)]
    group = swarm(items, max_concurrency=1, stop_after_n_failures=2)
    with _session(backend), pytest.raises(SwarmError) as info:
        group()
    assert info.value.failed_indexes == [0, 1]
    assert info.value.cancelled == [2, 3, 4]
    assert "cancelled before starting: [2] 'cb_explode', [3] 'cb_explode', [4] 'cb_explode'" in str(info.value)
    assert sorted(log.names()) == ["item0", "item1"]  # cancelled items ran no callbacks


def test_swarm_max_concurrency_bounds_running_items() -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @task
    def tracked(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return x
        finally:
            with lock:
                running[0] -= 1

    with session(backend="thread", settings=DagliteSettings(max_workers=8)):
        assert swarm([sign(tracked, x=i) for i in range(20)], max_concurrency=2)() == list(range(20))
    assert 1 <= peak[0] <= 2


def test_async_swarm_on_the_loop_respects_max_concurrency_and_order() -> None:
    running = [0]
    peak = [0]

    @task
    async def slow(x: int) -> int:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running[0] -= 1
        return x

    group = swarm([sign(slow, x=i) for i in range(6)], max_concurrency=2)
    assert group.is_async
    assert asyncio.run(group()) == list(range(6))
    assert peak[0] == 2


def test_async_swarm_stop_after_n_failures() -> None:
    @task
    async def afail(x: int) -> int:
        raise ValueError(x)

    group = swarm([sign(afail, x=i) for i in range(4)], max_concurrency=1, stop_after_n_failures=1)
    with pytest.raises(SwarmError) as info:
        asyncio.run(group())
    assert info.value.failed_indexes == [0] and info.value.cancelled == [1, 2, 3]


def test_swarm_options_are_validated() -> None:
    with pytest.raises(SignatureError, match="max_concurrency must be an int >= 1"):
        swarm([cb_double], max_concurrency=0)
    with pytest.raises(SignatureError, match="stop_after_n_failures must be an int >= 1"):
        swarm([cb_double], stop_after_n_failures=-1)
    with pytest.raises(SignatureError, match="at least one item"):
        swarm([])


def test_swarm_success_callbacks_must_take_a_list() -> None:
    def wants_int(total: ReturnValue[int]) -> None:
        pass

    with pytest.raises(SignatureError, match=r"declared list but 'total' of 'wants_int' is ReturnValue\[int\]"):
        swarm([cb_double, cb_double], success_callbacks=[wants_int])


def test_nested_chain_inside_a_swarm_and_swarm_inside_a_chain(backend: str) -> None:
    pipeline = chain([swarm([cb_double, chain([cb_double, cb_increment])]), cb_total_of])
    with _session(backend):
        assert pipeline(x=3) == 6 + 7


def test_a_swarm_as_success_callback_fans_the_result_out() -> None:
    log = Log()
    fan = swarm([cb_increment, cb_increment], success_callbacks=[collector(log, "fan")])
    assert sign(cb_double, x=2, success_callbacks=[fan])() == 4
    assert [v for v, _ in log.of("fan")] == [[5, 5]]


def _broken_callback(daglite_results: Any) -> None:
    msg = "callback broke"
    raise RuntimeError(msg)


def test_strict_step_callback_failure_stops_the_chain_without_calling_back() -> None:
    from daglite_callbacks import CallbackError

    log = Log()
    pipeline = chain(
        [sign(cb_double, success_callbacks=[_broken_callback]), sign(cb_increment, success_callbacks=[collector(log, "never")])],
        error_callbacks=[error_collector(log, "chain")],
    )
    with session(settings=DagliteSettings(strict_hooks=True)), pytest.raises(CallbackError) as info:
        pipeline(x=1)
    assert info.value.task_name == "cb_double" and info.value.outcome.value == 2
    assert log.entries == []


def test_lax_step_callback_failure_lets_the_chain_go_on() -> None:
    pipeline = chain([sign(cb_double, success_callbacks=[_broken_callback]), cb_increment])
    with session(settings=DagliteSettings(strict_hooks=False)):
        assert pipeline(x=1) == 3


def test_strict_item_callback_failure_stops_the_swarm() -> None:
    from daglite_callbacks import CallbackError

    log = Log()
    group = swarm(
        [sign(cb_double, success_callbacks=[_broken_callback]), cb_double],
        success_callbacks=[collector(log, "all")],
    )
    with session(settings=DagliteSettings(strict_hooks=True)), pytest.raises(CallbackError):
        group(x=1)
    assert log.entries == []
    with session(settings=DagliteSettings(strict_hooks=False)):
        assert group(x=1) == [2, 2]
    assert [v for v, _ in log.of("all")] == [[2, 2]]


def test_a_swarm_cannot_contain_itself_through_a_callback() -> None:
    from daglite_callbacks import CycleError

    item = sign(cb_double)
    group = swarm([item, cb_double])
    with pytest.raises(CycleError, match="reachable"):
        item.on_error(group)


def test_keyword_only_tasks_in_a_swarm_run_in_the_session_process(backend: str) -> None:
    @task
    def keyword_only(*, x: int) -> int:
        return os.getpid() + 0 * x

    with _session(backend):
        assert swarm([sign(keyword_only), sign(keyword_only)])(x=1) == [os.getpid(), os.getpid()]


# -- swarm on the process backend: items side by side (issue 16, item 7) -------------------


def test_swarm_on_process_runs_items_side_by_side(tmp_path: Any) -> None:
    log = Log()
    items = [sign(cb_rendezvous, x=i, success_callbacks=[collector(log, f"item{i}")]) for i in range(3)]
    group = swarm(items, max_concurrency=3)
    with session(backend="process", settings=DagliteSettings(strict_hooks=True, max_workers=3)):
        pids = group(folder=str(tmp_path), peers=3)
    assert len(set(pids)) == 3 and os.getpid() not in pids  # three workers at once
    assert sorted(log.names()) == ["item0", "item1", "item2"]  # each item's own callbacks fired
    assert {pid for _, (_, pid) in log.entries} == {os.getpid()}


def test_swarm_on_process_keeps_at_most_max_concurrency_in_flight(tmp_path: Any) -> None:
    group = swarm([sign(cb_count_running, x=i) for i in range(4)], max_concurrency=2)
    with session(backend="process", settings=DagliteSettings(strict_hooks=True, max_workers=4)):
        seen = group(folder=str(tmp_path))
    assert max(seen) <= 2


def test_swarm_on_process_mixes_grouped_items_and_others(tmp_path: Any) -> None:
    log = Log()
    group = swarm(
        [sign(cb_add, y=1), chain([sign(cb_double), sign(cb_increment)]), sign(cb_fails_on, bad=5), sign(cb_add, y=3)],
        error_callbacks=[error_collector(log, "err")],
    )
    with session(backend="process", settings=DagliteSettings(strict_hooks=True, max_workers=2)), pytest.raises(
        SwarmError
    ) as info:
        group(x=5)
    assert info.value.failed_indexes == [2]
    assert "bad item 5" in str(info.value)
    with session(backend="process", settings=DagliteSettings(strict_hooks=True, max_workers=2)):
        assert group(x=1) == [2, 3, 1, 4]
