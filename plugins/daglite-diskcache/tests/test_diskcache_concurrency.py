"""Many threads and several processes on one directory: no errors, no lost writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from daglite_core import map_tasks, session, task
from daglite_diskcache import DiskCacheStore


def test_many_threads_share_one_store(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(150):
                store.set(f"t.f:{t}-{i}", (t, i))
                assert store.get(f"t.f:{t}-{i}") == (t, i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fresh = DiskCacheStore(cache_dir)
    assert len(list(fresh.keys())) == 8 * 150
    assert all(fresh.get(f"t.f:{t}-{i}") == (t, i) for t in range(8) for i in range(150))


def test_thread_backend_map_with_cache(cache_dir: Path) -> None:
    calls: list[int] = []

    @task(cache=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    with session(cache_store=cache_dir, backend="thread"):
        assert map_tasks(square, range(200)) == [x * x for x in range(200)]
        assert map_tasks(square, range(200)) == [x * x for x in range(200)]
    assert sorted(calls) == list(range(200))


WORKER = """
import sys
from daglite_core import register_plugins, session
import daglite_diskcache.plugin
import conc_tasks

register_plugins(daglite_diskcache.plugin)  # autoload is off in the tests' environment

worker, count = int(sys.argv[2]), int(sys.argv[3])
with session(cache_store=sys.argv[1]):
    for i in range(count):
        assert conc_tasks.tagged(worker, i) == f"{worker}-{i}"
        assert conc_tasks.shared(i) == i * 2
print("ok")
"""

TASKS = """
from daglite_core import task

@task(cache=True)
def tagged(worker, i):
    return f"{worker}-{i}"

@task(cache=True)
def shared(i):
    return i * 2
"""


def test_several_processes_on_one_directory(cache_dir: Path, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    (tmp_path / "conc_tasks.py").write_text(textwrap.dedent(TASKS))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(cache_dir), str(w), "300"],
            env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(4)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        assert "Warning" not in err
    sys.path.insert(0, str(tmp_path))
    try:
        import conc_tasks  # type: ignore[import-not-found]

        store = DiskCacheStore(cache_dir)
        keys = set(store.keys())
        assert len(keys) == 4 * 300 + 300
        from daglite_core import default_cache_hash

        for w in range(4):
            for i in range(300):
                key = default_cache_hash(conc_tasks.tagged.func, {"worker": w, "i": i})
                assert store.get(key) == f"{w}-{i}"
        assert store._cache.check() == []
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("conc_tasks", None)


def process_square(x: int) -> Any:
    return x * x


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_store_reaches_process_workers(cache_dir: Path, monkeypatch: pytest.MonkeyPatch, start_method: str) -> None:
    """The store travels pickled (its configuration) and opens lazily in each worker."""
    monkeypatch.setenv("DAGLITE_MP_START_METHOD", start_method)
    cached = task(cache=True)(process_square)
    with session(cache_store=DiskCacheStore(cache_dir), backend="process"):
        first = map_tasks(cached, range(20))
    assert first == [x * x for x in range(20)]
    assert len(list(DiskCacheStore(cache_dir).keys())) == 20
