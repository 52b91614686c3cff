"""The stored form of a value: signed bytes, verified before anything is unpickled.

Layout (format 2)::

    tag (32 bytes, HMAC-SHA256 of everything after it)
    b"daglite-diskcache/2\\0" + cache key (UTF-8) + b"\\0"
    n (u32) + pickle length (u64) + n buffer lengths (u64 each)
    pickle stream (protocol 5)
    n out-of-band buffers

The value is pickled with protocol 5 and a ``buffer_callback``, so large buffers
(numpy arrays, anything exposing ``PickleBuffer``) are **not copied** into the
pickle: they are signed and written straight from the value's memory, and read
back into one ``bytearray`` that the loaded value then uses in place
(``pickle.loads(..., buffers=...)``). A top-level ``bytes`` value is stored as is
(``n = 0xFFFFFFFF``, no pickle at all). Reading verifies the tag **while reading**
(:func:`daglite_core.signing.new_mac`, chunk by chunk) and unpickles only after it
matched; the lengths are checked against the file's size before anything is
allocated. So a hit holds about one copy of the value, never three.

The tag covers the cache key: neither a planted pickle nor a valid entry copied
under another key is ever unpickled. Entries of format 1 (``tag + b"daglite-
diskcache/1\\0" + key + b"\\0" + pickle``) are still read.

**Stamped value files** (:func:`daglite_core.signing.file_stamp`): a value file
is written by the store itself (``_disk``), created ``0o600``, and stamped from
its descriptor once written; the stamp is stored in the entry's row (the
``value`` column, which diskcache leaves empty for file entries), so file and
stamp appear together in one insert, and a crash before it leaves an orphan file
and no entry. A hit whose stamp matches the open file (same inode, size, mtime
and ctime, our uid, not writable by group or others, and the tag read back from
the file: see :func:`stamp_context`) reads the payload straight into its buffer
**without hashing**; any other file (no stamp, a row of an older version, a
copied, restored, touched or replaced file, ``DAGLITE_VERIFY=always``) is
verified in full as before, and when that succeeds on a file of
:data:`RESTAMP_MIN` bytes or more a fresh stamp is handed back for the store to
save (from the ``fstat`` taken before reading, so a change while reading is
never stamped). ``daglite cache check`` always verifies in full.
"""

from __future__ import annotations

import hmac
import io
import os
import pickle
import queue
import struct
import threading
from collections.abc import Iterator
from typing import IO, Any

from daglite_core.signing import (
    SIGNATURE_SIZE,
    SignatureError,
    file_stamp,
    new_mac,
    signing_key,
    stamp_matches,
    verify,
    verify_always,
)
from daglite_core.signing import mac as tag_of

__all__ = [
    "MAGIC",
    "PartsReader",
    "Sealed",
    "ensure_signing_key",
    "load_blob",
    "load_file",
    "open_blob",
    "seal",
    "stamp_context",
    "verify_blob",
    "verify_file",
]

MAGIC_V1 = b"daglite-diskcache/1\0"
MAGIC = b"daglite-diskcache/2\0"
PICKLE_PROTOCOL = 5
RAW_BYTES = 0xFFFFFFFF
"""``n`` of an entry whose payload is the value itself (a ``bytes``), not a pickle."""
MAX_BUFFERS = 1 << 20
CHUNK = 8 << 20
RESTAMP_MIN = 1 << 20
"""Files at least this large get a fresh stamp after a full verification (an ``UPDATE`` of the row)."""
_COUNTS = struct.Struct("<IQ")


def ensure_signing_key() -> None:
    """Load (or create) the signing key now, so a bad key file shows when the cache opens.

    Raises :class:`daglite_core.signing.SigningKeyError` naming the file and what is
    wrong with it (remembered for the process: the file is not re-read per call). A
    key file another process is still writing is waited for by the core.
    """
    signing_key()


def _prefix(key: str, magic: bytes = MAGIC) -> bytes:
    return magic + key.encode("utf-8", "surrogatepass") + b"\0"


