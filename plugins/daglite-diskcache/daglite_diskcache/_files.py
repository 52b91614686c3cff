"""Value files: only regular files inside the cache directory are ever opened or removed.

A large entry's bytes live in a file whose name diskcache stores in the ``filename``
column of ``cache.db``. Anyone who can write to the database can make that column
name anything (``/home/you/.ssh/id_rsa``, ``../../x``, a FIFO that blocks the reader
forever, a device, a symlink out of the directory). diskcache joins it to the
cache directory and opens or removes whatever it names. Here a name is used only if:

1. it has exactly the shape diskcache gives (``xx/yy/<28 hex digits>.val``, all
   lowercase hex), so it is relative and has no ``..``;
2. each directory on the way is reached **without following a symlink** (directory
   file descriptors opened ``O_NOFOLLOW`` relative to the cache directory, i.e.
   ``openat``), so a symlinked ``xx`` or ``xx/yy`` cannot lead out;
3. the file itself is a **regular file**: checked with ``lstat`` before opening
   (so a device is never opened), opened ``O_NOFOLLOW | O_NONBLOCK`` (a symlink
   fails, a FIFO swapped in meanwhile does not block) and checked again with
   ``fstat`` on the open descriptor.

Anything else raises :class:`UnsafeValueFileError` (reading) or is left alone
(removing): the entry's database row may be deleted, the file it names never is.
Removing a value file then removes its two parent directories if they became
empty, and never anything above the cache directory.

Where the platform lacks ``dir_fd`` support (Windows), the same checks run on
paths: ``lstat`` of each component and ``realpath`` containment.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterator

__all__ = [
    "UnsafeValueFileError",
    "check_write_path",
    "file_kind",
    "open_value",
    "read_value",
    "remove_value",
    "rmdir_inside",
    "split_name",
    "unlink_inside",
]

_NAME = re.compile(r"([0-9a-f]{2})[/\\]([0-9a-f]{2})[/\\]([0-9a-f]{28}\.val)")

_DIR_FD = {os.open, os.stat, os.unlink, os.rmdir} <= os.supports_dir_fd
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_LOOP_ERRNOS = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)
"""What opening through a symlink with ``O_NOFOLLOW`` fails with (EMLINK on FreeBSD)."""
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC | _O_BINARY


class UnsafeValueFileError(ValueError):
    """An entry's file name is not a regular value file inside the cache directory."""


def split_name(filename: object) -> tuple[str, str, str] | None:
    """``(xx, yy, name)`` for a value-file name diskcache could have made, else ``None``."""
    if type(filename) is not str:
        return None
    match = _NAME.fullmatch(filename)
    return None if match is None else (match[1], match[2], match[3])


def _unsafe(filename: object, why: str) -> UnsafeValueFileError:
    return UnsafeValueFileError(f"the entry names {filename!r}, which {why}; it was not opened")


@contextlib.contextmanager
def _parent(directory: str, parts: tuple[str, str, str]) -> Iterator[tuple[int, int, int]]:
    """Descriptors of the cache directory, ``xx`` and ``xx/yy``, none reached through a symlink."""
    fds: list[int] = []
    try:
        fds.append(os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC))
        for part in parts[:2]:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            if not stat.S_ISDIR(os.fstat(fds[-1]).st_mode):  # pragma: no cover - O_DIRECTORY refuses
                raise NotADirectoryError(part)
        yield fds[0], fds[1], fds[2]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _path_checks(directory: str, parts: tuple[str, str, str], filename: str) -> str:
    """Path-based checks where ``dir_fd`` is unavailable: the full path, or raise."""
    current = directory
    for part in parts[:2]:
        current = os.path.join(current, part)
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise _unsafe(filename, f"goes through {current}, which is not a plain directory")
    full = os.path.join(current, parts[2])
    root = os.path.realpath(directory)
    if os.path.commonpath([root, os.path.realpath(full)]) != root:  # pragma: no cover - lstat above
        raise _unsafe(filename, "resolves outside the cache directory")
    return full


