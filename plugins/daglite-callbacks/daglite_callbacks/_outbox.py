"""The outbox: callbacks waiting for delivery, in a local SQLite database fed by journals.

Protocol (the README's "Durable callbacks" has the user's view):

1. **Record before acting.** When a durable node's call has its final outcome and
   callbacks to fire, one record per callback is written *before* any of them
   runs: a persisted callback signature with its idempotency key
   ``<signature id>:<outcome>:<position>`` (the signature id is the id of that
   call of the parent, one per call, since nodes are templates), the pickled
   callback and input, state ``running`` and this process as its owner. All the
   records of one outcome are one event (one journal line, see below).
2. **Mark after finishing.** A callback's record becomes ``done`` only after it
   finished: after its body and, when it is durable itself, after its own
   callbacks were recorded (the same event), so a resumer never runs a
   callback's body again because one of *its* callbacks was still waiting.
3. **Journal, then fold.** A dispatching process writes no database
   transaction: it appends each event (records, done mark, release) to its own
   append-only journal, a store into a memory-mapped file (:mod:`._journal`:
   no system call; records are signed with a key derived from
   :mod:`daglite_core.signing`'s and verified before unpickling, done marks
   are plain text, never unpickled).
   Events are **folded** into the ``signatures`` table lazily, in one
   ``BEGIN IMMEDIATE`` transaction per journal: when the process compacts its
   journal (:meth:`Outbox.close`, and at interpreter exit: fold, then delete the
   file), and by anyone who reads the outbox (``pending``, ``resume``, ``sweep``,
   ``count_done``, :meth:`Outbox.flush`), live writers' journals included. The
   ``journals`` table keeps, per file, the offset folded so far, updated in the
   same transaction as the rows: an event is folded exactly once however many
   processes fold at once. Folded rows keep the signed payload (signed when
   folded; a planted row is never unpickled either).
4. **Claim to resume.** A resumer takes over the rows of one parent call at once
   with one atomic ``UPDATE ... WHERE owner IS <the dead owner we saw>`` inside a
   ``BEGIN IMMEDIATE`` transaction that first folds the dead owners' journals
   (so a done mark still in a journal is seen before anything is claimed); a
   second resumer's update then matches nothing. Rows held by a live process are
   never taken (see :mod:`._owner`). The journal of a dead process is deleted
   once folded.
5. **TTL.** Every row expires: ``active_ttl`` after it was recorded while waiting,
   ``done_ttl`` after it finished. :meth:`Outbox.sweep` (also run when an outbox is
   first opened in a process, and before every resume) deletes expired rows and
   logs how many waiting callbacks were dropped unrun. Records still only in a
   live process's journal are swept once folded.

The at-least-once window that remains: a callback that finished but whose
process died before its ``done`` mark was written (one store, under a microsecond),
or that was killed while running, runs again on resume. A callback that must
never repeat an effect can use :func:`delivery_key` as its own idempotency key.

Durability (the ``synchronous`` knob, ``DAGLITE_CALLBACKS_SYNC``): a process
killed (even with SIGKILL) loses nothing it wrote: journal lines are in the page
cache, committed rows in the WAL. With ``"normal"`` (default) and ``"off"`` a
power cut or kernel crash may lose the last events (journal lines not yet written
back, the last commits), never corrupts the database: a lost record is an outcome
whose callbacks are lost, a lost done mark a callback that runs again.
``"full"`` ``fdatasync``-s every journal line and every commit, so an event is
on disk before the next step starts.
"""

from __future__ import annotations

import atexit
import contextvars
import io
import itertools
import logging
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from daglite_core import paths, signing

from ._journal import PID, Journal, journal_dir, journal_for, journals, read_journal, writers
from ._owner import is_alive, owner_token

if TYPE_CHECKING:
    from ._node import Node

__all__ = [
    "DEFAULT_ACTIVE_TTL",
    "DEFAULT_DONE_TTL",
    "Delivery",
    "Outbox",
    "OutboxError",
    "PendingCallback",
    "ResumeReport",
    "default_outbox",
    "default_outbox_path",
    "delivery_key",
]

logger = logging.getLogger("daglite.callbacks")

DEFAULT_ACTIVE_TTL = 7 * 24 * 3600.0
"""Seconds a recorded callback waits for delivery before a sweep drops it (7 days)."""
DEFAULT_DONE_TTL = 3 * 3600.0
"""Seconds a delivered callback's row is kept (for ``pending --all`` and audits): 3 hours."""

