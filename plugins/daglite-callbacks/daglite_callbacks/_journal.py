"""Per-process append-only journals: the outbox's hot path.

Committing to SQLite costs tens of microseconds per transaction (two per
callback: record, done mark), more than a whole non-durable dispatch. So a
process does not write the database while it dispatches: it appends to **its own
journal file**, and the records are *folded* into the database later (see
:mod:`._outbox`).

Files. ``<outbox>.journals/<owner>.<random>.journal`` next to the database
(directory ``0o700``, files ``0o600``, created with ``O_EXCL``): ``<owner>`` is the
hex of the writing process's owner token (:mod:`._owner`), so a resumer knows
whose journal a file is (and whether that process lives) from its name alone.
A process opens one file per outbox path; after it was compacted (folded and
deleted, e.g. at exit) the next event opens a new one.

Writing: a memory-mapped file, no system call per event. The file is
preallocated (``posix_fallocate``, :data:`CHUNK` bytes at a time, so a full disk
is an ``OSError`` when a chunk is added, never a ``SIGBUS`` on a store) and mapped
``MAP_SHARED``; an event is a copy into the mapping. Stores into a shared mapping
are the page cache's pages: a process killed with SIGKILL loses nothing it
stored (the kernel writes them back like any written file). No system call also
means the GIL is never released on the hot path, so a durable dispatch does not
wait for whatever other thread grabs it (with ``os.write`` per event, a process
with background threads paid a GIL hand-over per event).

Why a reader never takes half a line: preallocated space is zeros, lines
contain none (base64 and text), and the file is only ever appended to, so a
byte not written yet (or not visible yet to another process, whatever order the
CPU or ``memcpy`` makes the stores of one line visible in) reads as ``0``. A
reader cuts what it read at the first NUL and keeps the complete lines before
it: a line that reads without a NUL and with its newline is entirely written.
A process killed *inside* a store leaves an unfinished last line (a NUL in it, or
no newline): ignored, its event had not happened (its callbacks had not
started). After a SIGKILL the file keeps its zero tail; a clean compaction
deletes it.

Lines. Two kinds:

* **Signed** (everything a folder unpickles): ``base64(tag + pickle(body)) +
  "\\n"``, the tag a keyed BLAKE2b-256 with a key derived from
  :mod:`daglite_core.signing`'s (see :func:`_mac`), verified **before** the body
  is unpickled, so a planted or modified line is rejected,
  never loaded. The owner token is in each body, and must be the file's: a line
  copied into another process's journal is rejected too. Bodies:

  * ``("N", owner, ref, pickle)``: the pickle of a callback node, written once per
    file the first time it is recorded (nodes are templates, recorded again and
    again: a record refers to it by ``ref`` instead of repeating ~0.5 KB).
  * ``("R", owner, signature_id, outcome, parent, created, expires, items, then)``:
    callbacks recorded, claimed by the owner; ``items`` are ``(callback name, ref,
    bytes)``: with ``ref >= 0`` the bytes are the pickled input and the node is the
    ``N`` line ``ref``; with ``ref == -1`` they are the whole unsigned payload (a
    node whose pickle is not cached). ``then`` is ``None`` or the done mark ``(key,
    finished, failed, error)`` of the delivery that recorded them. The ``N`` lines
    a record needs and the record are stored together.
  * ``("X", owner, key)``: a delivery was given back unrun (interrupted).

* **Done marks**, plain text, not signed: ``~<key> <finished, ns since the
  epoch>[ <base64 of the error text>]\\n``: a delivery finished (failed, when the
  error is there). Parsed as text, never unpickled. Why no signature (it saves a
  pickle, an HMAC and base64 per callback, about half the journal's cost): a
  forged done mark can only *suppress* a callback (mark a row done that did not
  run), never run code, and only a row of the journal's own owner (a mark is
  applied with ``WHERE key = ? AND owner = <the file's owner>``, so one copied
  into another journal changes nothing). Suppressing needs write access to the
  journal (``0o600`` in a ``0o700`` directory, i.e. its user or root), which
  already allows as much without a mark: deleting the journal loses its records,
  and the SQLite file beside it (same permissions) has an unsigned ``state``
  column. Signatures keep stored pickles from being *loaded*; they cannot protect
  an outbox from someone allowed to write it, and the done mark adds no such power.

Durability: ``synchronous="full"`` ``fdatasync``-s the file after every event
(which writes back the mapping's dirty pages too); otherwise power loss can lose
the events since the last writeback, never a SIGKILL.
"""

from __future__ import annotations

import binascii
import errno
import hashlib
import hmac
import mmap
import os
import pickle
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daglite_core import paths, signing

