"""Per-process append-only journals: the outbox's hot path.

Committing to SQLite costs tens of microseconds per transaction (two per
callback: record, done mark), more than a whole non-durable dispatch. So a
process does not write the database while it dispatches: it appends to **its own
journal file**, one ``os.write`` per event, and the records are *folded* into the
database later (see :mod:`._outbox`).

Files. ``<outbox>.journals/<owner>.<random>.journal`` next to the database
(directory ``0o700``, files ``0o600``, created with ``O_EXCL``): ``<owner>`` is the
hex of the writing process's owner token (:mod:`._owner`), so a resumer knows
whose journal a file is (and whether that process lives) from its name alone.
A process opens one file per outbox path; after it was compacted (folded and
deleted, e.g. at exit) the next event opens a new one.

Lines. Every event is one line: ``base64(HMAC-SHA256 tag + pickle(body)) + "\\n"``,
signed with :mod:`daglite_core.signing`'s key and verified **before** it is
unpickled, so a planted or modified line is rejected, never loaded. Bodies (the
owner token is in each, and must be the file's: a line copied into another
process's journal is rejected too):

* ``("N", owner, ref, pickle)``: the pickle of a callback node, written once per
  file the first time it is recorded (nodes are templates, recorded again and
  again: a record refers to it by ``ref`` instead of repeating ~0.5 KB).
* ``("R", owner, signature_id, outcome, parent, created, expires, items, then)``:
  callbacks recorded, claimed by the owner; ``items`` are ``(callback name, ref,
  bytes)``: with ``ref >= 0`` the bytes are the pickled input and the node is the
  ``N`` line ``ref``; with ``ref == -1`` they are the whole unsigned payload (a node
  whose pickle is not cached). ``then`` is ``None`` or the done mark ``(key,
  finished, failed, error)`` of the delivery that recorded them. The ``N`` lines a
  record needs and the record are written with one ``os.write``.
* ``("D", owner, key, finished, failed, error)``: a delivery finished.
* ``("X", owner, key)``: a delivery was given back unrun (interrupted).

A line is written with one ``os.write`` on an ``O_APPEND`` descriptor (the rest
written again if the kernel took only part of it). A process killed with SIGKILL
loses nothing written: the data is in the page cache. A process killed *inside*
a write can leave a torn last line: it has no newline, or fails verification,
and is ignored (its event had not happened: its callbacks had not started).
Power loss can lose the events written since the last writeback unless the
outbox's ``synchronous`` is ``"full"``, which ``fdatasync``-s after every line.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import pickle
import secrets
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daglite_core import signing

__all__ = ["Journal", "journal_dir", "journal_for", "journal_owner", "journals", "read_journal", "writers"]

SUFFIX = ".journal"

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


_pads: tuple[bytes, Any, Any] | None = None


def _keyed() -> tuple[bytes, Any, Any]:
    """HMAC-SHA256's inner and outer states for the signing key (rebuilt when the key changes)."""
    global _pads
    key = signing.signing_key()
    pads = _pads
    if pads is None or pads[0] is not key:
        block = hashlib.sha256(key).digest() if len(key) > 64 else key
        block = block.ljust(64, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        pads = _pads = (key, inner, outer)
    return pads


def tag(data: bytes) -> bytes:
    """``HMAC-SHA256(signing key, data)``: the tag :func:`daglite_core.signing.sign` puts in front.

    Computed from precomputed keyed states (two hash copies), about half the cost
    of going through ``hmac`` for the short lines of a journal; a line verifies
    with :func:`daglite_core.signing.verify`.
    """
    _, inner, outer = _keyed()
    first = inner.copy()
    first.update(data)
    second = outer.copy()
    second.update(first.digest())
    return second.digest()  # type: ignore[no-any-return]


def encode(body: tuple[Any, ...]) -> bytes:
    """One signed journal line for ``body`` (with its newline)."""
    data = pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL)
    return binascii.b2a_base64(tag(data) + data)


def decode(line: bytes) -> tuple[Any, ...]:
    """Verify, then unpickle, one line (without its newline); ``ValueError`` if it is not ours."""
    try:
        blob = binascii.a2b_base64(line)
    except binascii.Error as exc:
        msg = f"not base64 ({exc})"
        raise ValueError(msg) from exc
    body = pickle.loads(signing.verify(blob))  # noqa: S301 - verified first (SignatureError is a ValueError)
    if not isinstance(body, tuple) or len(body) < 3 or body[0] not in ("N", "R", "D", "X"):
        msg = "not a journal event"
        raise ValueError(msg)
    return body