def open_value(directory: str, filename: object) -> int:
    """A read-only descriptor on the value file ``filename`` names (see the module docstring).

    Raises :class:`UnsafeValueFileError` for a name or file that must not be opened,
    ``FileNotFoundError`` when the (well-formed) file does not exist, and other
    ``OSError`` for other failures.
    """
    parts = split_name(filename)
    if parts is None:
        raise _unsafe(filename, "is not a value-file name daglite-diskcache writes")
    name = parts[2]
    if _DIR_FD:
        try:
            with _parent(directory, parts) as (_, _, parent):
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode):
                    raise _unsafe(filename, f"is not a regular file ({_kind(info.st_mode)})")
                fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except (NotADirectoryError, IsADirectoryError) as exc:
            raise _unsafe(filename, "goes through something that is not a plain directory") from exc
        except OSError as exc:
            if exc.errno in _LOOP_ERRNOS:
                raise _unsafe(filename, "goes through a symlink") from exc
            raise
    else:  # pragma: no cover - Windows
        full = _path_checks(directory, parts, str(filename))
        info = os.lstat(full)
        if not stat.S_ISREG(info.st_mode):
            raise _unsafe(filename, f"is not a regular file ({_kind(info.st_mode)})")
        fd = os.open(full, _FILE_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped between lstat and open
            raise _unsafe(filename, f"is not a regular file ({_kind(info.st_mode)})")
        if _O_NONBLOCK and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_value(directory: str, filename: object) -> bytes:
    """The bytes of the value file ``filename`` names (see :func:`open_value`)."""
    fd = open_value(directory, filename)
    with os.fdopen(fd, "rb") as file:
        return file.read()


def remove_value(directory: str, filename: object) -> bool:
    """Remove the value file ``filename`` names if it is a regular file inside ``directory``.

    Then remove ``xx/yy`` and ``xx`` if they became empty. Anything else (a name of
    another shape, a symlink, a FIFO, a device, a symlinked directory on the way)
    is left alone. Errors are suppressed, as diskcache does (two processes may
    remove the same file at once). Whether a file was removed.
    """
    parts = split_name(filename)
    if parts is None:
        return False
    xx, yy, name = parts
    removed = False
    with contextlib.suppress(OSError):
        if _DIR_FD:
            with _parent(directory, parts) as (root, top, parent):
                if stat.S_ISREG(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=parent)  # unlink never follows a symlink
                    removed = True
                with contextlib.suppress(OSError):
                    os.rmdir(yy, dir_fd=top)
                    os.rmdir(xx, dir_fd=root)
        else:  # pragma: no cover - Windows
            full = _path_checks(directory, parts, str(filename))
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.remove(full)
                removed = True
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(directory, xx, yy))
                os.rmdir(os.path.join(directory, xx))
    return removed


@contextlib.contextmanager
def _walk_to(directory: str, parts: list[str]) -> Iterator[int]:
    """A descriptor of ``directory/parts...``, each component opened without following symlinks."""
    fds = [os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)]
    try:
        for part in parts:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        yield fds[-1]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _relative_parts(directory: str, path: str) -> list[str]:
    rel = os.path.relpath(path, directory)
    parts = rel.replace("\\", "/").split("/")
    if rel.startswith("..") or os.path.isabs(rel) or any(p in ("", ".", "..") for p in parts):
        msg = f"{path} is not inside {directory}"
        raise ValueError(msg)
    return parts


def file_kind(directory: str, path: str) -> str:
    """``"regular"`` or what else ``path`` (inside ``directory``) is, without following symlinks."""
    mode = os.lstat(path).st_mode
    return "regular" if stat.S_ISREG(mode) else _kind(mode)


def unlink_inside(directory: str, path: str) -> bool:
    """Remove ``path`` if it is a regular file inside ``directory`` (no symlink followed on the way)."""
    parts = _relative_parts(directory, path)
    if not _DIR_FD:  # pragma: no cover - Windows
        root = os.path.realpath(directory)
        if os.path.commonpath([root, os.path.realpath(os.path.dirname(path))]) != root:
            return False
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.remove(path)
        return True
    with _walk_to(directory, parts[:-1]) as parent:
        if not stat.S_ISREG(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
            return False
        os.unlink(parts[-1], dir_fd=parent)
    return True


def rmdir_inside(directory: str, path: str) -> None:
    """Remove the empty directory ``path`` inside ``directory`` (never ``directory`` itself)."""
    parts = _relative_parts(directory, path)
    if not _DIR_FD:  # pragma: no cover - Windows
        if not os.path.islink(path):
            os.rmdir(path)
        return
    with _walk_to(directory, parts[:-1]) as parent:
        os.rmdir(parts[-1], dir_fd=parent)  # rmdir of a symlink fails (ENOTDIR): left alone


def check_write_path(directory: str, filename: str) -> None:
    """Refuse to write a new value file through a symlinked ``xx`` or ``xx/yy``.

    Missing directories are fine (diskcache creates them); an existing one must be a
    plain directory, so a planted symlink cannot redirect a write out of the cache.
    """
    current = directory
    for part in filename.replace("\\", "/").split("/")[:-1]:
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            msg = f"{current} in the cache directory is a {_kind(mode)}, not a directory; refusing to write through it"
            raise OSError(msg)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"
