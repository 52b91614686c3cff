"""The ``process`` backend of ``map_tasks``: order, hooks across processes, failures,
worker deaths, timeouts, pickling, pool lifetime, stores used from workers.

Tasks are module-level so that they pickle by reference. "Within seconds, never
a hang" is checked with a generous bound (30 s), never with speed.
"""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import os
import pickle
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import daglite_core as d
from daglite_core._process import (
    ProcessBackend,
    WorkerDiedError,
    WorkerStartError,
    batch_size,
)
from daglite_core.testing import RecordingPlugin

GENEROUS = 30.0

# Python 3.12+ warns when fork() runs while other threads live (earlier tests leave
# abandoned timed-out threads behind); the workers only run daglite's loop.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def settings(**changes: Any) -> d.DagliteSettings:
    """Two workers; made inside the test, after the fixtures set the environment."""
    return d.DagliteSettings(max_workers=2, **changes)


def process_session(**options: Any) -> Any:
    return d.session(backend="process", settings=options.pop("settings", None) or settings(), **options)


def backend_of(state: Any) -> ProcessBackend:
    backend = state.get_backend("process")
    assert isinstance(backend, ProcessBackend)
    return backend


def our_children() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "daglite-process-worker"]


# -- tasks -----------------------------------------------------------------------


@d.task
def where(x: int) -> tuple[int, int | None, int]:
    metadata = d.current_metadata()
    assert metadata is not None
    return x * 2, metadata.map_index, os.getpid()


@d.task
def double(x: int) -> int:
    return x * 2


@d.task
def odd_fails(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x


@d.task(retries=1)
def flaky(x: int, marks: str) -> int:
    mark = Path(marks) / f"{x}.tried"
    if x == 1 and not mark.exists():
        mark.touch()
        raise RuntimeError("first attempt fails")
    return x


@d.task
def dies_on(x: int, culprit: int) -> int:
    if x == culprit:
        os._exit(1)
    return x


@d.task
def exits_on(x: int, culprit: int) -> int:
    if x == culprit:
        sys.exit(3)
    return x


@d.task(timeout=0.2)
def sleeps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@d.task
def times_out_inside(x: int) -> int:
    if x == 0:
        with pytest.raises(d.TaskTimeoutError):
            sleeps(5.0)  # its thread is abandoned, still sleeping, in this worker
    return x


@d.task(timeout=0.5)
def slow(kind: str) -> str:
    if kind == "sleep":
        time.sleep(60)
    elif kind == "spin":
        end = time.monotonic() + 60
        while time.monotonic() < end:
            pass
    elif kind == "gil":
        sum(range(10**11))  # one C call: holds the GIL, the worker cannot answer
    return kind


@d.task
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@d.task
def count_up(n: int) -> Iterator[int]:
    yield from range(n)


@d.task
async def acount_up(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


@d.task
def lock_for(x: int) -> Any:
    return threading.Lock() if x == 1 else x


@d.task
def identity(x: Any) -> Any:
    return x


class TwoArgError(Exception):
    """Cannot be unpickled: its ``__init__`` needs two arguments, ``args`` holds one."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


@d.task
def raises_two_arg(x: int) -> int:
    if x == 2:
        raise TwoArgError("left", "right")
    return x


@d.task
def reports(x: int) -> int:
    metadata = d.current_metadata()
    assert metadata is not None
    return x


@d.task(cache=True)
def cached_square(x: int, runs: str) -> int:
    (Path(runs) / f"{x}-{os.getpid()}-{time.monotonic_ns()}").touch()
    return x * x


@d.task(cache=True, cache_store="a")
def cached_in_a(x: int) -> int:
    return x + 1


@d.task(cache=True, cache_store="b")
def cached_in_b(x: int) -> int:
    return x + 2


@d.task(dataset="out/{x}.pkl")
def saved(x: int) -> dict[str, int]:
    return {"x": x, "pid": os.getpid()}


@d.task
def saves_inside(x: int) -> str:
    return d.save_dataset("inside/{x}.pkl", [x, x])


SESSION_PID = os.getpid()


def _load_only_in_workers() -> WorkerOnly:
    if os.getpid() == SESSION_PID:
        raise RuntimeError("this object cannot be loaded in the session's process")
    return WorkerOnly()


def _load_only_here() -> BreaksInWorkers:
    if os.getpid() != SESSION_PID:
        raise RuntimeError("this plugin cannot be loaded in a worker")
    return BreaksInWorkers()


class WorkerOnly:
    """A result that pickles in the worker but cannot be unpickled in the session's process."""

    def __reduce__(self) -> Any:
        return (_load_only_in_workers, ())


class BreaksInWorkers:
    """A worker-side plugin that cannot be unpickled in a worker."""

    daglite_in_workers = True

    def __reduce__(self) -> Any:
        return (_load_only_here, ())

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter) -> None:
        pass


@d.task
def worker_only_for(x: int) -> Any:
    return WorkerOnly() if x == 1 else x


# -- plugins and stores ----------------------------------------------------------


class WorkerSide:
    """Runs in the workers: reports its pid from every item through the reporter."""

    daglite_in_workers = True

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter) -> None:
        reporter.report("worker-pid", (metadata.map_index, os.getpid()))


