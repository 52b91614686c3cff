"""Faults: corrupt entries and databases, crashes, a full disk — a miss and one warning, never a crash."""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import diskcache
import pytest

from daglite_core import CACHE_MISS, CacheWarning, default_cache_hash, session, signing, task
from daglite_diskcache import CacheEntryError, CacheWriteError, DiskCacheStore, _handles
from daglite_diskcache._envelope import PartsReader

BIG = 100_000  # above diskcache's 32 KiB threshold: stored as a .val file


def make_task(size: int = 10) -> tuple[Any, list[int]]:
    calls: list[int] = []

    @task(cache=True)
    def payload(x: int) -> bytes:
        calls.append(x)
        return bytes([x % 256]) * size

    return payload, calls


def val_file(store: DiskCacheStore, key: str) -> Path:
    rows = store._cache._sql("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
    return store.directory / rows[0][0]


def corrupt(kind: str, store: DiskCacheStore, key: str) -> None:
    if kind == "truncated file":
        path = val_file(store, key)
        path.write_bytes(path.read_bytes()[: BIG // 2])
    elif kind == "garbage file":
        val_file(store, key).write_bytes(os.urandom(BIG))
    elif kind == "deleted file":
        val_file(store, key).unlink()
    elif kind == "empty file":
        val_file(store, key).write_bytes(b"")
    elif kind == "garbage inline":
        store._cache._sql("UPDATE Cache SET value = ? WHERE key = ?", (os.urandom(200), key))
    elif kind == "truncated inline":
        store._cache._sql("UPDATE Cache SET value = substr(value, 1, 40) WHERE key = ?", (key,))


@pytest.mark.parametrize(
    ("kind", "size"),
    [
        ("truncated file", BIG),
        ("garbage file", BIG),
        ("deleted file", BIG),
        ("empty file", BIG),
        ("garbage inline", 10),
        ("truncated inline", 10),
    ],
)
def test_corrupt_entry_is_a_miss_with_one_warning_and_recomputes(cache_dir: Path, kind: str, size: int) -> None:
    payload, calls = make_task(size)
    key = default_cache_hash(payload.func, {"x": 7})
    with session(cache_store=cache_dir):
        expected = payload(7)
        store = DiskCacheStore(cache_dir)
        store.get(key)  # open this thread's handle
        corrupt(kind, store, key)
        with pytest.warns(CacheWarning) as record:
            assert payload(7) == expected
        assert len(record) == 1
        message = str(record[0].message)
        assert "Task 'payload'" in message and key in message and "unreadable" in message
        assert payload(7) == expected  # stored again: a hit
    assert calls == [7, 7]


MODULE = """
class Gone:
    def __init__(self, v):
        self.v = v
"""


def test_class_that_no_longer_imports_is_a_miss(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "gone_mod.py").write_text(textwrap.dedent(MODULE))
    importlib.invalidate_caches()
    import gone_mod  # type: ignore[import-not-found]

    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", gone_mod.Gone(1))
    (tmp_path / "gone_mod.py").unlink()
    monkeypatch.delitem(sys.modules, "gone_mod")
    importlib.invalidate_caches()
    with pytest.raises(CacheEntryError, match=r"m\.f:1 .*(ModuleNotFoundError|No module named 'gone_mod')") as info:
        store.get("m.f:1")
    assert isinstance(info.value.__cause__, ImportError)
    assert store.get("m.f:1") is CACHE_MISS


def _zero_database(directory: Path) -> None:
    _handles.close_all()
    db = directory / "cache.db"
    db.write_bytes(b"\x00" * db.stat().st_size)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def test_unreadable_database_is_moved_aside_and_the_task_recomputes(cache_dir: Path) -> None:
    payload, calls = make_task()
    with session(cache_store=cache_dir):
        expected = payload(1)
    _zero_database(cache_dir)
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning) as record:
            assert payload(1) == expected
        assert len(record) == 1
        message = str(record[0].message)
        assert "Task 'payload'" in message and "moved aside" in message and str(cache_dir) in message
        assert payload(1) == expected
    assert calls == [1, 1]
    aside = [p for p in cache_dir.parent.iterdir() if p.name.startswith("cache.corrupt-")]
    assert len(aside) == 1 and (aside[0] / "cache.db").exists()


def test_database_corrupted_while_open_is_recovered(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", 1)
    assert store.get("m.f:1") == 1
    db = cache_dir / "cache.db"
    store._cache.close()
    db.write_bytes(os.urandom(db.stat().st_size))
    Path(f"{db}-wal").unlink(missing_ok=True)
    Path(f"{db}-shm").unlink(missing_ok=True)
    with pytest.raises(CacheEntryError, match="moved aside"):
        store.get("m.f:1")
    assert store.get("m.f:1") is CACHE_MISS
    store.set("m.f:1", 2)
    assert store.get("m.f:1") == 2


def test_first_write_after_a_corrupt_database_warns_and_stores(cache_dir: Path) -> None:
    DiskCacheStore(cache_dir).set("m.f:1", 1)
    _zero_database(cache_dir)
    store = DiskCacheStore(cache_dir)
    from daglite_diskcache import DiskCacheWarning

    with pytest.warns(DiskCacheWarning, match="moved aside"):
        store.set("m.f:1", 3)
    assert store.get("m.f:1") == 3


def test_disk_full_on_write_returns_the_result_with_a_warning(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Any, fd: int) -> int:
        os.write(fd, b"partial")  # a partial file, as a real ENOSPC leaves
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PartsReader, "write_into", full)  # how SafeDisk writes a large value
    payload, calls = make_task(BIG)
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning, match=r"Task 'payload': result not cached .*No space left on device") as record:
            assert payload(3) == bytes([3]) * BIG
        assert len(record) == 1
    assert [p for p in cache_dir.rglob("*.val")] == []  # no orphan partial file
    monkeypatch.undo()


def test_database_full_on_write_raises_cache_write_error(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:0", 0)

    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(diskcache.Cache, "set", full)
    with pytest.raises(CacheWriteError, match=rf"could not write m\.f:1: the cache in {cache_dir} is full .*disk is full") as info:
        store.set("m.f:1", 1)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    store.set("m.f:2", 2)  # reported once: further writes are skipped without an error
    assert store.get("m.f:0") == 0


def test_unpicklable_result_is_returned_and_not_cached(cache_dir: Path) -> None:
    calls: list[int] = []

    @task(cache=True)
    def make_gen(x: int) -> Any:
        calls.append(x)
        return (i for i in range(x))

    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning, match=r"Task 'make_gen': result not cached.*cannot be pickled"):
            assert list(make_gen(3)) == [0, 1, 2]
    assert list(DiskCacheStore(cache_dir).keys()) == []


def test_unhashable_argument_warns_naming_the_task_and_runs_uncached(cache_dir: Path) -> None:
    import threading

    calls: list[Any] = []

    @task(cache=True)
    def use_lock(lock: Any) -> int:
        calls.append(lock)
        return 1

    lock = threading.Lock()
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning, match=r"Task 'use_lock': arguments cannot be hashed.*argument 'lock'") as record:
            assert use_lock(lock) == 1
        assert len(record) == 1
    assert len(calls) == 1


