"""HMAC signing of stored pickles (cache entries, pickle datasets).

Loading a pickle runs code, so whatever daglite stores as a pickle is signed
with HMAC-SHA256 and verified **before** it is unpickled. The key lives outside
any cache or dataset directory:

1. ``DAGLITE_SIGNING_KEY`` (any string, used as UTF-8 bytes), else
2. the file named by ``DAGLITE_SIGNING_KEY_FILE``, else
3. ``$XDG_CONFIG_HOME/daglite/signing.key`` (default ``~/.config/daglite/``),
   created on first use with 32 random bytes, mode ``0o600``, in a ``0o700``
   directory.

The key is read once per process (:func:`reset` forgets it). Everything sharing a store must share the key (set the variable on every
machine of a cluster).

A key file that cannot be used (shorter than 16 bytes, a directory, unreadable,
or its directory cannot be created) raises :class:`SigningKeyError`, which says
what is wrong and how to fix it; the failure is remembered like the key, so a
process does not retry (and report) it on every call. A key file that other users
can read or write gets one :class:`SigningKeyWarning` when it is loaded: anyone
who can read the key can forge entries that will be unpickled.

**File stamps** (:func:`file_stamp`, :func:`stamp_matches`) let a store skip
re-hashing a large file it wrote, or already verified in full: a stamp is a MAC,
under a key derived from the signing key, over the file's identity and change
times ``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` and a context (the
store's kind, the entry or dataset key, the content's signature tag). A file is
trusted without hashing only when its stamp matches exactly **and** it is a
regular file owned by this process's effective user **and** its mode has no
group or other write bit. Why that is sound:

* ``st_ctime`` is set by the kernel on every change of the inode (a write, a
  truncate, ``chmod``, ``chown``, a rename, a new link, ``utime`` itself); no
  unprivileged call sets it back. A file modified by any process after it was
  stamped (same size, ``mtime`` restored with ``os.utime`` included) no longer
  matches, and is verified in full.
* No other non-root user can modify the inode: it is ours and not writable by
  group or others (checked on every read, from the open descriptor). A file
  another user puts in its place is owned by them (the uid check) and is
  another inode with another ``ctime``; a file copied from elsewhere (a backup
  restore, another machine) has no valid stamp (the MAC needs the key).
* The stamp covers the content's signature tag, read back from the file: a file
  that reuses a freed inode number within one ``ctime`` tick still has to carry
  the very tag that was stamped (and another entry's or dataset's file is bound
  to another key).
* Whoever runs as the same user, or root, can read the key anyway: out of scope,
  as for signing itself. One more way in is left to the file's owner: a file the
  owner once made writable by others may still be open (mapped writable) in their
  process, and writes through an already-dirty shared mapping do not move
  ``ctime``. Files daglite creates are never writable by others when stamped at
  write time; where files are shared that way, set ``DAGLITE_VERIFY=always``.
* Timestamp granularity: since Linux 6.13 a change right after an ``fstat`` gets
  a distinct ``ctime``; on older kernels and coarse filesystems a change in the
  same clock tick (milliseconds, a second on some) as the stamp can keep it.
  Only the owner can make such a change (see above), and the file must still
  carry the stamped tag.

Stamps are only made and trusted on POSIX (``os.geteuid``): Windows' "ctime" is
the creation time, which the owner can set. A store must take the ``fstat``
result it stamps **before** it reads the content it verifies (a change while
reading then moves ``ctime`` past the stamp), or after it wrote and renamed the
file itself.

``DAGLITE_VERIFY=always`` makes :func:`stamp_matches` answer ``False`` for every
file, so every read verifies the whole content; ``stamped`` (the default, also
when unset or empty) trusts valid stamps. Any other value counts as ``always``
and is warned about once (a ``UserWarning``). The variable is read on
every check, so it can be changed in a running process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import struct
import tempfile
import threading
import time
import warnings
from pathlib import Path

from .paths import ensure_private_dir

__all__ = [
    "SIGNATURE_SIZE",
    "SignatureError",
    "SigningKeyError",
    "SigningKeyWarning",
    "VERIFY_ENV",
    "file_stamp",
    "key_path",
    "mac",
    "new_mac",
    "reset",
    "sign",
    "signing_key",
    "stamp_matches",
    "verify",
    "verify_always",
]

SIGNATURE_SIZE = 32
MIN_KEY_SIZE = 16
_lock = threading.Lock()
_cached: bytes | None = None
_failed: SigningKeyError | None = None


class SigningKeyError(ValueError):
    """The signing-key file cannot be used; the message names the file and the fix."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class SigningKeyWarning(UserWarning):
    """The signing-key file is readable or writable by other users."""


class SignatureError(ValueError):
    """Stored bytes do not carry a valid signature: they were truncated or tampered with."""


