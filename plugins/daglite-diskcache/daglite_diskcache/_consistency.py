"""``daglite cache check``: database and value files, touching only regular files inside.

diskcache's own ``Cache.check`` joins every stored file name to the directory and
``os.remove``\\ s unknown files by path, following symlinks on the way. This
replacement does the same checks but treats the database as untrusted:

* a row whose file name is not a value file daglite-diskcache writes, or names a
  symlink, FIFO, device or a path through a symlinked directory, is reported and
  (with ``fix``) its **row** deleted; the file it names is never opened or removed;
* a regular file no row refers to (left by a crash) is removed with ``fix``; any
  other unknown entry (symlink, FIFO, socket, device) is reported and left alone,
  for the user to inspect;
* empty value directories are removed bottom-up, never the cache directory itself;
* ``Settings.count`` and ``Settings.size`` are compared with the rows, as diskcache does.

Every removal goes through :mod:`._files` (directory descriptors, no symlink
followed). The file checks run inside one write transaction, as diskcache's do.
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import diskcache  # type: ignore[import-untyped]

from ._files import UnsafeValueFileError, file_kind, open_value, rmdir_inside, split_name, unlink_inside

__all__ = ["Findings", "check_cache"]

_DB_FILES = frozenset({"cache.db", "cache.db-wal", "cache.db-shm", "cache.db-journal"})


@attrs.frozen
class Findings:
    """What :func:`check_cache` found: fixed (or fixable) problems, and ones left for the user."""

    problems: list[str]
    left_alone: list[str]


def check_cache(cache: diskcache.Cache, *, fix: bool) -> Findings:
    """Check ``cache``'s database and value files (see the module docstring)."""
    sql = cache._sql  # noqa: SLF001
    directory = str(cache.directory)
    problems: list[str] = []
    left: list[str] = []
    rows = sql("PRAGMA integrity_check").fetchall()
    if len(rows) != 1 or rows[0][0] != "ok":
        problems += [f"database: {message}" for (message,) in rows]
    if fix:
        sql("VACUUM")
    with cache.transact(retry=True):
        known: set[str] = set()
        select = "SELECT rowid, key, size, filename FROM Cache WHERE filename IS NOT NULL"
        for rowid, key, size, filename in sql(select).fetchall():
            problem = _check_row(directory, filename, size)
            if problem is None:
                known.add(os.path.normpath(os.path.join(directory, filename)))
                continue
            what, action = problem
            problems.append(f"entry {key!r}: {what}")
            if fix:
                if action == "delete":
                    sql("DELETE FROM Cache WHERE rowid = ?", (rowid,))
                else:
                    sql("UPDATE Cache SET size = ? WHERE rowid = ?", (action, rowid))
        _check_files(directory, known, fix, problems, left)
        _check_settings(cache, sql, fix, problems)
    return Findings(problems, left)


def _check_row(directory: str, filename: Any, size: int) -> tuple[str, Any] | None:
    """``None`` if the row's file is fine, else ``(message, "delete" | real size)``."""
    if split_name(filename) is None:
        return f"file name {filename!r} is not one daglite-diskcache writes; row removed, file not touched", "delete"
    try:
        fd = open_value(directory, filename)
    except FileNotFoundError:
        return f"value file not found: {filename}", "delete"
    except UnsafeValueFileError as exc:
        return f"{exc}; row removed, file not touched", "delete"
    except OSError as exc:
        return f"value file {filename} cannot be opened ({type(exc).__name__}: {exc})", "delete"
    try:
        real = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if real != size:
        return f"wrong file size: {filename}, {real} != {size}", real
    return None


def _check_files(directory: str, known: set[str], fix: bool, problems: list[str], left: list[str]) -> None:
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.normpath(os.path.join(dirpath, name))
            if path in known or (dirpath == directory and name in _DB_FILES):
                continue
            try:
                kind = file_kind(directory, path)
            except FileNotFoundError:
                continue
            if kind != "regular":
                left.append(f"unknown {kind}: {path} (left alone; inspect and remove it yourself)")
                continue
            problems.append(f"unknown file: {path}")
            if fix:
                try:
                    unlink_inside(directory, path)
                except OSError as exc:
                    left.append(f"unknown file: {path} could not be removed ({type(exc).__name__}: {exc})")
    for dirpath, dirs, files in os.walk(directory, topdown=False):
        if dirpath == directory or os.listdir(dirpath):
            continue
        problems.append(f"empty directory: {dirpath}")
        if fix:
            try:
                rmdir_inside(directory, dirpath)
            except OSError as exc:
                left.append(f"empty directory: {dirpath} could not be removed ({type(exc).__name__}: {exc})")


def _check_settings(cache: diskcache.Cache, sql: Any, fix: bool, problems: list[str]) -> None:
    for setting, select in (
        ("count", "SELECT COUNT(key) FROM Cache"),
        ("size", "SELECT COALESCE(SUM(size), 0) FROM Cache"),
    ):
        cache.reset(setting)
        ((actual,),) = sql(select).fetchall()
        recorded = getattr(cache, setting)
        if recorded != actual:
            problems.append(f"Settings.{setting} is {recorded}, the rows say {actual}")
            if fix:
                sql("UPDATE Settings SET value = ? WHERE key = ?", (actual, setting))
                cache.reset(setting)
