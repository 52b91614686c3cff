"""One warning per process for a store root other users can write to.

Anyone who can write below the root can replace files (unsigned formats load
whatever is there), delete datasets, or race the store with symlinks (the
writes themselves cannot be redirected, see ``_dirfd``). A root the store creates
is ``0o700``; an existing one that is group- or world-writable, or owned by
another user, is reported once per process (per real root path), as the cache
directory is.
"""

from __future__ import annotations

import os
import stat
import threading
import warnings

from ._errors import DatasetStoreWarning

__all__ = ["check_root", "reset"]

_lock = threading.Lock()
_checked: set[str] = set()


def check_root(real_root: str) -> None:
    """Warn once if ``real_root`` (which exists) is writable by others or not the user's."""
    with _lock:
        if real_root in _checked:
            return
        _checked.add(real_root)
    try:
        info = os.stat(real_root)
    except OSError:
        return
    problems = []
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "others" if info.st_mode & stat.S_IWOTH else "its group"
        problems.append(f"it is writable by {who} (mode {stat.S_IMODE(info.st_mode):o})")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        problems.append(f"it is owned by uid {info.st_uid}, not by you")
    if problems:
        warnings.warn(
            f"Dataset store root {real_root}: {' and '.join(problems)}; other users could replace or "
            f"delete datasets (signed pickles they change are refused). Fix with: chmod 700 {real_root}",
            DatasetStoreWarning,
            stacklevel=4,
        )


def reset() -> None:
    """Forget which roots were checked (tests)."""
    with _lock:
        _checked.clear()