class Sealed:
    """A value ready to store: the signed pieces, in order, and their total size."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.size = sum(memoryview(p).nbytes for p in parts)

    def joined(self) -> bytes:
        """All pieces as one ``bytes`` (for small values, stored inline)."""
        return b"".join(self.parts)

    def reader(self) -> PartsReader:
        """A file-like object diskcache can stream into a value file, without copies."""
        return PartsReader(self.parts)


def stamp_context(key: str, tag: bytes) -> tuple[bytes | str, ...]:
    """What a value file's stamp is bound to: this store, the cache key, the file's signature tag."""
    return (MAGIC, key, tag)


class PartsReader(io.RawIOBase):
    """Reads a :class:`Sealed` value's pieces as memoryview chunks (no copy of the data).

    ``tag`` is the signature in front (the first piece); :meth:`write_into` writes
    every piece to a descriptor, which is how the store's ``Disk`` writes it.
    """

    def __init__(self, parts: list[Any]) -> None:
        super().__init__()
        self.tag: bytes = parts[0]
        self._parts = parts
        self._chunks = self._iterate(parts)

    def write_into(self, fd: int) -> int:
        """Write every piece to ``fd`` (partial writes continued); the number of bytes written."""
        total = 0
        for chunk in self._iterate(self._parts):
            while chunk:
                written = os.write(fd, chunk)
                chunk = chunk[written:]
                total += written
        return total

    @staticmethod
    def _iterate(parts: list[Any]) -> Iterator[memoryview]:
        for part in parts:
            view = memoryview(part).cast("B")
            for start in range(0, view.nbytes, CHUNK):
                yield view[start : start + CHUNK]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> Any:  # diskcache asks for 4 MiB at a time
        return next(self._chunks, b"")


def seal(key: str, value: Any) -> Sealed:
    """The signed pieces to store for ``value`` under ``key`` (large buffers not copied)."""
    if type(value) is bytes:
        body: list[Any] = [value]
        counts = _COUNTS.pack(RAW_BYTES, len(value))
    else:
        buffers: list[pickle.PickleBuffer] = []
        stream = pickle.dumps(value, protocol=PICKLE_PROTOCOL, buffer_callback=buffers.append)
        try:
            raws = [buffer.raw() for buffer in buffers]
        except BufferError:  # a non-contiguous buffer: keep everything in band
            stream, raws = pickle.dumps(value, protocol=PICKLE_PROTOCOL), []
        body = [stream, *raws]
        counts = _COUNTS.pack(len(raws), len(stream)) + b"".join(struct.pack("<Q", r.nbytes) for r in raws)
    header = _prefix(key) + counts
    mac = new_mac()
    mac.update(header)
    for part in body:
        mac.update(part)
    return Sealed([mac.digest(), header, *body])


# -- reading ------------------------------------------------------------------


def _wrong_prefix(data: bytes) -> SignatureError:
    if data.startswith((MAGIC, MAGIC_V1)):
        return SignatureError("the entry was signed for another cache key (copied or replayed)")
    return SignatureError("the entry was not written by daglite-diskcache")


def _read_exact(file: IO[bytes], n: int) -> bytes:
    data = file.read(n)
    if data is None or len(data) != n:
        msg = f"the entry is truncated (wanted {n} more bytes)"
        raise SignatureError(msg)
    return data


class _Layout:
    __slots__ = ("counts", "lengths", "n", "pickle_size", "total")

    def __init__(self, counts: bytes, n: int, pickle_size: int, lengths: list[int]) -> None:
        self.counts, self.n, self.pickle_size, self.lengths = counts, n, pickle_size, lengths
        self.total = pickle_size + sum(lengths)


def _layout(read: Any, available: int) -> _Layout:
    """Parse ``n``, the lengths, and check they add up to the ``available`` bytes."""
    counts = read(_COUNTS.size)
    n, size = _COUNTS.unpack(counts)
    if n == RAW_BYTES:
        lengths: list[int] = []
        n_real = 0
    else:
        if n > MAX_BUFFERS:
            raise SignatureError(f"the entry claims {n} buffers")
        extra = read(8 * n)
        counts += extra
        lengths = list(struct.unpack(f"<{n}Q", extra))
        n_real = n
    layout = _Layout(counts, n, size, lengths)
    if layout.total != available - _COUNTS.size - 8 * n_real:
        raise SignatureError("the entry's lengths do not match its size (truncated or tampered with)")
    return layout


def _unpickle(layout: _Layout, payload: memoryview) -> Any:
    if layout.n == RAW_BYTES:
        whole = payload.obj
        return whole if type(whole) is bytes and payload.nbytes == len(whole) else bytes(payload)
    buffers = []
    offset = layout.pickle_size
    for length in layout.lengths:
        buffers.append(payload[offset : offset + length])
        offset += length
    return pickle.loads(payload[: layout.pickle_size], buffers=buffers)  # noqa: S301 - HMAC verified first


def _check(mac: hmac.HMAC, tag: bytes) -> None:
    if not hmac.compare_digest(mac.digest(), tag):
        msg = "signature mismatch: the data was modified or signed with another key"
        raise SignatureError(msg)


def _open_file(key: str, file: IO[bytes], size: int, stamp: object = None) -> tuple[Any, Any, bytes | None]:
    """Read a value file: ``(layout, payload, fresh stamp)``; v1 entries as ``(None, pickle, None)``.

    Trusted by ``stamp`` (see the module docstring), the payload is read without
    hashing; else verified while read, and a fresh stamp comes back when worth saving.
    """
    info = os.fstat(file.fileno())  # before reading: a change while reading moves ctime past it
    tag = _read_exact(file, SIGNATURE_SIZE)
    prefix = _prefix(key)
    head = file.read(len(prefix)) or b""
    if head != prefix:
        if head[: len(MAGIC_V1)] == MAGIC_V1:
            blob = tag + head + file.read()
            return None, open_blob(key, blob), None
        raise _wrong_prefix(head)
    context = stamp_context(key, tag)
    trusted = stamp is not None and stamp_matches(info, stamp, *context)
    layout = _layout(lambda n: _read_exact(file, n), size - SIGNATURE_SIZE - len(prefix))
    if layout.n == RAW_BYTES:
        data = _read_exact(file, layout.total)  # the value itself: one allocation
        view = memoryview(data)
    else:
        view = memoryview(bytearray(layout.total))
    if trusted:
        if layout.n != RAW_BYTES:
            _read_into(file, view, None)
        return layout, view, None
    mac = new_mac()
    mac.update(head)
    mac.update(layout.counts)
    if layout.n == RAW_BYTES:
        mac.update(view)
    else:
        _read_into(file, view, mac)
    _check(mac, tag)
    fresh = None if size < RESTAMP_MIN or verify_always() else file_stamp(info, *context)
    return layout, view, fresh


def _read_into(file: IO[bytes], view: memoryview, mac: hmac.HMAC | None) -> None:
    """Fill ``view`` from ``file`` and feed every chunk to ``mac`` (if any).

    Past two chunks the MAC runs in a helper thread, one chunk behind the reads:
    both the read and SHA-256 release the GIL, so on two cores verifying costs
    little more than reading.
    """
    total = view.nbytes
    if mac is None:
        done = 0
        while done < total:
            got = file.readinto(view[done:])  # type: ignore[attr-defined]
            if not got:
                raise SignatureError("the entry is truncated")
            done += got
        return
    if total <= 2 * CHUNK:
        done = 0
        while done < total:
            got = file.readinto(view[done : done + CHUNK])  # type: ignore[attr-defined]
            if not got:
                raise SignatureError("the entry is truncated")
            mac.update(view[done : done + got])
            done += got
        return
    chunks: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()

    def hash_chunks() -> None:
        while (chunk := chunks.get()) is not None:
            mac.update(chunk)

    hasher = threading.Thread(target=hash_chunks, name="daglite-diskcache-verify", daemon=True)
    hasher.start()
    try:
        done = 0
        while done < total:
            got = file.readinto(view[done : done + CHUNK])  # type: ignore[attr-defined]
            if not got:
                raise SignatureError("the entry is truncated")
            chunks.put(view[done : done + got])
            done += got
    finally:
        chunks.put(None)
        hasher.join()


def _open_blob(key: str, blob: bytes) -> tuple[Any, memoryview]:
    view = memoryview(blob)
    if len(blob) < SIGNATURE_SIZE:
        raise SignatureError(f"signed data is truncated ({len(blob)} bytes)")
    prefix = _prefix(key)
    head = bytes(view[SIGNATURE_SIZE : SIGNATURE_SIZE + len(prefix)])
    if head != prefix:
        if head[: len(MAGIC_V1)] == MAGIC_V1:
            return None, open_blob(key, blob)
        raise _wrong_prefix(head)
    position = SIGNATURE_SIZE + len(prefix)

    def read(n: int) -> bytes:
        nonlocal position
        data = bytes(view[position : position + n])
        if len(data) != n:
            raise SignatureError("the entry is truncated")
        position += n
        return data

    layout = _layout(read, len(blob) - position)
    mac = new_mac()
    mac.update(view[SIGNATURE_SIZE:])
    _check(mac, bytes(view[:SIGNATURE_SIZE]))
    return layout, view[position:]


def verify_file(key: str, file: IO[bytes], size: int) -> None:
    """Check a value file's tag and key in full (never by stamp), without unpickling (``SignatureError`` if bad)."""
    _open_file(key, file, size)


