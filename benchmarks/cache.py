"""Cache hits and cache keys: the core with daglite-diskcache against raw diskcache,
joblib.Memory and daglite 0.9.

Stores live in fresh directories under the run's scratch directory (diskcache
defaults: sqlite WAL; values of 32 KiB or more in files). The ndarray is
``np.random.random(1_000_000)`` (8 MB of float64); "1 MB" is 1 MiB of random bytes.
"""

from __future__ import annotations

import os
from typing import Any

import peers
import workloads
from _harness import Case, Group, in_context, per_call
from env import Env

_SMALL = {"x": 1, "y": 2}


def build(env: Env) -> list[Group]:
    """The ``cache`` group (hits) and the ``keys`` group (hashing)."""
    return [
        Group("cache", _hits(env), env.rounds_slow + (4 if not env.smoke else 0), env.target_seconds),
        Group("keys", _keys(env), env.rounds_slow + (4 if not env.smoke else 0), env.target_seconds),
    ]


class _NullStore:
    """A cache store whose every ``get`` hits at once: the lifecycle's own cost of a hit."""

    def get(self, key: str) -> Any:
        return 3

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Nothing to store."""


def _hits(env: Env) -> list[Case]:
    from daglite_core import session, task

    null_hit = task(cache=True)(workloads.cached_add)
    null_ctx = in_context(session(cache_store=_NullStore()), env.stack)
    cases: list[Case] = [
        Case("cache.null_hit", "core: `@task(cache=True)` hit on a store whose `get` returns at once",
             per_call(lambda: null_hit(1, 2), null_ctx), profile=lambda: null_ctx.run(null_hit, 1, 2)),
    ]
    dc = peers.load("diskcache")
    if dc is None:
        cases.append(Case("cache.diskcache_get", "raw diskcache get hit, small int", skip="skipped: diskcache not installed"))
    else:
        raw = dc.Cache(str(env.tmp / "raw-diskcache"))
        env.stack.callback(raw.close)
        raw.set("key", 3)
        cases.append(Case("cache.diskcache_get", "raw diskcache get hit, small int", per_call(lambda: raw.get("key"))))

    label = "core: `@task(cache=True)` hit, `add(1, 2)` (daglite-diskcache)"
    reason = peers.skip_reason("daglite-diskcache", "daglite_diskcache")
    if reason is not None:
        cases.append(Case("cache.core_hit", label, skip=reason))
    else:
        cached = task(cache=True)(workloads.cached_add)
        ctx = in_context(session(cache_store=str(env.tmp / "core-cache")), env.stack)
        ctx.run(cached, 1, 2)  # the miss that fills the entry
        cases.append(Case("cache.core_hit", label, per_call(lambda: cached(1, 2), ctx),
                          profile=lambda: ctx.run(cached, 1, 2)))
        # The same hit without the lifecycle: the store's own get of the entry's key.
        from daglite_core import active_session, default_cache_hash

        store = ctx.run(lambda: active_session().cache_store(None, "cached_add"))
        key = default_cache_hash(workloads.cached_add, _SMALL)
        cases.append(Case("cache.store_get", "daglite-diskcache store `get` of that entry (no lifecycle)",
                          per_call(lambda: store.get(key)), profile=lambda: store.get(key)))

        def key_then_get() -> Any:
            return store.get(default_cache_hash(workloads.cached_add, {"x": 1, "y": 2}))

        cases.append(Case("cache.key_get", "key + store `get` (the hit without the lifecycle)", per_call(key_then_get)))

    joblib = peers.load("joblib")
    label = "joblib.Memory hit, `add(1, 2)`"
    if joblib is None:
        cases.append(Case("cache.joblib_hit", label, skip="skipped: joblib not installed"))
    else:
        memory = joblib.Memory(str(env.tmp / "joblib"), verbose=0)
        cached_joblib = memory.cache(workloads.add)
        cached_joblib(1, 2)
        cases.append(Case("cache.joblib_hit", label, per_call(lambda: cached_joblib(1, 2))))

    label = "daglite 0.9: `@task(cache=True)` hit, `add(1, 2)`"
    reason = peers.skip_reason("daglite")
    if reason is not None:
        cases.append(Case("cache.old_hit", label, skip=reason))
    else:
        old = peers.DagliteOld()
        cached_old = old.daglite.task(_old_cached_add, cache=True)
        ctx_old = in_context(
            old.daglite.session(settings=old.Settings(cache_store=str(env.tmp / "old-cache"))), env.stack
        )
        ctx_old.run(cached_old, 1, 2)
        cases.append(Case("cache.old_hit", label, per_call(lambda: cached_old(1, 2), ctx_old)))
    return cases


def _old_cached_add(x: int, y: int) -> int:
    return x + y


def _keys(env: Env) -> list[Case]:
    from daglite_core import default_cache_hash

    func = workloads.add
    one_mb = os.urandom(1 << 20)
    cases = [
        Case("keys.core_small", "core `default_cache_hash`, small args", per_call(lambda: default_cache_hash(func, _SMALL))),
        Case("keys.core_1mb", "core `default_cache_hash`, 1 MB bytes", per_call(lambda: default_cache_hash(func, {"x": one_mb}))),
    ]
    np = peers.load("numpy")
    label = "core `default_cache_hash`, 8 MB ndarray"
    if np is None:
        cases.append(Case("keys.core_ndarray", label, skip="skipped: numpy not installed"))
        return cases
    array = np.random.default_rng(0).random(1_000_000)
    inputs = {"x": array}
    cases.append(Case("keys.core_ndarray", label, per_call(lambda: default_cache_hash(func, inputs)),
                      profile=lambda: default_cache_hash(func, inputs)))
    xxhash = peers.load("xxhash")
    if xxhash is None:
        cases.append(Case("keys.xxh3_ndarray", "floor: xxh3_128 over the ndarray buffer", skip="skipped: xxhash not installed"))
    else:
        view = memoryview(array).cast("B")
        cases.append(Case("keys.xxh3_ndarray", "floor: xxh3_128 over the ndarray buffer", per_call(lambda: xxhash.xxh3_128_hexdigest(view))))
    joblib = peers.load("joblib")
    if joblib is None:
        cases.append(Case("keys.joblib_ndarray", "`joblib.hash(ndarray)`", skip="skipped: joblib not installed"))
    else:
        cases.append(Case("keys.joblib_ndarray", "`joblib.hash(ndarray)`", per_call(lambda: joblib.hash(array))))
    label = "daglite 0.9 `default_cache_hash`, 8 MB ndarray"
    reason = peers.skip_reason("daglite")
    if reason is not None:
        cases.append(Case("keys.old_ndarray", label, skip=reason))
    else:
        from daglite.cache.core import default_cache_hash as old_hash

        cases.append(Case("keys.old_ndarray", label, per_call(lambda: old_hash(_old_cached_add, inputs))))
    return cases
