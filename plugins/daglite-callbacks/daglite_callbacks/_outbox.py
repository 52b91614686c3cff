"""The outbox: callbacks waiting for delivery, in a local SQLite database.

Protocol (the README's "Durable callbacks" has the user's view):

1. **Record before acting.** When a durable node's call has its final outcome and
   callbacks to fire, one row per callback is written *before* any of them runs:
   a persisted callback signature with its idempotency key
   ``<signature id>:<outcome>:<position>`` (the signature id is the id of that
   call of the parent, one per call, since nodes are templates), the pickled and
   HMAC-signed callback and input (see :mod:`daglite_core.signing`), state
   ``running`` and this process as its owner. The key is the primary key, so one
   outcome can never be recorded twice.
2. **Mark after finishing.** A callback's row becomes ``done`` only after it
   finished: after its body and, when it is durable itself, after its own
   callbacks were recorded (in the same transaction), so a resumer never runs a
   callback's body again because one of *its* callbacks was still waiting.
3. **Claim to resume.** A resumer takes over the rows of one parent call at once
   with one atomic ``UPDATE ... WHERE owner IS <the dead owner we saw>`` inside a
   ``BEGIN IMMEDIATE`` transaction; a second resumer's update then matches nothing.
   Rows held by a live process are never taken (see :mod:`._owner`).
4. **TTL.** Every row expires: ``active_ttl`` after it was recorded while waiting,
   ``done_ttl`` after it finished. :meth:`Outbox.sweep` (also run when an outbox is
   first opened in a process, and before every resume) deletes expired rows and
   logs how many waiting callbacks were dropped unrun.

The at-least-once window that remains: a callback that finished but whose
process died before its ``done`` mark committed (microseconds), or that was
killed while running, runs again on resume. A callback that must never repeat
an effect can use :func:`delivery_key` as its own idempotency key.

The database uses WAL mode, ``synchronous=NORMAL`` by default: a killed process
loses nothing that was committed; a power cut may lose the last commits but never
corrupts the file (``synchronous=FULL`` through ``DAGLITE_CALLBACKS_SYNC=full``
survives that too, at the price of an fsync per commit).
"""

from __future__ import annotations

