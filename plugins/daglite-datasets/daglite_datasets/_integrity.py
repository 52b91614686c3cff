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

**Hashing overlaps the fsync.** Hashing is the slow part of a save (SHA-256
at under 2 GB/s, a write into the page cache several times faster), and the
fsync that follows leaves the CPU idle. So when only this process's user can
write into the new file (``fstat`` of the temporary file: ours, no group or
other write bit, which it keeps since only its owner can ``chmod`` it), from
the format's first piece of 1 MiB or more on, the MAC is computed on a helper
thread **from the file itself**, through a read-only mapping of the part
written so far (the page cache: no copy), while this thread goes on writing and
then runs a first ``fdatasync``; the tag is then written in place and
``write_atomic``'s own sync makes it durable (one page) before the rename. A
small save stays inline (no thread, one sync). Reading back signs exactly the
bytes in the file, so a format may reuse its buffers as soon as ``write``
returns. Where others could write into the file (a permissive umask), or off
POSIX, :class:`SigningWriter` feeds the MAC inline from the written pieces, as
before: reading back would sign whatever they put there. The gain needs a spare
core: when every core is busy, SHA-256's CPU time (about 0.6 ms per MB) is paid
in full. Decision: this overlap instead of a faster MAC (a keyed BLAKE3, 2.5 to
4 times faster single-threaded on the benchmark VM): no new dependency, no
second MAC format to read, no import on cold start; it is the next step if
saves must stay within 1.3 x of ``to_pickle`` on saturated machines.

