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
"""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
import threading
from pathlib import Path

__all__ = ["SIGNATURE_SIZE", "SignatureError", "key_path", "reset", "sign", "signing_key", "verify"]

SIGNATURE_SIZE = 32
_lock = threading.Lock()
_cached: bytes | None = None


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
    """The signing key: read (or created) once per process, see :func:`reset`."""
    global _cached
    cached = _cached
    if cached is not None:
        return cached
    with _lock:
        if _cached is None:
            env = os.environ.get("DAGLITE_SIGNING_KEY")
            _cached = env.encode() if env else _load_or_create(key_path())
        return _cached


_base: tuple[bytes, hmac.HMAC] | None = None


def _mac(data: bytes | memoryview) -> bytes:
    """HMAC-SHA256 of ``data``, from a keyed state copied per call (no key setup each time)."""
    global _base
    key = signing_key()
    base = _base
    if base is None or base[0] is not key:
        base = _base = (key, hmac.new(key, digestmod="sha256"))
    mac = base[1].copy()
    mac.update(data)
    return mac.digest()


def reset() -> None:
    """Forget the key read so far; the next use reads the environment again (for tests)."""
    global _cached
    with _lock:
        _cached = None


def _load_or_create(path: Path) -> bytes:
    for _ in range(2):
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        if len(key) < 16:
            msg = f"daglite signing key file {path} holds {len(key)} bytes; at least 16 are needed"
            raise ValueError(msg)
        return key
    return path.read_bytes()  # pragma: no cover - created and removed concurrently


def sign(data: bytes) -> bytes:
    """``data`` with its HMAC-SHA256 signature in front."""
    return _mac(data) + data


def verify(blob: bytes) -> bytes:
    """The data of a :func:`sign`-ed blob; :class:`SignatureError` if it does not verify."""
    if len(blob) < SIGNATURE_SIZE:
        msg = f"signed data is truncated ({len(blob)} bytes)"
        raise SignatureError(msg)
    view = memoryview(blob)
    signature, data = view[:SIGNATURE_SIZE], view[SIGNATURE_SIZE:]
    expected = _mac(data)
    if not hmac.compare_digest(expected, signature):
        msg = "signature mismatch: the data was modified or signed with another key"
        raise SignatureError(msg)
    return bytes(data)
