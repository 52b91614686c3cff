"""Atomic, durable file replacement and the sweep of abandoned temporary files.

:func:`atomic_write` follows the POSIX recipe (reliability notes, section 3):

1. create ``.<name>.<12 hex>.tmp`` **in the target's directory** (same
   filesystem, so the rename is atomic) with ``O_CREAT | O_EXCL`` and mode
   ``0o666``: the kernel applies the umask, giving ``0o666 & ~umask`` like any
   file the user creates. (``mkstemp`` makes ``0o600`` and reading the umask
   means setting it, which races with other threads.)
2. let the format write, then ``flush`` + ``os.fsync``;
3. ``os.replace`` over the final name (atomic; a symlink at the final name is
   replaced, never followed);
4. ``fsync`` the directory, so the rename itself survives a power cut.

On *any* ``BaseException`` (an error in the serializer, ``KeyboardInterrupt``)
the temporary file is removed and the previous version is untouched. A process
killed with SIGKILL cannot clean up: its temporary file stays behind. Those are
ignored by load and list (their names are reserved, see
:mod:`daglite_datasets._keys`) and removed by :func:`sweep_directory` once older
than the store's ``stale_after`` (an hour by default: a younger one may belong
to a write still in progress in another process).

Directories are created one level at a time with mode ``0o700`` (private, as
the design asks of dataset directories), and only when something is written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from typing import IO

from ._keys import is_temp_name

__all__ = ["atomic_write", "make_dirs", "sweep_directory"]

_TEMP_PREFIX_BYTES = 200
"""The final name's share of a temp name (``. + name + . + 12 hex + .tmp`` <= 255 bytes)."""
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _temp_name(name: str) -> str:
    stem = name
    while len(stem.encode("utf-8")) > _TEMP_PREFIX_BYTES:
        stem = stem[:-1]
    return f".{stem}.{secrets.token_hex(6)}.tmp"


def _fsync_directory(directory: str) -> None:
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:  # pragma: no cover - Windows has no directory fsync
        return
    fd = os.open(directory, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: str) -> None:
    """Create ``directory`` and its missing parents, each with mode ``0o700``."""
    missing = []
    current = directory
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it first
            os.mkdir(path, 0o700)


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` with what ``write(file)`` writes, atomically and durably.

    The directory of ``path`` must exist.
    """
    directory, name = os.path.split(path)
    while True:
        temp = os.path.join(directory, _temp_name(name))
        try:
            fd = os.open(temp, _FLAGS, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        break
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_directory(directory)


def sweep_directory(directory: str, stale_after: float, now: float | None = None) -> list[str]:
    """Remove the store's temp files in ``directory`` last modified over ``stale_after`` s ago.

    Returns the paths removed. Files that vanish meanwhile (another sweeper) are skipped.
    """
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat(follow_symlinks=False).st_mtime <= stale_after:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(entry.path)
    return removed
