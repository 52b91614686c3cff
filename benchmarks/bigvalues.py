"""Large values (issue 17, items 1 and 2): a 100 MB cached result and pickle/parquet datasets.

Cache: a 100 MiB float64 ndarray (``np.random.default_rng(0).random``; 8 MiB in
smoke mode) stored and read through ``DiskCacheStore`` against the same value
through a raw ``diskcache.Cache`` (which pickles it unsigned). A hit reads the
entry back; a miss stores it again under the same key (the write a miss makes).

Datasets: a 1,000,000-row DataFrame (an int, a float and a string column;
50,000 rows in smoke mode) saved and loaded as a pickle dataset through
``FileDatasetStore`` against ``DataFrame.to_pickle`` + ``fsync`` and
``pandas.read_pickle`` on a plain file; the same for parquet when pyarrow is
installed (against ``to_parquet`` + ``fsync`` / ``read_parquet``).

A hit or load of a file the store wrote is trusted by its stamp (no hashing
pass, see ``daglite_core.signing.file_stamp``); the ``*_full`` cases measure the
same read with ``DAGLITE_VERIFY=always``, i.e. what a first hit or load after a
copy or a backup restore costs (a full verification; informational rows).

Peak memory of a hit (at most 1.3 times the value) is not a timing: it is asserted
by ``plugins/daglite-diskcache/tests/test_diskcache_large_values.py`` (tracemalloc).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import peers
from _harness import Case, Group
from env import Env


def _fully_verified(func: Callable[[], Any]) -> Callable[[], Any]:
    """``func`` run with ``DAGLITE_VERIFY=always``: no stamp trusted, every byte hashed."""

    def run() -> Any:
        os.environ["DAGLITE_VERIFY"] = "always"
        try:
            return func()
        finally:
            del os.environ["DAGLITE_VERIFY"]

    return run


def _once(func: Callable[[], Any]) -> Callable[[int], float]:
    """A batch sampler: one call per sample, seconds per call."""
    import time

    def sample(n: int) -> float:
        start = time.perf_counter()
        func()
        return time.perf_counter() - start

    return sample


def build(env: Env) -> list[Group]:
    """The ``bigcache`` and ``bigdatasets`` groups."""
    rounds = 3 if env.smoke else 7
    return [
        Group("bigcache", _cache(env), rounds, env.target_seconds),
        Group("bigdatasets", _datasets(env), rounds, env.target_seconds),
    ]


def _cache(env: Env) -> list[Case]:
    mb = 8 if env.smoke else 100
    keys = [
        ("bigcache.raw_get", f"raw diskcache get, {mb} MiB ndarray"),
        ("bigcache.core_get", f"daglite-diskcache hit, {mb} MiB ndarray (verified)"),
        ("bigcache.core_get_full", f"daglite-diskcache hit, {mb} MiB ndarray, fully verified (first hit after a copy)"),
        ("bigcache.raw_set", f"raw diskcache set, {mb} MiB ndarray"),
        ("bigcache.core_set", f"daglite-diskcache miss (store), {mb} MiB ndarray (signed)"),
    ]
    np, diskcache, plugin = peers.load("numpy"), peers.load("diskcache"), peers.load("daglite_diskcache")
    missing = [name for name, mod in (("numpy", np), ("diskcache", diskcache), ("daglite-diskcache", plugin)) if mod is None]
    if missing:
        return [Case(key, label, skip=f"skipped: {missing[0]} not installed") for key, label in keys]
    assert np is not None and diskcache is not None and plugin is not None
    size = mb << 20
    value = np.random.default_rng(0).random(size // 8)
    raw = diskcache.Cache(str(env.tmp / "bigcache-raw"))
    env.stack.callback(raw.close)
    store = plugin.DiskCacheStore(env.tmp / "bigcache-core")
    env.stack.callback(store.close)
    raw.set("big", value)
    store.set("bench.big:1", value)
    samplers = {
        "bigcache.raw_get": lambda: raw.get("big"),
        "bigcache.core_get": lambda: store.get("bench.big:1"),
        "bigcache.core_get_full": _fully_verified(lambda: store.get("bench.big:1")),
        "bigcache.raw_set": lambda: raw.set("big", value),
        "bigcache.core_set": lambda: store.set("bench.big:1", value),
    }
    return [Case(key, label, _once(samplers[key]), batch=True, profile=samplers[key]) for key, label in keys]


def _fsynced(write: Callable[[str], Any]) -> Callable[[str], None]:
    def run(path: str) -> None:
        write(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    return run


def _datasets(env: Env) -> list[Case]:
    formats = [("pickle", "pkl", "pyarrow-free"), ("parquet", "parquet", "pyarrow")]
    pd, plugin = peers.load("pandas"), peers.load("daglite_datasets")
    cases: list[Case] = []
    rows = 50_000 if env.smoke else 1_000_000
    frame = None
    if pd is not None:
        np = peers.load("numpy")
        assert np is not None
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({
            "i": np.arange(rows), "x": rng.random(rows), "s": [f"row-{i % 1000}" for i in range(rows)],
        })
    for name, ext, needs in formats:
        keys = [
            (f"bigdatasets.pandas_save_{name}", f"DataFrame.to_{name} + fsync, {rows:,} rows"),
            (f"bigdatasets.core_save_{name}", f"save_dataset as {name}, {rows:,} rows (atomic, fsynced{', signed' if name == 'pickle' else ''})"),
            (f"bigdatasets.pandas_load_{name}", f"pandas.read_{name}, {rows:,} rows"),
            (f"bigdatasets.core_load_{name}", f"load_dataset as {name}, {rows:,} rows{' (verified)' if name == 'pickle' else ''}"),
        ]
        if name == "pickle":
            keys.append((
                "bigdatasets.core_load_pickle_full",
                f"load_dataset as pickle, {rows:,} rows, fully verified (first load after a copy)",
            ))
        skip = None
        if pd is None:
            skip = "skipped: pandas not installed"
        elif plugin is None:
            skip = "skipped: daglite-datasets not installed"
        elif needs == "pyarrow" and peers.load("pyarrow") is None:
            skip = "skipped: pyarrow not installed"
        if skip is not None:
            cases += [Case(key, label, skip=skip) for key, label in keys]
            continue
        assert plugin is not None and pd is not None
        store = plugin.FileDatasetStore(env.tmp / "bigdatasets-core")
        plain = str(env.tmp / f"bigdatasets-plain.{ext}")
        key = f"frame.{ext}"
        to_file = getattr(frame, f"to_{name}")
        read = getattr(pd, f"read_{name}")
        _fsynced(to_file)(plain)
        store.save(key, frame)
        samplers: dict[str, Callable[[], Any]] = {
            f"bigdatasets.pandas_save_{name}": lambda f=to_file, p=plain: _fsynced(f)(p),
            f"bigdatasets.core_save_{name}": lambda s=store, k=key: s.save(k, frame),
            f"bigdatasets.pandas_load_{name}": lambda r=read, p=plain: r(p),
            f"bigdatasets.core_load_{name}": lambda s=store, k=key: s.load(k),
            f"bigdatasets.core_load_{name}_full": _fully_verified(lambda s=store, k=key: s.load(k)),
        }
        cases += [Case(k, label, _once(samplers[k]), batch=True, profile=samplers[k]) for k, label in keys]
    return cases