__all__ = ["PID", "Journal", "journal_dir", "journal_for", "journal_owner", "journals", "read_journal", "writers"]

SUFFIX = ".journal"
CHUNK = 1 << 20
"""Bytes a journal file is grown by (preallocated and mapped): about 4,000 callbacks."""
ATOMS = (type(None), bool, int, float, str, bytes)
"""Results a record carries as they are (``("success", value)`` in its body): unpickling
them imports nothing, so a folder turns them into the input's pickle itself; any
other input is carried as its pickle, made by the dispatching process."""
DONE = b"~"
"""First byte of a done mark (not in base64's alphabet, so never the start of a signed line)."""

PID = [os.getpid()]
"""This process's id, kept current after ``fork`` by an ``os.register_at_fork`` hook.

``os.getpid`` is a system call (glibc no longer caches it) and the hot path checks
the process twice per callback (a forked child must open its own journal, never
store into its parent's shared mapping). ``os.fork`` and ``multiprocessing`` run the
hook; a C extension that forks without Python's at-fork hooks and then dispatches
durable callbacks in the child is not supported (the child would store into the
parent's mapping).
"""


def _forked() -> None:
    PID[0] = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

_writers: dict[str, Journal] = {}
_writers_lock = threading.Lock()


def journal_dir(database: Path) -> Path:
    """Where the journals of the outbox ``database`` live."""
    return database.with_name(database.name + ".journals")


def _name_prefix(owner: str) -> str:
    return owner.encode().hex() + "."


def journal_owner(path: Path) -> str | None:
    """The owner token encoded in a journal's file name (``None``: not a journal name)."""
    name = path.name
    if not name.endswith(SUFFIX):
        return None
    head = name.split(".", 1)[0]
    try:
        return bytes.fromhex(head).decode()
    except ValueError:
        return None


def journals(directory: Path, owner: str | None = None) -> list[tuple[Path, str]]:
    """Every journal in ``directory`` (of ``owner`` only, when given) with its owner token, by name."""
    try:
        entries = sorted(entry.name for entry in os.scandir(directory))
    except FileNotFoundError:
        return []
    prefix = _name_prefix(owner) if owner is not None else ""
    found: list[tuple[Path, str]] = []
    for name in entries:
        if not name.startswith(prefix):
            continue
        path = directory / name
        token = journal_owner(path)
        if token is not None:
            found.append((path, token))
    return found


TAG_SIZE = 32
_macs: tuple[bytes, Any] | None = None


def _mac() -> Any:
    """A keyed BLAKE2b state for the journal's tags (rebuilt when the signing key changes).

    Keyed BLAKE2b is a MAC in one pass (HMAC-SHA256 hashes twice): about half the
    cost for a journal's short lines. Its key is derived from
    :func:`daglite_core.signing.signing_key` with a personalisation of its own, so a
    journal tag is never valid as any other daglite signature, nor the reverse.
    """
    global _macs
    key = signing.signing_key()
    macs = _macs
    if macs is None or macs[0] is not key:
        derived = hashlib.blake2b(key, digest_size=64, person=b"daglite-journal").digest()
        macs = _macs = (key, hashlib.blake2b(key=derived, digest_size=TAG_SIZE))
    return macs[1]


def tag(data: bytes | memoryview) -> bytes:
    """The journal's tag of ``data``: keyed BLAKE2b-256 (see :func:`_mac`)."""
    mac = _mac().copy()
    mac.update(data)
    return mac.digest()  # type: ignore[no-any-return]


def encode(body: tuple[Any, ...]) -> bytes:
    """One signed journal line for ``body`` (with its newline)."""
    data = pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL)
    macs = _macs  # _mac() inlined (the hot path): the cached state while the key is the same object
    mac = (macs[1] if macs is not None and macs[0] is signing.signing_key() else _mac()).copy()
    mac.update(data)
    return binascii.b2a_base64(mac.digest() + data)


def decode(line: bytes) -> tuple[Any, ...]:
    """Verify, then unpickle, one line (without its newline); ``ValueError`` if it is not ours."""
    try:
        blob = binascii.a2b_base64(line)
    except binascii.Error as exc:
        msg = f"not base64 ({exc})"
        raise ValueError(msg) from exc
    data = memoryview(blob)[TAG_SIZE:]
    if len(blob) < TAG_SIZE or not hmac.compare_digest(blob[:TAG_SIZE], tag(data)):
        msg = "signature mismatch (tampered, planted, or signed with another key)"
        raise ValueError(msg)
    body = pickle.loads(data)  # noqa: S301 - verified first
    if not isinstance(body, tuple) or len(body) < 3 or body[0] not in ("N", "R", "X"):
        msg = "not a journal event"
        raise ValueError(msg)
    return body


