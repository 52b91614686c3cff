"""Private directories for what daglite and its plugins store (public: plugins use it).

Caches, outboxes and journals hold pickles and results that only their owner
should read or write, so their directories are created **private**:
:func:`ensure_private_dir` makes every missing component (not just the leaf)
with mode ``0o700``. Existing directories are left as they are: whether an
existing directory that is too open deserves a warning, and whose, is the
caller's decision (it knows what the directory is for).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ensure_private_dir"]


def ensure_private_dir(directory: str | os.PathLike[str]) -> bool:
    """Create ``directory`` and its missing parents with mode ``0o700``; return whether any was created.

    Each directory this call creates is ``chmod``-ed to ``0o700`` after ``mkdir``
    (the umask can only remove bits, and a restrictive umask must not make it
    unusable for its owner). A component created meanwhile by another process or
    thread is accepted as it is. ``OSError`` (e.g. a file in the way, no
    permission) propagates to the caller, which names what the directory is for.
    """
    missing: list[Path] = []
    current = Path(directory)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created = False
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # another process or thread made it first
            continue
        os.chmod(path, 0o700)
        created = True
    return created
