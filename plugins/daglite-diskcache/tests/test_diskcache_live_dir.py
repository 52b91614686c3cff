"""The cache directory removed under a live process; store-wide problems reported once."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import diskcache
import pytest
from daglite_core import CacheWarning, session, task

from daglite_diskcache import DiskCacheStore, DiskCacheWarning, _store


def make_task() -> tuple[Any, list[int]]:
    calls: list[int] = []

    @task(cache=True)
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    return double, calls


def rows(directory: Path) -> list[str]:
    con = sqlite3.connect(directory / "cache.db")
    try:
        return [key for (key,) in con.execute("SELECT key FROM Cache ORDER BY key")]
    finally:
        con.close()


def test_removed_directory_is_recreated_private_and_writes_land_there(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", 1)
    assert store.get("m.f:1") == 1
    shutil.rmtree(cache_dir)
    with pytest.warns(DiskCacheWarning, match=r"cache directory .* was removed while in use; recreated it empty") as record:
        store.set("m.f:2", 2)
        store.set("m.f:3", 3)
    assert len(record) == 1 and str(cache_dir) in str(record[0].message)
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert rows(cache_dir) == ["m.f:2", "m.f:3"]  # in the new database, not the deleted one
    assert store.get("m.f:2") == 2
    assert store.get("m.f:1") is not None


def test_task_cache_works_again_after_the_directory_is_removed(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "_RECHECK", 0.0)  # check on every read (default: once a second)
    double, calls = make_task()
    with session(cache_store=cache_dir):
        assert double(1) == 2
        assert double(1) == 2
        shutil.rmtree(cache_dir)
        with pytest.warns(CacheWarning) as record:
            assert double(1) == 2  # the old entry is gone with its directory: recomputed
            assert double(1) == 2  # stored in the recreated directory: a hit
        assert len(record) == 1 and "removed while in use" in str(record[0].message)
    assert calls == [1, 1]
    assert len(rows(cache_dir)) == 1


def test_threads_started_after_the_removal_cache_again(cache_dir: Path) -> None:
    double, calls = make_task()
    with session(cache_store=cache_dir):
        assert double(1) == 2
    shutil.rmtree(cache_dir)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(x: int) -> None:
        try:
            with session(cache_store=cache_dir):
                results.append((double(x), double(x)))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with pytest.warns(DiskCacheWarning, match="removed while in use") as record:
        for x in (5, 6):
            thread = threading.Thread(target=worker, args=(x,))
            thread.start()
            thread.join()
    assert not errors
    assert [w for w in record if issubclass(w.category, CacheWarning)] == [record[0]]  # nothing but the one notice
    assert results == [(10, 10), (12, 12)]
    assert calls == [1, 5, 6]  # each thread's second call was a hit
    assert len(rows(cache_dir)) == 2


def test_every_store_on_the_directory_follows_without_a_second_warning(cache_dir: Path) -> None:
    first, second = DiskCacheStore(cache_dir), DiskCacheStore(cache_dir)
    first.set("m.f:1", 1)
    assert second.get("m.f:1") == 1
    shutil.rmtree(cache_dir)
    with pytest.warns(DiskCacheWarning) as record:
        first.set("m.f:2", 2)
        second.set("m.f:3", 3)
    assert len(record) == 1
    assert first.get("m.f:3") == 3 and second.get("m.f:2") == 2


def test_read_only_cache_is_reported_once_and_reads_still_work(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    double, calls = make_task()
    with session(cache_store=cache_dir):
        assert double(0) == 0

    def readonly(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(diskcache.Cache, "set", readonly)
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning) as record:
            for x in range(1, 6):
                assert double(x) == 2 * x
            assert double(0) == 0  # a hit: reading still works
    assert len(record) == 1
    message = str(record[0].message)
    assert "Task 'double'" in message and f"the cache in {cache_dir} is read-only" in message
    assert "reported once" in message
    assert calls == [0, 1, 2, 3, 4, 5]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_directory_for_real_is_reported_once(cache_dir: Path) -> None:
    double, _ = make_task()
    with session(cache_store=cache_dir):
        double(0)
    from daglite_diskcache import _handles

    _handles.close_all()
    for path in [*cache_dir.rglob("*"), cache_dir]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        with session(cache_store=cache_dir):
            with pytest.warns(CacheWarning) as record:
                for x in range(1, 4):
                    assert double(x) == 2 * x
        assert len(record) == 1
    finally:
        for path in [cache_dir, *cache_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_cache_that_cannot_be_opened_is_reported_once(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-dir"
    bogus.write_text("a file where the cache should be")
    double, calls = make_task()
    with session(cache_store=bogus):
        with pytest.warns(CacheWarning) as record:
            for x in range(4):
                assert double(x) == 2 * x
    assert calls == [0, 1, 2, 3]
    assert len(record) == 1 and "cannot open the cache" in str(record[0].message)
