"""The ``process`` backend: ``map_tasks`` items in batches on a pool of worker processes.

Workers: ``settings.process_workers`` processes of the ``settings.mp_start_method``
context (else the platform default), started when a map first needs them and
reused by every map of the session (or of the process, outside a session); a
session's pool is shut down when the session ends (a stop message, a grace of
2 s, then SIGKILL), so no child process outlives it. Maps on one backend take
turns: a map called from another thread while one runs waits for it.

Batches: a map's items go out in batches of ``ceil(n / (4 × workers))`` items
(at most 512), so uneven items still balance while the per-item cost stays near
``ProcessPoolExecutor.map(chunksize=100)``. Batches are strided (batch ``k``
holds items ``k, k + B, k + 2B, ...``): items that are slow together spread over
every batch. ``iter_tasks`` gets each batch's outcomes as it comes back. The task and the session's worker
config are pickled once per map and sent once per worker, then only items travel:
a batch goes out as a ``range`` of indices and one slice of the argument list, and
comes back as a list of values (failures apart, see
:class:`~daglite_core._protocols.Outcomes`) that ``map_tasks`` puts in place with one
slice assignment, so a 100,000-item map builds no record per item on either side.
Tasks pickle by reference when importable; what stdlib pickle cannot send goes
through ``cloudpickle`` when it is installed. A task that cannot be sent at all
is a ``pickle.PicklingError`` naming it, before any item runs; an item whose
arguments cannot be pickled, or whose result cannot be pickled back, fails alone
(its error names the task, the item and the cause). A reply that pickles in the
worker but cannot be unpickled here (a class missing in this process) fails the
items of its batch; a task the workers cannot unpickle fails every item.
The wire format is in :mod:`daglite_core._process._wire`, the workers in
:mod:`daglite_core._process._pool`.

Where hooks fire:

* ``before_map``/``after_map``, ``before_session_start``/``after_session_end`` and
  the provider hooks of the session's plugins: in the session's process.
* Node hooks (``before/after_node_execute``, ``on_node_error``, retries,
  ``node_iteration``, ``on_cache_hit``), dataset hooks and ``on_report``: in the
  worker, for plugins that declare ``daglite_in_workers = True`` (pickled, one copy
  per worker process, kept for the session); for every other plugin they are
  recorded in the worker and relayed live: a flusher thread in the worker sends
  what was recorded every 20 ms while the batch runs (and the rest before the
  reply), and the session's process replays each message as it arrives, in
  order (``reporter.report`` from a worker arrives that way too).
* The task body, its cache reads and writes and its dataset saves: in the worker.
* Items lost with their worker (death, timeout kill) fire ``on_node_error`` in the
  session's process (their worker-side events are lost with the worker).

Failures and timeouts:

* A failing item is an error outcome; the other items run; ``map_tasks`` then
  raises ``MapError`` naming every failing index (worker tracebacks are kept as
  the ``__cause__`` of the original errors).
* A worker that dies (``os._exit``, a segfault, the OOM killer) is noticed at once
  through its process sentinel and replaced. If its batch held one item, that
  item fails with :class:`WorkerDiedError` (naming the exit code or signal). If it
  held several, each of them runs again in a batch of its own, so that only the
  culprit fails: items of that batch that had finished in the dead worker run a
  second time (their events were lost with the worker, so plugins see one run).
* A body that raises ``SystemExit`` or ``KeyboardInterrupt`` ends its worker
  process: it fails like a dead worker (the thread backend would re-raise it in
  the caller; a worker cannot hand the session's process an exit).
* With ``timeout=T`` items go one per batch. The worker tells the coordinator
  when each attempt starts and ends, and the coordinator's deadline is
  ``T + 1`` seconds from the attempt's start: hooks, cache reads and waits
  between retries never count. The worker's own per-attempt timer normally
  answers first (``TaskTimeoutError``, retries as usual); because the attempt's
  thread is then abandoned still running, that worker is killed and replaced
  right after its batch comes back. A body that holds the GIL (or otherwise
  keeps the worker from answering) is killed with SIGKILL when the deadline
  passes: the item fails with ``TaskTimeoutError``, the other items go on.
* A worker that exits before it starts (typically: the ``spawn`` start method and
  a script without an ``if __name__ == "__main__":`` guard) is a configuration
  error: ``map_tasks`` raises :class:`WorkerStartError` instead of respawning.
* Ctrl-C (or any error, or an ``iter_tasks`` loop left early) in the session's
  process kills the busy workers; the next map starts fresh ones. Workers ignore
  ``SIGINT`` themselves, and exit at once when the session's process dies.
"""

from __future__ import annotations

import itertools
import math
import pickle
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from multiprocessing.connection import wait
from typing import Any, ClassVar