import contextvars
import logging
import os
import pickle
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from daglite_core import signing

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
"""

_INSERT = (
    "INSERT INTO signatures (key, run_id, position, parent, callback, outcome, state, owner, attempts,"
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

    __slots__ = ("finished", "key", "outbox", "signature_id")

    def __init__(self, outbox: Outbox, key: str, signature_id: str) -> None:
        self.outbox = outbox
        self.key = key
        self.signature_id = signature_id
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


def _ensure_private_dir(directory: Path) -> None:
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue


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
        (default, or ``DAGLITE_CALLBACKS_SYNC``), ``"full"`` or ``"off"``.

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
        self._lock = threading.RLock()
        self._conn: tuple[int, sqlite3.Connection] | None = None

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
            _ensure_private_dir(self.path.parent)
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
        """Close this process's connection (reopened on next use)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and conn[0] == os.getpid():
                conn[1].close()

    # -- the hot path -------------------------------------------------------------

    def record(
        self,
        parent: str,
        outcome: str,
        items: Sequence[tuple[str, bytes]],
        then: Delivery | None = None,
        then_error: BaseException | None = None,
    ) -> list[Delivery]:
        """Record ``items`` (callback name, signed payload), claimed by this process.

        ``then`` (a delivery of this outbox) is marked done in the same
        transaction (``then_error``: its failure, if it failed).
        """
        signature_id = uuid.uuid4().hex
        now = time.time()
        owner = owner_token()
        expires = now + self.active_ttl
        rows = [
            (f"{signature_id}:{outcome}:{i}", signature_id, i, parent, name, outcome, owner, payload, now, expires)
            for i, (name, payload) in enumerate(items)
        ]
        if len(rows) == 1 and then is None:
            with self._lock:
                try:
                    self._db().execute(_INSERT, rows[0])
                except sqlite3.Error as exc:
                    msg = f"Callbacks outbox {str(self.path)!r}: {type(exc).__name__}: {exc}"
                    raise OutboxError(msg) from exc
        else:
            with self._transaction() as db:
                db.executemany(_INSERT, rows)
                if then is not None:
                    self._finish_in(db, then, then_error, now)
            if then is not None:
                then.finished = True
        return [Delivery(self, row[0], signature_id) for row in rows]

    def _finish_in(self, db: sqlite3.Connection, delivery: Delivery, error: BaseException | None, now: float) -> None:
        changed = db.execute(
            _FINISH,
            (now, now + self.done_ttl, int(error is not None), _error_text(error), delivery.key, owner_token()),
        ).rowcount
        if changed != 1:
            logger.warning("Callbacks outbox %s: delivery %s was no longer held by this process when it finished",
                           self.path, delivery.key)

    def finish(self, delivery: Delivery, error: BaseException | None) -> None:
        """Mark ``delivery`` done (only if this process still holds it)."""
        with self._lock:
            try:
                self._finish_in(self._db(), delivery, error, time.time())
            except sqlite3.Error as exc:
                msg = f"Callbacks outbox {str(self.path)!r}: {type(exc).__name__}: {exc}"
                raise OutboxError(msg) from exc
        delivery.finished = True

    def release(self, delivery: Delivery) -> None:
        """Give ``delivery`` back (state ``pending``, no owner) so that a resume runs it."""
        with self._lock:
            try:
                self._db().execute(_RELEASE, (delivery.key, owner_token()))
            except sqlite3.Error as exc:
                logger.error("Callbacks outbox %s: could not release %s: %s", self.path, delivery.key, exc)
        delivery.finished = True

    # -- maintenance ----------------------------------------------------------------

    def _sweep(self, db: sqlite3.Connection) -> int:
        now = time.time()
        with self._lock:
            dropped = db.execute(
                "SELECT count(*) FROM signatures WHERE expires <= ? AND state != 'done'", (now,)
            ).fetchone()[0]
            swept = db.execute("DELETE FROM signatures WHERE expires <= ?", (now,)).rowcount
        if dropped:
            logger.warning(
                "Callbacks outbox %s: %d recorded callback(s) expired unrun (active TTL %.0f s) and were dropped",
                self.path, dropped, self.active_ttl,
            )
        return int(swept)

    def sweep(self) -> int:
        """Delete expired rows (waiting past ``active_ttl``, done past ``done_ttl``); return how many."""
        with self._lock:
            return self._sweep(self._db())

    def pending(self) -> list[PendingCallback]:
        """Every recorded callback that has not finished, oldest first."""
        with self._lock:
            rows = self._db().execute(
                "SELECT key, run_id, parent, callback, outcome, position, state, owner, attempts, created,"
                " expires, error FROM signatures WHERE state != 'done' ORDER BY created, run_id, position"
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
        """How many finished rows are kept (until their ``done_ttl``)."""
        with self._lock:
            return int(self._db().execute("SELECT count(*) FROM signatures WHERE state = 'done'").fetchone()[0])

    # -- resuming -------------------------------------------------------------------

    def _claim(self, signature_id: str, dead: Sequence[str]) -> list[tuple[str, bytes]]:
        me = owner_token()
        marks = ", ".join("?" * len(dead)) or "NULL"
        with self._transaction() as db:
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
            pending = [Delivery(self, key, signature_id) for key, _ in claimed]
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


def dump_payload(node: Node, inputs: tuple[Any, ...]) -> bytes:
    """The signed pickle of a callback and its input (``("success", value)`` or ``("error", kwargs, error)``)."""
    return signing.sign(pickle.dumps((node, inputs), protocol=pickle.HIGHEST_PROTOCOL))


def load_payload(blob: bytes) -> tuple[Node, tuple[Any, ...]]:
    """Verify, then unpickle, a payload written by :func:`dump_payload`."""
    node, inputs = pickle.loads(signing.verify(blob))  # noqa: S301 - verified first
    return node, inputs