**Stamps skip the hashing pass of a load.** After a save, the store stamps the
renamed file (:func:`daglite_core.signing.file_stamp` bound to
:func:`stamp_context`: the dataset key and the file's tag) and keeps the stamp
in a sidecar ``.<name>.daglite-stamp`` next to it (see ``_dirfd``). A load
whose file matches its stamp (same inode, size, mtime, ctime, owned by us, not
writable by group or others, the same tag read back from the file) checks only
the header and lets the format read. Any other file is verified in full as
above, then stamped from the ``fstat`` taken before the verification. Files
under :data:`STAMP_MIN` bytes are not stamped (their full verification costs
less than a millisecond). The sidecar is written after the data file's rename
and is not fsynced: a crash between the two, a lost, stale or garbled sidecar,
or a file copied elsewhere only costs one full verification.
``DAGLITE_VERIFY=always`` verifies every load in full.
"""

from __future__ import annotations

import hmac
import io
import mmap
import os
import stat
import threading
from typing import IO, Any

from daglite_core import signing

__all__ = [
    "STAMP_MIN",
    "SigningWriter",
    "check_header",
    "open_envelope",
    "private_file",
    "seal",
    "stamp_context",
    "verify_stream",
    "write_signed",
]

_CHUNK = 8 << 20
_fdatasync = getattr(os, "fdatasync", os.fsync)
_READ_BACK = 1 << 20
"""Pieces at least this large tell the helper it may hash up to the file's new end."""
STAMP_MIN = 1 << 20
"""Signed files at least this large are stamped; below it a full verification costs under a millisecond."""

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


def stamp_context(key: str, tag: bytes) -> tuple[bytes | str, ...]:
    """What a dataset file's stamp is bound to: this store's format, the dataset key, the file's tag."""
    return (_MAGIC, key, tag)


class _ReadBackHasher:
    """Feeds a MAC, on a helper thread, with a file's bytes from ``start`` on, read back as they are written.

    The writer calls :meth:`advance` with the offset the file has reached (in the
    OS, not in a buffer) and :meth:`digest` once everything is written.
    """

    def __init__(self, fd: int, start: int, mac: hmac.HMAC) -> None:
        self._fd = fd
        self._mac = mac
        self._position = start
        self._ready = start
        self._final = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="daglite-datasets-sign", daemon=True)
        self._thread.start()

    def advance(self, offset: int, *, final: bool = False) -> None:
        with self._changed:
            self._ready = offset
            self._final = final
            self._changed.notify()

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    while self._position >= self._ready and not self._final:
                        self._changed.wait()
                    ready, final = self._ready, self._final
                if ready > self._position:
                    self._hash_range(self._position, ready)
                    self._position = ready
                if final:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the writer by digest()
            self._error = exc

    def _hash_range(self, start: int, end: int) -> None:
        """Hash the file's bytes ``[start, end)`` through a read-only mapping (the page cache, no copy)."""
        base = start - start % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(self._fd, end - base, access=mmap.ACCESS_READ, offset=base) as mapped:
            with memoryview(mapped) as view:
                self._mac.update(view[start - base :])

    def digest(self) -> bytes:
        """The MAC of everything up to the last :meth:`advance` (which must be ``final``)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._mac.digest()

    def stop(self) -> None:
        """End the helper without a digest (the save failed)."""
        self.advance(self._ready, final=True)
        self._thread.join()


class SigningWriter(io.RawIOBase):
    """A write-only file that writes through to ``file`` and signs what it writes.

    Pieces are fed to ``mac`` inline until, with ``read_back``, the first piece of
    :data:`_READ_BACK` bytes or more: from there on :attr:`hasher` hashes the file
    from that piece on, reading it back (see the module docstring). A small save
    so never pays for a thread or a second sync.
    """

    def __init__(self, file: IO[bytes], mac: hmac.HMAC, *, read_back: bool = False) -> None:
        super().__init__()
        self._file = file
        self._mac = mac
        self._read_back = read_back
        self.hasher: _ReadBackHasher | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self.hasher is None:
            if not (self._read_back and size >= _READ_BACK):
                self._mac.update(data)
                self._file.write(data)
                return size
            self._file.flush()  # everything before this piece is in the file, and hashed
            self.hasher = _ReadBackHasher(self._file.fileno(), self._offset(), self._mac)
        self._file.write(data)
        if size >= _READ_BACK:  # written through the buffer: the helper can read it now
            self.hasher.advance(self._offset())
        return size

    def _offset(self) -> int:
        return os.lseek(self._file.fileno(), 0, os.SEEK_CUR)

    def flush(self) -> None:
        self._file.flush()


def _only_ours(fd: int) -> bool:
    """Whether only this process's user can write into the open file ``fd`` (POSIX only)."""
    if not hasattr(os, "geteuid") or not hasattr(os, "pwrite"):
        return False
    info = os.fstat(fd)
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def write_signed(key: str, file: IO[bytes], save: Any) -> bytes:
    """Write tag + header + ``save(writer)``'s output to ``file`` (at its start), signing while writing.

    Returns the tag written in front. The caller still syncs ``file``; when the
    read-back hasher ran, the data was already synced once (overlapping the
    hashing) and only the tag's page is left.
    """
    fd = file.fileno()
    file.write(b"\0" * signing.SIGNATURE_SIZE)
    mac = signing.new_mac()
    writer = SigningWriter(file, mac, read_back=_only_ours(fd))
    try:
        writer.write(_header(key))
        save(writer)
        file.flush()
        hasher = writer.hasher
        if hasher is not None:
            hasher.advance(os.lseek(fd, 0, os.SEEK_CUR), final=True)
            _fdatasync(fd)  # the disk works while the helper hashes
            tag = hasher.digest()
        else:
            tag = mac.digest()
    except BaseException:
        if writer.hasher is not None:
            writer.hasher.stop()
        raise
    if hasattr(os, "pwrite"):
        os.pwrite(fd, tag, 0)
    else:  # pragma: no cover - Windows
        file.seek(0)
        file.write(tag)
        file.flush()
        file.seek(0, os.SEEK_END)
    return tag


def private_file(file: IO[bytes]) -> bool:
    """Whether only its owner, this process's user, can write into ``file``."""
    info = os.fstat(file.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def check_header(key: str, file: IO[bytes]) -> None:
    """Check the header after the tag names ``key``; leave ``file`` positioned after it.

    :raises ValueError: naming the key the file was written for, or saying it has no header.
    """
    file.seek(signing.SIGNATURE_SIZE)
    header = _header(key)
    head = file.read(len(header))
    if head != header:
        file.seek(signing.SIGNATURE_SIZE)
        raise ValueError(_wrong_header(file.read(len(_MAGIC) + 4096)))


def verify_stream(key: str, file: IO[bytes]) -> None:
    """Verify a signed file in one pass (nothing kept); leave it positioned after the header.

    :raises ValueError: with the reason, as :func:`open_envelope`.
    """
    file.seek(0)
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
    check_header(key, file)
