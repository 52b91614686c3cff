"""Signed entries: planted or tampered pickles are never loaded."""

from __future__ import annotations

import argparse
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import diskcache
import pytest

from daglite_core import CACHE_MISS, CacheWarning, default_cache_hash, session, signing, task
from daglite_core.signing import sign
from daglite_diskcache import CacheEntryError, DiskCacheStore, plugin

MARKER_ENV = "DAGLITE_TEST_MARKER"


def _touch_marker() -> None:
    Path(os.environ[MARKER_ENV]).write_text("pwned")


class Evil:
    """Unpickling this calls _touch_marker: the payload a planted entry would run."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_touch_marker, ())


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(path))
    return path


def plant(directory: Path, key: Any, value: Any) -> None:
    """Write straight into the diskcache database, as an attacker with write access could."""
    raw = diskcache.Cache(str(directory))
    raw.set(key, value)
    raw.close()


@pytest.mark.parametrize("form", ["diskcache pickle", "raw pickle bytes", "large raw pickle", "unsigned in our format"])
def test_planted_payload_is_never_unpickled(cache_dir: Path, marker: Path, form: str) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("other:1", "keep")
    payload = pickle.dumps(Evil())
    value = {
        "diskcache pickle": Evil(),
        "raw pickle bytes": payload,
        "large raw pickle": payload + b"\x00" * 100_000,
        "unsigned in our format": b"\x00" * 32 + b"daglite-diskcache/1\0m.f:1\0" + payload,
    }[form]
    plant(cache_dir, "m.f:1", value)
    with pytest.raises(CacheEntryError, match=r"cache entry m\.f:1 .* unreadable") as info:
        store.get("m.f:1")
    assert info.value.key == "m.f:1"
    assert not marker.exists()
    assert store.get("m.f:1") is CACHE_MISS  # removed
    assert store.get("other:1") == "keep"


def test_planted_entry_under_a_task_key_runs_nothing_and_recomputes(cache_dir: Path, marker: Path) -> None:
    calls: list[int] = []

    @task(cache=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    plant(cache_dir, default_cache_hash(square.func, {"x": 4}), Evil())
    with session(cache_store=cache_dir):
        with pytest.warns(CacheWarning, match=r"Task 'square': cache entry .*square:\w+ is unreadable") as record:
            assert square(4) == 16
        assert len(record) == 1
        assert square(4) == 16
    assert calls == [4]
    assert not marker.exists()


def test_entry_replayed_under_another_key_is_rejected(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:good", "secret-for-good")
    raw = diskcache.Cache(str(cache_dir))
    raw.set("m.f:other", raw.get("m.f:good"))
    raw.close()
    with pytest.raises(CacheEntryError, match="another cache key"):
        store.get("m.f:other")
    assert store.get("m.f:good") == "secret-for-good"


def test_entry_signed_with_another_key_is_rejected(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", 1)
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path / "keys" / "other.key"))
    signing.reset()  # the key is read once per process
    with pytest.raises(CacheEntryError, match="signature mismatch"):
        store.get("m.f:1")


def test_stored_value_is_signed_bytes_not_a_diskcache_pickle(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", {"a": 1})
    rows = store._cache._sql("SELECT mode, value FROM Cache").fetchall()
    assert rows[0][0] == 1  # diskcache MODE_RAW: bytes, which diskcache never unpickles
    stream = pickle.dumps({"a": 1}, protocol=5)
    body = b"daglite-diskcache/2\0m.f:1\0" + struct.pack("<IQ", 0, len(stream)) + stream
    assert bytes(rows[0][1]) == sign(body)


def test_cli_never_unpickles_planted_keys_or_values(cache_dir: Path, marker: Path, capsys: pytest.CaptureFixture[str]) -> None:
    DiskCacheStore(cache_dir).set("m.f:1", 1)
    _handles_close()
    plant(cache_dir, Evil(), 1)  # a pickled *key*
    plant(cache_dir, "m.f:2", Evil())
    parser = argparse.ArgumentParser(prog="daglite")
    plugin.provide_cli_commands(subparsers=parser.add_subparsers())
    for argv in (["cache", "stats"], ["cache", "check"], ["cache", "check", "--fix"], ["cache", "clear"]):
        args = parser.parse_args([*argv, "--dir", str(cache_dir)])
        args.handler(args)
    assert not marker.exists()
    out = capsys.readouterr().out
    assert "pickled key" in out and "m.f:2" in out


def _handles_close() -> None:
    from daglite_diskcache import _handles

    _handles.close_all()


# -- the small inline entry (the fast path of ``load_blob``) -----------------------


def _inline(store: DiskCacheStore, key: str) -> bytearray:
    ((value,),) = store._cache._sql("SELECT value FROM Cache WHERE key = ?", (key,)).fetchall()
    return bytearray(value)


def _replace(store: DiskCacheStore, key: str, value: bytes) -> None:
    store._cache._sql("UPDATE Cache SET value = ? WHERE key = ?", (value, key))


def _small_entry(key: str, stream: bytes, tag: bytes | None = None) -> bytes:
    """An inline entry in format 2 with one pickle and no buffer: the fast path's shape."""
    body = b"daglite-diskcache/2\0" + key.encode() + b"\0" + struct.pack("<IQ", 0, len(stream)) + stream
    return sign(body) if tag is None else tag + body


