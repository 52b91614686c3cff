"""Stamped value files: a hit on a file the store wrote (or verified) skips hashing; anything else is verified."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daglite_core import CACHE_MISS, signing
from daglite_core.testing import after_a_ctime_tick
from daglite_diskcache import CacheEntryError, DiskCacheStore, _envelope

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="stamps are POSIX only")

MB = 2**20
KEY = "m.f:big"


def value_file(store: DiskCacheStore, key: str = KEY) -> Path:
    ((name,),) = store._cache._sql("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
    return store.directory / name


def stamp_in_row(store: DiskCacheStore, key: str = KEY) -> Any:
    ((value,),) = store._cache._sql("SELECT value FROM Cache WHERE key = ?", (key,)).fetchall()
    return value


class MacCount:
    """Counts the MAC states the envelope makes: a full verification makes one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = _envelope.new_mac

        def counting() -> Any:
            self.calls += 1
            return real()

        monkeypatch.setattr(_envelope, "new_mac", counting)


@pytest.fixture
def macs(monkeypatch: pytest.MonkeyPatch) -> MacCount:
    monkeypatch.delenv(signing.VERIFY_ENV, raising=False)
    return MacCount(monkeypatch)


@pytest.fixture
def store(cache_dir: Path) -> DiskCacheStore:
    store = DiskCacheStore(cache_dir)
    store.set(KEY, np.arange(2 * MB // 8, dtype=np.float64))
    return store


def test_a_written_value_file_is_private_and_stamped_in_its_row(store: DiskCacheStore) -> None:
    assert stat.S_IMODE(value_file(store).stat().st_mode) == 0o600
    stamp = stamp_in_row(store)
    assert type(stamp) is bytes and len(stamp) == signing.SIGNATURE_SIZE


def test_a_hit_on_a_stamped_file_reads_it_without_hashing(store: DiskCacheStore, macs: MacCount) -> None:
    np.testing.assert_array_equal(store.get(KEY), np.arange(2 * MB // 8, dtype=np.float64))
    assert macs.calls == 0


def test_a_file_modified_in_place_with_size_and_mtime_restored_is_verified_and_refused(
    store: DiskCacheStore, macs: MacCount
) -> None:
    path = value_file(store)
    before = path.stat()
    after_a_ctime_tick(path)
    with open(path, "r+b") as file:
        file.seek(before.st_size // 2)
        file.write(b"\xff")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(CacheEntryError, match="signature mismatch"):
        store.get(KEY)
    assert macs.calls == 1
    assert store.get(KEY) is CACHE_MISS


def test_a_stamped_entry_whose_file_was_swapped_is_verified_and_refused(store: DiskCacheStore, macs: MacCount) -> None:
    path = value_file(store)
    forged = bytearray(path.read_bytes())
    forged[-1] ^= 0xFF
    swap = path.with_name("swap")
    swap.write_bytes(bytes(forged))
    swap.chmod(0o600)
    os.replace(swap, path)  # another inode, our uid, private: only the stamp tells it apart
    with pytest.raises(CacheEntryError, match="signature mismatch"):
        store.get(KEY)
    assert macs.calls == 1


def test_an_entry_without_a_stamp_is_verified_then_stamped(store: DiskCacheStore, macs: MacCount) -> None:
    # What a crash before the row, an entry of an older version, or a lost stamp leaves.
    store._cache._sql("UPDATE Cache SET value = NULL WHERE key = ?", (KEY,))
    assert store.get(KEY)[3] == 3.0
    assert macs.calls == 1
    assert type(stamp_in_row(store)) is bytes
    assert store.get(KEY)[3] == 3.0
    assert macs.calls == 1  # the fresh stamp was used


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 32, b"not a stamp at all, but long enough", 12345, "text"])
def test_garbage_in_the_stamp_column_means_a_full_verification(
    store: DiskCacheStore, macs: MacCount, garbage: object
) -> None:
    store._cache._sql("UPDATE Cache SET value = ? WHERE key = ?", (garbage, KEY))
    assert store.get(KEY)[3] == 3.0
    assert macs.calls == 1


def test_a_copied_cache_is_verified_once_then_stamped(store: DiskCacheStore, tmp_path: Path, macs: MacCount) -> None:
    store.close()
    copy = tmp_path / "copy"
    shutil.copytree(store.directory, copy)
    copied = DiskCacheStore(copy)
    assert copied.get(KEY)[3] == 3.0
    assert macs.calls == 1
    assert copied.get(KEY)[3] == 3.0
    assert macs.calls == 1


def test_a_stamp_of_another_cache_key_is_not_trusted(store: DiskCacheStore, macs: MacCount) -> None:
    store.set("m.f:other", np.ones(2 * MB // 8))
    other = stamp_in_row(store, "m.f:other")
    store._cache._sql("UPDATE Cache SET value = ? WHERE key = ?", (other, KEY))
    macs.calls = 0  # the set signed
    assert store.get(KEY)[3] == 3.0
    assert macs.calls == 1


def test_verify_always_verifies_every_hit_and_stores_no_stamp(
    store: DiskCacheStore, macs: MacCount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(signing.VERIFY_ENV, "always")
    store._cache._sql("UPDATE Cache SET value = NULL WHERE key = ?", (KEY,))
    store.get(KEY)
    store.get(KEY)
    assert macs.calls == 2
    assert stamp_in_row(store) is None


def test_a_small_value_file_is_not_restamped(cache_dir: Path, macs: MacCount) -> None:
    store = DiskCacheStore(cache_dir)
    store.set(KEY, os.urandom(64 * 1024))  # a value file, under RESTAMP_MIN
    store._cache._sql("UPDATE Cache SET value = NULL WHERE key = ?", (KEY,))
    store.get(KEY)
    assert stamp_in_row(store) is None


def test_a_busy_database_skips_the_restamp_and_keeps_its_timeout(store: DiskCacheStore, macs: MacCount) -> None:
    store._cache._sql("UPDATE Cache SET value = NULL WHERE key = ?", (KEY,))
    other = sqlite3.connect(str(store.directory / "cache.db"), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        assert store.get(KEY)[3] == 3.0
        assert stamp_in_row(store) is None
    finally:
        other.rollback()
        other.close()
    ((timeout,),) = store._cache._sql("PRAGMA busy_timeout").fetchall()
    assert timeout == int(store.config.timeout * 1000)
    store.get(KEY)
    assert type(stamp_in_row(store)) is bytes


def test_the_check_command_path_verifies_stamped_files_in_full(store: DiskCacheStore, macs: MacCount) -> None:
    path = value_file(store)
    with open(path, "rb") as file:
        _envelope.verify_file(KEY, file, path.stat().st_size)
    assert macs.calls == 1
