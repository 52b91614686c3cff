"""Where caches live and how their directories are created.

The default store is ``.daglite/cache`` under the current working directory,
resolved to an absolute path **when the store object is created**, so a later
``os.chdir`` (or a process worker started elsewhere) keeps using the same
directory. ``DAGLITE_CACHE_STORE`` (read by the core's settings) overrides it.

Directories are created ``0o700`` (each missing component, not just the leaf),
because anyone who can write to a cache directory can plant entries: signing
stops those from being loaded, but privacy of the cached results needs the
permissions too. An existing store directory that is group- or world-writable, or
owned by another user, gets one :class:`DiskCacheWarning` per process.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path

from daglite_core import paths

from ._errors import DiskCacheWarning

__all__ = ["DEFAULT_RELATIVE_DIR", "default_cache_dir", "ensure_private_dir", "resolve_dir"]

DEFAULT_RELATIVE_DIR = Path(".daglite") / "cache"

_checked: set[str] = set()
_checked_lock = threading.Lock()


def default_cache_dir() -> Path:
    """``DAGLITE_CACHE_STORE`` if set, else ``<cwd>/.daglite/cache``, absolute."""
    env = os.environ.get("DAGLITE_CACHE_STORE")
    return resolve_dir(env) if env else resolve_dir(None)


def resolve_dir(spec: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> Path:
    """The absolute directory for ``spec`` (``None``: ``<cwd>/.daglite/cache``)."""
    if spec is None:
        return Path.cwd() / DEFAULT_RELATIVE_DIR
    return Path(os.path.abspath(Path(os.fsdecode(spec)).expanduser()))


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents) ``0o700``; warn once if it is too open.

    Creation is :func:`daglite_core.paths.ensure_private_dir`; a directory that
    already existed is checked (once per process) by :func:`_warn_if_open`.
    """
    if not paths.ensure_private_dir(directory):
        _warn_if_open(directory)


def _warn_if_open(directory: Path) -> None:
    key = str(directory)
    with _checked_lock:
        if key in _checked:
            return
        _checked.add(key)
    info = directory.stat()
    problems = []
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f"it is writable by {'others' if info.st_mode & stat.S_IWOTH else 'its group'} "
                        f"(mode {stat.S_IMODE(info.st_mode):o})")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        problems.append(f"it is owned by uid {info.st_uid}, not by you")
    if problems:
        warnings.warn(
            f"Cache directory {directory}: {' and '.join(problems)}; other users could plant or "
            f"remove entries (planted ones are rejected by the signature check). "
            f"Fix with: chmod 700 {directory}",
            DiskCacheWarning,
            stacklevel=4,
        )
