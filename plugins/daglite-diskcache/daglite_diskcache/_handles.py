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

**A directory removed under a live process.** SQLite keeps using a database file
that was deleted (``rm -rf .daglite/cache`` in a notebook): writes would land in
the unlinked file and threads started later could not connect at all. Each handle
records the identity (device, inode) of its ``cache.db``; :func:`revalidate`
compares it with what is on disk now and, when the file is gone or replaced,
drops the handle and opens the directory again (recreating it ``0700``). The
store calls it before every write and at most once a second on the read path.
Connections other threads held on the old database are not closed (diskcache
keeps them thread-local); they are unused from then on.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["Opened", "close_all", "close_handle", "is_corruption", "open_handle", "recover", "revalidate"]

_lock = threading.Lock()
_handles: dict[str, diskcache.Cache] = {}
_idents: dict[str, tuple[int, int] | None] = {}
"""(st_dev, st_ino) of each open handle's ``cache.db`` when it was opened."""


@attrs.frozen
class Opened:
    """An open cache, and where a corrupt database was moved to if opening needed that."""

    cache: diskcache.Cache
    moved_to: str | None = None
    cause: str | None = None
    recreated: bool = False
    """The directory or its database had vanished (or been replaced) and was opened afresh."""


def _identity(directory: str) -> tuple[int, int] | None:
    try:
        info = os.stat(os.path.join(directory, "cache.db"))
    except OSError:
        return None
    return info.st_dev, info.st_ino


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
    with _lock:
        return _open_locked(directory, size_limit, eviction_policy, timeout, recover_corrupt)


def _open_locked(
    directory: Path, size_limit: int, eviction_policy: str, timeout: float, recover_corrupt: bool = True
) -> Opened:
    key = str(directory)
    settings = _settings(size_limit, eviction_policy)
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
        _register(key, cache)
        return Opened(cache, moved_to, f"{type(exc).__name__}: {exc}")
    _register(key, cache)
    return Opened(cache)


def _register(key: str, cache: diskcache.Cache) -> None:
    _handles[key] = cache
    _idents[key] = _identity(key)


def revalidate(
    directory: Path, cache: diskcache.Cache, *, size_limit: int, eviction_policy: str, timeout: float
) -> Opened:
    """The handle to use instead of ``cache`` if its database was removed or replaced.

    ``Opened(cache)`` when ``cache`` is still the process's handle and its
    ``cache.db`` is the file it opened. Otherwise the handle is dropped and the
    directory opened again (created ``0o700`` if missing); ``recreated`` is true
    for exactly one caller per replacement, the one that should say so.
    """
    key = str(directory)
    ident = _identity(key)
    with _lock:
        current = _handles.get(key)
        if current is not None and ident is not None and _idents.get(key) == ident:
            return Opened(current)
        if current is None and ident is not None:
            # closed (close_handle) rather than removed: just open it again
            return _open_locked(directory, size_limit, eviction_policy, timeout)
        if current is not None:
            del _handles[key]
            _idents.pop(key, None)
            with contextlib.suppress(Exception):
                current.close()
        opened = _open_locked(directory, size_limit, eviction_policy, timeout)
    return opened if opened.moved_to is not None else attrs.evolve(opened, recreated=True)


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
            _idents.pop(key, None)
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
            _register(key, cache)
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
        _idents.pop(str(directory), None)
    if cache is not None:
        cache.close()


def close_all() -> None:
    """Forget every handle of this process (tests; a store reopens on next use)."""
    with _lock:
        caches = list(_handles.values())
        _handles.clear()
        _idents.clear()
    for cache in caches:
        cache.close()
