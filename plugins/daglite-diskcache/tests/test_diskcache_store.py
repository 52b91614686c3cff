"""DiskCacheStore on its own: round trips, TTL, size limit, pickling, directories."""

from __future__ import annotations

import os
import pickle
import stat
import time
import warnings
from pathlib import Path

import pytest

from daglite_core import CACHE_MISS, CacheStore, DagliteSettings
from daglite_diskcache import DEFAULT_RELATIVE_DIR, DiskCacheStore, DiskCacheWarning, StoreConfig, plugin


def test_round_trip_and_miss(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    assert isinstance(store, CacheStore)
    assert store.get("m.f:x1") is CACHE_MISS
    for i, value in enumerate([None, 0, "text", {"a": [1, 2]}, b"x" * 100_000]):
        store.set(f"m.f:x{i}", value)
        assert store.get(f"m.f:x{i}") == value
    assert sorted(store.keys()) == [f"m.f:x{i}" for i in range(5)]


def test_ttl_expires_entries(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("k:1", "short", ttl=10)
    store.set("k:2", "forever")
    assert store.get("k:1") == "short"
    later = time.time() + 11
    monkeypatch.setattr(time, "time", lambda: later)
    assert store.get("k:1") is CACHE_MISS
    assert store.get("k:2") == "forever"


def test_size_limit_evicts_least_recently_stored(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir, size_limit=300_000)
    for i in range(20):
        store.set(f"k:{i}", os.urandom(50_000))
    kept = [i for i in range(20) if store.get(f"k:{i}") is not CACHE_MISS]
    assert 19 in kept
    assert 0 not in kept
    assert len(kept) < 20


def test_least_recently_used_policy_keeps_read_entries(cache_dir: Path) -> None:
    # diskcache culls up to 10 entries at a time once over the limit.
    store = DiskCacheStore(cache_dir, size_limit=2_000_000, eviction_policy="least-recently-used")
    store.set("k:hot", os.urandom(50_000))
    for i in range(80):
        assert store.get("k:hot") is not CACHE_MISS
        store.set(f"k:{i}", os.urandom(50_000))
    assert store.get("k:hot") is not CACHE_MISS
    assert store.get("k:0") is CACHE_MISS


def test_invalid_configuration_names_the_problem(cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="eviction_policy 'newest'"):
        DiskCacheStore(cache_dir, eviction_policy="newest")
    with pytest.raises(ValueError, match="size_limit must be positive"):
        DiskCacheStore(cache_dir, size_limit=0)


def test_pickles_as_configuration_and_opens_lazily(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir, size_limit=10**7)
    assert not cache_dir.exists()  # nothing opened or created yet
    store.set("k:1", 1)
    data = pickle.dumps(store)
    assert len(data) < 400
    copy = pickle.loads(data)
    assert copy == store
    assert copy.config == StoreConfig(str(cache_dir), 10**7)
    assert copy._cache is None
    assert copy.get("k:1") == 1


def test_default_location_is_resolved_when_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskCacheStore()
    expected = Path.cwd() / DEFAULT_RELATIVE_DIR
    assert store.directory == expected and store.directory.is_absolute()
    monkeypatch.chdir(tmp_path)
    store.set("k:1", 1)
    assert (expected / "cache.db").exists()


def test_relative_directory_becomes_absolute(tmp_path: Path) -> None:
    store = DiskCacheStore("rel/cache")
    assert store.directory == Path.cwd() / "rel" / "cache"


def test_directories_are_created_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = DiskCacheStore(tmp_path / "a" / "b" / "cache")
        store.set("k:1", 1)
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "cache"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_existing_world_writable_directory_warns_once(cache_dir: Path) -> None:
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o777)
    store = DiskCacheStore(cache_dir)
    with pytest.warns(DiskCacheWarning, match=rf"{cache_dir}.*writable by others.*chmod 700"):
        store.set("k:1", 1)
    store.close()
    assert DiskCacheStore(cache_dir).get("k:1") == 1  # no second warning (filterwarnings=error)


def test_provider_answers_paths_and_none_only(cache_dir: Path) -> None:
    settings = DagliteSettings(cache_store=None)
    default = plugin.provide_cache_store(spec=None, settings=settings)
    assert isinstance(default, DiskCacheStore)
    assert default.directory == Path.cwd() / ".daglite" / "cache"
    assert plugin.provide_cache_store(spec=str(cache_dir), settings=settings).directory == cache_dir
    assert plugin.provide_cache_store(spec=cache_dir, settings=settings).directory == cache_dir
    assert plugin.provide_cache_store(spec=os.fsencode(cache_dir), settings=settings).directory == cache_dir
    from_settings = plugin.provide_cache_store(spec=None, settings=DagliteSettings(cache_store=str(cache_dir)))
    assert from_settings.directory == cache_dir
    assert plugin.provide_cache_store(spec=42, settings=settings) is None
    assert plugin.provide_cache_store(spec={"url": "redis://"}, settings=settings) is None


def test_two_stores_on_one_directory_share_the_handle(cache_dir: Path) -> None:
    a = DiskCacheStore(cache_dir)
    b = DiskCacheStore(str(cache_dir))
    a.set("k:1", "v")
    assert b.get("k:1") == "v"
    assert a._cache is b._cache


def test_a_store_reads_on_after_another_store_closed_the_shared_handle(cache_dir: Path) -> None:
    """The hit path keeps this thread's connection: closed under it, it reconnects (no error, no recovery)."""
    a = DiskCacheStore(cache_dir)
    b = DiskCacheStore(cache_dir)
    a.set("k:1", "v")
    assert a.get("k:1") == b.get("k:1") == "v"  # the thread's reader is bound to the shared handle
    a.close()  # closes this thread's connection on the handle b still holds
    assert b.get("k:1") == "v"
    b.set("k:2", "w")
    assert b.get("k:2") == "w"
    assert not [p for p in cache_dir.parent.iterdir() if ".corrupt-" in p.name]


def test_each_thread_and_a_forked_child_read_on_their_own_connection(cache_dir: Path) -> None:
    import sqlite3
    import threading

    from daglite_diskcache import _store

    store = DiskCacheStore(cache_dir)
    store.set("k:1", "v")
    assert store.get("k:1") == "v"
    seen: list[object] = []

    def read() -> None:
        seen.append(store.get("k:1"))
        seen.append(_store._reader.execute.__self__)  # the connection this thread read on

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen[0] == "v"
    assert isinstance(seen[1], sqlite3.Connection) and seen[1] is not _store._reader.execute.__self__
    if not hasattr(os, "fork"):
        return
    parent = _store._reader.execute.__self__
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with other threads alive
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            ok = _store._reader.cache is None and store.get("k:1") == "v"
            ok = ok and _store._reader.execute.__self__ is not parent
            os.write(write_fd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 2)
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert answer == b"ok"