DEFAULT_JOURNAL_MAX = 64 * 1024 * 1024
"""Bytes after which a process compacts its journal while it runs (about 200,000 callbacks)."""

_SYNC_MODES = ("off", "normal", "full")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signatures (
    key       TEXT PRIMARY KEY,
    run_id    TEXT NOT NULL,
    position  INTEGER NOT NULL,
    parent    TEXT NOT NULL,
    callback  TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    state     TEXT NOT NULL,
    owner     TEXT,
    attempts  INTEGER NOT NULL,
    payload   BLOB NOT NULL,
    created   REAL NOT NULL,
    finished  REAL,
    expires   REAL NOT NULL,
    failed    INTEGER,
    error     TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signatures_run ON signatures (run_id, position);
CREATE TABLE IF NOT EXISTS journals (
    name      TEXT PRIMARY KEY,
    owner     TEXT NOT NULL,
    folded    INTEGER NOT NULL,
    updated   REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_nodes (
    name      TEXT NOT NULL,
    ref       INTEGER NOT NULL,
    blob      BLOB NOT NULL,
    PRIMARY KEY (name, ref)
) WITHOUT ROWID;
"""

_INSERT = (
    "INSERT OR IGNORE INTO signatures (key, run_id, position, parent, callback, outcome, state, owner, attempts,"
    " payload, created, expires) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, 1, ?, ?, ?)"
)
_FINISH = (
    "UPDATE signatures SET state = 'done', finished = ?, expires = ?, failed = ?, error = ?"
    " WHERE key = ? AND owner = ? AND state = 'running'"
)
_RELEASE = "UPDATE signatures SET state = 'pending', owner = NULL WHERE key = ? AND owner = ? AND state = 'running'"

_CURRENT: contextvars.ContextVar[Delivery | None] = contextvars.ContextVar("daglite_callbacks_delivery", default=None)


class OutboxError(Exception):
    """The outbox database cannot be opened or written (names its path)."""


def delivery_key() -> str | None:
    """The idempotency key of the durable callback delivery running in this context.

    ``None`` outside a durable callback. A callback whose effect must not repeat
    even in the at-least-once window (killed after finishing, before its ``done``
    mark committed) can store this key with its effect and skip a repeat.
    """
    current = _CURRENT.get()
    return None if current is None else current.key


@attrs.frozen
class PendingCallback:
    """One recorded callback that has not finished (a row of ``daglite callbacks pending``).

    :ivar key: the idempotency key ``<signature id>:<outcome>:<position>``.
    :ivar signature_id: the id of the parent call whose outcome it reacts to.
    :ivar parent: the parent's name.
    :ivar callback: the callback's name.
    :ivar outcome: ``"success"`` or ``"error"``.
    :ivar position: its place among the parent's callbacks of that outcome.
    :ivar state: ``"running"`` (claimed), ``"pending"`` (released, waits for a
        resume) or ``"rejected"`` (its stored payload failed verification; never run).
    :ivar owner: the claiming process's token, or ``None``.
    :ivar owner_alive: whether that process may still be running (a resume leaves it alone).
    :ivar attempts: how many times it was claimed.
    :ivar created: when it was recorded (Unix time).
    :ivar expires: when a sweep drops it (Unix time).
    :ivar error: why the last resume could not load it, if it could not.
    """

    key: str
    signature_id: str
    parent: str
    callback: str
    outcome: str
    position: int
    state: str
    owner: str | None
    owner_alive: bool
    attempts: int
    created: float
    expires: float
    error: str | None


@attrs.frozen
class ResumeReport:
    """What :meth:`Outbox.resume` did.

    :ivar delivered: callbacks run to the end (including ``failed`` ones).
    :ivar failed: of those, callbacks that raised (reported on the ``daglite.callbacks`` logger).
    :ivar held: callbacks left alone because a live process holds them.
    :ivar unloadable: callbacks whose payload could not be loaded (left waiting, or
        rejected when the signature check failed).
    :ivar swept: expired rows deleted before resuming.
    """

    delivered: int = 0
    failed: int = 0
    held: int = 0
    unloadable: int = 0
    swept: int = 0


class Delivery:
    """A claimed outbox row: marked done once its callback finished, or released."""

    __slots__ = ("finished", "key", "outbox")

    def __init__(self, outbox: Outbox, key: str) -> None:
        self.outbox = outbox
        self.key = key
        self.finished = False

    def finish(self, error: BaseException | None) -> None:
        """Mark it done (``error``: the callback's failure, recorded as text)."""
        if self.finished:
            return
        try:
            self.outbox.finish(self, error)
        except OutboxError as exc:
            self.finished = True
            logger.error("%s; delivery %s ran but is not marked done, so a resume may run it again", exc, self.key)

    def release(self) -> None:
        """Give it back unrun (state ``pending``), e.g. when the call was interrupted."""
        if not self.finished:
            self.outbox.release(self)

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make :func:`delivery_key` return this delivery's key inside the block."""
        token = _CURRENT.set(self)
        try:
            yield
        finally:
            _CURRENT.reset(token)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        msg = f"{name} must be a number of seconds, got {raw!r}"
        raise OutboxError(msg) from exc
    if value <= 0:
        msg = f"{name} must be > 0 seconds, got {raw!r}"
        raise OutboxError(msg)
    return value


def default_outbox_path() -> Path:
    """``DAGLITE_CALLBACKS_OUTBOX`` if set, else ``<cwd>/.daglite/callbacks/outbox.sqlite3`` (absolute)."""
    env = os.environ.get("DAGLITE_CALLBACKS_OUTBOX")
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    return Path.cwd() / ".daglite" / "callbacks" / "outbox.sqlite3"


_defaults: dict[str, Outbox] = {}
_defaults_lock = threading.Lock()


def default_outbox() -> Outbox:
    """The process's outbox at :func:`default_outbox_path` (one object per path)."""
    env = os.environ.get("DAGLITE_CALLBACKS_OUTBOX", "")
    box = _defaults.get(env)
    if box is not None:
        return box
    with _defaults_lock:
        box = _defaults.get(env)
        if box is None:
            box = _defaults[env] = Outbox(default_outbox_path())
        return box


_ids: list[Any] = []


def _new_id(pid: int) -> str:
    """A new signature id: 32 characters, a random per-process prefix (20 hex digits) and a 12-digit counter.

    Unique without coordination, and cheap: the decimal counter (from 10**11) is
    formatted without a format spec. ``pid`` is this process's id (the caller
    has it: ``os.getpid`` is a system call).
    """
    ids = _ids
    if not ids or ids[0] != pid:
        ids[:] = [pid, os.urandom(10).hex(), itertools.count(10**11)]
    return f"{ids[1]}{next(ids[2])}"


def _error_text(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"[:2000]


class Outbox:
    """A local SQLite outbox of callbacks waiting for delivery (see the module docstring).

    :param path: the database file (default: :func:`default_outbox_path`); its
        directory is created ``0o700``, the file ``0o600``.
    :param active_ttl: seconds a recorded callback may wait (default
        ``DAGLITE_CALLBACKS_ACTIVE_TTL`` or 7 days).
    :param done_ttl: seconds a finished callback's row is kept (default
        ``DAGLITE_CALLBACKS_DONE_TTL`` or 3 hours).
    :param synchronous: SQLite's ``synchronous`` in WAL mode: ``"normal"``
        (default, or ``DAGLITE_CALLBACKS_SYNC``), ``"full"`` or ``"off"``; the
        journals follow it (``"full"``: ``fdatasync`` after every line).

    Events are appended to this process's journal in ``<path>.journals/`` and
    folded into the database later (see the module docstring).

    One connection per process, shared by its threads under a lock; every
    process (and every fork) opens its own. Safe to use from several processes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        active_ttl: float | None = None,
        done_ttl: float | None = None,
        synchronous: str | None = None,
    ) -> None:
        self.path = Path(os.path.abspath(os.fspath(path))) if path is not None else default_outbox_path()
        self.active_ttl = float(active_ttl) if active_ttl is not None else _env_float("DAGLITE_CALLBACKS_ACTIVE_TTL", DEFAULT_ACTIVE_TTL)
        self.done_ttl = float(done_ttl) if done_ttl is not None else _env_float("DAGLITE_CALLBACKS_DONE_TTL", DEFAULT_DONE_TTL)
        if self.active_ttl <= 0 or self.done_ttl <= 0:
            msg = f"Outbox {str(self.path)!r}: active_ttl and done_ttl must be > 0 seconds"
            raise OutboxError(msg)
        sync = (synchronous or os.environ.get("DAGLITE_CALLBACKS_SYNC") or "normal").lower()
        if sync not in _SYNC_MODES:
            msg = f"Outbox {str(self.path)!r}: synchronous must be one of {', '.join(_SYNC_MODES)}, got {sync!r}"
            raise OutboxError(msg)
        self.synchronous = sync
        self._fsync = sync == "full"
        self.journal_max = _env_float("DAGLITE_CALLBACKS_JOURNAL_MAX", DEFAULT_JOURNAL_MAX)
        self._journals = journal_dir(self.path)
        self._lock = threading.RLock()
        self._conn: tuple[int, sqlite3.Connection] | None = None
        self._writer: Journal | None = None

    def __repr__(self) -> str:
        return f"<Outbox {str(self.path)!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_outbox, (str(self.path), self.active_ttl, self.done_ttl, self.synchronous))

    # -- connection --------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        pid = os.getpid()
        if conn is not None and conn[0] == pid:
            return conn[1]
        try:
            paths.ensure_private_dir(self.path.parent)
            fresh = not self.path.exists()
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            if fresh:
                os.chmod(self.path, 0o600)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            msg = f"Cannot open the callbacks outbox {str(self.path)!r}: {type(exc).__name__}: {exc}"
            raise OutboxError(msg) from exc
        self._conn = (pid, db)
        self._sweep(db)
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                msg = f"Callbacks outbox {str(self.path)!r}: {type(exc).__name__}: {exc}"
                raise OutboxError(msg) from exc

    def close(self) -> None:
        """Compact this process's journal of this outbox (fold it, delete it), then close the connection.

        Both are reopened on next use. Also done for every outbox at interpreter exit.
        """
        self.compact()
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and conn[0] == os.getpid():
                conn[1].close()

    # -- the hot path: journal events ------------------------------------------------

    def _journal(self) -> Journal:
        journal = self._writer
        if journal is not None and journal.pid == PID[0]:
            return journal
        with self._lock:
            self._db()  # creates the database (0600) and sweeps, once per process
            journal = self._writer = journal_for(self._journals, owner_token(), self)
        _compact_at_exit()
        return journal

    def _unwritable(self, exc: OSError) -> OutboxError:
        msg = f"Callbacks outbox {str(self.path)!r}: cannot write its journal: {type(exc).__name__}: {exc}"
        return OutboxError(msg)

    def _append(self, body: tuple[Any, ...]) -> None:
        try:
            size = self._journal().append(body, self._fsync)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        if size > self.journal_max:
            self.compact()

    def record(
        self,
        parent: str,
        outcome: str,
        items: Sequence[tuple[str, bytes] | tuple[str, bytes, bool, bytes | tuple[str, Any]]],
        then: Delivery | None = None,
        then_error: BaseException | None = None,
    ) -> list[Delivery]:
        """Record ``items``, claimed by this process: one journal event.

        An item is ``(callback name, node pickle, cached, input pickle)`` (a cached
        node pickle is journalled once per file) or ``(callback name, unsigned
        payload)``. ``then`` (a delivery of this outbox) is marked done in the
        same event (``then_error``: its failure, if it failed).
        """
        journal = self._writer
        if journal is None or journal.pid != PID[0]:
            journal = self._journal()
        ids = _ids  # _new_id inlined (the hot path)
        signature_id = f"{ids[1]}{next(ids[2])}" if ids and ids[0] == journal.pid else _new_id(journal.pid)
        now = time.time()
        mark = None if then is None else (then.key, now, int(then_error is not None), _error_text(then_error))
        try:
            size = journal.append_record(
                signature_id, outcome, parent, now, now + self.active_ttl, items, mark, self._fsync
            )
        except OSError as exc:
            raise self._unwritable(exc) from exc
        if then is not None:
            then.finished = True
        if size > self.journal_max:
            self.compact()
        prefix = f"{signature_id}:{outcome}:"
        if len(items) == 1:  # the common case, without a comprehension
            return [Delivery(self, prefix + "0")]
        return [Delivery(self, f"{prefix}{i}") for i in range(len(items))]

    def finish(self, delivery: Delivery, error: BaseException | None) -> None:
        """Mark ``delivery`` done (applied when folded, only if this process still holds it then)."""
        journal = self._writer
        if journal is None or journal.pid != PID[0]:
            journal = self._journal()
        try:
            size = journal.done(delivery.key, None if error is None else _error_text(error), self._fsync)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        delivery.finished = True
        if size > self.journal_max:
            self.compact()

    def release(self, delivery: Delivery) -> None:
        """Give ``delivery`` back (state ``pending``, no owner) so that a resume runs it."""
        try:
            self._append(("X", owner_token(), delivery.key))
        except OutboxError as exc:
            logger.error("%s; could not release %s (a resume runs it once this process is gone)", exc, delivery.key)
        delivery.finished = True

    # -- folding journals ----------------------------------------------------------

    def _fold(self, db: sqlite3.Connection, path: Path, owner: str) -> int:
        """Fold the events of one journal not folded yet (inside a transaction); return how many."""
        name = path.name
        row = db.execute("SELECT folded FROM journals WHERE name = ?", (name,)).fetchone()
        offset = int(row[0]) if row is not None else 0
        try:
            events, end, rejected = read_journal(path, offset, owner)
        except FileNotFoundError:
            return 0
        if rejected:
            logger.warning("Callbacks outbox %s: journal %s: %d line(s) rejected and ignored (%s)",
                           self.path, path.name, len(rejected), "; ".join(rejected[:3]))
        if end == offset:
            return 0
        nodes: dict[int, bytes] = {}
        for event in events:
            kind = event[0]
            if kind == "R":
                _, _, signature_id, outcome, parent, created, expires, items, mark = event
                rows = []
                for i, (name_, ref, data) in enumerate(items):
                    if type(data) is tuple:  # a result of _journal.ATOMS, carried as it is
                        data = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
                    if ref >= 0:
                        node = nodes.get(ref)
                        if node is None:
                            found = db.execute("SELECT blob FROM journal_nodes WHERE name = ? AND ref = ?",
                                               (name, ref)).fetchone()
                            if found is None:
                                logger.warning("Callbacks outbox %s: journal %s: a record refers to a missing node;"
                                               " it is ignored", self.path, name)
                                continue
                            node = nodes[ref] = bytes(found[0])
                        data = node + data
                    rows.append((f"{signature_id}:{outcome}:{i}", signature_id, i, parent, name_, outcome, owner,
                                 signing.sign(data), created, expires))
                db.executemany(_INSERT, rows)
                if mark is not None:
                    self._finish_row(db, owner, *mark)
            elif kind == "N":
                nodes[event[2]] = event[3]
                db.execute("INSERT OR REPLACE INTO journal_nodes (name, ref, blob) VALUES (?, ?, ?)",
                           (name, event[2], event[3]))
            elif kind == "D":
                self._finish_row(db, owner, *event[2:])
            else:
                db.execute(_RELEASE, (event[2], owner))
        db.execute("INSERT OR REPLACE INTO journals (name, owner, folded, updated) VALUES (?, ?, ?, ?)",
                   (name, owner, end, time.time()))
        return len(events)

    def _finish_row(self, db: sqlite3.Connection, owner: str, key: str, finished: float, failed: int, error: str | None) -> None:
        changed = db.execute(_FINISH, (finished, finished + self.done_ttl, failed, error, key, owner)).rowcount
        if changed != 1:
            logger.warning("Callbacks outbox %s: delivery %s was no longer held by its process when it finished",
                           self.path, key)

    def flush(self) -> int:
        """Fold every journal (live processes' too) into the database; return how many events.

        Journals of processes that are gone are deleted once folded. ``pending``,
        ``resume``, ``sweep`` and ``count_done`` do this first; call it to read the
        database directly.
        """
        with self._transaction() as db:
            found = journals(self._journals)
            folded = sum(self._fold(db, path, owner) for path, owner in found)
        self._drop_dead(found)
        return folded

    def _drop_dead(self, found: Sequence[tuple[Path, str]]) -> None:
        """Delete folded journals whose process is gone (they never grow again)."""
        me = owner_token()
        for path, owner in found:
            if owner != me and not is_alive(owner):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    logger.warning("Callbacks outbox %s: cannot delete the folded journal %s: %s", self.path, path, exc)

    def compact(self) -> None:
        """Fold this process's journal of this outbox and delete it (the next event starts a new one).

        Errors are logged: the journal then stays, and is folded by whoever reads
        the outbox (a resume once this process is gone).
        """
        journal = self._writer
        if journal is None or journal.pid != os.getpid():
            return
        with journal.lock:
            path = journal.path
            if path is None:
                return
            try:
                with self._transaction() as db:
                    self._fold(db, path, journal.owner)
            except OutboxError as exc:
                logger.error("%s; its journal %s is kept (folded later)", exc, path)
                return
            journal.detach()
            try:
                path.unlink()
            except OSError as exc:
                logger.warning("Callbacks outbox %s: cannot delete the compacted journal %s: %s", self.path, path, exc)

    # -- maintenance ----------------------------------------------------------------

    def _sweep(self, db: sqlite3.Connection) -> int:
        now = time.time()
        with self._lock:
            dropped = db.execute(
                "SELECT count(*) FROM signatures WHERE expires <= ? AND state != 'done'", (now,)
            ).fetchone()[0]
            swept = db.execute("DELETE FROM signatures WHERE expires <= ?", (now,)).rowcount
            # Offsets of journals deleted a while ago (names are never reused).
            present = {path.name for path, _ in journals(self._journals)}
            stale = [name for (name,) in db.execute("SELECT name FROM journals WHERE updated < ?", (now - 3600,))
                     if name not in present]
            db.executemany("DELETE FROM journals WHERE name = ?", [(name,) for name in stale])
            db.executemany("DELETE FROM journal_nodes WHERE name = ?", [(name,) for name in stale])
        if dropped:
            logger.warning(
                "Callbacks outbox %s: %d recorded callback(s) expired unrun (active TTL %.0f s) and were dropped",
                self.path, dropped, self.active_ttl,
            )
        return int(swept)

    def sweep(self) -> int:
        """Fold the journals, then delete expired rows (waiting past ``active_ttl``, done past ``done_ttl``); return how many."""
        self.flush()
        with self._lock:
            return self._sweep(self._db())

    def pending(self, *, include_done: bool = False) -> list[PendingCallback]:
        """Every recorded callback that has not finished (``include_done``: finished ones too), oldest first.

        Journals are folded first, so records still only in a journal are listed:
        those of a live process as ``running`` with ``owner_alive`` (in flight).
        """
        self.flush()
        with self._lock:
            rows = self._db().execute(
                "SELECT key, run_id, parent, callback, outcome, position, state, owner, attempts, created,"
                " expires, error FROM signatures WHERE ? OR state != 'done' ORDER BY created, run_id, position",
                (int(include_done),),
            ).fetchall()
        return [
            PendingCallback(
                key=r[0], signature_id=r[1], parent=r[2], callback=r[3], outcome=r[4], position=r[5],
                state=r[6], owner=r[7], owner_alive=r[6] == "running" and is_alive(r[7]),
                attempts=r[8], created=r[9], expires=r[10], error=r[11],
            )
            for r in rows
        ]

    def count_done(self) -> int:
        """How many finished rows are kept (until their ``done_ttl``); folds the journals first."""
        self.flush()
        with self._lock:
            return int(self._db().execute("SELECT count(*) FROM signatures WHERE state = 'done'").fetchone()[0])

    # -- resuming -------------------------------------------------------------------

    def _claim(self, signature_id: str, dead: Sequence[str]) -> list[tuple[str, bytes]]:
        me = owner_token()
        marks = ", ".join("?" * len(dead)) or "NULL"
        with self._transaction() as db:
            for owner in dead:  # a done mark still in a dead owner's journal is seen first
                for path, token in journals(self._journals, owner):
                    self._fold(db, path, token)
            db.execute(
                "UPDATE signatures SET state = 'running', owner = ?, attempts = attempts + 1, error = NULL"  # noqa: S608 - only "?" marks are formatted in
                f" WHERE run_id = ? AND state IN ('pending', 'running') AND (owner IS NULL OR owner IN ({marks}))",
                (me, signature_id, *dead),
            )
            rows = db.execute(
                "SELECT key, payload FROM signatures WHERE run_id = ? AND owner = ? AND state = 'running'"
                " ORDER BY position",
                (signature_id, me),
            ).fetchall()
        return [(str(key), bytes(payload)) for key, payload in rows]

    def _mark(self, key: str, state: str, error: str) -> None:
        with self._lock:
            self._db().execute(
                "UPDATE signatures SET state = ?, owner = NULL, error = ? WHERE key = ? AND owner = ?",
                (state, error, key, owner_token()),
            )

    def resume(self, deliver: Callable[[Delivery, Node, tuple[Any, ...]], BaseException | None] | None = None) -> ResumeReport:
        """Claim and run every callback whose owner is gone; see the module docstring.

        Each parent call's remaining callbacks are claimed together and run in
        their order. Returns a :class:`ResumeReport`.
        """
        from ._dispatch import deliver_recorded

        run = deliver or deliver_recorded
        self.flush()
        with self._lock:
            db = self._db()
            swept = self._sweep(db)
            rows = db.execute(
                "SELECT run_id, owner, state FROM signatures WHERE state IN ('pending', 'running') AND expires > ?"
                " ORDER BY created, run_id, position",
                (time.time(),),
            ).fetchall()
        runs: dict[str, list[tuple[str | None, str]]] = {}
        for signature_id, owner, state in rows:
            runs.setdefault(signature_id, []).append((owner, state))
        delivered = failed = held = unloadable = 0
        alive: dict[str, bool] = {}
        for signature_id, members in runs.items():
            owners = {owner for owner, state in members if state == "running" and owner}
            for owner in owners:
                if owner not in alive:
                    alive[owner] = is_alive(owner)
            if any(alive[owner] for owner in owners):
                held += len(members)
                continue
            claimed = self._claim(signature_id, sorted(owners))
            pending = [Delivery(self, key) for key, _ in claimed]
            try:
                for delivery, (key, payload) in zip(pending, [c for c in claimed], strict=True):
                    try:
                        node, inputs = load_payload(payload)
                    except signing.SignatureError as exc:
                        self._mark(key, "rejected", f"payload failed verification: {exc}")
                        delivery.finished = True
                        unloadable += 1
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. the module is gone; leave it waiting
                        self._mark(key, "pending", f"cannot load: {type(exc).__name__}: {exc}")
                        delivery.finished = True
                        unloadable += 1
                        continue
                    error = run(delivery, node, inputs)
                    delivered += 1
                    failed += error is not None
            finally:
                for delivery in pending:
                    delivery.release()
        return ResumeReport(delivered=delivered, failed=failed, held=held, unloadable=unloadable, swept=swept)


def _rebuild_outbox(path: str, active_ttl: float, done_ttl: float, synchronous: str) -> Outbox:
    return Outbox(path, active_ttl=active_ttl, done_ttl=done_ttl, synchronous=synchronous)


def payload(node: Node, inputs_pickle: bytes) -> bytes:
    """The unsigned payload of a callback: its pickle (cached, :meth:`Node.pickled`) then its input's.

    ``inputs_pickle`` is the pickle of ``("success", value)`` or ``("error", kwargs,
    error)``, made once per outcome for all its callbacks. Signed when folded.
    """
    return node.pickled() + inputs_pickle


def dump_payload(node: Node, inputs: tuple[Any, ...]) -> bytes:
    """The signed payload of a callback and its input, as stored in the database."""
    return signing.sign(payload(node, pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)))


def load_payload(blob: bytes) -> tuple[Node, tuple[Any, ...]]:
    """Verify, then unpickle, a stored payload (two pickles: the callback, then its input)."""
    stream = io.BytesIO(signing.verify(blob))
    node = pickle.Unpickler(stream).load()  # noqa: S301 - verified first
    inputs = pickle.Unpickler(stream).load()  # noqa: S301 - verified first
    return node, inputs


_exit_registered: list[int] = []


def _compact_at_exit() -> None:
    """Register (once per process) the compaction of this process's journals at interpreter exit."""
    pid = os.getpid()
    if pid in _exit_registered:
        return
    _exit_registered.append(pid)
    atexit.register(_compact_all, pid)


def _compact_all(pid: int) -> None:
    if os.getpid() != pid:  # a forked child inherited the handler: its journals are its own
        return
    for journal in writers():
        try:
            journal.outbox.compact()
        except Exception as exc:  # noqa: BLE001 - at exit: report, a resume folds it later
            logger.error("Callbacks outbox: compacting journal %s at exit failed: %s", journal.path, exc)