def _done_event(line: bytes) -> tuple[Any, ...]:
    """``("D", None, key, finished, failed, error)`` from a done mark (without ``~`` and newline)."""
    try:
        fields = line.decode("ascii").split(" ")
        key, finished = fields[0], int(fields[1]) / 1e9
        error = binascii.a2b_base64(fields[2]).decode("utf-8", "replace") if len(fields) == 3 else None
    except (ValueError, IndexError, binascii.Error) as exc:
        msg = f"not a done mark ({type(exc).__name__}: {exc})"
        raise ValueError(msg) from exc
    if len(fields) > 3 or not key:
        msg = "not a done mark"
        raise ValueError(msg)
    return ("D", None, key, finished, int(error is not None), error)


def read_journal(path: Path, offset: int, owner: str) -> tuple[list[tuple[Any, ...]], int, list[str]]:
    """The events of ``path`` from byte ``offset`` to its last complete line.

    Returns ``(events, end, rejected)``: ``end`` is the offset after the last
    complete line (a torn or unfinished last line, and the preallocated zeros
    after it, are left for later), ``rejected`` says why each complete line that is
    not a valid event of ``owner`` was skipped. A done mark's event is ``("D",
    None, key, finished, failed, error)`` (its owner is the file's).
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    zero = data.find(b"\0")
    end = data.rfind(b"\n", 0, None if zero < 0 else zero) + 1
    events: list[tuple[Any, ...]] = []
    rejected: list[str] = []
    position = offset
    for line in data[:end].split(b"\n")[:-1]:
        try:
            if line.startswith(DONE):
                body = _done_event(line[1:])
            elif line:
                body = decode(line)
                if body[1] != owner:
                    msg = "written by another process"
                    raise ValueError(msg)
            else:
                position += 1
                continue
        except ValueError as exc:
            rejected.append(f"byte {position}: {exc}")
        else:
            events.append(body)
        position += len(line) + 1
    return events, offset + end, rejected


class Journal:
    """This process's journal for one outbox (shared by every :class:`Outbox` of that path).

    :ivar directory: the journals directory.
    :ivar owner: the owner token it writes as.
    :ivar pid: the process it belongs to (a forked child opens its own).
    :ivar lock: held while writing, and while it is compacted (no event is lost between).
    :ivar path: the current file, ``None`` until the first event (and after compaction).
    :ivar fd: its descriptor.
    :ivar map: its shared mapping (``capacity`` bytes, all preallocated).
    :ivar size: bytes written (where the next line goes).
    :ivar outbox: the outbox that opened it (used to compact it at exit).
    """

    __slots__ = ("capacity", "directory", "fd", "lock", "map", "nodes", "outbox", "owner", "path", "pid", "size")

    def __init__(self, directory: Path, owner: str, outbox: Any) -> None:
        self.directory = directory
        self.owner = owner
        self.pid = PID[0]
        self.lock = threading.Lock()
        self.path: Path | None = None
        self.fd: int | None = None
        self.map: mmap.mmap | None = None
        self.outbox = outbox
        self.nodes: dict[bytes, int] = {}
        self.size = 0
        self.capacity = 0

    def _open(self, fsync: bool) -> None:
        paths.ensure_private_dir(self.directory)
        path = self.directory / f"{_name_prefix(self.owner)}{secrets.token_hex(4)}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        self.path, self.fd, self.map = path, fd, None
        self.nodes = {}
        self.size = self.capacity = 0
        try:
            self._grow(1)
        except OSError:
            self.detach()
            path.unlink(missing_ok=True)
            raise
        if fsync:
            _fsync_dir(self.directory)

    def _grow(self, need: int) -> None:
        """Add at least ``need`` bytes of preallocated, mapped space (a whole number of chunks).

        The new pages are touched once here (a write of the zero they hold), so that
        the page faults of a chunk are taken in one tight loop rather than one
        every dozen events on the hot path (measured: ~0.4 µs less per event).
        """
        assert self.fd is not None  # noqa: S101 - only called on an open journal (for mypy)
        old = self.capacity
        capacity = old + -(-need // CHUNK) * CHUNK
        _preallocate(self.fd, old, capacity - old)
        mapped = mmap.mmap(self.fd, capacity)  # the whole file again (portable: no mremap needed)
        if self.map is not None:
            self.map.close()
        self.map, self.capacity = mapped, capacity
        for offset in range(old, capacity, mmap.PAGESIZE):
            mapped[offset] = 0

    def _store(self, line: bytes, fsync: bool) -> int:
        """Store ``line`` (with its newline) after the last one; return the bytes written so far."""
        if self.fd is None:
            self._open(fsync)
        start = self.size
        end = start + len(line)
        if end > self.capacity:
            self._grow(end - self.capacity)
        self.map[start:end] = line  # type: ignore[index]
        self.size = end
        if fsync:
            _sync(self.fd)  # type: ignore[arg-type]
        return end

    def append(self, body: tuple[Any, ...], fsync: bool) -> int:
        """Write one signed event (``fsync``: ``fdatasync`` it before returning); return the file's size.

        ``OSError`` if it cannot be written.
        """
        line = encode(body)
        with self.lock:
            return self._store(line, fsync)

    def done(self, key: str, error: str | None, fsync: bool) -> int:
        """Write the done mark of delivery ``key`` (``error``: its failure's text); return the file's size."""
        if error is None:
            line = f"~{key} {time.time_ns()}\n".encode()
        else:
            line = f"~{key} {time.time_ns()} {binascii.b2a_base64(error.encode(), newline=False).decode()}\n".encode()
        with self.lock:
            return self._store(line, fsync)

    def append_record(
        self,
        signature_id: str,
        outcome: str,
        parent: str,
        created: float,
        expires: float,
        items: Sequence[tuple[str, bytes] | tuple[str, bytes, bool, bytes | tuple[str, Any]]],
        mark: Any,
        fsync: bool,
    ) -> int:
        """Write the ``R`` event of one outcome's callbacks, with the ``N`` lines its nodes need first.

        ``items`` are ``(name, node pickle, cached, input)`` (a cached node pickle is
        written once per file; the input is its pickle, or ``("success", value)``
        for a value of :data:`ATOMS`) or ``(name, unsigned payload)``; ``mark``
        the done mark it carries, or ``None``. Returns the file's size.
        """
        owner = self.owner
        with self.lock:
            if self.fd is None:
                self._open(fsync)
            nodes = self.nodes
            new: list[bytes] = []
            refs: list[tuple[str, int, bytes | tuple[str, Any]]] = []
            for item in items:
                if len(item) == 2:
                    refs.append((item[0], -1, item[1]))
                    continue
                name, blob, cached, tail = item
                ref = nodes.get(blob) if cached else -1
                if ref is None:
                    ref = nodes[blob] = len(nodes)
                    new.append(blob)
                if cached:
                    refs.append((name, ref, tail))
                else:
                    refs.append((name, -1, blob + (tail if type(tail) is bytes else pickle.dumps(tail, protocol=pickle.HIGHEST_PROTOCOL))))
            line = encode(("R", owner, signature_id, outcome, parent, created, expires, tuple(refs), mark))
            if not new:
                return self._store(line, fsync)
            try:  # the new nodes' lines first, in the same store
                return self._store(b"".join([*(encode(("N", owner, nodes[blob], blob)) for blob in new), line]), fsync)
            except OSError:
                for blob in new:  # not written: written again with the next record
                    del nodes[blob]
                raise

    def detach(self) -> Path | None:
        """Close the current file (the caller folded it) and return its path; the next event opens a new one."""
        path, fd, mapped = self.path, self.fd, self.map
        self.path = self.fd = self.map = None
        if mapped is not None:
            mapped.close()
        if fd is not None:
            os.close(fd)
        return path


def _preallocate(fd: int, offset: int, length: int) -> None:
    """Give the file real blocks for ``[offset, offset + length)`` (zeros), so stores into the mapping cannot fail.

    ``posix_fallocate`` where the system and file system have it; else zeros are
    written (the same guarantee, at the cost of writing them).
    """
    try:
        os.posix_fallocate(fd, offset, length)
        return
    except AttributeError:  # pragma: no cover - no posix_fallocate (macOS, Windows)
        pass
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
            raise
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - a file system without fallocate
    zeros = bytes(min(length, CHUNK))  # pragma: no cover
    while length > 0:  # pragma: no cover
        length -= os.write(fd, zeros[:length])


def _sync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS, Windows
        os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def journal_for(directory: Path, owner: str, outbox: Any) -> Journal:
    """This process's journal in ``directory`` (one per process and outbox path)."""
    key = str(directory)
    journal = _writers.get(key)
    pid = PID[0]
    if journal is not None and journal.pid == pid and journal.owner == owner:
        return journal
    with _writers_lock:
        journal = _writers.get(key)
        if journal is None or journal.pid != pid or journal.owner != owner:
            journal = _writers[key] = Journal(directory, owner, outbox)
        return journal


def writers() -> list[Journal]:
    """This process's journals."""
    pid = os.getpid()
    with _writers_lock:
        return [journal for journal in _writers.values() if journal.pid == pid]
