"""The plugin registered under the ``daglite`` entry point group (name ``diskcache``).

- ``provide_cache_store``: ``None`` (``cache=True`` with no store named) gives the
  default store, ``.daglite/cache`` under the current directory (or the path in the
  session's ``cache_store`` setting / ``DAGLITE_CACHE_STORE``); a path (``str``,
  ``bytes``, ``os.PathLike``) gives a :class:`DiskCacheStore` there; anything else
  is left to other plugins (``None``).
- ``provide_cli_commands``: ``daglite cache stats | clear | check [--fix]``.

Importing this module (every process that opens a session does) imports neither
diskcache, sqlite3 nor argparse: the store is imported by the first
``provide_cache_store`` call (the first cached call), the CLI by ``daglite``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

if TYPE_CHECKING:
    import argparse

    from daglite_core import DagliteSettings

    from ._store import DiskCacheStore

__all__ = ["provide_cache_store", "provide_cli_commands"]


@hookimpl
def provide_cache_store(spec: Any, settings: DagliteSettings) -> DiskCacheStore | None:
    """A :class:`DiskCacheStore` for ``None`` or a path; ``None`` for anything else."""
    from ._store import DiskCacheStore

    if spec is None:
        spec = settings.cache_store
    if spec is None:
        return DiskCacheStore()
    if isinstance(spec, (str, bytes, os.PathLike)):
        return DiskCacheStore(os.fsdecode(spec))
    return None


@hookimpl
def provide_cli_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``daglite cache``."""
    from ._cli import add_commands

    add_commands(subparsers)