from .._lifecycle import AttemptTimeout
from .._protocols import ItemRunner, Outcome, Outcomes, WorkItem, WorkItems
from .._settings import DagliteSettings
from ._pool import READY, Pool, Worker
from ._wire import ATTEMPT, EVENTS, LOST, decode_events, decode_reply, dumps
from ._worker import replay

MAX_BATCH = 512
BATCHES_PER_WORKER = 4
ATTEMPT_GRACE = 1.0
"""Seconds past an attempt's ``timeout`` before the coordinator kills its worker: the
worker's own timer answers first unless the body keeps the worker from answering."""


class WorkerDiedError(RuntimeError):
    """The worker process running an item died before answering."""


class WorkerStartError(RuntimeError):
    """A worker process exited before it started: no item can run (raised by ``map_tasks``)."""


def batch_size(items: int, workers: int) -> int:
    """Items per batch: about four batches per worker, at most :data:`MAX_BATCH`."""
    return max(1, min(MAX_BATCH, math.ceil(items / (workers * BATCHES_PER_WORKER))))


def strided_batches(items: Sequence[WorkItem], size: int) -> list[Batch]:
    """Batches of about ``size`` items, batch ``k`` holding items ``k, k + B, k + 2B, ...``.

    Strided rather than contiguous: items that are slow together (the first 40 of
    400, say) spread over every batch instead of landing in one, which would
    leave one worker running them while the others idle at the end.
    """
    count = math.ceil(len(items) / size) if items else 0
    return [Batch(range(k, len(items), count), source=items) for k in range(count)]