def read_journal(path: Path, offset: int, owner: str) -> tuple[list[tuple[Any, ...]], int, list[str]]:
    """The events of ``path`` from byte ``offset`` to its last complete line.

    Returns ``(events, end, rejected)``: ``end`` is the offset after the last
    complete line (a torn or unfinished last line is left for later), ``rejected``
    says why each complete line that is not a valid event of ``owner`` was skipped.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    events: list[tuple[Any, ...]] = []
    rejected: list[str] = []
    position = offset
    for line in data[:end].split(b"\n")[:-1]:
        try:
            body = decode(line)
            if body[1] != owner:
                msg = "written by another process"
                raise ValueError(msg)
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
    :ivar outbox: the outbox that opened it (used to compact it at exit).
    """

    __slots__ = ("directory", "fd", "lock", "nodes", "outbox", "owner", "path", "pid", "size")

    def __init__(self, directory: Path, owner: str, outbox: Any) -> None:
        self.directory = directory
        self.owner = owner
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.path: Path | None = None
        self.fd: int | None = None
        self.outbox = outbox
        self.nodes: dict[bytes, int] = {}
        self.size = 0

    def _open(self, fsync: bool) -> int:
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        path = self.directory / f"{_name_prefix(self.owner)}{secrets.token_hex(4)}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        if fsync:
            _fsync_dir(self.directory)
        self.path, self.fd = path, fd
        self.nodes = {}
        self.size = 0
        return fd

    def append(self, body: tuple[Any, ...], fsync: bool) -> int:
        """Write one event (``fsync``: ``fdatasync`` it before returning); return the file's size.

        ``OSError`` if it cannot be written.
        """
        line = encode(body)
        with self.lock:
            fd = self.fd
            if fd is None:
                fd = self._open(fsync)
            return self._write(fd, line, fsync)

    def append_record(
        self, head: tuple[Any, ...], items: Sequence[tuple[str, bytes, bool, bytes]], mark: Any, fsync: bool
    ) -> int:
        """Write an ``R`` event ``head + (items, mark)``, with the ``N`` lines its nodes need first.

        ``items`` are ``(name, node pickle, cached, input pickle)``; a cached node
        pickle is written once per file. Returns the file's size.
        """
        owner = head[1]
        with self.lock:
            fd = self.fd
            if fd is None:
                fd = self._open(fsync)
            nodes = self.nodes
            lines: list[bytes] = []
            refs: list[tuple[str, int, bytes]] = []
            new: list[bytes] = []
            for name, blob, cached, tail in items:
                if cached:
                    ref = nodes.get(blob)
                    if ref is None:
                        ref = nodes[blob] = len(nodes)
                        new.append(blob)
                        lines.append(encode(("N", owner, ref, blob)))
                    refs.append((name, ref, tail))
                else:
                    refs.append((name, -1, blob + tail))
            lines.append(encode((*head, tuple(refs), mark)))
            try:
                return self._write(fd, lines[0] if len(lines) == 1 else b"".join(lines), fsync)
            except OSError:
                for blob in new:  # not surely written: write them again with the next record
                    del nodes[blob]
                raise

    def _write(self, fd: int, data: bytes, fsync: bool) -> int:
        written = os.write(fd, data)
        while written < len(data):  # a partial write (a signal, a full disk): finish the line
            try:
                more = os.write(fd, data[written:])
            except OSError:
                _terminate(fd)
                raise
            if more == 0:
                _terminate(fd)
                msg = f"journal {self.path}: no space left for a line"
                raise OSError(msg)
            written += more
        if fsync:
            _sync(fd)
        self.size += written
        return self.size

    def detach(self) -> Path | None:
        """Close the current file (the caller folded it) and return its path; the next event opens a new one."""
        path, fd = self.path, self.fd
        self.path = self.fd = None
        if fd is not None:
            os.close(fd)
        return path


def _sync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS, Windows
        os.fsync(fd)


def _terminate(fd: int) -> None:
    """End a torn line with a newline, so that the next line is read on its own."""
    try:
        os.write(fd, b"\n")
    except OSError:
        pass


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
    pid = os.getpid()
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