class Reports:
    """Stays in the session's process: collects ``on_report`` events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    @d.hookimpl
    def on_report(self, event: str, data: Any, metadata: d.TaskMetadata | None) -> None:
        self.events.append((event, data, metadata))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


class FileCache:
    """A CacheStore on a directory: pickles as its path, atomic writes (safe across processes)."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def get(self, key: str) -> Any:
        path = self.root / key
        if not path.exists():
            return d.CACHE_MISS
        return pickle.loads(path.read_bytes())

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        _atomic_write(self.root / key, pickle.dumps(value))


class FileCaches:
    """Provides a :class:`FileCache` under ``root`` for every cache-store spec."""

    def __init__(self, root: str) -> None:
        self.root = root

    @d.hookimpl
    def provide_cache_store(self, spec: Any, settings: d.DagliteSettings) -> Any:
        return FileCache(os.path.join(self.root, str(spec)))


class FileDatasets:
    """A DatasetStore on a directory with one format (pickle) and atomic writes."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def resolve(self, key: str, format: str | None = None) -> tuple[str, str]:
        if ".." in key.split("/") or key.startswith("/"):
            msg = f"Dataset key {key!r} would leave the store"
            raise ValueError(msg)
        if (format or "pickle") != "pickle":
            msg = f"Dataset key {key!r}: unknown format {format!r}; known: pickle"
            raise ValueError(msg)
        return key, "pickle"

    def save(self, key: str, value: Any, *, format: str, options: Mapping[str, Any] | None = None) -> None:
        _atomic_write(self.root / key, pickle.dumps(value))

    def load(self, key: str, return_type: type | None = None, *, format: str, options: Mapping[str, Any] | None = None) -> Any:
        return pickle.loads((self.root / key).read_bytes())

    def exists(self, key: str) -> bool:
        return (self.root / key).exists()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[str]:
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith("."))


# -- results, names, hooks ---------------------------------------------------------


def test_results_in_input_order_with_map_index_from_workers() -> None:
    with process_session():
        results = d.map_tasks(where, range(50))
    assert [r[0] for r in results] == [x * 2 for x in range(50)]
    assert [r[1] for r in results] == list(range(50))
    assert {r[2] for r in results}.isdisjoint({os.getpid()})


def test_backend_aliases_and_empty_map() -> None:
    with d.session(backend="multiprocessing", settings=settings()):
        assert d.map_tasks(double, [1, 2]) == [2, 4]
        assert d.map_tasks(double, [], backend="processes") == []


def test_coordinator_plugin_sees_every_node_event(tmp_path: Path) -> None:
    recorder = RecordingPlugin()
    with process_session(plugins=[recorder]):
        assert d.map_tasks(flaky, range(4), [str(tmp_path)] * 4) == [0, 1, 2, 3]
        with pytest.raises(d.MapError):
            d.map_tasks(odd_fails, range(4))
    names = recorder.names()
    assert names.count("before_map") == 2 and names.count("after_map") == 2
    executed = recorder.of("before_node_execute")
    assert sorted((c["metadata"].name, c["metadata"].map_index) for c in executed) == sorted(
        [(f"flaky[{i}]", i) for i in range(4)] + [(f"odd_fails[{i}]", i) for i in range(4)]
    )
    assert {c["metadata"].backend for c in executed} == {"process"}
    ids = {c["metadata"].name: c["metadata"].id for c in executed}
    assert len(set(ids.values())) == len(executed)  # one id per call, kept across the relay
    after = recorder.of("after_node_execute")
    assert all(c["metadata"] == next(e["metadata"] for e in executed if e["metadata"].id == c["metadata"].id) for c in after)
    assert sorted(c["metadata"].name for c in after) == ["flaky[0]", "flaky[1]", "flaky[2]", "flaky[3]", "odd_fails[0]", "odd_fails[2]"]
    (retry,) = recorder.of("before_node_retry")
    assert retry["metadata"].name == "flaky[1]" and retry["attempt"] == 1 and isinstance(retry["error"], RuntimeError)
    (retried,) = recorder.of("after_node_retry")
    assert retried["succeeded"] is True
    errors = recorder.of("on_node_error")
    assert sorted(c["metadata"].map_index for c in errors) == [1, 3]
    assert all(isinstance(c["error"], ValueError) for c in errors)
    assert all(c["reporter"] is not None for c in executed + errors)


def test_worker_plugin_runs_in_workers_and_reports_to_the_session() -> None:
    reports = Reports()
    with process_session(plugins=[WorkerSide(), reports]):
        assert d.map_tasks(reports_task_alias, range(6)) == list(range(6))
    pids = {data[1] for event, data, _ in reports.events if event == "worker-pid"}
    indexes = sorted(data[0] for event, data, _ in reports.events if event == "worker-pid")
    assert indexes == list(range(6))
    assert pids and os.getpid() not in pids
    assert all(md is not None and md.map_index == data[0] for _, data, md in reports.events)


reports_task_alias = reports


# -- failures ------------------------------------------------------------------------


def test_failing_items_raise_map_error_naming_every_index_with_originals() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(odd_fails, range(7))
    error = caught.value
    assert error.failed_indexes == [1, 3, 5]
    assert "[1, 3, 5]" in str(error)
    for index, item_error in error.errors.items():
        assert isinstance(item_error, d.TaskError)
        assert isinstance(item_error.error, ValueError)
        assert str(item_error.error) == f"odd input {index}"
        assert item_error.__cause__ is item_error.error
        assert "odd_fails" in str(item_error.error.__cause__)  # the worker's traceback


def test_arguments_that_do_not_fit_name_the_task() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(double, [1, 2], [3, 4])
    assert caught.value.failed_indexes == [0, 1]
    assert all(isinstance(e, TypeError) and "'double'" in str(e) for e in caught.value.errors.values())


def test_dead_worker_fails_only_its_item_and_the_session_goes_on() -> None:
    started = time.monotonic()
    with process_session() as state:
        with pytest.raises(d.MapError) as caught:
            d.map_tasks(dies_on, range(20), [7] * 20)  # batches of 3: the culprit shares one
        assert caught.value.failed_indexes == [7]
        cause = caught.value.errors[7].error
        assert isinstance(cause, WorkerDiedError)
        assert "exit code 1" in str(cause) and "item 7" in str(cause)
        assert d.map_tasks(double, range(10)) == [x * 2 for x in range(10)]
        assert len(backend_of(state).worker_pids()) == 2
    assert time.monotonic() - started < GENEROUS


def test_system_exit_in_an_item_fails_it_like_a_dead_worker() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(exits_on, range(12), [5] * 12)
    assert caught.value.failed_indexes == [5]
    assert "exit code 3" in str(caught.value.errors[5])


def test_worker_with_an_abandoned_thread_is_replaced_after_its_batch() -> None:
    with process_session():
        before = {r[2] for r in d.map_tasks(where, range(16))}
        assert d.map_tasks(times_out_inside, range(40)) == list(range(40))
        after = {r[2] for r in d.map_tasks(where, range(16))}
    assert len(before) == 2 and len(after) == 2
    assert len(before & after) == 1  # the worker that ran item 0 was retired


def test_workers_that_die_while_starting_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import daglite_core._process._pool as pool

    started = time.monotonic()
    with process_session(settings=settings(mp_start_method="fork")):
        with monkeypatch.context() as patch:
            # Forked workers inherit the patch: they exit before saying they started.
            patch.setattr(pool, "signal", types.SimpleNamespace(SIGINT=2, SIG_IGN=1, signal=lambda *a: os._exit(7)))
            with pytest.raises(WorkerStartError, match=r"Task 'double': a worker process .* exited while starting \(exit code 7\)"):
                d.map_tasks(double, range(1000))
        assert d.map_tasks(double, range(10)) == [x * 2 for x in range(10)]
    assert time.monotonic() - started < GENEROUS
    assert our_children() == []


def test_dead_worker_fires_on_node_error_in_the_session() -> None:
    recorder = RecordingPlugin(hooks=["on_node_error"])
    with process_session(plugins=[recorder]), pytest.raises(d.MapError):
        d.map_tasks(dies_on, [0, 1], [1, 1])
    (call,) = recorder.calls
    assert call["metadata"].map_index == 1 and isinstance(call["error"], WorkerDiedError)


def test_timeouts_kill_or_replace_the_worker_and_other_items_complete() -> None:
    started = time.monotonic()
    kinds = ["ok", "sleep", "ok", "spin", "gil", "ok"]
    with process_session() as state:
        with pytest.raises(d.MapError) as caught:
            d.map_tasks(slow, kinds)
        assert caught.value.failed_indexes == [1, 3, 4]
        for index in (1, 3, 4):
            assert isinstance(caught.value.errors[index], d.TaskTimeoutError)
        assert "killed" in str(caught.value.errors[4].error)  # held the GIL: the backstop
        assert d.map_tasks(slow, ["ok", "ok"]) == ["ok", "ok"]
        assert len(backend_of(state).worker_pids()) == 2
    assert time.monotonic() - started < GENEROUS


def test_unpicklable_result_fails_its_item_only() -> None:
    recorder = RecordingPlugin(hooks=["after_node_execute", "on_node_error"])
    with process_session(plugins=[recorder]), pytest.raises(d.MapError) as caught:
        d.map_tasks(lock_for, range(4))
    assert caught.value.failed_indexes == [1]
    message = str(caught.value.errors[1])
    assert "lock_for[1]" in message and "item 1" in message and "pickled" in message
    assert sorted(c["metadata"].map_index for c in recorder.of("after_node_execute")) == [0, 2, 3]
    assert [c["metadata"].map_index for c in recorder.of("on_node_error")] == [1]
    error = recorder.of("on_node_error")[0]["error"]
    assert isinstance(error, pickle.PicklingError) and "item 1" in str(error)


def test_unpicklable_argument_fails_its_item_only() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(identity, [1, threading.Lock(), 3])
    assert caught.value.failed_indexes == [1]
    message = str(caught.value.errors[1])
    assert "identity[1]" in message and "argument 0 (lock)" in message


def test_unpicklable_error_arrives_as_a_stand_in_with_its_message() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(raises_two_arg, range(4))
    assert caught.value.failed_indexes == [2]
    inner = caught.value.errors[2].error
    assert "TwoArgError: left/right" in str(inner)


def test_reply_that_cannot_be_unpickled_fails_its_batch_only() -> None:
    with process_session(), pytest.raises(d.MapError) as caught:
        d.map_tasks(worker_only_for, range(4))  # batches of one item
    assert caught.value.failed_indexes == [1]
    cause = caught.value.errors[1].error
    assert isinstance(cause, pickle.UnpicklingError)
    assert "cannot be loaded in the session's process" in str(cause)


def test_runner_that_cannot_be_unpickled_in_workers_fails_every_item() -> None:
    with process_session(plugins=[BreaksInWorkers()]):
        with pytest.raises(d.MapError) as caught:
            d.map_tasks(double, range(20))
        assert caught.value.failed_indexes == list(range(20))
        assert all(isinstance(e.error, pickle.UnpicklingError) for e in caught.value.errors.values())
        assert "cannot be loaded in a worker" in str(caught.value.errors[0])


def test_task_that_cannot_be_pickled_is_named() -> None:
    @d.task
    def local(x: int) -> int:
        return x + 1

    with process_session():
        try:
            import cloudpickle  # noqa: F401
        except ImportError:
            with pytest.raises(pickle.PicklingError, match="Task 'local' cannot be sent to a worker process"):
                d.map_tasks(local, [1, 2])
        else:  # pragma: no cover - depends on the environment
            assert d.map_tasks(local, [1, 2]) == [2, 3]


class FailsOnFirstItem:
    """A coordinator-side plugin that raises once, while item 0's events are replayed."""

    def __init__(self) -> None:
        self.raised = False

    @d.hookimpl
    def after_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter, duration: float, result: Any) -> None:
        if metadata.map_index == 0 and not self.raised:
            self.raised = True
            raise RuntimeError("plugin bug")


