"""Quick measurement: a small cache hit through daglite vs a raw ``diskcache.Cache.get``.

Run: ``python plugins/daglite-diskcache/scripts/bench_hit.py``. Prints µs per
operation (best of interleaved rounds, so neighbours' noise mostly cancels) and
the ratio the diskcache issue targets (hit ≤ 2.5 × raw get), plus the key of an
8 MB numpy array (target ≤ 1 ms) when numpy is installed.
"""

from __future__ import annotations

import os
import tempfile
import timeit
from typing import Any

import diskcache

from daglite_core import CACHE_MISS, default_cache_hash, session, task
from daglite_core.signing import sign, verify
from daglite_diskcache import DiskCacheStore


def _best(fn: Any, number: int) -> float:
    return min(timeit.Timer(fn).repeat(1, number)) / number * 1e6


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="daglite-bench-")
    os.environ.setdefault("DAGLITE_SIGNING_KEY_FILE", os.path.join(tmp, "signing.key"))

    @task(cache=True)
    def add(x: int, y: int) -> int:
        return x + y

    raw = diskcache.Cache(os.path.join(tmp, "raw"))
    raw.set("k", 3)
    store = DiskCacheStore(os.path.join(tmp, "store"))
    key = default_cache_hash(add.func, {"x": 1, "y": 2})
    store.set(key, 3)
    blob = sign(b"x" * 64)

    class MemoryStore:
        """The floor: the core's hit path with a dict for a store."""

        def __init__(self) -> None:
            self.data: dict[str, Any] = {}

        def get(self, key: str) -> Any:
            return self.data.get(key, CACHE_MISS)

        def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
            self.data[key] = value

    @task(cache=True)
    def add_mem(x: int, y: int) -> int:
        return x + y

    memory = MemoryStore()
    cases = {
        "raw diskcache get": lambda: raw.get("k"),
        "DiskCacheStore.get": lambda: store.get(key),
        "default_cache_hash(add, 1, 2)": lambda: default_cache_hash(add.func, {"x": 1, "y": 2}),
        "signing.verify (64 B)": lambda: verify(blob),
        "task hit add(1, 2)": lambda: add(1, 2),
    }
    with session(cache_store=memory):
        add_mem(1, 2)
    def memory_hit() -> int:
        return add_mem(1, 2)

    best = dict.fromkeys([*cases, "task hit, in-memory store (core floor)"], float("inf"))
    with session(cache_store=store):
        add(1, 2)
        for _ in range(15):
            for name, fn in cases.items():
                best[name] = min(best[name], _best(fn, 2000))
            with session(cache_store=memory):
                name = "task hit, in-memory store (core floor)"
                best[name] = min(best[name], _best(memory_hit, 2000))
    for name, us in best.items():
        print(f"{name:34s} {us:8.2f} µs")
    print(f"{'hit / raw get':34s} {best['task hit add(1, 2)'] / best['raw diskcache get']:8.2f} ×")
    try:
        import numpy as np
    except ImportError:
        return
    array = np.random.default_rng(0).random(1_000_000)
    ms = min(timeit.Timer(lambda: default_cache_hash(add.func, {"x": array, "y": 2})).repeat(15, 20)) / 20 * 1e3
    print(f"{'key of an 8 MB float64 array':34s} {ms:8.3f} ms")


if __name__ == "__main__":
    main()
