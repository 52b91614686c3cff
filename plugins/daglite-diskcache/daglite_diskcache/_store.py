"""``DiskCacheStore``: the daglite cache store on diskcache.

Hit path (the thing ``cache=True`` is for): one ``SELECT`` on the calling
thread's SQLite connection, then (see ``_envelope``) for values of 32 KiB or more
a file read straight into the value's future buffer, then ``pickle.loads`` with
those buffers in place (about one copy of the value in memory). A value file
whose stamp (kept in its row) matches is read without hashing; any other is
verified while read (the HMAC-SHA256 tag computed chunk by chunk) and, once it
verified, stamped (:func:`_restamp`, best effort). diskcache's ``Cache.get`` is not used
for reads: it would unpickle entries stored in pickle mode (a planted entry would
run code) and it reports a vanished value file as a silent miss, whereas here it
is a removed entry and a warning.

Failure policy (the store raises, the core warns once naming the task and the key,
and the call goes on):

* ``get``: an entry that is truncated, garbage, unsigned or signed with another
  key, sealed for another cache key, whose value file vanished, or whose class no
  longer imports, is **removed** and :class:`CacheEntryError` is raised (never
  unpickled unless its signature verified). A database that cannot be read at all
  is moved aside and replaced by an empty one (see ``_handles``).
* ``set``: anything that prevents storing (unpicklable value, ``ENOSPC``, lock
  timeout) raises :class:`CacheWriteError`; no partial entry is left.

Store-wide problems (a signing-key file that cannot be used, a directory that
cannot be opened, a read-only or full disk) are reported **once per process** and
then the store pauses (reads are misses, writes are skipped) for
``_trouble.PAUSE`` seconds before trying again; see ``_trouble``. The first failed
write of that kind raises :class:`CacheWriteError` (the core warns naming the
task); an open or key failure is a :class:`DiskCacheWarning` from the store.

A cache directory removed while the process uses it is noticed (before every
write, at most once a second on reads, and when a thread cannot connect) and
recreated ``0700`` with one :class:`DiskCacheWarning`; see ``_handles``. On the
read path that watch costs one ``time.monotonic()`` per ``get`` and one ``stat``
a second (measured: nothing a small hit notices), so it stays as it is.

The store pickles as its configuration only; the database is opened on first use
in each process.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import diskcache  # type: ignore[import-untyped]
from diskcache.core import EVICTION_POLICY, MODE_BINARY, MODE_RAW  # type: ignore[import-untyped]

from daglite_core import CACHE_MISS
from daglite_core.signing import SigningKeyError

from . import _trouble
from ._envelope import Sealed, ensure_signing_key, load_blob, load_file, seal
from ._errors import CacheEntryError, CacheWriteError, DiskCacheWarning
from ._files import open_value
from ._handles import Opened, close_handle, is_corruption, open_handle, recover, revalidate
from ._paths import resolve_dir

__all__ = ["DEFAULT_SIZE_LIMIT", "DiskCacheStore", "StoreConfig"]

DEFAULT_SIZE_LIMIT = 2**30
"""1 GiB, diskcache's default: past it, the least recently stored entries are evicted."""

_RECHECK = 1.0
"""Seconds between checks, on the read path, that the directory was not removed."""

_SELECT = (
    "SELECT rowid, store_time, mode, filename, value FROM Cache"
    " WHERE key = ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)"
)


class _Reader(threading.local):
    """The calling thread's ``execute`` on the handle it last read from (the hit path's SQL).

    diskcache's ``Cache._sql`` checks the process id (a system call) and looks the
    thread's connection up on every statement: ~0.45 µs of a ~7 µs small hit.
    ``get`` keeps the bound method per thread instead. It is bound again when the
    store's handle is another one (a removed directory or a corrupt database
    replaced it), forgotten in a forked child (``os.register_at_fork``: the child
    must not share the parent's connection, and diskcache reconnects it there), and
    forgotten when it raises ``ProgrammingError``: the thread's connection was
    closed under it (``close_handle`` on a handle another store still uses), and
    the statement is run again through ``Cache._sql``, which reconnects. Writes and
    every other statement go through ``Cache._sql`` as before.
    """

    cache: Any = None
    execute: Any = None