def _how(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Batch:
    """Items sent together to one worker, and their positions in the map's outcome list.

    Built either from its items, or from the map's items and its positions, read
    when the batch is first sent (a large map does not build every item up front).
    """

    __slots__ = ("_items", "_source", "positions")

    def __init__(
        self, positions: Sequence[int], items: Sequence[WorkItem] | None = None, source: Sequence[WorkItem] | None = None
    ) -> None:
        self.positions = positions
        self._items = items
        self._source = source

    def wire(self) -> tuple[Sequence[int], list[tuple[Any, ...]]]:
        """The items as the wire sends them: their indices and their argument tuples.

        A strided batch of the map's own items (a :class:`WorkItems` source, item
        ``i`` is ``WorkItem(i, args[i])``) is a ``range`` and one slice of the
        argument list, without building a record per item.
        """
        source, positions = self._source, self.positions
        if (
            self._items is None and type(source) is WorkItems and type(positions) is range
            and source.indices == range(len(source.args))
        ):
            return positions, source.args[positions.start : positions.stop : positions.step]
        items = self.items
        return [item.index for item in items], [item.args for item in items]

    @property
    def items(self) -> Sequence[WorkItem]:
        items = self._items
        if items is None:
            source = self._source
            if source is None:  # pragma: no cover - every Batch is made with one or the other
                msg = "a process-backend Batch has neither its items nor their source"
                raise ValueError(msg)
            items = self._items = [source[p] for p in self.positions]
        return items


class ProcessBackend:
    """Runs ``map_tasks`` items on a pool of worker processes (see the module docstring)."""

    name: ClassVar[str] = "process"
    aliases: ClassVar[tuple[str, ...]] = ("processes", "multiprocessing")

    def __init__(self, settings: DagliteSettings) -> None:
        self.settings = settings
        self.pool = Pool(settings.process_workers, settings.mp_start_method)
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Outcomes:
        """Run every item in the workers; one outcome per item, in input order."""
        with self._lock:
            return _MapRun(self.pool, runner, items, next(self._tokens)).run()

    def stream(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Iterator[tuple[int, Outcome]]:
        """``(position, outcome)`` as each batch comes back; closing it early kills busy workers."""
        with self._lock:
            yield from _MapRun(self.pool, runner, items, next(self._tokens)).stream()

    def close(self) -> None:
        """Stop every worker (waiting up to 2 s for each to exit, then killing it)."""
        with self._lock:
            self.pool.close()

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for tests and diagnostics)."""
        return [w.pid for w in self.pool.workers]


def _task_name(runner: ItemRunner) -> str:
    task = getattr(runner, "task", None)
    return str(getattr(task, "name", "?"))


def _runner_blob(runner: ItemRunner) -> bytes:
    remote = runner.remote()
    try:
        return dumps(remote)
    except Exception as exc:
        msg = (
            f"Task {_task_name(runner)!r} cannot be sent to a worker process of the process backend "
            f"({type(exc).__name__}: {exc}). Define the task (and the session's worker plugins, stores "
            "and options) at module level so they pickle by reference, or install cloudpickle."
        )
        raise pickle.PicklingError(msg) from exc


def _arguments_error(runner: ItemRunner, item: WorkItem, exc: Exception) -> pickle.PicklingError:
    culprits = []
    for position, arg in enumerate(item.args):
        try:
            dumps(arg)
        except Exception:  # noqa: BLE001 - only for the message
            culprits.append(f"argument {position} ({type(arg).__qualname__})")
    which = ", ".join(culprits) or "its arguments"
    msg = (
        f"item {item.index}: {which} cannot be pickled to send it to a worker process "
        f"({type(exc).__name__}: {exc}); pass module-level, picklable values or install cloudpickle"
    )
    error = pickle.PicklingError(msg)
    error.__cause__ = exc
    return error


class _MapRun:
    """One ``map_tasks`` call on the pool: the queue, the workers' batches, the outcomes."""

    def __init__(self, pool: Pool, runner: ItemRunner, items: Sequence[WorkItem], token: int) -> None:
        self.pool = pool
        self.runner = runner
        self.state = runner.state  # type: ignore[attr-defined]  # the core's own ItemRunner
        self.token = token
        self.blob = _runner_blob(runner)
        self.timeout = runner.timeout
        self.limit = None if self.timeout is None else self.timeout + ATTEMPT_GRACE
        self.queue: deque[Batch] = deque(strided_batches(items, 1 if self.timeout is not None else batch_size(len(items), pool.size)))
        self.done: deque[tuple[Sequence[int], Outcomes]] = deque()
        """Answered batches (their positions and outcomes) not yet taken by :meth:`run` or :meth:`stream`."""
        self.pending = len(items)

    def run(self) -> Outcomes:
        """Every item's outcome, in input order: each batch's values go in with one slice assignment."""
        outcomes = Outcomes([None] * self.pending)
        done = self.done
        rounds = self._rounds()
        try:
            for _ in rounds:
                while done:
                    outcomes.put(*done.popleft())
        finally:
            rounds.close()
        return outcomes

    def stream(self) -> Iterator[tuple[int, Outcome]]:
        """``(position, outcome)`` as batches come back; closing it kills the busy workers."""
        done = self.done
        rounds = self._rounds()
        try:
            for _ in rounds:
                while done:
                    yield from zip(*done.popleft(), strict=True)
        finally:
            rounds.close()  # kills the busy workers when closed early

    def _rounds(self) -> Generator[None, None, None]:
        """Send, wait, absorb; yields after each round that answered items (in ``done``).

        Closing it (or an error) kills the busy workers.
        """
        for worker in list(self.pool.workers):
            if not worker.process.is_alive():
                self.pool.kill(worker)  # died while idle: just replace it
        try:
            while self.pending:
                self._dispatch()
                busy = [w for w in self.pool.workers if w.batch is not None]
                if not busy:  # pragma: no cover - every path answers its items
                    msg = f"process backend lost the outcomes of {self.pending} items"
                    raise AssertionError(msg)
                replies = self._wait(busy)
                # Refill the workers that answered before decoding their replies,
                # so they do not sit idle while this process unpickles.
                self._dispatch()
                for worker, batch, data in replies:
                    self._absorb(worker, batch, data)
                if self.done:
                    yield
            if self.done:
                yield
        except BaseException:
            for worker in list(self.pool.workers):
                if worker.batch is not None:
                    self.pool.kill(worker)
            raise

    def _answer(self, position: int, outcome: Outcome) -> None:
        self.done.append(((position,), Outcomes.of((outcome,))))
        self.pending -= 1

    # -- sending ---------------------------------------------------------------

    def _idle_worker(self) -> Worker | None:
        for worker in self.pool.workers:
            if worker.batch is None:
                return worker
        if len(self.pool.workers) < self.pool.size:
            return self.pool.spawn()
        return None

    def _dispatch(self) -> None:
        while self.queue:
            worker = self._idle_worker()
            if worker is None:
                return
            batch = self.queue.popleft()
            data = self._encode(worker, batch)
            if data is None:
                continue
            worker.batch = batch
            worker.token = self.token
            worker.since = time.monotonic()
            worker.deadline = None  # set while an attempt runs (see _control)
            try:
                worker.send(data)
            except OSError:
                self._lost(worker)

    def _encode(self, worker: Worker, batch: Batch) -> bytes | None:
        """The batch's message; unpicklable items fail here and are left out."""
        blob = self.blob if worker.token != self.token else None
        try:
            return dumps((self.token, blob, *batch.wire()))
        except Exception:  # noqa: BLE001, S110 - find the culprits one by one
            pass
        kept_positions, kept = [], []
        for position, item in zip(batch.positions, batch.items, strict=True):
            try:
                dumps(item.args)
            except Exception as exc:  # noqa: BLE001 - the item's outcome
                self._answer(position, self.runner.fail(item, _arguments_error(self.runner, item, exc)))
            else:
                kept_positions.append(position)
                kept.append(item)
        if kept:
            self.queue.appendleft(Batch(kept_positions, kept))
        return None

    # -- receiving ---------------------------------------------------------------

    def _wait(self, busy: list[Worker]) -> list[tuple[Worker, Batch, bytes]]:
        """Wait for messages, deaths or a deadline; return the replies read (workers now idle).

        Event messages are replayed at once to the session's plugins and attempt
        messages move the worker's deadline; the worker stays busy until its reply.
        """
        owners: dict[Any, Worker] = {}
        for worker in busy:
            owners[worker.conn] = worker
            owners[worker.process.sentinel] = worker
        deadlines = [w.deadline for w in busy if w.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        ready = set(wait(list(owners), timeout))
        replies = []
        for worker in busy:
            if worker.conn in ready:
                try:
                    data = self._read(worker)
                except (EOFError, OSError):
                    self._lost(worker)
                    continue
                if data is None:
                    if worker.process.sentinel in ready and not worker.conn.poll():
                        self._lost(worker)
                    continue
                replies.append((worker, worker.batch, data))
                worker.batch, worker.deadline = None, None
                if worker.process.sentinel in ready:
                    self.pool.kill(worker)  # answered, then died: only replace it
            elif worker.process.sentinel in ready:
                self._lost(worker)
            elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                self._expired(worker)
        return replies

    def _read(self, worker: Worker) -> bytes | None:
        """Read the worker's waiting messages up to its reply; return the reply, or ``None``."""
        conn = worker.conn
        while True:
            data = conn.recv_bytes()
            tag = data[:1]
            if tag == EVENTS:
                # Unpickled here, in the session's context: the reporters are already its own.
                replay(self.runner, decode_events(data), swap=False)
            elif tag == ATTEMPT:
                worker.deadline = None if len(data) == 1 else time.monotonic() + float(data[1:]) + ATTEMPT_GRACE
            elif data == READY:
                worker.ready = True
            else:
                return data
            if not conn.poll():
                return None

    def _absorb(self, worker: Worker, batch: Batch, data: bytes) -> None:
        """Decode a reply, replay its events and keep its outcomes."""
        try:
            reply = decode_reply(data)
        except Exception as exc:  # noqa: BLE001 - the batch's outcome
            cause = pickle.UnpicklingError(
                f"the worker's reply could not be unpickled in the session's process ({type(exc).__name__}: {exc})"
            )
            cause.__cause__ = exc
            self._fail(batch, cause)
            return
        if reply[0] == LOST:
            worker.token = None
            self._fail(batch, pickle.UnpicklingError(reply[1]))
            return
        remote = reply[1]
        outcomes = Outcomes.of(self.runner.absorb(remote))
        self.done.append((batch.positions, outcomes))
        self.pending -= len(outcomes)
        if remote.retire and worker in self.pool.workers:
            # A timed-out attempt's thread still runs in it: replace the worker. A
            # batch already sent to it goes back to the queue, whole, to run again.
            if worker.batch is not None:
                self.queue.appendleft(worker.batch)
            self.pool.kill(worker)

    def _fail(self, batch: Batch, error: BaseException) -> None:
        for position, item in zip(batch.positions, batch.items, strict=True):
            self._answer(position, self.runner.fail(item, error))

    def _lost(self, worker: Worker) -> None:
        batch = worker.batch
        code = self.pool.kill(worker)
        if not worker.ready:
            msg = (
                f"Task {_task_name(self.runner)!r}: a worker process of the process backend exited while "
                f"starting ({_how(code)}). With the 'spawn' or 'forkserver' start method every worker "
                "imports the main module: guard the script's entry point with "
                "`if __name__ == '__main__':` and make its imports work in a fresh interpreter."
            )
            raise WorkerStartError(msg)
        if len(batch.items) > 1:
            # Find the culprit: every item of the batch runs again on its own.
            singles = [Batch((p,), (item,)) for p, item in zip(batch.positions, batch.items, strict=True)]
            self.queue.extendleft(reversed(singles))
            return
        item = batch.items[0]
        msg = f"the worker process {worker.pid} died ({_how(code)}) while running item {item.index}"
        self._fail(batch, WorkerDiedError(msg))

    def _expired(self, worker: Worker) -> None:
        batch = worker.batch
        self.pool.kill(worker)
        msg = (
            f"attempt timed out after {self.timeout:g} s; the worker process {worker.pid} did not end it "
            f"within {self.limit:g} s and was killed"
        )
        self._fail(batch, AttemptTimeout(msg))
