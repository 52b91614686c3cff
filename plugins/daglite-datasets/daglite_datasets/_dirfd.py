"""File operations below the store root that no symlink swapped in after the key check can redirect.

:func:`daglite_datasets._keys.contained_path` resolves a key with ``realpath`` and
checks it lies inside the root. Between that check and the write, whoever can
write below the root could replace a directory on the way with a symlink to
``/etc`` (a time-of-check/time-of-use race). So writes and reads do not use the
checked *path*: they start from a descriptor of the real root and open each
directory of the resolved key relative to the previous one with ``O_NOFOLLOW``
(``openat``); a component that has become a symlink fails with an error that says
so. The temporary file is created, renamed over the final name and the directory
fsynced through the same descriptor; the file to load is opened ``O_NOFOLLOW |
O_NONBLOCK`` and must be a regular file (a FIFO would block the reader forever).

:class:`Parent` remembers the directories it created, so a save that fails can
remove them again (deepest first, only if still empty): a failed save leaves no
empty directories behind, including the root if it made it.

Where the platform lacks ``dir_fd`` support (Windows) the same steps run on
paths, which leaves the race open; the key checks still apply.

**Stamp sidecars** (see ``_integrity``): a signed dataset ``name`` may have a
``.<name>.daglite-stamp`` beside it holding its file stamp. It is written through
the parent's descriptor, without fsync (a lost sidecar costs one full
verification): created ``O_EXCL`` with mode ``0o600`` the first time, then
overwritten in place (a rename per save would cost a journal commit) but only
if it is, before opening (``lstat``) and once open (``fstat``, same inode), a
regular file of ours with a single link: a planted symlink, FIFO, device or
hard link to another file is never written into (``O_NOFOLLOW | O_NONBLOCK``,
no ``O_TRUNC``). A torn or concurrent write leaves bytes that match no stamp. It is read ``O_NOFOLLOW | O_NONBLOCK``, only if it is a small
regular file; whatever is read is only ever compared with a MAC. Sidecar names
are reserved (:mod:`daglite_datasets._keys`); a name too long to get one (over
255 bytes with the affixes) is simply never stamped. Not used without ``dir_fd``
support (nor are stamps trusted there: see :mod:`daglite_core.signing`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from typing import IO

from ._keys import is_temp_name, stamp_name

__all__ = [
    "DIR_FD",
    "Parent",
    "UnsafePathError",
    "open_in",
    "open_parent",
    "read_stamp",
    "sweep_parent",
    "write_atomic",
    "write_stamp",
]

DIR_FD = {os.open, os.stat, os.unlink, os.rmdir, os.mkdir, os.rename} <= os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY
_READ_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY
_STAMP_FLAGS = os.O_WRONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY
_LOOP = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)
_TEMP_PREFIX_BYTES = 200
"""The final name's share of a temp name (``. + name + . + 12 hex + .tmp`` <= 255 bytes)."""
_MAX_NAME = 255
_STAMP_READ = 64
"""Bytes read from a sidecar: more than any stamp, so a longer file is not one."""


class UnsafePathError(OSError):
    """A directory on the way became a symlink, or the file is not a regular file."""


def _temp_name(name: str) -> str:
    stem = name
    while len(stem.encode("utf-8")) > _TEMP_PREFIX_BYTES:
        stem = stem[:-1]
    return f".{stem}.{secrets.token_hex(6)}.tmp"