def verify_blob(key: str, blob: bytes) -> None:
    """Check an inline entry's tag and key, without unpickling (``SignatureError`` if bad)."""
    _open_blob(key, blob)


def load_file(key: str, file: IO[bytes], size: int, stamp: object = None) -> tuple[Any, bytes | None]:
    """``(value, fresh stamp)`` of a value file of ``size`` bytes: trusted by ``stamp`` or verified, then unpickled.

    The fresh stamp is ``None`` unless the file was verified in full and is worth
    stamping (see the module docstring): the store saves it in the entry's row.
    """
    layout, payload, fresh = _open_file(key, file, size, stamp)
    value = pickle.loads(payload) if layout is None else _unpickle(layout, payload)  # noqa: S301 - HMAC verified first
    return value, fresh


def load_blob(key: str, blob: bytes) -> Any:
    """The value in an inline entry: verified, then unpickled.

    Fast path, for the common inline entry (format 2, one pickle, no out-of-band
    buffer, which is every small cache hit): the key's prefix is compared in
    place, ``n`` and the pickle's length are read with one ``unpack_from`` and must
    account for every byte after the header, and one tag computed over the signed
    bytes (:func:`daglite_core.signing.mac`) must equal the stored one before
    ``pickle.loads``. Anything else (a raw ``bytes`` value, buffers, format 1, a
    malformed or foreign entry, a tag that does not match) takes the general
    path, which checks again and says what is wrong. The tag covers the prefix,
    so the key: an entry copied under another key never verifies.
    """
    prefix = _prefix(key)
    start = SIGNATURE_SIZE + len(prefix) + _COUNTS.size
    if len(blob) >= start and blob.startswith(prefix, SIGNATURE_SIZE):
        n, size = _COUNTS.unpack_from(blob, start - _COUNTS.size)
        if n == 0 and size == len(blob) - start:
            view = memoryview(blob)
            if hmac.compare_digest(tag_of(view[SIGNATURE_SIZE:]), view[:SIGNATURE_SIZE]):
                return pickle.loads(view[start:])  # noqa: S301 - HMAC verified first
    layout, payload = _open_blob(key, blob)
    return pickle.loads(payload) if layout is None else _unpickle(layout, payload)  # noqa: S301 - HMAC verified first


def open_blob(key: str, blob: bytes) -> memoryview:
    """The pickle inside a format-1 ``blob``, after checking signature and key."""
    data = verify(blob)
    header = _prefix(key, MAGIC_V1)
    if not data.startswith(header):
        raise _wrong_prefix(data)
    return memoryview(data)[len(header) :]