def test_error_in_the_session_process_leaves_no_stale_batch_behind() -> None:
    # Strict hooks: the plugin's error leaves map_tasks while other batches are in
    # flight; their workers are killed, so the next map never reads a stale reply.
    with process_session(settings=settings(strict_hooks=True), plugins=[FailsOnFirstItem()]):
        with pytest.raises(d.PluginError):
            d.map_tasks(double, range(1, 200))
        assert d.map_tasks(double, range(1000, 1005)) == [x * 2 for x in range(1000, 1005)]
    assert our_children() == []


# -- pool lifetime -------------------------------------------------------------------


def test_pool_is_reused_across_maps_and_gone_after_the_session() -> None:
    with process_session() as state:
        first = {r[2] for r in d.map_tasks(where, range(40))}
        second = {r[2] for r in d.map_tasks(where, range(40))}
        assert first == second == set(backend_of(state).worker_pids())
        assert len(first) == 2
    assert our_children() == []
    for pid in first:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_maps_from_two_threads_take_turns() -> None:
    results: dict[int, list[int]] = {}

    def run(offset: int) -> None:
        results[offset] = d.map_tasks(double, range(offset, offset + 30))

    with process_session():
        threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, o)) for o in (0, 100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GENEROUS)
    assert results[0] == [x * 2 for x in range(30)]
    assert results[100] == [x * 2 for x in range(100, 130)]