WRITER = """
import sys
from daglite_diskcache import DiskCacheStore
store = DiskCacheStore(sys.argv[1])
i = 0
while True:
    value = (b"v%d" % i) * (10000 if i % 7 == 0 else 1)  # every 7th in a .val file
    store.set(f"w.f:{i}", value)
    print(i, flush=True)
    i += 1
"""


def test_writer_killed_with_sigkill_loses_no_acknowledged_entry(cache_dir: Path, subprocess_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(cache_dir)], env=subprocess_env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked = []
    for line in proc.stdout:
        acked.append(int(line))
        if len(acked) >= 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = DiskCacheStore(cache_dir)
    for i in acked:
        assert store.get(f"w.f:{i}") == (b"v%d" % i) * (10000 if i % 7 == 0 else 1)
    store.close()
    # An orphan .val file the kill may have left is removed by `check --fix`.
    import argparse

    from daglite_diskcache import plugin

    parser = argparse.ArgumentParser()
    plugin.provide_cli_commands(subparsers=parser.add_subparsers())
    for argv, expected in ((["--fix"], 0), ([], 0)):
        args = parser.parse_args(["cache", "check", "--dir", str(cache_dir), *argv])
        assert args.handler(args) == expected


def test_cache_path_that_cannot_be_a_directory_never_fails_the_task(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-dir"
    bogus.write_text("a file where the cache should be")
    payload, calls = make_task()
    with session(cache_store=bogus):
        with pytest.warns(CacheWarning) as record:
            assert payload(2) == bytes([2]) * 10
    assert calls == [2]
    assert all(str(bogus) in str(w.message) for w in record)
    assert any("cannot open the cache" in str(w.message) for w in record)


def test_signing_key_being_created_by_another_process_is_waited_for(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    key_file = tmp_path / "keys" / "racing.key"
    key_file.write_bytes(b"")  # another process has created it and not written yet
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(key_file))
    signing.reset()
    key_file.chmod(0o600)
    writer = threading.Timer(0.05, lambda: key_file.write_bytes(os.urandom(32)))
    writer.start()
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", 1)
    writer.join()
    assert store.get("m.f:1") == 1


def test_signing_key_file_too_short_is_reported_once(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daglite_diskcache import DiskCacheWarning

    short = tmp_path / "keys" / "short.key"
    short.write_bytes(b"tiny")
    os.utime(short, (1, 1))  # not being written right now: no wait
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(short))
    signing.reset()  # the key is read once per process
    payload, calls = make_task()
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning) as record:
            for _ in range(5):
                assert payload(1) == bytes([1]) * 10
    assert calls == [1] * 5
    assert len(record) == 1
    message = str(record[0].message)
    assert record[0].category is DiskCacheWarning
    assert str(short) in message and "holds 4 bytes; at least 16 are needed" in message and "Delete it" in message
    assert str(cache_dir) in message and "is off" in message


def test_value_file_replaced_by_a_concurrent_writer_is_not_an_error(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", b"old" * BIG)
    ((rowid, filename),) = store._cache._sql("SELECT rowid, filename FROM Cache").fetchall()
    store.set("m.f:1", b"new" * BIG)  # another writer's replacement removes the old file
    assert store._open_file(store._cache, "m.f:1", rowid, filename) is None
    assert store.get("m.f:1") == b"new" * BIG


def test_transient_read_error_reports_without_dropping_the_entry(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daglite_diskcache import _files

    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", b"v" * BIG)
    real_open = os.open

    def no_files(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith(".val"):
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(_files.os, "open", no_files)
    with pytest.raises(CacheEntryError, match="could not be read .*Too many open files"):
        store.get("m.f:1")
    monkeypatch.undo()
    assert store.get("m.f:1") == b"v" * BIG
