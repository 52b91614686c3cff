"""The targets (from the benchmark issue), the informational rows, and the peer comparisons.

Every target is a same-run ratio ``num / den <= limit``, or for the two wall-clock
targets an absolute limit on ``num`` (``den`` is ``None``, ``limit`` in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the targets table.

    :ivar quantity: what is measured.
    :ivar num: the measured case's key.
    :ivar den: the same-run reference case's key, or ``None`` for an absolute limit.
    :ivar limit: the ratio limit, or seconds when ``den`` is ``None``.
    :ivar den_label: the reference's short name, for the table.
    :ivar nbytes: bytes processed per operation (informational rows show GB/s).
    :ivar every_run: the target must hold in every run ("three runs out of three").
    """

    quantity: str
    num: str
    den: str | None
    limit: float
    den_label: str = ""
    nbytes: int = 0
    every_run: bool = False
    """Met only when the ratio holds in every process run (not just their median)."""


TARGETS = [
    Row("task call in a session, no plugin", "calls.core_session", "calls.f_hook", 1.0, "F_hook"),
    Row("task call in a session, one observer plugin (before+after)", "calls.core_plugin1", "calls.f_hook", 2.5, "F_hook"),
    Row("task call outside any session", "calls.core_bare", "calls.core_session", 1.5, "in-session call"),
    Row("generator task, per yielded item (1 plugin with node_iteration)", "calls.core_gen_item", "calls.f_hook", 1.5, "F_hook"),
    Row("session open + close", "session.core", None, 1e-3),
    Row("cache hit, small arguments (daglite-diskcache)", "cache.core_hit", "cache.diskcache_get", 2.0, "raw diskcache get"),
    Row("cache key of an 8 MB numpy array (`default_cache_hash`)", "keys.core_ndarray", None, 1e-3),
    Row("map_tasks thread, per item", "fanout.core_thread", "fanout.tpe_submit", 1.5, "TPE submit+result"),
    Row("map_tasks process, per item (10,000 items)", "fanout.core_process", "fanout.ppe_map100", 1.5, "PPE.map chunksize=100", every_run=True),
    Row("map_tasks process, per item (100,000 items)", "fanout.core_process_1e5", "fanout.ppe_map100_1e5", 1.5, "PPE.map chunksize=100", every_run=True),
    Row("map_tasks process, per item, 1 observer plugin (events relayed live)", "fanout.core_process_observed", "fanout.ppe_map100", 3.0, "PPE.map chunksize=100"),
    Row("iter_tasks process: first result of a 100,000-item map", "streaming.core_first", "streaming.ppe_first", 1.5, "PPE.map first result"),
    Row("stragglers (40 slow items of 400 first), thread", "stragglers.core_thread", "stragglers.ideal", 1.3, "ideal"),
    Row("stragglers (40 slow items of 400 first), process", "stragglers.core_process", "stragglers.ideal", 1.3, "ideal"),
    Row("map_tasks dask, per item (DESIGN §8)", "dask.core_map", "dask.client_map", 1.2, "client.map+gather"),
    Row("`import daglite_core` (minus `python -c pass`)", "startup.core_net", "startup.pluggy_attrs_net", 1.2, "`import pluggy, attrs`"),
    Row("cold start with every plugin installed (import + first session + first task call, minus `pass`)", "startup.cold_net", "startup.pluggy_attrs_net", 2.0, "`import pluggy, attrs`"),
    Row("durable callback dispatch (daglite-callbacks outbox)", "callbacks.durable", "callbacks.plain", 1.5, "non-durable dispatch"),
    Row("cache hit, 100 MB ndarray result (daglite-diskcache, verified)", "bigcache.core_get", "bigcache.raw_get", 1.3, "raw diskcache get"),
    Row("cache miss store, 100 MB ndarray result (signed)", "bigcache.core_set", "bigcache.raw_set", 1.3, "raw diskcache set"),
    Row("pickle dataset save, 1e6-row DataFrame (signed, atomic)", "bigdatasets.core_save_pickle", "bigdatasets.pandas_save_pickle", 1.3, "to_pickle + fsync"),
    Row("pickle dataset load, 1e6-row DataFrame (verified)", "bigdatasets.core_load_pickle", "bigdatasets.pandas_load_pickle", 1.3, "read_pickle"),
    Row("parquet dataset save, 1e6-row DataFrame (atomic)", "bigdatasets.core_save_parquet", "bigdatasets.pandas_save_parquet", 1.3, "to_parquet + fsync"),
    Row("parquet dataset load, 1e6-row DataFrame", "bigdatasets.core_load_parquet", "bigdatasets.pandas_load_parquet", 1.3, "read_parquet"),
    Row("10,000-item thread map with RichProgress", "progress.thread_rich", "progress.thread_bare", 1.3, "same map, no plugin"),
]

