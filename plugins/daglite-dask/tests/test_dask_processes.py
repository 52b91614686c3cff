"""The dask backend with worker processes: pickling, settings and environment, live events, a killed worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import dask
import distributed
import pytest
from dask_tasks import die_on_three, inc, where

from daglite_core import DagliteSettings, MapError, map_tasks, session
from daglite_core.testing import RecordingPlugin
from daglite_dask import DaskBackend, DaskWorkerLostError


@pytest.fixture(scope="module")
def process_cluster() -> Iterator[Any]:
    """Two worker processes on loopback; a worker death is not retried (allowed-failures=0)."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        made = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    yield made
    made.close()


def test_settings_environment_and_events_reach_worker_processes(
    process_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items run in other processes, see the session's settings and DAGLITE_* variables, and their hooks arrive."""
    monkeypatch.setenv("DAGLITE_TEST_MARK", "from-the-client")  # set after the workers started
    recorder = RecordingPlugin(hooks=["before_node_execute", "after_node_execute"])
    settings = DagliteSettings(cache_mode="refresh")
    with session(backend=DaskBackend(address=process_cluster.scheduler_address), settings=settings, plugins=[recorder]):
        results = map_tasks(where, range(6))
    assert [r[3] for r in results] == list(range(6))
    assert os.getpid() not in {r[0] for r in results}
    assert {r[1] for r in results} == {"refresh"}
    assert {r[2] for r in results} == {"from-the-client"}
    assert sorted(c["metadata"].map_index for c in recorder.of("after_node_execute")) == list(range(6))
    assert len(recorder.of("before_node_execute")) == 6


def test_a_killed_worker_fails_only_its_item(process_cluster: Any) -> None:
    """The item that kills its worker fails with DaskWorkerLostError; its batch-mates run again and succeed."""
    recorder = RecordingPlugin(hooks=["on_node_error"])
    with session(backend=DaskBackend(address=process_cluster.scheduler_address), plugins=[recorder]):
        with pytest.raises(MapError) as info:
            map_tasks(die_on_three, range(8))
        assert map_tasks(inc, [1, 2]) == [2, 3]  # the nanny restarted the worker
    assert info.value.failed_indexes == [3], [str(e.error) for e in info.value.errors.values()]
    lost = info.value.errors[3].error
    assert isinstance(lost, DaskWorkerLostError)
    assert "item 3" in str(lost)
    assert "died" in str(lost)
    assert isinstance(lost.__cause__, distributed.scheduler.KilledWorker)
    assert [c["metadata"].map_index for c in recorder.of("on_node_error")] == [3]


def test_local_process_cluster_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    """backend="dask" starts worker processes (settings.workers of them) and stops them at session end."""
    monkeypatch.delenv("DAGLITE_DASK_PROCESSES", raising=False)
    with session(backend="dask", settings=DagliteSettings(max_workers=1)) as state:
        assert map_tasks(inc, range(4)) == [1, 2, 3, 4]
        backend = state.get_backend("dask")
        cluster = backend.cluster
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        pids = backend.client.run(os.getpid)
        assert len(pids) == 1
        assert os.getpid() not in pids.values()
    assert cluster.status.name == "closed"


def test_cache_and_datasets_from_worker_processes(
    process_cluster: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers read and write the session's shared-directory cache and dataset stores."""
    pytest.importorskip("daglite_diskcache")
    pytest.importorskip("daglite_datasets")
    from dask_tasks import cached_square, saved_square

    from daglite_core import load_dataset

    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path / "signing.key"))
    log = tmp_path / "log"
    log.mkdir()
    recorder = RecordingPlugin(hooks=["on_cache_hit", "after_dataset_save"])
    backend = DaskBackend(address=process_cluster.scheduler_address)
    with session(backend=backend, cache_store=tmp_path / "cache", dataset_store=tmp_path / "data", plugins=[recorder]):
        assert map_tasks(cached_square, range(4), [str(log)] * 4) == [0, 1, 4, 9]
        assert map_tasks(cached_square, range(4), [str(log)] * 4) == [0, 1, 4, 9]
        assert map_tasks(saved_square, [2, 3]) == [4, 9]
        assert load_dataset("squares/3.json") == 9
    assert len(list(log.iterdir())) == 4  # the second map was all cache hits
    assert sorted(c["metadata"].map_index for c in recorder.of("on_cache_hit")) == [0, 1, 2, 3]
    assert sorted(c["key"] for c in recorder.of("after_dataset_save")) == ["squares/2.json", "squares/3.json"]
    assert (tmp_path / "data" / "squares" / "2.json").read_text().strip() == "4"