def test_outside_a_session_the_default_pool_is_closed_on_reset() -> None:
    from daglite_core._context import reset_default_state

    assert d.map_tasks(double, [1, 2, 3], backend="process") == [2, 4, 6]
    assert our_children()
    reset_default_state()
    assert our_children() == []


def test_spawn_start_method() -> None:
    with process_session(settings=settings(mp_start_method="spawn")):
        results = d.map_tasks(where, range(6))
    assert [r[0] for r in results] == [x * 2 for x in range(6)]
    assert our_children() == []


def test_unknown_start_method_is_a_clear_error() -> None:
    with process_session(settings=settings(mp_start_method="teleport")), pytest.raises(ValueError, match="mp_start_method='teleport'"):
        d.map_tasks(double, [1])


def test_batch_size_is_about_four_batches_per_worker_and_capped() -> None:
    assert batch_size(1, 2) == 1
    assert batch_size(80, 2) == 10
    assert batch_size(10**6, 2) == 512


# -- task kinds ----------------------------------------------------------------------


def test_async_and_generator_tasks() -> None:
    with process_session():
        assert d.map_tasks(async_double, range(5)) == [0, 2, 4, 6, 8]
        assert d.map_tasks(count_up, [0, 1, 3]) == [[], [0], [0, 1, 2]]
        assert d.map_tasks(acount_up, [2, 1]) == [[0, 1], [0]]


