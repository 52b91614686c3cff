"""What runs inside a Dask worker: one Dask task per batch of items.

:func:`run_batch` is the function every batch's Dask task calls. It

1. unpickles the map's remote runner (the core's ``runner.remote()``), once per
   worker per map (kept by the map's token);
2. brings the session's ``DAGLITE_*`` environment variables into the worker
   process (see :func:`apply_env`);
3. runs the items through the runner with ``emit`` set to an :class:`Emitter`,
   which publishes each chunk of hook events on the client's event topic
   (``Worker.log_event``) while the items run, so that the session's plugins see
   them live;
4. returns the outcomes pickled to bytes (see :mod:`daglite_dask._portable`), the
   attempt's id and the number of event chunks it published, so that the session
   replays every event of the batch before it hands out the batch's outcomes.
"""

from __future__ import annotations

import itertools
import os
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from daglite_core import WorkItem

from ._portable import Event, encode_events, encode_outcomes

KEEP_RUNNERS = 16
"""Remote runners kept per worker process (one per recent map)."""

START = -1
"""``seq`` of the message that says a batch started (maps with a timeout)."""

_runners: OrderedDict[str, Any] = OrderedDict()
_runners_lock = threading.Lock()
_env_lock = threading.Lock()


def _runner(token: str, blob: bytes) -> Any:
    with _runners_lock:
        runner = _runners.get(token)
        if runner is not None:
            _runners.move_to_end(token)
            return runner
    runner = pickle.loads(blob)  # noqa: S301 - sent by the session's own client
    with _runners_lock:
        _runners[token] = runner
        while len(_runners) > KEEP_RUNNERS:
            _runners.popitem(last=False)
    return runner


def apply_env(env: dict[str, str]) -> None:
    """Set the session's ``DAGLITE_*`` variables in this worker process where they differ.

    Worker processes (a remote cluster, or a ``LocalCluster`` started before the
    variables were set) do not see the client's environment; plugins read some of
    their configuration from it (a store's key file, a default root). Variables
    the client does not have are left alone. A worker shared by sessions with
    different values holds the latest map's.
    """
    environ = os.environ
    if all(environ.get(k) == v for k, v in env.items()):
        return
    with _env_lock:
        for key, value in env.items():
            if environ.get(key) != value:
                environ[key] = value


class Emitter:
    """``emit`` for the remote runner: publishes event chunks on the client's topic.

    Messages are ``[token, batch, attempt, seq, payload]`` (msgpack-able, as
    ``log_event`` requires): the map's token, the batch number, this attempt's id
    (a batch re-run after its worker died has another), the chunk's number (or
    :data:`START`) and the pickled events. Never raises: a chunk that cannot be
    published is dropped (the runner would otherwise lose the batch's outcomes).
    """

    def __init__(self, worker: Any, topic: str, token: str, batch: int, runner: Any) -> None:
        self.worker = worker
        self.topic = topic
        self.token = token
        self.batch = batch
        self.runner = runner
        self.attempt = uuid.uuid4().hex
        self.sent = 0
        self._seq = itertools.count()

    def _publish(self, seq: int, payload: bytes) -> bool:
        try:
            self.worker.log_event(self.topic, [self.token, self.batch, self.attempt, seq, payload])
        except Exception:  # noqa: BLE001 - see the class docstring
            return False
        return True

    def started(self) -> None:
        """Tell the session that this batch started (its timeout counts from now)."""
        self._publish(START, b"")

    def __call__(self, events: Sequence[Event]) -> None:
        try:
            payload = encode_events(self.runner, events)
        except Exception:  # noqa: BLE001 - see the class docstring
            return
        if self._publish(next(self._seq), payload):
            self.sent += 1


def run_batch(
    token: str,
    blob: bytes,
    items: Sequence[tuple[int, tuple[Any, ...]]],
    topic: str,
    batch: int,
    env: dict[str, str],
    timed: bool,
) -> tuple[bytes, str, int]:
    """Run one batch of a map in this Dask worker (see the module docstring)."""
    from distributed import get_worker

    runner = _runner(token, blob)
    apply_env(env)
    emitter = Emitter(get_worker(), topic, token, batch, runner)
    if timed:
        emitter.started()
    work = [WorkItem(index, args) for index, args in items]
    result = runner(work, emitter)
    return encode_outcomes(runner, work, result), emitter.attempt, emitter.sent