_reader = _Reader()


def _forget_readers() -> None:
    global _reader
    _reader = _Reader()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_readers)


def _check_positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value <= 0:
        msg = f"DiskCacheStore: {attribute.name} must be positive, not {value!r}"
        raise ValueError(msg)


def _check_policy(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in EVICTION_POLICY:
        msg = f"DiskCacheStore: unknown eviction_policy {value!r}; use one of {', '.join(sorted(EVICTION_POLICY))}"
        raise ValueError(msg)


@attrs.frozen
class StoreConfig:
    """Everything a :class:`DiskCacheStore` is: what it pickles as.

    :ivar directory: absolute path of the cache directory.
    :ivar size_limit: bytes on disk past which entries are evicted.
    :ivar eviction_policy: diskcache's policy name (``least-recently-stored``
        evicts the oldest writes and keeps reads read-only (but for the one
        ``UPDATE`` that stamps a value file after its first full verification); ``least-recently-used``
        and ``least-frequently-used`` make every hit a write; ``none``).
    :ivar timeout: seconds a writer waits for the database lock before giving up.
    """

    directory: str
    size_limit: int = attrs.field(default=DEFAULT_SIZE_LIMIT, validator=_check_positive)
    eviction_policy: str = attrs.field(default="least-recently-stored", validator=_check_policy)
    timeout: float = attrs.field(default=60.0, validator=_check_positive)


class DiskCacheStore:
    """A persistent cache store in a local directory, safe across threads and processes.

    ``DiskCacheStore()`` uses ``<cwd>/.daglite/cache`` (the working directory at the
    moment the store is created); ``DiskCacheStore("some/dir")`` that directory,
    made absolute now. Use it as ``session(cache_store=...)`` or
    ``@task(cache=...)``; a path string does the same through the plugin.

    Values are pickled and signed (see :mod:`daglite_core.signing`); entries that do
    not verify are removed, never loaded. Only for local disks: SQLite locking is
    unreliable on NFS, SMB and cloud-synced folders.
    """

    __slots__ = ("_cache", "_config", "_directory", "_due", "_paused_until", "_update")

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        eviction_policy: str = "least-recently-stored",
        timeout: float = 60.0,
    ) -> None:
        path = resolve_dir(directory)
        self._config = StoreConfig(str(path), size_limit, eviction_policy, timeout)
        self._directory = path
        self._cache: diskcache.Cache | None = None
        self._due = 0.0  # monotonic time of the next check that the directory is still there
        self._paused_until = 0.0  # after a store-wide problem: see _trouble
        update = EVICTION_POLICY[eviction_policy]["get"]
        # ``update`` comes from diskcache's own EVICTION_POLICY table, never from input.
        self._update = None if update is None else f"UPDATE Cache SET {update} WHERE rowid = ?"  # noqa: S608

    # -- configuration --------------------------------------------------------

    @property
    def config(self) -> StoreConfig:
        """The store's configuration."""
        return self._config

    @property
    def directory(self) -> Path:
        """The absolute cache directory."""
        return self._directory

    def __repr__(self) -> str:
        return f"DiskCacheStore({self._config.directory!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is DiskCacheStore and other._config == self._config

    def __hash__(self) -> int:
        return hash(self._config)

    def __reduce__(self) -> tuple[Any, ...]:
        c = self._config
        return (_rebuild, (c.directory, c.size_limit, c.eviction_policy, c.timeout))

    # -- the handle -----------------------------------------------------------

    def _open(self, recover_corrupt: bool = True) -> Opened:
        ensure_signing_key()  # once per process and store: see its docstring
        c = self._config
        opened = open_handle(
            self._directory, size_limit=c.size_limit, eviction_policy=c.eviction_policy,
            timeout=c.timeout, recover_corrupt=recover_corrupt,
        )
        self._cache = opened.cache
        return opened

    def _recover(self, broken: diskcache.Cache) -> Opened:
        c = self._config
        opened = recover(
            self._directory, broken, size_limit=c.size_limit, eviction_policy=c.eviction_policy, timeout=c.timeout
        )
        self._cache = opened.cache
        return opened

    def _moved(self, opened: Opened) -> str:
        return (
            f"cache database in {self._directory} was unreadable ({opened.cause}); "
            f"moved aside to {opened.moved_to} and started empty"
        )

    def _acquire(self, check: bool = False) -> Opened | None:
        """The handle to use now, opened on first use and checked for a removed directory.

        ``None`` while the store is paused after a store-wide problem (reported once,
        see ``_trouble``): the caller treats it as a miss or a skipped write.
        """
        now = time.monotonic()
        if now < self._paused_until and (check or self._cache is None):
            return None
        cache = self._cache
        directory = str(self._directory)
        try:
            opened = self._open() if cache is None else Opened(cache)
            if opened.moved_to is None:  # also a handle another store opened before a removal
                c = self._config
                opened = revalidate(
                    self._directory, opened.cache, size_limit=c.size_limit, eviction_policy=c.eviction_policy,
                    timeout=c.timeout,
                )
        except SigningKeyError as exc:
            self._pause(now, "signing key", f"cache in {directory} is off: {exc}")
            return None
        except (OSError, ValueError, sqlite3.Error, diskcache.Timeout) as exc:
            self._pause(now, f"open {type(exc).__name__}", (
                f"cannot open the cache in {directory} ({_describe(exc)}); calls run uncached, "
                f"retried every {_trouble.PAUSE:.0f} s"
            ))
            return None
        self._cache = opened.cache
        self._due = now + _RECHECK
        if opened.recreated:
            warnings.warn(
                f"cache directory {directory} (or its database) was removed while in use; "
                "recreated it empty (mode 0700) and caching goes on there",
                DiskCacheWarning,
                stacklevel=4,
            )
        return opened

    def _pause(self, now: float, kind: str, message: str) -> None:
        self._paused_until = now + _trouble.PAUSE
        self._cache = None
        if _trouble.first_report(str(self._directory), kind):
            warnings.warn(message, DiskCacheWarning, stacklevel=5)

    def _vanished(self, cache: diskcache.Cache) -> bool:
        """Whether ``cache`` failed because its directory was removed (and it is reopened now)."""
        opened = self._acquire(check=True) if self._cache is cache else None
        return opened is not None and opened.cache is not cache

    def close(self) -> None:
        """Close this process's handle on the directory (reopened on next use)."""
        self._cache = None
        self._due = 0.0
        close_handle(self._directory)

    # -- CacheStore -----------------------------------------------------------

    def get(self, key: str) -> Any:
        """The value under ``key``, or ``CACHE_MISS``; :class:`CacheEntryError` if unreadable.

        A small hit is one ``SELECT`` on this thread's connection (see
        :class:`_Reader`), one MAC over the inline entry and ``pickle.loads``
        (``load_blob``'s fast path): ~1.2 x diskcache's own ``get`` of a native int.
        """
        cache = self._cache
        if cache is None or time.monotonic() >= self._due:
            opened = self._acquire()
            if opened is None:
                return CACHE_MISS
            cache = opened.cache
            if opened.moved_to is not None:
                raise CacheEntryError(self._moved(opened), key=key, directory=str(self._directory))
        reader = _reader
        fresh = reader.cache is not cache
        try:
            if fresh:
                reader.execute = cache._sql  # connects this thread if needed
                reader.cache = cache
            rows = reader.execute(_SELECT, (key, time.time())).fetchall()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.ProgrammingError) and not fresh:
                reader.cache = None  # this thread's connection was closed (close_handle): reconnect
                return self.get(key)
            if not is_corruption(exc) and self._vanished(cache):
                return self.get(key)  # reopened on a recreated directory (at most once: it is new)
            if not is_corruption(exc):
                raise CacheEntryError(
                    f"cache database in {self._directory} could not be read ({type(exc).__name__}: {exc})",
                    key=key, directory=str(self._directory),
                ) from exc
            opened = self._recover(cache)
            msg = self._moved(opened) if opened.moved_to else f"cache database in {self._directory}: {exc}"
            raise CacheEntryError(msg, key=key, directory=str(self._directory)) from exc
        if not rows:
            return CACHE_MISS
        rowid, stored, mode, filename, value = rows[0]
        try:
            if mode == MODE_RAW and type(value) is bytes:
                value = load_blob(key, value)
            elif mode == MODE_BINARY and filename:
                file = self._open_file(cache, key, rowid, filename)
                if file is None:  # replaced or removed by another writer meanwhile
                    return self.get(key)
                with file:
                    try:
                        size = os.fstat(file.fileno()).st_size
                        value, new_stamp = load_file(key, file, size, value)
                    except OSError as exc:
                        raise _Transient from exc
                if new_stamp is not None:
                    _restamp(cache, rowid, filename, new_stamp)
            else:
                msg = f"stored in diskcache mode {mode}, which daglite never writes"
                raise ValueError(msg)
        except _Transient as exc:
            msg = f"cache entry {key} in {self._directory} could not be read ({_describe(exc.__cause__)})"
            raise CacheEntryError(msg, key=key, directory=str(self._directory)) from exc.__cause__
        except Exception as exc:
            self._drop(cache, key, rowid, stored, filename)
            msg = f"cache entry {key} in {self._directory} is unreadable ({_describe(exc)}); removed"
            raise CacheEntryError(msg, key=key, directory=str(self._directory)) from exc
        if self._update is not None:
            # Access bookkeeping for LRU/LFU eviction is best effort: a busy database
            # must not turn a good hit into an error, let alone a dropped entry.
            with contextlib.suppress(sqlite3.Error, diskcache.Timeout):
                cache._sql(self._update.format(now=time.time()), (rowid,))
        return value

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, expiring after ``ttl`` seconds if given."""
        directory = str(self._directory)
        opened = self._acquire(check=True)
        if opened is None:
            return
        cache = opened.cache
        if opened.moved_to is not None:
            warnings.warn(self._moved(opened), DiskCacheWarning, stacklevel=2)
        try:
            sealed = seal(key, value)
        except Exception as exc:
            msg = f"value for {key} cannot be pickled ({_describe(exc)})"
            raise CacheWriteError(msg, key=key, directory=directory) from exc
        try:
            try:
                _write(cache, key, sealed, ttl)
            except sqlite3.OperationalError:
                if not self._vanished(cache):
                    raise
                cache = self._cache
                if cache is None:  # pragma: no cover - _vanished reopened it or raised
                    raise
                _write(cache, key, sealed, ttl)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            kind = _trouble.is_store_wide_write_error(exc)
            if kind is None:
                msg = f"could not write {key} to the cache in {directory} ({_describe(exc)})"
                raise CacheWriteError(msg, key=key, directory=directory) from exc
            self._paused_until = time.monotonic() + _trouble.PAUSE
            if not _trouble.first_report(directory, kind):
                return
            what = "is read-only" if kind == "read-only" else "is full"
            msg = (
                f"could not write {key}: the cache in {directory} {what} ({_describe(exc)}); "
                f"results are not cached while this lasts (reads still work; reported once per process)"
            )
            raise CacheWriteError(msg, key=key, directory=directory) from exc
        if self._paused_until:
            self._paused_until = 0.0
            _trouble.forget(directory)

    # -- management (used by the CLI) ----------------------------------------

    def delete(self, key: str) -> bool:
        """Remove the entry under ``key``; whether there was one."""
        return bool(self._handle().delete(key, retry=True))

    def clear(self, prefix: str | None = None) -> int:
        """Remove every entry (or those whose key starts with ``prefix``); how many."""
        cache = self._handle()
        if prefix is None:
            return int(cache.clear(retry=True))
        count = 0
        for key in self.keys():
            if key.startswith(prefix) and cache.delete(key, retry=True):
                count += 1
        return count

    def keys(self) -> Iterator[str]:
        """Every stored key (including expired ones not yet evicted)."""
        rows = self._handle()._sql("SELECT key FROM Cache WHERE raw = 1").fetchall()
        for (key,) in rows:
            if isinstance(key, str):
                yield key

    def _handle(self, recover_corrupt: bool = False) -> diskcache.Cache:
        cache = self._cache
        if cache is None:
            cache = self._open(recover_corrupt).cache
        return cache

    def _open_file(self, cache: diskcache.Cache, key: str, rowid: int, filename: str) -> IO[bytes] | None:
        """The open value file of a file-backed entry; ``None`` if a writer replaced the row meanwhile.

        Only a regular file inside the cache directory is opened (see ``_files``): a
        name that is absolute, has ``..``, or names a symlink, FIFO or device raises
        :class:`UnsafeValueFileError` and the entry is dropped without touching the file.
        A missing file whose row is still the one we read is a broken entry
        (``FileNotFoundError`` propagates and the entry is dropped). Other ``OSError``
        (too many open files, a permission hiccup) say nothing about the entry: they
        are reported without removing it.
        """
        try:
            return os.fdopen(open_value(self._config.directory, filename), "rb")
        except FileNotFoundError:
            select = "SELECT rowid, filename FROM Cache WHERE key = ? AND raw = 1"
            current = cache._sql(select, (key,)).fetchall()
            if not current or tuple(current[0]) != (rowid, filename):  # diskcache updates rows in place
                return None
            raise
        except OSError as exc:
            raise _Transient from exc

    def _drop(self, cache: diskcache.Cache, key: str, rowid: int, stored: float, filename: str | None) -> None:
        """Remove the entry that was read (not a newer one another writer stored since)."""
        try:
            # diskcache rewrites a key's row in place: match the write we read, too.
            delete = "DELETE FROM Cache WHERE rowid = ? AND key = ? AND store_time = ? AND filename IS ?"
            cache._sql(delete, (rowid, key, stored, filename))
            if filename:
                cache.disk.remove(filename)
        except Exception:  # noqa: BLE001, S110 - best effort: the entry was already reported as unreadable
            pass


def _write(cache: diskcache.Cache, key: str, sealed: Sealed, ttl: float | None) -> None:
    """Store a sealed value: inline when small, else streamed into a value file (no joined copy)."""
    if sealed.size < cache.disk.min_file_size:
        cache.set(key, sealed.joined(), expire=ttl)
    else:
        cache.set(key, sealed.reader(), expire=ttl, read=True)


def _restamp(cache: diskcache.Cache, rowid: int, filename: str, stamp: bytes) -> None:
    """Save a fresh stamp in the row of the file just verified; skipped if the database is busy.

    Only the very write that was read is updated (diskcache rewrites a key's row in
    place; its file name is new for every write). The read must not wait for
    another writer's lock (the connection would wait up to ``timeout``), so the
    ``UPDATE`` runs with a zero busy timeout: the next full verification tries again.
    """
    sql = cache._sql
    with contextlib.suppress(sqlite3.Error):
        sql("PRAGMA busy_timeout = 0")
        try:
            sql("UPDATE Cache SET value = ? WHERE rowid = ? AND filename = ?", (stamp, rowid, filename))
        finally:
            sql(f"PRAGMA busy_timeout = {int(cache.timeout * 1000)}")


class _Transient(Exception):
    """Reading an entry failed for a reason that says nothing about the entry."""


def _describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}"


def _rebuild(directory: str, size_limit: int, eviction_policy: str, timeout: float) -> DiskCacheStore:
    return DiskCacheStore(directory, size_limit=size_limit, eviction_policy=eviction_policy, timeout=timeout)