def key_path() -> Path:
    """The key file used when ``DAGLITE_SIGNING_KEY`` is not set."""
    explicit = os.environ.get("DAGLITE_SIGNING_KEY_FILE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "daglite" / "signing.key"


def signing_key() -> bytes:
    """The signing key: read (or created) once per process, see :func:`reset`.

    Raises :class:`SigningKeyError` (remembered until :func:`reset`) when the key
    file cannot be used.
    """
    global _cached, _failed
    cached = _cached
    if cached is not None:
        return cached
    with _lock:
        if _failed is not None:
            raise _failed
        if _cached is None:
            env = os.environ.get("DAGLITE_SIGNING_KEY")
            if env:
                _cached = env.encode()
            else:
                path = key_path()
                try:
                    _cached = _load_or_create(path)
                except SigningKeyError as exc:
                    _failed = exc
                    raise
                except OSError as exc:
                    _failed = SigningKeyError(
                        f"daglite signing key file {path} cannot be read or created ({type(exc).__name__}: {exc}); "
                        "fix its permissions, or point DAGLITE_SIGNING_KEY_FILE at a usable file, "
                        "or set DAGLITE_SIGNING_KEY",
                        path=path,
                    )
                    raise _failed from exc
        return _cached


class _Keyed:
    """The signing key's keyed states, made once per key: copied per use, never fed.

    ``stamp`` is keyed with ``HMAC(signing key, domain)``: a derived key keeps file
    stamps and signatures apart (no stamp is ever a valid signature of some stored
    data, nor the reverse).
    """

    __slots__ = ("hmac", "inner", "key", "outer", "stamp")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.hmac = hmac.new(key, digestmod="sha256")
        self.stamp = hmac.new(hmac.new(key, _STAMP_DOMAIN, "sha256").digest(), digestmod="sha256")
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self.inner = hashlib.sha256(block.translate(_IPAD))
        self.outer = hashlib.sha256(block.translate(_OPAD))


_BLOCK = 64  # SHA-256's block size
_STAMP_DOMAIN = b"daglite file stamp/1\0"
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_state: _Keyed | None = None


def _keyed() -> _Keyed:
    global _state
    key = signing_key()
    state = _state
    if state is None or state.key is not key:
        state = _state = _Keyed(key)
    return state


def mac(data: bytes | memoryview) -> bytes:
    """The HMAC-SHA256 tag of ``data`` under the signing key, in one call.

    What :func:`sign` puts in front of ``data``, and what :func:`new_mac` fed with
    the same bytes digests to; the cheapest way to tag or check a small piece
    (compare with ``hmac.compare_digest``).

    Decision: RFC 2104 spelled out on ``hashlib`` (the key's padded inner and
    outer SHA-256 states are made once per key and copied per call) rather than
    copying a keyed ``hmac.HMAC``: that copy goes through Python methods around
    OpenSSL's HMAC context and costs ~0.5 µs more per tag (~1.3 against ~0.8 µs
    for 100 bytes), a third of what a small cache hit may spend on top of its
    SQL read. Not ``hmac.digest(key, data, "sha256")`` either: it sets the key up
    on every call (~2.9 µs). Tests check the tags equal :mod:`hmac`'s for keys
    shorter and longer than a block.
    """
    state = _keyed()
    inner = state.inner.copy()
    inner.update(data)
    outer = state.outer.copy()
    outer.update(inner.digest())
    return outer.digest()


def new_mac() -> hmac.HMAC:
    """A keyed HMAC-SHA256 state, to sign or verify data that comes in pieces.

    Feed it with ``update`` (``bytes``, ``memoryview``, any buffer: nothing is
    copied, and hashing a large piece releases the GIL); ``digest()`` equals the
    tag :func:`sign` puts in front of the pieces joined. Compare tags with
    ``hmac.compare_digest``. Large values can so be signed while written and
    verified while read, without ever holding a second copy.
    """
    return _keyed().hmac.copy()


def reset() -> None:
    """Forget the key (or the failure) read so far; the next use reads the environment again."""
    global _cached, _failed
    with _lock:
        _cached = None
        _failed = None


def _read_key(path: Path) -> bytes:
    """The key file's bytes, warning once if others may read or write it.

    A file shorter than :data:`MIN_KEY_SIZE` is re-read for up to 0.25 s: another
    daglite version may be creating it with a plain write.
    """
    for attempt in range(26):
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if stat.S_ISDIR(info.st_mode):  # pragma: no cover - open() raises first on POSIX
                raise IsADirectoryError(str(path))
            key = file.read()
        if len(key) >= MIN_KEY_SIZE:
            break
        if attempt < 25 and time.time() - info.st_mtime < 2:
            time.sleep(0.01)
            continue
        msg = (
            f"daglite signing key file {path} holds {len(key)} bytes; at least {MIN_KEY_SIZE} are needed. "
            f"Delete it to have a new key created, or write at least {MIN_KEY_SIZE} random bytes into it "
            "(every process sharing a store needs the same key)"
        )
        raise SigningKeyError(msg, path=path)
    if hasattr(os, "getuid") and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(
            f"daglite signing key file {path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"they could forge cache entries and pickle datasets that this process would load. "
            f"Fix with: chmod 600 {path}",
            SigningKeyWarning,
            stacklevel=4,
        )
    return key


def _load_or_create(path: Path) -> bytes:
    for _ in range(2):
        try:
            return _read_key(path)
        except IsADirectoryError as exc:
            msg = f"daglite signing key file {path} is a directory; point DAGLITE_SIGNING_KEY_FILE at a file"
            raise SigningKeyError(msg, path=path) from exc
        except FileNotFoundError:
            ensure_private_dir(path.parent)  # missing parents 0o700 too, not just the leaf
            # Write a complete temp file, then link it into place: a reader never
            # sees a partial key, and of two creators the first link wins.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing.", suffix=".tmp")
            try:
                os.write(fd, secrets.token_bytes(32))
                os.fsync(fd)
                os.close(fd)
                os.link(tmp, path)
            except FileExistsError:
                continue
            finally:
                os.unlink(tmp)
            continue
    return _read_key(path)  # pragma: no cover - created and removed concurrently


def sign(data: bytes) -> bytes:
    """``data`` with its HMAC-SHA256 signature in front."""
    return mac(data) + data


def verify(blob: bytes) -> bytes:
    """The data of a :func:`sign`-ed blob; :class:`SignatureError` if it does not verify."""
    if len(blob) < SIGNATURE_SIZE:
        msg = f"signed data is truncated ({len(blob)} bytes)"
        raise SignatureError(msg)
    view = memoryview(blob)
    signature, data = view[:SIGNATURE_SIZE], view[SIGNATURE_SIZE:]
    expected = mac(data)
    if not hmac.compare_digest(expected, signature):
        msg = "signature mismatch: the data was modified or signed with another key"
        raise SignatureError(msg)
    return bytes(data)


# -- file stamps (see the module docstring) ------------------------------------

VERIFY_ENV = "DAGLITE_VERIFY"
"""``always``: verify every file read in full; ``stamped`` (default): trust valid stamps."""

_STAMP_FIELDS = struct.Struct("<QQQqq")
_warned_verify: set[str] = set()


def verify_always() -> bool:
    """Whether ``DAGLITE_VERIFY`` asks for a full verification of every file read.

    ``stamped`` (or unset, or empty) answers ``False``; ``always`` and any value
    not understood answer ``True`` (a typo must not weaken a check), the latter
    with one ``UserWarning`` per value and process.
    """
    value = os.environ.get(VERIFY_ENV, "").strip().lower()
    if value in ("", "stamped"):
        return False
    if value != "always" and value not in _warned_verify:
        _warned_verify.add(value)
        warnings.warn(
            f"{VERIFY_ENV}={value!r} is not understood (use 'always' or 'stamped'); "
            "every file is verified in full, as with 'always'",
            UserWarning,
            stacklevel=3,
        )
    return True


def _stampable(info: os.stat_result) -> bool:
    """Whether a file with this ``stat`` may be trusted by stamp at all (see the module docstring)."""
    return (
        hasattr(os, "geteuid")
        and stat.S_ISREG(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _stamp_of(info: os.stat_result, context: tuple[bytes | str, ...]) -> bytes:
    mac = _keyed().stamp.copy()
    mac.update(_STAMP_FIELDS.pack(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
    for part in context:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        mac.update(len(data).to_bytes(8, "little"))
        mac.update(data)
    return mac.digest()


def file_stamp(file: int | os.stat_result, *context: bytes | str) -> bytes | None:
    """A stamp (32 bytes) for the file open as ``file`` (a descriptor, or its ``fstat``), bound to ``context``.

    ``None`` when the file could never be trusted by stamp (another owner, writable
    by group or others, not a regular file, or no ``os.geteuid``): there is nothing
    worth storing. Take it after writing and renaming the file, or from an
    ``fstat`` made **before** reading the content that was then verified.
    ``context`` names what the file holds (the store's kind, the key, the content's
    signature tag); :func:`stamp_matches` must be given the same parts.
    """
    info = os.fstat(file) if isinstance(file, int) else file
    if not _stampable(info):
        return None
    return _stamp_of(info, context)


def stamp_matches(file: int | os.stat_result, stamp: object, *context: bytes | str) -> bool:
    """Whether ``file`` (a descriptor, or its ``fstat``) may be trusted without hashing its content.

    True only if ``DAGLITE_VERIFY`` is not ``always``, ``stamp`` is the
    :func:`file_stamp` of this very inode in its current state for the same
    ``context``, the file is owned by this process's effective user, and not
    writable by group or others. Anything else (no stamp, garbage, another key,
    a modified, replaced, ``chmod``-ed or copied file) is ``False``: verify in full.
    """
    if type(stamp) is not bytes or len(stamp) != SIGNATURE_SIZE or verify_always():
        return False
    info = os.fstat(file) if isinstance(file, int) else file
    return _stampable(info) and hmac.compare_digest(_stamp_of(info, context), stamp)
