"""Dataset key validation and containment in the store root.

A key is a relative, ``/``-separated path below the store root. It is checked in
two steps, both raising :class:`DatasetKeyError` naming the key and the rule:

1. :func:`check_key` checks the *text*, so that a key means the same file on
   every platform and can never climb out of the root: non-empty; no ``\\``,
   NUL or control characters; not absolute (``/x``), UNC (``//host``), a drive
   (``C:``), a URL (``scheme://``) or home-relative (``~``); no empty, ``.`` or
   ``..`` segment (so no trailing ``/``); none of ``<>:"|?*``; no segment ending
   in a space or a dot, or named after a Windows device (``CON``, ``nul.txt``,
   ``COM1``...); each segment at most 255 bytes of UTF-8; NFC-normalised (so
   ``é`` typed two ways is one key); and a file name that does not look like one
   of the store's own temporary files (``.<name>.<12 hex>.tmp``) or stamp
   sidecars (any name ending in ``.daglite-stamp``).
2. :func:`contained_path` resolves symlinks (``os.path.realpath``) and requires
   the result to lie inside the real root, compared with ``os.path.commonpath``
   (a string-prefix test would take ``/data/rootx`` for a child of
   ``/data/root``). This catches a symlink inside the root that points out.

   It also requires the resolved path to fit the system's path length limit
   (``PC_PATH_MAX``, 4096 bytes on Linux; 4096 where it cannot be asked), so an
   over-long key is a :class:`DatasetKeyError` saying so, not an ``OSError`` from
   deep inside a write.

The text rules alone already exclude every traversal; step 2 is what keeps
symlinks honest (and ``_dirfd`` keeps them honest *after* the check). Nothing is
created or opened by either step.
"""

from __future__ import annotations

import os
import re
import unicodedata

from ._errors import DatasetKeyError

__all__ = ["STAMP_SUFFIX", "TEMP_FILE", "check_key", "contained_path", "is_stamp_name", "is_temp_name", "stamp_name"]

MAX_SEGMENT_BYTES = 255
TEMP_FILE = re.compile(r"\..*\.[0-9a-f]{12}\.tmp", re.DOTALL)
"""Names of the store's temporary files: ``.<name>.<12 hex digits>.tmp``."""
STAMP_SUFFIX = ".daglite-stamp"
"""The end of the store's stamp sidecars, ``.<name>.daglite-stamp`` (see ``_integrity``)."""

_FORBIDDEN = frozenset('<>:"|?*')
_DRIVE = re.compile(r"[A-Za-z]:")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in (*"123456789", "\u00b9", "\u00b2", "\u00b3")}
)


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of the store's temporary files."""
    return TEMP_FILE.fullmatch(name) is not None


def is_stamp_name(name: str) -> bool:
    """Whether a file name is reserved for the store's stamp sidecars (it ends in ``.daglite-stamp``)."""
    return name.endswith(STAMP_SUFFIX)


def stamp_name(name: str) -> str:
    """The stamp sidecar's name for the dataset file ``name``."""
    return f".{name}{STAMP_SUFFIX}"


def _control(text: str) -> str | None:
    for char in text:
        if char == "\x00":
            return "it contains a NUL character"
        if unicodedata.category(char) == "Cc":
            return f"it contains the control character {char!r}"
    return None


def _whole_key_rule(key: str) -> str | None:
    if not key:
        return "it is empty"
    control = _control(key)
    if control is not None:
        return control
    if "\\" in key:
        return "it contains a backslash ('\\'); separate segments with '/'"
    if key.startswith("//"):
        return "it is a UNC path ('//host/share'); keys are relative to the store root"
    if key.startswith("/"):
        return "it is an absolute path; keys are relative to the store root"
    if _SCHEME.match(key):
        return "it is a URL ('scheme://'); keys are relative paths inside the store root"
    if _DRIVE.match(key):
        return "it starts with a drive ('C:'); keys are relative to the store root"
    if key.startswith("~"):
        return "it starts with '~' (home directory); keys are relative to the store root"
    if key.endswith("/"):
        return "it ends with '/' (a directory, not a dataset)"
    if unicodedata.normalize("NFC", key) != key:
        fixed = unicodedata.normalize("NFC", key)
        return f"it is not NFC-normalised Unicode (use {fixed!r})"
    return None


def _segment_rule(segment: str) -> str | None:
    if segment == "":
        return "it has an empty segment ('//')"
    if segment in (".", ".."):
        return f"it has a {segment!r} segment"
    bad = sorted(_FORBIDDEN.intersection(segment))
    if bad:
        return f"segment {segment!r} contains {''.join(bad)!r} (one of <>:\"|?*, not portable)"
    if segment[-1] in " .":
        return f"segment {segment!r} ends with a space or a dot (not portable)"
    stem = segment.split(".", 1)[0].rstrip(" ").lower()
    if stem in _RESERVED:
        return f"segment {segment!r} is a reserved device name on Windows"
    size = len(segment.encode("utf-8"))
    if size > MAX_SEGMENT_BYTES:
        return f"segment {segment[:20]!r}... is {size} bytes long (at most {MAX_SEGMENT_BYTES})"
    return None


def check_key(key: str) -> tuple[str, ...]:
    """Check ``key``'s text; return its segments.

    :raises TypeError: the key is not a ``str``.
    :raises DatasetKeyError: (a ``ValueError``) naming the key and the rule.
    """
    if not isinstance(key, str):
        msg = f"Dataset key {key!r} must be a str, not {type(key).__name__}"
        raise TypeError(msg)
    rule = _whole_key_rule(key)
    if rule is not None:
        raise DatasetKeyError(key, rule)
    segments = tuple(key.split("/"))
    for segment in segments:
        rule = _segment_rule(segment)
        if rule is not None:
            raise DatasetKeyError(key, rule)
    if is_temp_name(segments[-1]):
        raise DatasetKeyError(key, "its file name has the form of the store's temporary files (.<name>.<hex>.tmp)")
    if is_stamp_name(segments[-1]):
        raise DatasetKeyError(key, f"its file name ends in {STAMP_SUFFIX!r}, reserved for the store's stamp files")
    return segments


def contained_path(root: str, key: str, segments: tuple[str, ...]) -> str:
    """The real path of ``key`` below ``root``, symlinks resolved.

    :raises DatasetKeyError: the resolved path leaves the real root (a symlink
        below the root points outside it).
    """
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, *segments))
    try:
        inside = os.path.commonpath([real_root, target]) == real_root and target != real_root
    except ValueError:  # different drives on Windows
        inside = False
    if not inside:
        rule = f"it resolves to {target!r}, outside the store root {real_root!r} (through a symlink)"
        raise DatasetKeyError(key, rule)
    size, limit = len(os.fsencode(target)), _path_max(real_root)
    if size >= limit:
        rule = (
            f"it is too long: the file's path below {real_root!r} would be {size} bytes, "
            f"and this system allows paths of at most {limit - 1}"
        )
        raise DatasetKeyError(key, rule)
    return target


def _path_max(real_root: str) -> int:
    """The system's path length limit (including the terminating NUL) where ``real_root`` lives."""
    current = real_root
    while True:
        try:
            return int(os.pathconf(current, "PC_PATH_MAX"))
        except (OSError, ValueError, AttributeError):
            if not hasattr(os, "pathconf"):
                return 4096
            parent = os.path.dirname(current)
            if parent == current:
                return 4096
            current = parent
