"""A diskcache ``Disk`` that never unpickles and never leaks a partial value file.

diskcache's own ``Disk`` unpickles values stored in pickle mode and keys stored
non-raw; an attacker who can write to ``cache.db`` would run code through either
(CVE-2025-69872). The store only ever writes ``bytes`` values under ``str`` keys,
so :class:`SafeDisk` refuses everything else: a pickle-mode value raises, a
pickled key comes back as its raw bytes. On a failed write (``ENOSPC``) diskcache
leaves the partly written ``.val`` file behind; :class:`SafeDisk` removes it.

Value files are opened and removed only through :mod:`._files`: a ``filename``
column that names anything but a regular file inside the cache directory (an
absolute path, ``..``, a symlink, a FIFO, a device) is never opened, and never
removed, whichever diskcache method (``delete``, ``clear``, ``expire``, eviction,
an overwrite) would have removed it.

A large sealed value (a :class:`PartsReader`) is written here rather than by
diskcache: the file is created ``O_EXCL | O_NOFOLLOW`` with mode ``0o600`` (never
writable by anyone else, from its first moment), written from the value's pieces,
and stamped from the open descriptor (:func:`daglite_core.signing.file_stamp`);
the stamp goes into the row's ``value`` column, which diskcache leaves empty for
file entries, so the row that publishes the file carries its stamp.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import diskcache  # type: ignore[import-untyped]
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_TEXT, UNKNOWN  # type: ignore[import-untyped]

from daglite_core.signing import file_stamp

from ._envelope import PartsReader, stamp_context
from ._files import check_write_path, open_value, remove_value

__all__ = ["SafeDisk", "UntrustedEntryError"]

_CREATE = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


class UntrustedEntryError(ValueError):
    """The database holds a value diskcache would unpickle: it was not written by daglite."""


class SafeDisk(diskcache.Disk):  # type: ignore[misc]
    """``diskcache.Disk`` for signed ``bytes`` values only (see the module docstring)."""

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._pending = threading.local()

    def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
        name, full_path = super().filename(key, value)
        check_write_path(self._directory, name)
        self._pending.path = full_path
        return name, full_path

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> Any:
        """Signed ``bytes``, or a large sealed value streamed from its :class:`PartsReader`."""
        if not (type(value) is bytes and not read) and not (read and isinstance(value, PartsReader)):
            msg = f"daglite-diskcache stores signed bytes only, not {type(value).__name__}"
            raise TypeError(msg)
        self._pending.path = None
        try:
            if isinstance(value, PartsReader):
                return self._store_parts(value, key)
            return super().store(value, read, key=key)
        except BaseException:
            path = self._pending.path
            if path is not None:
                with contextlib.suppress(OSError):
                    os.remove(path)
            raise

    def _store_parts(self, reader: PartsReader, key: Any) -> tuple[int, int, str, bytes | None]:
        """Write a large sealed value to a new private file; the row's fields, the stamp as its value."""
        filename, full_path = self.filename(key, reader)
        full_dir = os.path.dirname(full_path)
        for attempt in range(10):  # as diskcache: another cache may remove the directory meanwhile
            with contextlib.suppress(OSError):
                os.makedirs(full_dir)
            try:
                fd = os.open(full_path, _CREATE, 0o600)
                break
            except OSError:
                if attempt == 9:
                    raise
        try:
            size = reader.write_into(fd)
            stamp = file_stamp(fd, *stamp_context(str(key), reader.tag))
        finally:
            os.close(fd)
        return size, MODE_BINARY, filename, stamp

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            msg = "the entry holds a diskcache pickle, which daglite never writes; refusing to load it"
            raise UntrustedEntryError(msg)
        if mode == MODE_TEXT:
            msg = "the entry holds diskcache text, which daglite never writes; refusing to load it"
            raise UntrustedEntryError(msg)
        if mode == MODE_BINARY:
            file = os.fdopen(open_value(self._directory, filename), "rb")
            if read:
                return file
            with file:
                return file.read()
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: Any) -> None:
        """Remove a value file: only a regular file inside the directory (see ``_files``)."""
        remove_value(self._directory, file_path)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:  # a pickled key: never unpickle it
            return bytes(key)
        return super().get(key, raw)
