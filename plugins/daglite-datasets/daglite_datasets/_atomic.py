"""Atomic, durable file replacement (the recipe) and the sweep of abandoned temporary files.

The write itself is :func:`daglite_datasets._dirfd.write_atomic`, done through
directory descriptors so that no symlink swapped in can redirect it. It follows
the POSIX recipe (reliability notes, section 3):

1. create ``.<name>.<12 hex>.tmp`` **in the target's directory** (same
   filesystem, so the rename is atomic) with ``O_CREAT | O_EXCL`` and mode
   ``0o666``: the kernel applies the umask, giving ``0o666 & ~umask`` like any
   file the user creates. (``mkstemp`` makes ``0o600`` and reading the umask
   means setting it, which races with other threads.)
2. let the format write, then ``flush`` + ``os.fdatasync`` (``os.fsync`` where
   there is none);
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
the design asks of dataset directories), and only when something is written;
those a failed save created are removed again.
"""

from __future__ import annotations

import os
import time

from ._keys import is_temp_name

__all__ = ["sweep_directory"]

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