INFO = [
    Row("10,000-item thread map with RichProgress, against a no-op observer", "progress.thread_rich", "progress.thread_observer", 0.0, "1 no-op observer"),
    Row("10,000-item thread map with a no-op observer (what observing costs in the core)", "progress.thread_observer", "progress.thread_bare", 0.0, "no plugin"),
    Row("task call in a session, 3 observer plugins (DESIGN §8)", "calls.core_plugin3", "calls.f_hook", 0.0, "F_hook"),
    Row("task call in a session, no plugin, against a plain call", "calls.core_session", "calls.f_call", 0.0, "F_call"),
    Row("map_tasks thread, per item, 1 observer plugin", "fanout.core_thread_observed", "fanout.tpe_submit", 0.0, "TPE submit+result"),
    Row("stragglers, ThreadPoolExecutor.map (one submit per item)", "stragglers.tpe_map", "stragglers.ideal", 0.0, "ideal"),
    Row("stragglers, joblib.Parallel (loky)", "stragglers.joblib", "stragglers.ideal", 0.0, "ideal"),
    Row("map_tasks dask, per item, 1 observer plugin (events relayed live)", "dask.core_map_observed", "dask.client_map", 0.0, "client.map+gather"),
    Row("daglite-diskcache store `get` alone (same key object every call)", "cache.store_get", "cache.diskcache_get", 0.0, "raw diskcache get"),
    Row("key + store `get` (a hit without the lifecycle)", "cache.key_get", "cache.diskcache_get", 0.0, "raw diskcache get"),
    Row("cache hit against key + store `get` (what the lifecycle adds)", "cache.core_hit", "cache.key_get", 0.0, "key + get"),
    Row("cache hit on a store that answers at once (the lifecycle's own cost, key included)", "cache.null_hit", None, 0.0),
    Row("cache key, 1 MB bytes: throughput", "keys.core_1mb", None, 0.0, nbytes=1 << 20),
    Row("cache key, 8 MB ndarray: throughput", "keys.core_ndarray", None, 0.0, nbytes=8_000_000),
    Row("cache hit, 100 MB ndarray, first hit after a copy (full verify)", "bigcache.core_get_full", "bigcache.raw_get", 0.0, "raw diskcache get"),
    Row("pickle dataset load, 1e6-row DataFrame, first load after a copy (full verify)", "bigdatasets.core_load_pickle_full", "bigdatasets.pandas_load_pickle", 0.0, "read_pickle"),
]

PEERS = [
    ("task call, no session", "calls.core_bare", "calls.old_bare"),
    ("task call in a session, no plugin", "calls.core_session", "calls.old_session"),
    ("task call in a session, 1 observer plugin", "calls.core_plugin1", "calls.old_plugin1"),
    ("generator task, per item (1 plugin)", "calls.core_gen_item", "calls.old_gen_item"),
    ("session open + close", "session.core", "session.old"),
    ("cache hit, small arguments", "cache.core_hit", "cache.old_hit"),
    ("cache hit, 8 MB ndarray argument", "cache.core_hit_ndarray", "cache.old_hit_ndarray"),
    ("cache key, small arguments", "keys.core_small", "keys.old_small"),
    ("cache key, 1 MB bytes", "keys.core_1mb", "keys.old_1mb"),
    ("cache key, 8 MB ndarray", "keys.core_ndarray", "keys.old_ndarray"),
    ("map_tasks thread, per item", "fanout.core_thread", "fanout.old_thread"),
    ("map_tasks process, per item", "fanout.core_process", "fanout.old_process"),
    ("`import` minus `pass`", "startup.core_net", "startup.old_net"),
]
"""(quantity, the core's case, daglite 0.9's case): the core's time / daglite's."""