class Parent:
    """An open directory below the root, reached without following symlinks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fds: list[int] = []
        self.names: list[str] = []  # component opened with fds[i] from fds[i - 1]
        self.created_root: list[str] = []  # absolute paths: the root and its missing parents
        self.created: list[int] = []  # indexes into names of directories this object made

    @property
    def fd(self) -> int:
        return self.fds[-1]

    def remove_created(self) -> None:
        """Remove the directories made here, deepest first, where still empty."""
        for index in sorted(self.created, reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(self.names[index], dir_fd=self.fds[index]) if DIR_FD else os.rmdir(
                    os.path.join(self.path, *self.names[: index + 1])
                )
        self.created.clear()
        for path in reversed(self.created_root):
            with contextlib.suppress(OSError):
                os.rmdir(path)
        self.created_root.clear()

    def close(self) -> None:
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds.clear()


def _make_root(root: str, parent: Parent) -> None:
    missing = []
    current = root
    while not os.path.isdir(current):
        missing.append(current)
        up = os.path.dirname(current)
        if up == current:
            break
        current = up
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # another writer made it first
            continue
        parent.created_root.append(path)


@contextlib.contextmanager
def open_parent(root: str, parts: list[str], *, create: bool) -> Iterator[Parent]:
    """The directory ``root/parts...`` (``root`` real, ``parts`` from the resolved key).

    With ``create``, missing directories are made ``0o700``. Raises
    :class:`UnsafePathError` when a component is (now) a symlink or not a directory,
    ``FileNotFoundError`` when one is missing and ``create`` is false.
    """
    parent = Parent(root)
    try:
        if create:
            _make_root(root, parent)
        if not DIR_FD:  # pragma: no cover - Windows
            if create:
                current = root
                for i, part in enumerate(parts):
                    current = os.path.join(current, part)
                    try:
                        os.mkdir(current, 0o700)
                        parent.names.append(part)
                        parent.created.append(i)
                    except FileExistsError:
                        parent.names.append(part)
            parent.path = os.path.join(root, *parts)
            yield parent
            return
        parent.fds.append(os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC))
        for part in parts:
            try:
                fd = os.open(part, _DIR_FLAGS, dir_fd=parent.fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o700, dir_fd=parent.fd)
                    parent.created.append(len(parent.names))
                except FileExistsError:
                    pass
                fd = os.open(part, _DIR_FLAGS, dir_fd=parent.fd)
            parent.names.append(part)
            parent.fds.append(fd)
        yield parent
    except OSError as exc:
        if exc.errno in _LOOP and not isinstance(exc, UnsafePathError):
            msg = (
                f"a directory on the way to {os.path.join(root, *parts)} is a symlink or not a directory "
                "(changed after the key was checked?); refusing to follow it"
            )
            raise UnsafePathError(exc.errno, msg) from exc
        raise
    finally:
        parent.close()


_fdatasync = getattr(os, "fdatasync", os.fsync)


def _create_temp(parent: Parent, name: str, mode: int) -> tuple[int, str]:
    """A new ``.<name>.<12 hex>.tmp`` in ``parent``, created ``O_EXCL | O_NOFOLLOW``: its descriptor and name."""
    while True:
        temp = _temp_name(name)
        try:
            fd = os.open(temp, _TEMP_FLAGS, mode, dir_fd=parent.fd) if DIR_FD else os.open(
                os.path.join(parent.path, temp), _TEMP_FLAGS, mode
            )
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        return fd, temp


def write_atomic(parent: Parent, name: str, write: Callable[[IO[bytes]], None]) -> os.stat_result:
    """Replace ``name`` in ``parent`` with what ``write(file)`` writes, atomically and durably.

    Temp file ``.<name>.<12 hex>.tmp`` created ``O_EXCL | O_NOFOLLOW`` (mode ``0o666``
    before the umask), synced with ``fdatasync`` where there is one (the data and
    the size, not the timestamps: nothing reads those back after a crash), renamed
    over ``name`` (a symlink there is replaced, not followed), then the directory
    is fsynced. Any failure removes the temp file.
    Returns the file's ``fstat`` from its descriptor **after** the rename (a rename
    moves ``ctime``), which is what a stamp of the published file needs.
    """
    fd, temp = _create_temp(parent, name, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            _fdatasync(file.fileno())
            if DIR_FD:
                os.replace(temp, name, src_dir_fd=parent.fd, dst_dir_fd=parent.fd)
            else:  # pragma: no cover - Windows
                os.replace(os.path.join(parent.path, temp), os.path.join(parent.path, name))
            info = os.fstat(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=parent.fd) if DIR_FD else os.unlink(os.path.join(parent.path, temp))
        raise
    if DIR_FD:
        os.fsync(parent.fd)
    return info


def write_stamp(parent: Parent, name: str, stamp: bytes) -> None:
    """Best effort: keep ``stamp`` in ``name``'s sidecar (see the module docstring); never raises ``OSError``."""
    sidecar = stamp_name(name)
    if not DIR_FD or len(sidecar.encode("utf-8", "surrogateescape")) > _MAX_NAME:
        return
    with contextlib.suppress(OSError):
        fd = _open_sidecar(parent, sidecar)
        if fd is None:
            return  # a sidecar daglite did not write: left alone, the file is verified in full
        try:
            os.pwrite(fd, stamp, 0)
            if os.fstat(fd).st_size != len(stamp):
                os.ftruncate(fd, len(stamp))
        finally:
            os.close(fd)


def _open_sidecar(parent: Parent, sidecar: str) -> int | None:
    """A descriptor to write the sidecar through: a new file, or the existing one if safe to write into."""
    try:
        before = os.stat(sidecar, dir_fd=parent.fd, follow_symlinks=False)
    except FileNotFoundError:
        return os.open(sidecar, _STAMP_FLAGS | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=parent.fd)
    if not _own_single_file(before):
        return None
    fd = os.open(sidecar, _STAMP_FLAGS, dir_fd=parent.fd)
    info = os.fstat(fd)
    if _own_single_file(info) and (info.st_dev, info.st_ino) == (before.st_dev, before.st_ino):
        return fd
    os.close(fd)
    return None


def _own_single_file(info: os.stat_result) -> bool:
    """A regular file of ours with no other link: writing into it can only change the sidecar itself."""
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_uid == os.geteuid()


def read_stamp(parent: Parent, name: str) -> bytes | None:
    """The content of ``name``'s sidecar if it is a small regular file, else ``None`` (never raises ``OSError``)."""
    if not DIR_FD:  # pragma: no cover - Windows: stamps are never trusted there
        return None
    try:
        fd = os.open(stamp_name(name), _READ_FLAGS, dir_fd=parent.fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _STAMP_READ)
    except OSError:
        return None
    finally:
        os.close(fd)


def sweep_parent(parent: Parent, stale_after: float) -> None:
    """Remove the store's temp files in ``parent`` older than ``stale_after`` seconds."""
    if not DIR_FD:  # pragma: no cover - Windows
        from ._atomic import sweep_directory

        sweep_directory(parent.path, stale_after)
        return
    now = time.time()
    with os.scandir(parent.fd) as entries:
        for entry in list(entries):
            if not is_temp_name(entry.name):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > stale_after:
                    os.unlink(entry.name, dir_fd=parent.fd)


def open_in(parent: Parent, name: str) -> IO[bytes]:
    """Open ``name`` in ``parent`` for reading: not through a symlink, a regular file only.

    Raises ``FileNotFoundError`` when it does not exist and :class:`UnsafePathError`
    when it is a symlink or not a regular file.
    """
    shown = os.path.join(parent.path, *parent.names, name) if DIR_FD else os.path.join(parent.path, name)
    if DIR_FD:
        info = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(errno.EINVAL, f"{shown} is not a regular file")
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno in _LOOP:
                raise UnsafePathError(exc.errno, f"{shown} is a symlink (changed after the key was checked?)") from exc
            raise
    else:  # pragma: no cover - Windows
        fd = os.open(os.path.join(parent.path, name), _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(errno.EINVAL, f"{shown} is not a regular file")
        if _O_NONBLOCK and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
