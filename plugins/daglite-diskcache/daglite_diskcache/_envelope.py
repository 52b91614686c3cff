"""The stored form of a value: signed bytes, verified before anything is unpickled.

``seal(key, value)`` pickles ``value`` (protocol 5) behind a small header that holds
a format marker and the cache key, and signs header and pickle together with
:func:`daglite_core.signing.sign` (HMAC-SHA256, key kept outside the cache
directory). ``unseal`` verifies the signature first and checks that the entry was
sealed for *this* key, so neither a planted pickle nor a valid entry copied under
another key is ever unpickled. The result is plain ``bytes``, which diskcache
stores as a BLOB (small) or a ``.val`` file (large) without pickling it itself.
"""

from __future__ import annotations

import pickle
from typing import Any

from daglite_core.signing import SignatureError, sign, signing_key, verify

__all__ = ["MAGIC", "ensure_signing_key", "open_blob", "seal", "unseal"]

MAGIC = b"daglite-diskcache/1\0"
PICKLE_PROTOCOL = 5


def ensure_signing_key() -> None:
    """Load (or create) the signing key now, so a bad key file shows when the cache opens.

    Raises :class:`daglite_core.signing.SigningKeyError` naming the file and what is
    wrong with it (remembered for the process: the file is not re-read per call). A
    key file another process is still writing is waited for by the core.
    """
    signing_key()


def _header(key: str) -> bytes:
    return MAGIC + key.encode("utf-8", "surrogatepass") + b"\0"


def seal(key: str, value: Any) -> bytes:
    """The signed bytes to store for ``value`` under ``key``."""
    return sign(_header(key) + pickle.dumps(value, protocol=PICKLE_PROTOCOL))


def open_blob(key: str, blob: bytes) -> memoryview:
    """The pickle inside a sealed ``blob``, after checking signature and key.

    Raises :class:`daglite_core.signing.SignatureError` when the blob is truncated,
    tampered with, signed with another key or sealed for another cache key.
    """
    data = verify(blob)
    header = _header(key)
    if not data.startswith(header):
        if data.startswith(MAGIC):
            msg = "the entry was signed for another cache key (copied or replayed)"
        else:
            msg = "the entry was not written by daglite-diskcache"
        raise SignatureError(msg)
    return memoryview(data)[len(header):]


def unseal(key: str, blob: bytes) -> Any:
    """The value sealed in ``blob`` for ``key`` (verified, then unpickled)."""
    return pickle.loads(open_blob(key, blob))
