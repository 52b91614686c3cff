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

**No whole-file copies.** Saving streams: the tag's 32 bytes are reserved, the
header and the format's output go through :class:`SigningWriter` (each piece
written to the file and fed to the MAC, large pickled buffers included, never
joined), then the tag is written in place before the file is fsynced and renamed.
Loading verifies in a first pass over the open file in chunks (nothing kept),
checks the header, then lets the format read the same open file from after the
header: one copy of the value in memory. The second pass reads the same inode
through the same descriptor, so replacing the file (rename) changes nothing; if
anyone but the owner could *write into* the file (its mode, or another owner),
the store instead reads it whole into memory once and verifies that copy.
"""

from __future__ import annotations

import hmac
import io
import os
import stat
from typing import IO, Any

from daglite_core import signing

__all__ = ["SigningWriter", "open_envelope", "private_file", "seal", "verify_stream", "write_signed"]

_CHUNK = 8 << 20

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
        raise ValueError(_wrong_header(data))
    return data[len(header) :]


def _wrong_header(data: bytes) -> str:
    if data.startswith(_MAGIC):
        other = data[len(_MAGIC) :].split(b"\x00", 1)[0].decode("utf-8", "replace")
        return f"the file was signed for the dataset key {other!r}, not this one (copied or swapped)"
    return "the signed data has no daglite dataset header"


class SigningWriter(io.RawIOBase):
    """A write-only file that writes through to ``file`` and feeds every byte to ``mac``."""

    def __init__(self, file: IO[bytes], mac: hmac.HMAC) -> None:
        super().__init__()
        self._file = file
        self._mac = mac

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._mac.update(data)
        self._file.write(data)
        return memoryview(data).nbytes

    def flush(self) -> None:
        self._file.flush()


def write_signed(key: str, file: IO[bytes], save: Any) -> None:
    """Write tag + header + ``save(writer)``'s output to ``file`` (at its start), signing while writing."""
    file.write(b"\0" * signing.SIGNATURE_SIZE)
    mac = signing.new_mac()
    writer = SigningWriter(file, mac)
    writer.write(_header(key))
    save(writer)
    file.flush()
    file.seek(0)
    file.write(mac.digest())
    file.seek(0, os.SEEK_END)


def private_file(file: IO[bytes]) -> bool:
    """Whether only its owner, this process's user, can write into ``file``."""
    info = os.fstat(file.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def verify_stream(key: str, file: IO[bytes]) -> None:
    """Verify a signed file in one pass (nothing kept); leave it positioned after the header.

    :raises ValueError: with the reason, as :func:`open_envelope`.
    """
    tag = file.read(signing.SIGNATURE_SIZE)
    if len(tag) < signing.SIGNATURE_SIZE:
        msg = f"signed data is truncated ({len(tag)} bytes)"
        raise signing.SignatureError(msg)
    mac = signing.new_mac()
    buffer = bytearray(max(1, min(_CHUNK, os.fstat(file.fileno()).st_size)))
    view = memoryview(buffer)
    while True:
        got = file.readinto(view)  # type: ignore[attr-defined]
        if not got:
            break
        mac.update(view[:got])
    if not hmac.compare_digest(mac.digest(), tag):
        raise signing.SignatureError("signature mismatch: the data was modified or signed with another key")
    file.seek(signing.SIGNATURE_SIZE)
    header = _header(key)
    head = file.read(len(header))
    if head != header:
        file.seek(signing.SIGNATURE_SIZE)
        raise ValueError(_wrong_header(file.read(len(_MAGIC) + 4096)))