def test_async_task_from_a_running_loop() -> None:
    async def main() -> list[int]:
        async with d.async_session(backend="process", settings=settings()):
            return await d.gather_tasks(async_double, range(4), backend="process")

    assert asyncio.run(main()) == [0, 2, 4, 6]


# -- stores from workers -------------------------------------------------------------


def test_cache_store_object_works_from_workers(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    recorder = RecordingPlugin(hooks=["on_cache_hit"])
    store = FileCache(str(tmp_path / "cache"))
    args = [1, 2, 3, 1, 2, 3, 1, 2]
    with process_session(cache_store=store, plugins=[recorder]):
        assert d.map_tasks(cached_square, args, [str(runs)] * len(args)) == [x * x for x in args]
        first_runs = len(list(runs.iterdir()))
        assert d.map_tasks(cached_square, args, [str(runs)] * len(args)) == [x * x for x in args]
    assert 3 <= first_runs <= len(args)  # equal items may race in two workers; never wrong
    assert len(list(runs.iterdir())) == first_runs  # the second map only hit the cache
    assert len(recorder.calls) >= len(args)
    assert all(pickle.loads((tmp_path / "cache" / c["key"]).read_bytes()) == c["value"] for c in recorder.calls)


def test_each_map_brings_the_stores_the_session_resolved(tmp_path: Path) -> None:
    # The provider is a session plugin: workers cannot make these stores themselves.
    with process_session(plugins=[FileCaches(str(tmp_path))]):
        assert d.map_tasks(cached_in_a, [1, 2]) == [2, 3]
        assert d.map_tasks(cached_in_b, [1, 2]) == [3, 4]
    assert len(list((tmp_path / "a").iterdir())) == 2
    assert len(list((tmp_path / "b").iterdir())) == 2


def test_dataset_store_object_works_from_workers(tmp_path: Path) -> None:
    store = FileDatasets(str(tmp_path / "data"))
    recorder = RecordingPlugin(hooks=["after_dataset_save"])
    with process_session(dataset_store=store, plugins=[recorder]):
        results = d.map_tasks(saved, range(6))
        keys = d.map_tasks(saves_inside, range(3))
    assert keys == [f"inside/{x}.pkl" for x in range(3)]
    assert store.list("out/") == [f"out/{x}.pkl" for x in range(6)]
    assert [store.load(f"out/{x}.pkl", format="pickle") for x in range(6)] == results
    assert [store.load(k, format="pickle") for k in keys] == [[x, x] for x in range(3)]
    assert {r["pid"] for r in results}.isdisjoint({os.getpid()})
    assert sorted(c["key"] for c in recorder.calls) == sorted([f"out/{x}.pkl" for x in range(6)] + keys)


def test_the_on_demand_process_class_names_the_real_backend() -> None:
    from daglite_core._builtin import _ProcessBackendOnDemand

    assert (_ProcessBackendOnDemand.name, _ProcessBackendOnDemand.aliases) == (ProcessBackend.name, ProcessBackend.aliases)
    backend = _ProcessBackendOnDemand(settings())
    try:
        assert isinstance(backend, ProcessBackend)
    finally:
        backend.close()
