"""The process backend's worker processes: the worker loop and the pool.

Each worker has its own duplex ``multiprocessing.Pipe`` to the coordinator and
runs one batch at a time (the messages are in :mod:`daglite_core._process._wire`); the
coordinator knows which batch each worker runs and since when, and watches the
pipes and the process sentinels together.

Workers ignore ``SIGINT`` (the coordinator handles Ctrl-C and kills busy
workers), exit at once when their parent process dies (a thread watches the
parent's sentinel, so this holds mid-item too), and are non-daemonic, so a task
may start processes of its own; an ``atexit`` hook (registered after
``multiprocessing``'s own, so it runs first) closes every live pool before the
interpreter waits for non-daemonic children.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import weakref
from multiprocessing.context import BaseContext
from typing import Any

from .._lifecycle import set_attempt_watch
from .._protocols import WorkItems
from ._wire import ATTEMPT, LOST, dumps, encode_events, error_text, pack_batch

STOP_GRACE = 2.0
"""Seconds :meth:`Pool.close` waits for the workers to exit before killing them."""
READY = b"ready"
"""A worker's first message: it started (a pickled reply never starts like this)."""


def worker_main(conn: multiprocessing.connection.Connection, inherited: Any) -> None:
    """A worker process: run batches until told to stop or the parent dies."""
    if inherited is not None:
        inherited.close()  # the coordinator's end, inherited through fork
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="daglite-parent-watch", daemon=True).start()
    lock = threading.Lock()

    def send(data: bytes) -> None:
        # The batch's thread (replies, attempt messages) and its event flusher share the pipe.
        with lock:
            conn.send_bytes(data)

    send(READY)
    token: Any = None
    runner: Any = None
    set_attempt_watch(functools.partial(_send_attempt, send))
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            message = pickle.loads(data)  # noqa: S301 - from the coordinator, over this worker's own pipe
        except Exception as exc:  # noqa: BLE001 - told to the coordinator
            send(dumps((LOST, f"the batch could not be unpickled in the worker process: {error_text(exc)}")))
            continue
        if message is None:
            return
        new_token, runner_blob, indices, arglist = message
        if runner_blob is not None:
            try:
                runner, token = pickle.loads(runner_blob), new_token  # noqa: S301 - the coordinator's runner
            except Exception as exc:  # noqa: BLE001 - told to the coordinator
                runner = token = None
                text = f"the task could not be unpickled in the worker process: {error_text(exc)}"
                send(dumps((LOST, text)))
                continue
        if runner is None or token != new_token:
            send(dumps((LOST, "the worker does not hold this map's task (it failed to load)")))
            continue
        items = WorkItems(arglist, indices)
        emit = functools.partial(_send_events, send, runner)
        send(pack_batch(runner, items, runner(items, emit)))


def _send_events(send: Any, runner: Any, events: list[Any]) -> None:
    send(encode_events(runner, events))


def _send_attempt(send: Any, timeout: float | None) -> None:
    send(ATTEMPT if timeout is None else ATTEMPT + repr(timeout).encode())


def _exit_with(sentinel: int) -> None:
    """End this worker as soon as the session's process is gone (even mid-item).

    A worker must never start another item for a dead session, nor run on as an
    orphan: its parent's sentinel becomes ready when the parent dies, however it
    died (SIGKILL included), and the worker exits at once without cleanup.
    """
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


class Worker:
    """One worker process as the coordinator sees it: what it holds and runs, since when."""

    __slots__ = ("batch", "conn", "deadline", "pid", "process", "ready", "since", "token")

    def __init__(self, process: Any, conn: multiprocessing.connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid
        self.ready = False
        """Whether the worker said it started (see :data:`READY`)."""
        self.token: Any = None
        """The map whose runner this worker holds."""
        self.batch: Any = None
        """The batch in flight, or ``None`` when idle."""
        self.since = 0.0
        self.deadline: float | None = None

    def send(self, data: bytes) -> None:
        self.conn.send_bytes(data)


_live: weakref.WeakSet[Pool] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


def _close_live_pools() -> None:
    for pool in list(_live):
        pool.close()


def _register_atexit() -> None:
    # Registered on first use, after multiprocessing's own exit hook, so that it
    # runs first (LIFO) and no worker is left for multiprocessing to wait on.
    global _atexit_registered
    with _atexit_lock:
        if not _atexit_registered:
            atexit.register(_close_live_pools)
            _atexit_registered = True


class Pool:
    """Up to ``size`` worker processes, spawned when first needed, replaced when lost."""

    def __init__(self, size: int, start_method: str | None) -> None:
        try:
            self.context: BaseContext = multiprocessing.get_context(start_method)
        except ValueError as exc:
            msg = f"DagliteSettings.mp_start_method={start_method!r} is not a start method here: {exc}"
            raise ValueError(msg) from exc
        self.size = size
        self.workers: list[Worker] = []

    def spawn(self) -> Worker:
        """Start one more worker."""
        _register_atexit()
        _live.add(self)
        ours, theirs = self.context.Pipe(duplex=True)
        inherited = ours if self.context.get_start_method() == "fork" else None
        process = self.context.Process(  # type: ignore[attr-defined]
            target=worker_main, args=(theirs, inherited), name="daglite-process-worker", daemon=False
        )
        process.start()
        theirs.close()
        worker = Worker(process, ours)
        self.workers.append(worker)
        return worker

    def kill(self, worker: Worker) -> int | None:
        """Kill ``worker`` (SIGKILL; a no-op if it died), forget it; return its exit code.

        A negative exit code is the signal that ended the process.
        """
        if worker in self.workers:
            self.workers.remove(worker)
        worker.process.kill()
        worker.process.join()
        code: int | None = worker.process.exitcode
        worker.conn.close()
        worker.process.close()
        return code

    def close(self, grace: float = STOP_GRACE) -> None:
        """Ask every worker to exit, wait up to ``grace`` seconds, then kill the rest."""
        workers, self.workers = self.workers, []
        _live.discard(self)
        for worker in workers:
            try:
                worker.send(pickle.dumps(None))
            except OSError:
                pass  # already gone
        end = time.monotonic() + grace
        for worker in workers:
            worker.process.join(max(0.0, end - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
            worker.process.close()
