"""The dask backend on an in-process cluster: results, metadata, hooks, failures, timeouts."""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest
from dask_tasks import (
    CALLS,
    GATE,
    acount_to,
    async_double,
    calls_inner,
    count_to,
    fail_some,
    fan_out,
    identity,
    inc,
    make_lock,
    overrun,
    record,
    sleep_for,
    slow_record,
    wait_for_gate,
)

from daglite_core import DagliteSettings, MapError, TaskTimeoutError, hookimpl, iter_tasks, map_tasks, session
from daglite_core.testing import RecordingPlugin
from daglite_dask import DaskBackend, RemoteTraceback, Unpicklable


class TestWhere:
    def test_address_from_the_environment(self, address: str, monkeypatch: pytest.MonkeyPatch, cluster: Any) -> None:
        """DAGLITE_DASK_ADDRESS selects a running scheduler, which is left running."""
        monkeypatch.setenv("DAGLITE_DASK_ADDRESS", address)
        with session() as state:
            assert map_tasks(inc, range(20), backend="dask") == list(range(1, 21))
            backend = state.get_backend("dask")
            assert backend.cluster is None
        assert cluster.status.name == "running"
        with session(backend="distributed"):  # the alias, the same scheduler
            assert map_tasks(inc, [1]) == [2]

    def test_backend_instance(self, address: str) -> None:
        """session(backend=DaskBackend(address=...)) uses it and closes only its client."""
        backend = DaskBackend(address=address)
        with session(backend=backend):
            assert map_tasks(inc, [1, 2, 3]) == [2, 3, 4]
            client = backend.client
        assert client.status == "closed"
        assert "not started" in repr(backend)

    def test_given_client_is_never_closed(self, cluster: Any) -> None:
        """A client of the user's is used as is."""
        with distributed_client(cluster) as client:
            with session(backend=DaskBackend(client=client)):
                assert map_tasks(inc, [1]) == [2]
            assert client.status == "running"

    def test_local_cluster_on_demand(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """backend="dask" with no address starts a LocalCluster sized by settings, closed at session end."""
        monkeypatch.setenv("DAGLITE_DASK_PROCESSES", "0")
        with session(backend="dask", settings=DagliteSettings(max_workers=3)) as state:
            assert map_tasks(inc, range(5)) == [1, 2, 3, 4, 5]
            cluster = state.get_backend("dask").cluster
            assert len(cluster.scheduler_info["workers"]) == 3
            assert cluster.scheduler_info["address"].startswith("inproc://")
            assert cluster.scheduler_spec["options"]["dashboard"] is False  # no dashboard unless asked
            assert cluster.scheduler.http_server.address == "127.0.0.1"  # /health only, on loopback
        assert cluster.status.name == "closed"

    def test_an_instance_sizes_its_cluster_by_the_session_settings(self) -> None:
        """DaskBackend() given to a session takes its worker count from that session's settings."""
        backend = DaskBackend(processes=False)
        with session(backend=backend, settings=DagliteSettings(max_workers=1)):
            assert map_tasks(inc, [1]) == [2]
            assert len(backend.cluster.scheduler_info["workers"]) == 1
        assert backend.cluster is None

    def test_unreachable_address_names_it(self) -> None:
        """A scheduler that is not there is a ConnectionError naming the address."""
        backend = DaskBackend(address="tcp://127.0.0.1:9", connect_timeout=0.5)
        with pytest.raises(ConnectionError, match=r"tcp://127\.0\.0\.1:9"):
            with session(backend=backend):
                map_tasks(inc, [1])


def distributed_client(cluster: Any) -> Any:
    import distributed

    return distributed.Client(cluster, set_as_default=False)


@pytest.fixture
def dask_backend(address: str) -> DaskBackend:
    return DaskBackend(address=address)


class TestSemantics:
    def test_order_index_map_and_parent(self, dask_backend: DaskBackend) -> None:
        """Items keep input order; metadata carries map_index, map_id and the mapping task as parent."""
        recorder = RecordingPlugin()
        with session(backend=dask_backend, plugins=[recorder]):
            assert fan_out(list(range(30))) == list(range(1, 31))
        before_map = recorder.of("before_map")[0]
        outer = recorder.of("before_node_execute")[0]["metadata"]
        assert outer.name == "fan_out"
        items = [c["metadata"] for c in recorder.of("after_node_execute") if c["metadata"].name != "fan_out"]
        assert sorted(m.map_index for m in items) == list(range(30))
        assert {m.map_id for m in items} == {before_map["map_id"]}
        assert {m.parent_id for m in items} == {outer.id}
        assert {m.backend for m in items} == {"dask"}
        assert sorted(m.name for m in items)[:2] == ["inc[0]", "inc[10]"]
        assert {c["result"] for c in recorder.of("after_node_execute") if c["metadata"].name != "fan_out"} == set(range(1, 31))
        assert recorder.of("after_map")[0]["failed"] == 0

    def test_iter_tasks_streams(self, dask_backend: DaskBackend) -> None:
        """iter_tasks yields as items finish (unordered) or in input order (ordered)."""
        with session(backend=dask_backend):
            pairs = list(iter_tasks(sleep_for, [0.6, 0.0, 0.0, 0.0], ordered=False))
            assert sorted(pairs) == [(0, 0.6), (1, 0.0), (2, 0.0), (3, 0.0)]
            assert pairs[-1] == (0, 0.6)
            assert list(iter_tasks(inc, range(50))) == list(range(1, 51))

    def test_closing_iter_tasks_early_cancels_the_rest(self, dask_backend: DaskBackend) -> None:
        """Breaking out of iter_tasks cancels the batches that have not run."""
        import time

        CALLS.clear()
        with session(backend=dask_backend):
            for _value in iter_tasks(slow_record, range(64), ordered=False):
                break
            time.sleep(1.0)  # what still runs finishes; nothing new starts
        assert 0 < len(CALLS) < 64

    def test_failing_indexes_are_named(self, dask_backend: DaskBackend) -> None:
        """Every failing index is named; the worker traceback is the original error's cause."""
        with session(backend=dask_backend):
            with pytest.raises(MapError) as info:
                map_tasks(fail_some, range(8))
        assert info.value.failed_indexes == [2, 5]
        original = info.value.errors[2].error
        assert isinstance(original, ValueError)
        assert "bad item 2" in str(original)
        assert isinstance(original.__cause__, RemoteTraceback)
        assert "fail_some" in str(original.__cause__)

    def test_async_and_generator_tasks(self, dask_backend: DaskBackend) -> None:
        """Async items are awaited in the worker; generator items are lists of what they yield."""
        with session(backend=dask_backend):
            assert map_tasks(async_double, [1, 2, 3]) == [2, 4, 6]
            assert map_tasks(count_to, [0, 2, 3]) == [[], [0, 1], [0, 1, 2]]
            assert map_tasks(acount_to, [2]) == [[0, 1]]

    def test_side_effects_never_deduplicated(self, dask_backend: DaskBackend) -> None:
        """Equal arguments in one map and across maps all run (no pure=True key sharing)."""
        CALLS.clear()
        with session(backend=dask_backend):
            map_tasks(record, [7, 7, 7])
            map_tasks(record, [7, 7, 7])
        assert CALLS == [7] * 6


class _Gate:
    """Opens the gate when it sees item 0 start: proves the event arrived while the item ran."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        self.seen.append(metadata.name)
        if metadata.map_index == 0:
            GATE.set()


class _Reporting:
    """Runs in the workers and reports each item's end to the session."""

    daglite_in_workers = True

    @hookimpl
    def after_node_execute(self, metadata: Any, reporter: Any) -> None:
        reporter.report("finished", metadata.map_index)


class TestLiveEvents:
    def test_before_node_execute_arrives_while_the_item_runs(self, dask_backend: DaskBackend) -> None:
        """The item waits for the session's plugin to have seen its start."""
        GATE.clear()
        gate = _Gate()
        with session(backend=dask_backend, plugins=[gate]):
            assert map_tasks(wait_for_gate, [0]) == [True]
        assert gate.seen == ["wait_for_gate[0]"]

    def test_reports_from_worker_plugins_reach_the_session(self, dask_backend: DaskBackend) -> None:
        """reporter.report in a hook that runs in the worker arrives as on_report, with the item's metadata."""
        recorder = RecordingPlugin(hooks=["on_report"])
        with session(backend=dask_backend, plugins=[_Reporting(), recorder]):
            assert map_tasks(inc, range(3)) == [1, 2, 3]
        assert sorted(c["data"] for c in recorder.calls) == [0, 1, 2]
        assert {c["event"] for c in recorder.calls} == {"finished"}

    def test_unpicklable_hook_arguments_become_stand_ins(self, dask_backend: DaskBackend) -> None:
        """A nested task's unpicklable result reaches plugins as an Unpicklable; the item succeeds."""
        recorder = RecordingPlugin(hooks=["after_node_execute"])
        with session(backend=dask_backend, plugins=[recorder]):
            assert map_tasks(calls_inner, [4]) == [4]
        inner = [c for c in recorder.calls if c["metadata"].name == "inner_lock"]
        assert isinstance(inner[0]["result"], Unpicklable)
        assert "lock" in inner[0]["result"].type_name

    def test_unpicklable_result_fails_its_item_only(self, dask_backend: DaskBackend) -> None:
        """The item whose result cannot travel fails (plugins see on_node_error); others are fine."""
        recorder = RecordingPlugin(hooks=["after_node_execute", "on_node_error"])
        with session(backend=dask_backend, plugins=[recorder]):
            with pytest.raises(MapError) as info:
                map_tasks(make_lock, [1])
            assert map_tasks(identity, [1, 2]) == [1, 2]
        assert info.value.failed_indexes == [0]
        assert isinstance(info.value.errors[0].error, pickle.PicklingError)
        assert "cannot be pickled" in str(info.value)
        assert [c["metadata"].name for c in recorder.of("on_node_error")] == ["make_lock[0]"]

    def test_unpicklable_argument_fails_its_item_only(self, dask_backend: DaskBackend) -> None:
        """An argument that cannot be sent fails that item, naming it."""
        with session(backend=dask_backend):
            with pytest.raises(MapError) as info:
                map_tasks(identity, [1, threading.Lock(), 3])
        assert info.value.failed_indexes == [1]
        assert "item 1" in str(info.value.errors[1].error)


class _Hang:
    """A worker-side plugin whose hook blocks: the worker's own timer cannot answer."""

    daglite_in_workers = True
    release = threading.Event()

    @hookimpl
    def before_node_execute(self, metadata: Any) -> None:
        if metadata.name.startswith("sleep_for"):
            self.release.wait(20)


class TestTimeouts:
    def test_overrun_fails_with_task_timeout_error(self, dask_backend: DaskBackend) -> None:
        """The worker's timer answers; the other items succeed."""
        with session(backend=dask_backend):
            with pytest.raises(MapError) as info:
                map_tasks(overrun, [0.0, 5.0, 0.0])
        assert info.value.failed_indexes == [1]
        assert isinstance(info.value.errors[1], TaskTimeoutError)

    def test_hung_worker_thread_times_out_in_the_session(self, dask_backend: DaskBackend) -> None:
        """A worker that does not answer at all still fails the item with TaskTimeoutError."""
        _Hang.release.clear()
        try:
            with session(backend=dask_backend, plugins=[_Hang()]):
                with pytest.raises(MapError) as info:
                    map_tasks(sleep_for.with_options(timeout=0.2), [0.0])
        finally:
            _Hang.release.set()
        error = info.value.errors[0]
        assert isinstance(error, TaskTimeoutError)
        assert "did not answer" in str(error)
