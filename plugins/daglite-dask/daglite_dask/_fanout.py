"""One ``map_tasks``/``iter_tasks`` call on a Dask client: batches, events, deadlines.

Everything here runs in the thread that called ``map_tasks`` (or iterates
``iter_tasks``): it waits on one queue that receives the batches' live hook
events (from :mod:`daglite_dask._router`) and their Dask futures as they finish
(``Future.add_done_callback``), replays events on the session's plugins as they
arrive, and yields each batch's outcomes once every event of that batch has been
replayed. See :class:`~daglite_dask.DaskBackend` for the semantics.
"""

from __future__ import annotations

import math
import os
import pickle
import queue
import re
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from daglite_core import ItemRunner, Outcome, TaskError, TaskTimeoutError, WorkItem

from . import _router
from ._errors import DaskBatchError, DaskWorkerLostError
from ._portable import decode_events, decode_outcomes, dumps
from ._worker import START, run_batch

MAX_BATCH = 512
BATCHES_PER_THREAD = 4
SINGLE_LOSSES = 2
"""Worker losses of an item (the last one while it ran alone) after which it fails."""
EVENT_GRACE = 5.0
"""Seconds a finished batch waits for its last event chunks before its outcomes go out anyway."""


def batch_size(items: int, threads: int) -> int:
    """Items per Dask task: about four tasks per worker thread, at most :data:`MAX_BATCH`."""
    return max(1, min(MAX_BATCH, math.ceil(items / (max(1, threads) * BATCHES_PER_THREAD))))


def task_name(runner: ItemRunner) -> str:
    return str(getattr(getattr(runner, "task", None), "name", "?"))


def _key_prefix(runner: ItemRunner) -> str:
    # Dask groups keys by their prefix (dashboard, task stream): one group per task.
    return "daglite-" + (re.sub(r"[^A-Za-z0-9_]+", "_", task_name(runner)).strip("_") or "task")


def daglite_env() -> dict[str, str]:
    """The ``DAGLITE_*`` environment variables that travel with every batch."""
    return {k: v for k, v in os.environ.items() if k.startswith("DAGLITE_")}


@attrs.define(eq=False)
class Batch:
    """Items sent together as one Dask task; their positions in the map's item list."""

    number: int
    positions: Sequence[int]
    items: Sequence[WorkItem]
    future: Any = None
    deadline: float | None = None
    received: dict[str, int] = attrs.Factory(dict)
    """Event chunks replayed, per attempt id."""
    parked: tuple[Any, str, int, float] | None = None
    """A finished batch waiting for its last events: (outcomes, attempt, chunks, give-up time)."""


