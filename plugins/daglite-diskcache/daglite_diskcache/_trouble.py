"""Store-wide problems are reported once, not once per call.

A bad signing-key file, a cache directory that cannot be opened, a read-only or
full disk: every call would hit the same wall, and a warning per call buries the
one thing the user needs to read. The store reports such a problem **once per
process** (per directory and kind of problem), then stops trying for
:data:`PAUSE` seconds: reads are misses and writes are skipped, silently. After
the pause it tries again; a problem that persists is not reported again, one that
went away is forgotten so that a later recurrence is reported afresh.
"""

from __future__ import annotations

import errno
import sqlite3
import threading

__all__ = ["PAUSE", "first_report", "forget", "is_store_wide_write_error", "reset"]

PAUSE = 30.0
"""Seconds a store stops trying after a store-wide problem."""

_lock = threading.Lock()
_reported: set[tuple[str, str]] = set()

_WRITE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


def first_report(directory: str, kind: str) -> bool:
    """Whether problem ``kind`` of ``directory`` is new to this process (and record it)."""
    with _lock:
        if (directory, kind) in _reported:
            return False
        _reported.add((directory, kind))
        return True


def forget(directory: str) -> None:
    """The directory works again: report its next problem afresh."""
    with _lock:
        for entry in [e for e in _reported if e[0] == directory]:
            _reported.discard(entry)


def reset() -> None:
    """Forget every report (tests)."""
    with _lock:
        _reported.clear()


def is_store_wide_write_error(exc: BaseException) -> str | None:
    """The kind of store-wide write failure ``exc`` is (``read-only``, ``full``), else ``None``.

    A value that cannot be pickled or a lock held too long says nothing about the
    next write; a read-only file system, missing permissions or a full disk does.
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "readonly" in text or "read-only" in text:
            return "read-only"
        if "disk is full" in text or "disk full" in text:
            return "full"
        return None
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "read-only"
    return None