@pytest.mark.parametrize("where", ["tag", "pickle", "key in header", "length field", "buffer count"])
def test_tampered_small_entry_is_refused_and_dropped(cache_dir: Path, where: str) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", {"secret": 1})
    data = _inline(store, "m.f:1")
    header = 32 + len(b"daglite-diskcache/2\0m.f:1\0")
    if where == "tag":
        data[5] ^= 0x01
    elif where == "pickle":
        data[-3] ^= 0x01
    elif where == "key in header":
        data[header - 2] = ord("2")  # now claims to be sealed for m.f:2
    elif where == "length field":
        data[header + 4] -= 1
    else:
        data[header] = 1
    _replace(store, "m.f:1", bytes(data))
    with pytest.raises(CacheEntryError, match=r"cache entry m\.f:1 .* unreadable .*removed"):
        store.get("m.f:1")
    assert store.get("m.f:1") is CACHE_MISS


def test_small_entry_with_a_planted_pickle_and_a_bad_tag_runs_nothing(cache_dir: Path, marker: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", 1)
    for tag in (b"\x00" * 32, bytes(_inline(store, "m.f:1")[:32])):  # zeros; the real entry's tag
        _replace(store, "m.f:1", _small_entry("m.f:1", pickle.dumps(Evil(), protocol=5), tag))
        with pytest.raises(CacheEntryError, match="signature mismatch"):
            store.get("m.f:1")
        store.set("m.f:1", 1)
    assert not marker.exists()
    assert store.get("m.f:1") == 1


def test_small_entry_copied_under_another_key_is_refused(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:good", {"for": "good"})
    good = bytes(_inline(store, "m.f:good"))
    store.set("m.f:other", {"for": "other"})
    _replace(store, "m.f:other", good)  # the very bytes, under another key
    with pytest.raises(CacheEntryError, match="another cache key"):
        store.get("m.f:other")
    # The same tag with the header rewritten to name the other key: the tag covers the key.
    store.set("m.f:other", {"for": "other"})
    stream = good[32 + len(b"daglite-diskcache/2\0m.f:good\0") + 12 :]
    _replace(store, "m.f:other", _small_entry("m.f:other", stream, good[:32]))
    with pytest.raises(CacheEntryError, match="signature mismatch"):
        store.get("m.f:other")
    assert store.get("m.f:good") == {"for": "good"}


def test_small_pickled_entry_is_read_without_the_general_parser(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daglite_diskcache import _envelope

    store = DiskCacheStore(cache_dir)
    store.set("m.f:1", {"a": [1, 2.5, "x"]})
    store.set("m.f:raw", b"raw bytes value")

    def general(key: str, blob: bytes) -> Any:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(_envelope, "_open_blob", general)
    assert store.get("m.f:1") == {"a": [1, 2.5, "x"]}
    with pytest.raises(CacheEntryError, match="general path"):  # a bytes value: not the fast path's shape
        store.get("m.f:raw")