class DaskMap:
    """Runs one map's items on ``client`` (see the module docstring)."""

    def __init__(self, client: Any, runner: ItemRunner, items: Sequence[WorkItem]) -> None:
        self.client = client
        self.runner = runner
        self.items = items
        self.token = uuid.uuid4().hex
        self.prefix = _key_prefix(runner)
        self.blob = _runner_blob(runner)
        self.env = daglite_env()
        self.timeout = runner.timeout
        retries = int(getattr(runner, "retries", 0))
        self.limit = None if self.timeout is None else (self.timeout + 0.5) * (retries + 1)
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending: dict[int, Batch] = {}
        self.unsendable: list[tuple[int, Outcome]] = []
        self.topic = ""
        self.numbers = iter(range(1 << 62))
        self.losses: dict[int, int] = {}
        self.suspects: deque[Batch] = deque()
        self.quarantined: Batch | None = None

    # -- the loop -----------------------------------------------------------------

    def stream(self) -> Iterator[tuple[int, Outcome]]:
        """``(position, outcome)`` pairs as batches finish."""
        router = _router.acquire(self.client)
        router.add(self.token, self.queue)
        try:
            self._submit_all(router.topic)
            while True:
                if self.unsendable:
                    pairs, self.unsendable = self.unsendable, []
                    yield from pairs
                if not self.pending and not self.suspects:
                    break
                kind, *payload = self._next()
                if kind == "event":
                    yield from self._event(payload[0])
                elif kind == "done":
                    yield from self._done(*payload)
                else:  # "tick": a deadline may have passed
                    yield from self._expire()
        finally:
            router.remove(self.token)
            _router.release(router)
            self._cancel_rest()

    def _next(self) -> tuple[Any, ...]:
        deadlines = [b.deadline for b in self.pending.values() if b.deadline is not None]
        deadlines += [b.parked[3] for b in self.pending.values() if b.parked is not None]
        wait = None if not deadlines else max(0.0, min(deadlines) - time.monotonic())
        try:
            return self.queue.get(timeout=wait)  # type: ignore[no-any-return]
        except queue.Empty:
            return ("tick",)

    # -- sending ------------------------------------------------------------------

    def _submit_all(self, topic: str) -> None:
        self.topic = topic
        threads = 1 if self.timeout is not None else sum(self.client.nthreads().values())
        size = 1 if self.timeout is not None else batch_size(len(self.items), threads)
        batches = [
            Batch(next(self.numbers), range(start, min(start + size, len(self.items))), self.items[start : start + size])
            for start in range(0, len(self.items), size)
        ]
        for batch in batches:
            self._submit(batch)

    def _submit(self, batch: Batch) -> None:
        payload = [(item.index, item.args) for item in batch.items]
        try:
            batch.future = self.client.submit(
                run_batch, self.token, self.blob, payload, self.topic, batch.number, self.env, self.timeout is not None,
                key=f"{self.prefix}-{self.token}-{batch.number}",
                pure=False,  # every batch runs: side effects (hooks, datasets) are never deduplicated
            )
        except Exception as exc:  # noqa: BLE001 - arguments that cannot be pickled
            if len(batch.items) > 1:
                for position, item in zip(batch.positions, batch.items, strict=True):
                    self._submit(Batch(next(self.numbers), (position,), (item,)))
                return
            item = batch.items[0]
            error = pickle.PicklingError(
                f"item {item.index}: its arguments cannot be sent to the Dask workers ({type(exc).__name__}: {exc})"
            )
            error.__cause__ = exc
            self.unsendable.append((batch.positions[0], self.runner.fail(item, error)))
            return
        self.pending[batch.number] = batch
        self._watch(batch)

    def _watch(self, batch: Batch) -> None:
        number, target = batch.number, self.queue
        batch.future.add_done_callback(lambda f: target.put(("done", number, f)))

    def _cancel_rest(self) -> None:
        futures = [b.future for b in self.pending.values() if b.future is not None]
        self.pending.clear()
        if futures and self.client.status == "running":
            self.client.cancel(futures)

    # -- receiving ----------------------------------------------------------------

    def _event(self, message: list[Any]) -> Iterator[tuple[int, Outcome]]:
        _token, number, attempt, seq, payload = message
        batch = self.pending.get(number)
        if seq == START:
            if batch is not None and self.limit is not None:
                batch.deadline = time.monotonic() + self.limit
            return
        try:
            events = decode_events(payload)
        except Exception:  # noqa: BLE001 - a class missing here: the events are lost, not the items
            events = []
        self.runner.replay(events)
        if batch is not None:
            batch.received[attempt] = batch.received.get(attempt, 0) + 1
            if batch.parked is not None and batch.received[attempt] >= batch.parked[2] and batch.parked[1] == attempt:
                yield from self._settle(batch, batch.parked[0])

    def _done(self, number: int, future: Any) -> Iterator[tuple[int, Outcome]]:
        batch = self.pending.get(number)
        if batch is None or batch.future is not future:
            return  # settled already (timed out), or replaced
        status = future.status
        if status not in ("finished", "error", "cancelled"):
            # Its result was lost with a worker after it finished ("lost", then
            # "pending" while Dask computes it again): wait for it once more.
            self._watch(batch)
            return
        if status != "finished":
            yield from self._failed(batch, future)
            return
        try:
            data, attempt, chunks = future.result()
            result = decode_outcomes(data)
        except Exception as exc:  # noqa: BLE001 - the batch's outcome
            yield from self._fail(batch, self._batch_error(batch, exc, "its result could not be read in the session's process"))
            return
        # The runner replays events that came back with the batch (none when live).
        outcomes = self.runner.absorb(result)
        if batch.received.get(attempt, 0) >= chunks:
            yield from self._settle(batch, outcomes)
        else:
            batch.parked = (outcomes, attempt, chunks, time.monotonic() + EVENT_GRACE)

    def _failed(self, batch: Batch, future: Any) -> Iterator[tuple[int, Outcome]]:
        from distributed.scheduler import KilledWorker

        try:
            error: BaseException | None = future.exception()
        except BaseException as exc:  # noqa: BLE001 - cancelled futures raise here
            error = exc
        if isinstance(error, KilledWorker):
            yield from self._killed(batch, error)
            return
        yield from self._fail(batch, self._batch_error(batch, error, f"its Dask task ended {future.status!r}"))

    def _killed(self, batch: Batch, error: BaseException) -> Iterator[tuple[int, Outcome]]:
        """Dask gave up on a batch whose workers died: find the culprit item(s).

        Tasks merely queued on a dying worker end with it, so a first loss only
        makes an item a suspect. Suspects run alone, one after the other (the
        quarantine); an item whose worker dies while it runs there, after a loss
        already, is the culprit and fails. The others run again.
        """
        del self.pending[batch.number]
        lone = batch is self.quarantined
        if lone:
            self.quarantined = None
        for position, item in zip(batch.positions, batch.items, strict=True):
            losses = self.losses[position] = self.losses.get(position, 0) + 1
            if lone and losses >= SINGLE_LOSSES:
                lost = DaskWorkerLostError(
                    f"item {item.index}: the Dask worker running it died ({error}); "
                    "see the worker's log (memory limit, a crash in native code, os._exit)"
                )
                lost.__cause__ = error
                yield position, self.runner.fail(item, lost)
            else:
                self.suspects.append(Batch(next(self.numbers), (position,), (item,)))
        self._release_suspect()

    def _release_suspect(self) -> None:
        while self.quarantined is None and self.suspects:
            batch = self.suspects.popleft()
            self._submit(batch)
            if batch.number in self.pending:
                self.quarantined = batch

    def _batch_error(self, batch: Batch, error: BaseException | None, what: str) -> DaskBatchError:
        indexes = [item.index for item in batch.items]
        which = f"item {indexes[0]}" if len(indexes) == 1 else f"items {indexes[0]}..{indexes[-1]}"
        failure = DaskBatchError(
            f"{which} of task {task_name(self.runner)!r}: {what} ({type(error).__name__}: {error}); "
            "is daglite-dask (and the task's module) installed on the Dask workers?"
        )
        failure.__cause__ = error
        return failure

    def _expire(self) -> Iterator[tuple[int, Outcome]]:
        now = time.monotonic()
        for batch in list(self.pending.values()):
            if batch.parked is not None and now >= batch.parked[3]:
                yield from self._settle(batch, batch.parked[0])  # its last events are lost
            elif batch.deadline is not None and now >= batch.deadline:
                batch.future.cancel()
                yield from self._timed_out(batch)

    def _timed_out(self, batch: Batch) -> Iterator[tuple[int, Outcome]]:
        self._forget(batch)
        item = batch.items[0]
        cause = TimeoutError(
            f"attempt timed out after {self.timeout:g} s; the Dask worker did not answer within "
            f"{self.limit:g} s (the body is left running in its worker thread)"
        )
        outcome = self.runner.fail(item, cause)
        error = outcome.error
        if isinstance(error, TaskError) and not isinstance(error, TaskTimeoutError):
            timeout_error = TaskTimeoutError(error.task_name, error.error, error.attempts)
            timeout_error.__cause__ = cause
            outcome = Outcome(False, error=timeout_error)
        yield batch.positions[0], outcome

    def _fail(self, batch: Batch, error: BaseException) -> Iterator[tuple[int, Outcome]]:
        self._forget(batch)
        for position, item in zip(batch.positions, batch.items, strict=True):
            yield position, self.runner.fail(item, error)

    def _forget(self, batch: Batch) -> None:
        self.pending.pop(batch.number, None)
        if batch is self.quarantined:
            self.quarantined = None
            self._release_suspect()

    def _settle(self, batch: Batch, outcomes: Sequence[Outcome]) -> Iterator[tuple[int, Outcome]]:
        self._forget(batch)
        yield from zip(batch.positions, outcomes, strict=True)


def _runner_blob(runner: ItemRunner) -> bytes:
    try:
        return dumps(runner.remote())
    except Exception as exc:
        msg = (
            f"Task {task_name(runner)!r} cannot be sent to the Dask workers ({type(exc).__name__}: {exc}). "
            "Define the task (and the session's worker plugins and stores) at module level so they pickle."
        )
        raise pickle.PicklingError(msg) from exc
