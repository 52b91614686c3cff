"""Large values: no whole-value copies (signed while written, verified while read), format 1 still read."""

from __future__ import annotations

import os
import pickle
import tracemalloc
from pathlib import Path
from typing import Any

import diskcache
import numpy as np
import pytest

from daglite_core import CACHE_MISS
from daglite_core.signing import sign
from daglite_diskcache import CacheEntryError, DiskCacheStore

MB = 2**20


def peak_of(action: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def value_file(store: DiskCacheStore, key: str) -> Path:
    ((name,),) = store._cache._sql("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
    return store.directory / name


@pytest.mark.parametrize("verify", ["stamped", "always"])  # read as written (trusted by stamp) / verified in full
@pytest.mark.parametrize("kind", ["ndarray", "bytes", "dict of arrays"])
def test_large_value_round_trips_with_about_one_copy_in_memory(
    cache_dir: Path, kind: str, verify: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLITE_VERIFY", verify)
    rng = np.random.default_rng(0)
    value: Any = {
        "ndarray": rng.random(20 * MB // 8),
        "bytes": os.urandom(20 * MB),
        "dict of arrays": {f"a{i}": rng.random(MB // 8) for i in range(20)},
    }[kind]
    size = 20 * MB
    store = DiskCacheStore(cache_dir)
    store.get("warm:up")  # open the database outside the measurement
    _, write_peak = peak_of(lambda: store.set("m.f:big", value))
    loaded, read_peak = peak_of(lambda: store.get("m.f:big"))
    assert write_peak < 0.3 * size, f"set copied the value: peak {write_peak / MB:.1f} MiB"
    assert read_peak < 1.3 * size, f"get held {read_peak / size:.2f}x the value"
    if kind == "bytes":
        assert type(loaded) is bytes and loaded == value
    elif kind == "ndarray":
        np.testing.assert_array_equal(loaded, value)
        loaded[0] = -1.0  # a normal, writable array
    else:
        assert loaded.keys() == value.keys()
        for name in value:
            np.testing.assert_array_equal(loaded[name], value[name])


@pytest.mark.parametrize("where", ["pickle stream", "array buffer", "length field", "truncated"])
def test_tampered_large_entry_is_dropped_unread(cache_dir: Path, where: str) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:big", np.arange(MB, dtype=np.int64))
    path = value_file(store, "m.f:big")
    data = bytearray(path.read_bytes())
    header = 32 + len(b"daglite-diskcache/2\0m.f:big\0")
    if where == "pickle stream":
        data[header + 12 + 8 + 3] ^= 0xFF
    elif where == "array buffer":
        data[len(data) // 2] ^= 0xFF
    elif where == "length field":
        data[header + 4 : header + 12] = (2**60).to_bytes(8, "little")  # would allocate an exabyte
    else:
        del data[-100:]
    path.write_bytes(bytes(data))
    with pytest.raises(CacheEntryError, match="unreadable"):
        store.get("m.f:big")
    assert store.get("m.f:big") is CACHE_MISS


def test_format_1_entries_are_still_read(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.get("warm:up")
    raw = diskcache.Cache(str(cache_dir))
    for key, value in (("m.f:small", {"a": 1}), ("m.f:large", list(range(20_000)))):
        raw.set(key, sign(b"daglite-diskcache/1\0" + key.encode() + b"\0" + pickle.dumps(value, protocol=5)))
    raw.close()
    assert store.get("m.f:small") == {"a": 1}
    assert store.get("m.f:large") == list(range(20_000))


def test_entry_copied_under_another_key_is_rejected_for_large_values(cache_dir: Path) -> None:
    store = DiskCacheStore(cache_dir)
    store.set("m.f:a", np.ones(MB))
    store.set("m.f:b", np.zeros(MB))
    value_file(store, "m.f:b").write_bytes(value_file(store, "m.f:a").read_bytes())
    with pytest.raises(CacheEntryError, match="another cache key"):
        store.get("m.f:b")
