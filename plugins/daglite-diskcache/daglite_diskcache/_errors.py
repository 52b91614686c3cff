"""The plugin's warning and error types."""

from __future__ import annotations

from daglite_core import CacheWarning

__all__ = ["CacheEntryError", "CacheWriteError", "DiskCacheWarning"]


class DiskCacheWarning(CacheWarning):
    """Something about a cache directory needs the user's attention (permissions, recovery).

    A :class:`daglite_core.CacheWarning`, so one filter silences both.
    """


class CacheEntryError(Exception):
    """A stored entry could not be read; it was removed.

    Raised by :meth:`DiskCacheStore.get`; the core turns it into a cache miss and one
    warning naming the task and the key.
    """

    def __init__(self, message: str, *, key: str, directory: str) -> None:
        super().__init__(message)
        self.key = key
        self.directory = directory


class CacheWriteError(Exception):
    """A value could not be stored (disk full, unpicklable value, lock timeout).

    Raised by :meth:`DiskCacheStore.set`; the core warns naming the task and the key,
    and the caller still gets the task's result.
    """

    def __init__(self, message: str, *, key: str, directory: str) -> None:
        super().__init__(message)
        self.key = key
        self.directory = directory
