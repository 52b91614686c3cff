"""Signed datasets: the HMAC envelope of formats whose loading can run code (pickle).

A signed dataset file is ``daglite_core.signing.sign(header + payload)``: the
32-byte HMAC-SHA256 tag, then a header ``b"daglite-dataset\\0" + key + b"\\0"``,
then the format's bytes. Loading verifies the tag (``daglite_core.signing.verify``,
constant-time) and the header *before* the format sees a byte, so:

* a file modified by anyone without the signing key is refused;
* a file copied from another key (``a.pkl`` over ``b.pkl``) is refused, because
  the tag covers the key it was written for (the replay the reliability notes
  warn about);
* the key stays relative, so moving or copying a whole store keeps it loadable.

Decisions: the tag is **inside** the file rather than in a ``.sig`` sidecar, so
one ``os.replace`` publishes data and signature together (two files cannot be
replaced atomically; a crash between them would leave a valid-looking pair that
does not verify, or worse). The price: a signed file is not a plain pickle, and
a plain pickle written by another tool does not verify. Loading such a file
needs ``options={"trusted": True}``, which skips verification for that one call
(the caller vouches for the file; it is read as the format's plain bytes).
Signing protects against tampering by others, not by whoever holds the key.
"""

from __future__ import annotations

from daglite_core import signing

__all__ = ["open_envelope", "seal"]

_MAGIC = b"daglite-dataset\x00"


def _header(key: str) -> bytes:
    return _MAGIC + key.encode("utf-8") + b"\x00"


def seal(key: str, payload: bytes) -> bytes:
    """The bytes to store for ``payload`` under ``key``: signed, bound to the key."""
    return signing.sign(_header(key) + payload)


def open_envelope(key: str, blob: bytes) -> bytes:
    """The payload of a sealed blob for ``key``.

    :raises ValueError: with the reason, when the tag does not verify or the
        blob was sealed for another key.
    """
    data = signing.verify(blob)
    header = _header(key)
    if not data.startswith(header):
        if data.startswith(_MAGIC):
            other = data[len(_MAGIC) :].split(b"\x00", 1)[0].decode("utf-8", "replace")
            msg = f"the file was signed for the dataset key {other!r}, not this one (copied or swapped)"
        else:
            msg = "the signed data has no daglite dataset header"
        raise ValueError(msg)
    return data[len(header) :]
