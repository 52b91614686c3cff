"""One open ``diskcache.Cache`` per directory per process, opened lazily, recovered when corrupt.

diskcache's ``Cache`` is thread-safe (one SQLite connection per thread) and
survives ``fork`` (it reconnects when the pid changes), so a process needs only one
per directory; every :class:`~daglite_diskcache.DiskCacheStore` on that directory
shares it. ``FanoutCache`` is never used: with its default timeout it drops
writes silently under contention. The handle is opened with a generous lock
timeout (60 s by default) so concurrent writers wait instead of failing.

The directory's settings (``size_limit``, ``eviction_policy``) live in its
database; a store that asks for other values updates them, so the last store
opened decides.

**Recovery.** When the database cannot be read at all (``cache.db`` zeroed,
random or malformed: ``sqlite3.DatabaseError`` that is not an operational error
such as a lock), the directory is renamed to ``<dir>.corrupt-<UTC timestamp>`` and
a fresh, empty cache is created in its place. The old directory is kept for
inspection; delete it when done. Before moving, a handle that failed mid-use is
reopened once, so a database another process already replaced is not moved
again; two processes that find the same database corrupt at the very same
moment may still both move a directory aside, which costs cached results only.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import diskcache  # type: ignore[import-untyped]

from ._disk import SafeDisk
from ._paths import ensure_private_dir

__all__ = ["Opened", "close_all", "close_handle", "is_corruption", "open_handle", "recover"]

_lock = threading.Lock()
_handles: dict[str, diskcache.Cache] = {}


@attrs.frozen
class Opened:
    """An open cache, and where a corrupt database was moved to if opening needed that."""

    cache: diskcache.Cache
    moved_to: str | None = None
    cause: str | None = None


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` says the database file itself is unreadable (not locked, not full)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _settings(size_limit: int, eviction_policy: str) -> dict[str, Any]:
    return {"size_limit": size_limit, "eviction_policy": eviction_policy}


def _apply(cache: diskcache.Cache, settings: dict[str, Any]) -> None:
    for name, value in settings.items():
        if getattr(cache, name) != value:
            cache.reset(name, value)


def open_handle(
    directory: Path, *, size_limit: int, eviction_policy: str, timeout: float, recover_corrupt: bool = True
) -> Opened:
    """The process's handle on ``directory``, opening (and if needed recovering) it."""
    key = str(directory)
    settings = _settings(size_limit, eviction_policy)
    with _lock:
        cache = _handles.get(key)
        if cache is not None:
            _apply(cache, settings)
            return Opened(cache)
        ensure_private_dir(directory)
        try:
            cache = diskcache.Cache(key, timeout=timeout, disk=SafeDisk, **settings)
        except sqlite3.DatabaseError as exc:
            if not (recover_corrupt and is_corruption(exc)):
                raise
            moved_to = _move_aside(directory)
            ensure_private_dir(directory)
            cache = diskcache.Cache(key, timeout=timeout, disk=SafeDisk, **settings)
            _handles[key] = cache
            return Opened(cache, moved_to, f"{type(exc).__name__}: {exc}")
        _handles[key] = cache
        return Opened(cache)


def recover(
    directory: Path, broken: diskcache.Cache, *, size_limit: int, eviction_policy: str, timeout: float
) -> Opened:
    """Replace the handle ``broken``, whose database turned out corrupt, by a fresh cache.

    If another thread already replaced it, or the database opens cleanly again
    (another process recovered it first), nothing is moved.
    """
    key = str(directory)
    with _lock:
        current = _handles.get(key)
        if current is not None and current is broken:
            del _handles[key]
            current.close()
    opened = open_handle(
        directory, size_limit=size_limit, eviction_policy=eviction_policy, timeout=timeout
    )
    if opened.moved_to is not None:
        return opened
    try:  # the reopened handle may still see the same broken file
        opened.cache._sql("SELECT COUNT(*) FROM Cache").fetchall()  # noqa: SLF001
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        with _lock:
            if _handles.get(key) is opened.cache:
                del _handles[key]
            opened.cache.close()
            moved_to = _move_aside(directory)
            ensure_private_dir(directory)
            cache = diskcache.Cache(key, timeout=timeout, disk=SafeDisk, **_settings(size_limit, eviction_policy))
            _handles[key] = cache
        return Opened(cache, moved_to, f"{type(exc).__name__}: {exc}")
    return opened


def _move_aside(directory: Path) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = f"{directory}.corrupt-{stamp}"
    suffix = 0
    while os.path.exists(target):
        suffix += 1
        target = f"{directory}.corrupt-{stamp}-{suffix}"
    os.rename(directory, target)
    return target


def close_handle(directory: Path) -> None:
    """Forget the process's handle on ``directory`` and close the calling thread's connection."""
    with _lock:
        cache = _handles.pop(str(directory), None)
    if cache is not None:
        cache.close()


def close_all() -> None:
    """Forget every handle of this process (tests; a store reopens on next use)."""
    with _lock:
        caches = list(_handles.values())
        _handles.clear()
    for cache in caches:
        cache.close()
