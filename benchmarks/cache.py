"""Cache hits and cache keys: the core with daglite-diskcache against raw diskcache,
joblib.Memory and daglite 0.9.

Stores live in fresh directories under the run's scratch directory (diskcache
defaults: sqlite WAL; values of 32 KiB or more in files). The ndarray is
``np.random.default_rng(0).random(1_000_000)`` (8 MB of float64); "1 MB" is 1 MiB
of random bytes. Hits are measured for small arguments (``add(1, 2)``) and for the
ndarray as argument (its key dominates); keys for small arguments, 1 MB and the
ndarray, each against ``joblib.hash`` and daglite 0.9's ``default_cache_hash``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import peers
import workloads
from _harness import Case, Group, in_context, per_call
from env import Env

_SMALL = {"x": 1, "y": 2}


def build(env: Env) -> list[Group]:
    """The ``cache`` group (hits) and the ``keys`` group (hashing)."""
    rounds = env.rounds_slow + (0 if env.smoke else 4)
    array = _array()
    return [
        Group("cache", _hits(env, array), rounds, env.target_seconds),
        Group("keys", _keys(array), rounds, env.target_seconds),
    ]


def _array() -> Any:
    np = peers.load("numpy")
    return None if np is None else np.random.default_rng(0).random(1_000_000)


class _NullStore:
    """A cache store whose every ``get`` hits at once: the lifecycle's own cost of a hit."""

    def get(self, key: str) -> Any:
        return 3

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Nothing to store."""


def _hit_case(key: str, label: str, call: Callable[[], Any], context: Any = None, profile: bool = False) -> Case:
    run: Callable[[], Any] = functools.partial(context.run, call) if context is not None else call
    run()  # the miss that fills the entry
    return Case(key, label, per_call(call, context), profile=run if profile else None)


def _hits(env: Env, array: Any) -> list[Case]:
    from daglite_core import active_session, default_cache_hash, session, task

    null_hit = task(cache=True)(workloads.cached_add)
    null_ctx = in_context(session(cache_store=_NullStore()), env.stack)
    cases = [
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

    labels = {
        "cache.core_hit": "core: `@task(cache=True)` hit, `add(1, 2)` (daglite-diskcache)",
        "cache.core_hit_ndarray": "core: `@task(cache=True)` hit, 8 MB ndarray argument",
        "cache.store_get": "daglite-diskcache store `get` of the small entry (no lifecycle)",
        "cache.key_get": "key + store `get` (the small hit without the lifecycle)",
    }
    reason = peers.skip_reason("daglite-diskcache", "daglite_diskcache")
    if reason is not None:
        cases += [Case(key, label, skip=reason) for key, label in labels.items()]
    else:
        cached, head = task(cache=True)(workloads.cached_add), task(cache=True)(workloads.head)
        ctx = in_context(session(cache_store=str(env.tmp / "core-cache")), env.stack)
        cases.append(_hit_case("cache.core_hit", labels["cache.core_hit"], lambda: cached(1, 2), ctx, profile=True))
        cases.append(_array_hit("cache.core_hit_ndarray", labels["cache.core_hit_ndarray"], array, head, ctx))
        # The same small hit without the lifecycle: the store's own get, and key + get.
        store = ctx.run(lambda: active_session().cache_store(None, "cached_add"))
        key = default_cache_hash(workloads.cached_add, _SMALL)
        cases.append(Case("cache.store_get", labels["cache.store_get"], per_call(lambda: store.get(key)),
                          profile=lambda: store.get(key)))
        cases.append(Case("cache.key_get", labels["cache.key_get"],
                          per_call(lambda: store.get(default_cache_hash(workloads.cached_add, {"x": 1, "y": 2})))))

    joblib = peers.load("joblib")
    labels = {"cache.joblib_hit": "joblib.Memory hit, `add(1, 2)`", "cache.joblib_hit_ndarray": "joblib.Memory hit, 8 MB ndarray argument"}
    if joblib is None:
        cases += [Case(key, label, skip="skipped: joblib not installed") for key, label in labels.items()]
    else:
        memory = joblib.Memory(str(env.tmp / "joblib"), verbose=0)
        cached_joblib, head_joblib = memory.cache(workloads.add), memory.cache(workloads.head)
        cases.append(_hit_case("cache.joblib_hit", labels["cache.joblib_hit"], lambda: cached_joblib(1, 2)))
        cases.append(_array_hit("cache.joblib_hit_ndarray", labels["cache.joblib_hit_ndarray"], array, head_joblib))

    labels = {"cache.old_hit": "daglite 0.9: `@task(cache=True)` hit, `add(1, 2)`", "cache.old_hit_ndarray": "daglite 0.9: `@task(cache=True)` hit, 8 MB ndarray argument"}
    reason = peers.skip_reason("daglite")
    if reason is not None:
        cases += [Case(key, label, skip=reason) for key, label in labels.items()]
    else:
        old = peers.DagliteOld()
        cached_old = old.daglite.task(_old_cached_add, cache=True)
        head_old = old.daglite.task(_old_head, cache=True)
        ctx_old = in_context(old.daglite.session(settings=old.Settings(cache_store=str(env.tmp / "old-cache"))), env.stack)
        cases.append(_hit_case("cache.old_hit", labels["cache.old_hit"], lambda: cached_old(1, 2), ctx_old))
        cases.append(_array_hit("cache.old_hit_ndarray", labels["cache.old_hit_ndarray"], array, head_old, ctx_old))
    return cases


def _array_hit(key: str, label: str, array: Any, func: Callable[[Any], Any], context: Any = None) -> Case:
    if array is None:
        return Case(key, label, skip="skipped: numpy not installed")
    return _hit_case(key, label, lambda: func(array), context)


def _old_cached_add(x: int, y: int) -> int:
    return x + y


def _old_head(x: Any) -> Any:
    return x[0]


def _keys(array: Any) -> list[Case]:
    from daglite_core import default_cache_hash

    func = workloads.add
    inputs: dict[str, Any] = {"small": _SMALL, "1mb": {"x": os.urandom(1 << 20)}}
    if array is not None:
        inputs["ndarray"] = {"x": array}
    what = {"small": "small args", "1mb": "1 MB bytes", "ndarray": "8 MB ndarray"}
    joblib = peers.load("joblib")
    old_reason = peers.skip_reason("daglite")
    if old_reason is None:
        from daglite.cache.core import default_cache_hash as old_hash
    cases = []
    for size, label in what.items():
        args = inputs.get(size)
        keys = {
            f"keys.core_{size}": f"core `default_cache_hash`, {label}",
            f"keys.joblib_{size}": f"`joblib.hash`, {label}",
            f"keys.old_{size}": f"daglite 0.9 `default_cache_hash`, {label}",
        }
        if args is None:
            cases += [Case(key, text, skip="skipped: numpy not installed") for key, text in keys.items()]
            continue
        core, jl, old = keys
        core_key = functools.partial(default_cache_hash, func, args)
        cases.append(Case(core, keys[core], per_call(core_key), profile=core_key))
        if joblib is None:
            cases.append(Case(jl, keys[jl], skip="skipped: joblib not installed"))
        else:
            cases.append(Case(jl, keys[jl], per_call(functools.partial(joblib.hash, args))))
        if old_reason is not None:
            cases.append(Case(old, keys[old], skip=old_reason))
        else:
            cases.append(Case(old, keys[old], per_call(functools.partial(old_hash, _old_cached_add, args))))
    label = "floor: xxh3_128 over the ndarray buffer"
    xxhash = peers.load("xxhash")
    if array is None or xxhash is None:
        cases.append(Case("keys.xxh3_ndarray", label, skip=f"skipped: {'numpy' if array is None else 'xxhash'} not installed"))
    else:
        view = memoryview(array).cast("B")
        cases.append(Case("keys.xxh3_ndarray", label, per_call(lambda: xxhash.xxh3_128_hexdigest(view))))
    return cases