OTHER_PEERS = [
    ("cache hit, small arguments, against joblib.Memory", "cache.core_hit", "cache.joblib_hit"),
    ("cache hit, 8 MB ndarray argument, against joblib.Memory", "cache.core_hit_ndarray", "cache.joblib_hit_ndarray"),
    ("cache key, small arguments, against `joblib.hash`", "keys.core_small", "keys.joblib_small"),
    ("cache key, 1 MB bytes, against `joblib.hash`", "keys.core_1mb", "keys.joblib_1mb"),
    ("cache key, 8 MB ndarray, against `joblib.hash`", "keys.core_ndarray", "keys.joblib_ndarray"),
    ("cache key, 8 MB ndarray, against the xxh3_128 floor", "keys.core_ndarray", "keys.xxh3_ndarray"),
]

SKIPPED_ROWS: list[tuple[str, str]] = []

WHY: dict[str, str] = {
    "bigcache.core_get": (
        "A hit on a value file the store wrote (or already verified in full) is trusted by its stamp "
        "(inode, size, mtime, ctime, owner and mode, and the content's tag, authenticated with the key; "
        "see daglite_core.signing) and read straight into the buffer the array then uses, without "
        "hashing: what remains is the read. A first hit after a copy verifies every byte "
        "({bigcache.core_get_full}, HMAC-SHA256 in a helper thread one chunk behind the reads)."
    ),
    "bigdatasets.core_save_pickle": (
        "The save signs every byte: HMAC-SHA256 (about 0.6 ms per MB here) runs on a helper thread "
        "that reads the file back through a mapping while the first fdatasync runs; then the tag is "
        "written and synced (one page), the file renamed and the directory fsynced. With a spare core "
        "the hash hides behind the fsync; when every core is busy its CPU time is paid in full. The "
        "next step is a faster MAC (a keyed BLAKE3 measured 3-4 x faster single-threaded here) as an "
        "optional dependency, with the MAC named in the file's header."
    ),
    "bigdatasets.core_load_pickle": (
        "A load of a stamped file (one the store saved, or verified in full once) checks the header and "
        "lets pickle read the same descriptor, without a hashing pass. A first load after a copy "
        "verifies every byte first ({bigdatasets.core_load_pickle_full})."
    ),
    "cache.core_hit": (
        "A hit has three parts. (1) The store: the daglite-diskcache `get` alone is {cache.store_get} "
        "({cache.store_get/cache.diskcache_get} the raw diskcache get of {cache.diskcache_get}): besides "
        "the same SQL read it verifies the entry's HMAC signature and unpickles the value, where raw "
        "diskcache returns a small int stored natively (the signature is a security feature: nothing "
        "unverified is unpickled). (2) The key: {keys.core_small}. Key + get with no lifecycle cost "
        "{cache.key_get} ({cache.key_get/cache.diskcache_get} raw). (3) The lifecycle: on a store that "
        "answers at once a whole hit costs {cache.null_hit} (key included: a `Call` with its metadata, "
        "the store lookup, `begin`/`_lookup`); against the real store the hit costs "
        "{cache.core_hit/cache.key_get} key + get, more than that sum, as the lifecycle's Python and "
        "sqlite's code interleave (allocations and CPU-cache effects, visible as a few µs that neither "
        "part shows alone). With the store alone at {cache.store_get/cache.diskcache_get} raw, 2.5 × "
        "leaves only the difference for the key and the lifecycle together: the hit path needs a "
        "cheaper store read, or a lifecycle hit path that skips the `Call`/metadata construction when "
        "no plugin observes it, or both."
    ),
    "fanout.core_process": (
        "The process backend sends batches of argument tuples to its own workers and gets values "
        "back, like `ProcessPoolExecutor.map(chunksize=100)` ({fanout.core_process} against "
        "{fanout.ppe_map100}), but per item the coordinator still builds an `Outcome` (the public "
        "`Backend.run` protocol returns them) and the map a list of values from them, and each worker "
        "builds a `WorkItem`, a `Frame` with the session and in-map context variables, and an `Outcome` "
        "per item. On this 2-core machine the two workers and the coordinator share the cores, so the "
        "workers' per-item Python time shows in the wall time. The profile below is the coordinator's side "
        "of one map."
    ),
    "fanout.core_process_1e5": (
        "As at 10,000 items ({fanout.core_process_1e5} against {fanout.ppe_map100_1e5}): batches are "
        "at most 512 items, so a 100,000-item map is ~200 round trips, each answered with a list of "
        "`Outcome` records; the workers' per-item records (`WorkItem`, `Frame`, `Outcome`) compete with "
        "the coordinator for the two cores."
    ),
    "fanout.core_process_observed": (
        "Every item's `before_node_execute` and `after_node_execute` are recorded in the worker, pickled "
        "(the `TaskMetadata` as a flat tuple), sent while the batch runs and replayed in the session's "
        "process ({fanout.core_process_observed} against {fanout.ppe_map100}). CPU accounting per item on "
        "this machine: the worker builds the metadata (bind, name, id: ~1.5 µs), records two events and "
        "pickles them (~1.2 µs); the coordinator unpickles them (~2 µs: a `TaskMetadata`, an inputs dict, "
        "the name and duration per item) and replays them (~0.5 µs). Meeting 3 × needs a cheaper wire form "
        "for per-item events (the coordinator already knows each item's arguments, so inputs and names "
        "need not travel)."
    ),
    "startup.cold_net": (
        "The cold start ({startup.cold_net}, {startup.cold_net/startup.pluggy_attrs_net} `import pluggy, "
        "attrs`) is `import daglite_core` ({startup.core_net}) plus the first session, which loads every "
        "installed entry-point plugin. The entry points are read without `importlib.metadata`, and the "
        "callbacks, dask, datasets, diskcache and rich entry points import nothing heavy; what is left "
        "is daglite-retry: its entry point is the `RetryReporter` instance in the package itself "
        "(`daglite_retry:reporter`), whose module imports `logging`, `argparse` (its CLI options), "
        "`random` and its attrs records at load (see the listing below: `daglite_retry.*`, `logging`, "
        "`argparse`). Moving those imports to first use inside daglite-retry (or pointing its entry "
        "point at a light module) would remove them."
    ),
    "startup.core_net": (
        "`import daglite_core` runs {startup.core_net/startup.pluggy_attrs_net} `import pluggy, attrs` "
        "({startup.core_net} against {startup.pluggy_attrs_net}; both from bytecode). No big import is "
        "left on the path: asyncio, importlib.metadata, logging, difflib, hashlib, pickle and xxhash "
        "are imported on first use. What remains is the core's own module bodies (~12.5 ms after pluggy "
        "and attrs on a quiet machine): six attrs classes are created at import and attrs compiles "
        "the methods of each (~0.6 ms apiece: `PluginInfo`, `WorkItem`, `Outcome`, `RemoteBatch`, "
        "`DagliteSettings`, `TaskMetadata`), the "
        "runtime-checkable protocols of `_protocols`, the generic task classes, `uuid` (~0.6 ms) and "
        "`string` for name templates (~0.7 ms). Meeting 1.3 × needs about 3 ms less; the attrs classes "
        "are the one large item left. The `-X importtime` listing below names the modules."
    ),
}
"""Known explanations for rows that are not met, by numerator key.

``{case.key}`` is replaced by that case's median, ``{a.key/b.key}`` by the same-run ratio.
"""
