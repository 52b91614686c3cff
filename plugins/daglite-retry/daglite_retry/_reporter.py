"""The ``retry`` plugin: logs every retry and summarises each session's retries."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from daglite_core import Reporter, TaskMetadata, hookimpl

from ._cli import RunOptions
from ._policies import report
from ._policy import Decision
from ._records import EVENT, CallRetries, RetryEvent, RetrySummary, error_text

logger = logging.getLogger("daglite.retry")
"""Where retries are logged: WARNING per retry and for a non-empty session summary,
INFO when a retried call is given up. Every record carries the data as
``record.daglite_retry`` (a :class:`RetryEvent` or :class:`RetrySummary`)."""

_KEPT_SUMMARIES = 32
_KEPT_CALLS = 10_000  # per session: the oldest retried calls are dropped beyond it


class _Call:
    """What is known of one call that failed at least once (mutable, under the lock)."""

    __slots__ = ("task", "call_id", "failures", "waited", "error", "reason", "outcome", "retried")

    def __init__(self, task: str, call_id: Any) -> None:
        self.task = task
        self.call_id = call_id
        self.failures = 0  # the highest failed attempt number seen
        self.waited = 0.0
        self.error = ""
        self.reason = ""
        self.outcome = "running"
        self.retried = False

    def record(self) -> CallRetries:
        attempts = self.failures + (1 if self.outcome == "succeeded" else 0)
        return CallRetries(self.task, self.call_id, attempts, self.outcome, self.waited, self.error, self.reason)


class RetryReporter(RunOptions):
    """Reports retries through :data:`logger` and keeps a :class:`RetrySummary` per session.

    The installed entry point ``retry`` is the instance :data:`daglite_retry.reporter`;
    it stays in the session's own process and receives what happens in workers
    through the core's relay. It learns of each retry in two ways:

    * a :class:`RetryEvent` (``on_report``) sent by whoever decided it: a
      :class:`~daglite_retry.RetryPolicies` in the session, or, for calls no policy
      covers, this plugin's own ``provide_retry_delay`` (asked last, it never
      answers; it reports the core's default: an immediate retry while the task's
      ``retries=`` allow);
    * ``before_node_retry``, for a retry some other plugin decided (logged without
      a delay, which only that plugin knows).

    ``after_node_retry`` and ``on_node_error`` give a retried call's outcome; at
    ``after_session_end`` the session's summary is logged (when any call retried)
    and kept: :meth:`summary`, :attr:`last_summary`.

    Cost: implementing node hooks makes every call of a session go through the
    core's observed path (about 1 µs per call on the benchmark machine);
    ``DAGLITE_DISABLE_PLUGINS=retry`` turns reporting off.
    """

    daglite_plugin_name = "retry"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, OrderedDict[Any, _Call]] = {}
        self._ended: OrderedDict[Any, RetrySummary] = OrderedDict()
        self.last_summary: RetrySummary | None = None
        """The summary of the session that ended last (``None`` before any)."""

    # -- reading ---------------------------------------------------------------

    def summary(self, session_id: Any) -> RetrySummary:
        """The retries of session ``session_id``: final once it ended, else so far.

        The last 32 ended sessions are kept. Calls outside any session belong to
        the process's default session (``TaskMetadata.session_id`` tells its id).
        """
        with self._lock:
            ended = self._ended.get(session_id)
            if ended is not None:
                return ended
            calls = self._running.get(session_id)
            return RetrySummary(session_id, tuple(c.record() for c in (calls or {}).values() if c.retried))

    def clear(self) -> None:
        """Forget every session (for tests)."""
        with self._lock:
            self._running.clear()
            self._ended.clear()
            self.last_summary = None

    # -- hooks -------------------------------------------------------------------

    @hookimpl(trylast=True)
    def provide_retry_delay(
        self, metadata: TaskMetadata, reporter: Reporter, error: BaseException, attempt: int, retries: int
    ) -> None:
        """Asked last, when no policy answered: report the core's default decision, answer nothing."""
        if retries == 0:
            return  # not retried, as always: nothing to report
        if attempt <= retries:
            report(reporter, metadata, error, attempt, Decision(0.0, retries))
        else:
            report(reporter, metadata, error, attempt, Decision(None, retries, f"no retries left ({retries} allowed)"))

    @hookimpl
    def on_report(self, event: str, data: Any, metadata: TaskMetadata | None) -> None:
        if event != EVENT or not isinstance(data, RetryEvent):
            return
        retried = data.delay is not None
        with self._lock:
            # A call is tracked from its first retry; a first failure not retried is no news.
            call = self._call(data.session_id, data.call_id, data.task) if retried else self._get(data.session_id, data.call_id)
            if call is not None:
                call.failures = max(call.failures, data.attempt)
                call.error = f"{data.error_type}: {data.error_message}" if data.error_message else data.error_type
                if retried:
                    call.retried = True
                    call.waited += data.delay  # type: ignore[operator]
                else:
                    call.reason = data.reason
        level = logging.WARNING if retried else logging.INFO if data.attempt > 1 else logging.DEBUG
        logger.log(level, "%s", data.message(), extra={"daglite_retry": data})

    @hookimpl
    def before_node_retry(self, metadata: TaskMetadata, error: BaseException, attempt: int) -> None:
        with self._lock:
            call = self._call(metadata.session_id, metadata.id, metadata.name)
            reported = call.failures >= attempt
            if not reported:
                call.failures = attempt
                call.error = error_text(error)
            call.retried = True
        if not reported:
            logger.warning(
                "Task %r attempt %d failed (%s); retrying (decided by another plugin)",
                metadata.name, attempt, error_text(error), extra={"daglite_retry": None},
            )

    @hookimpl
    def after_node_retry(self, metadata: TaskMetadata, attempt: int, succeeded: bool) -> None:
        if succeeded:
            with self._lock:
                call = self._find(metadata)
                if call is not None:
                    call.outcome = "succeeded"
                    call.failures = max(call.failures, attempt)

    @hookimpl
    def on_node_error(self, metadata: TaskMetadata, error: BaseException) -> None:
        with self._lock:
            call = self._find(metadata)
            if call is not None:
                call.outcome = "failed"
                call.error = error_text(error)

    @hookimpl
    def after_session_end(self, session_id: Any) -> None:
        with self._lock:
            calls = self._running.pop(session_id, None)
            summary = RetrySummary(session_id, tuple(c.record() for c in (calls or {}).values() if c.retried))
            self._ended[session_id] = summary
            while len(self._ended) > _KEPT_SUMMARIES:
                self._ended.popitem(last=False)
            self.last_summary = summary
        if summary.calls:
            logger.warning("%s", summary.text(), extra={"daglite_retry": summary})

    # -- state -------------------------------------------------------------------

    def _call(self, session_id: Any, call_id: Any, task: str) -> _Call:
        calls = self._running.get(session_id)
        if calls is None:
            calls = self._running[session_id] = OrderedDict()
        call = calls.get(call_id)
        if call is None:
            if len(calls) >= _KEPT_CALLS:
                calls.popitem(last=False)  # a session that never ends (calls outside sessions)
            call = calls[call_id] = _Call(task, call_id)
        return call

    def _get(self, session_id: Any, call_id: Any) -> _Call | None:
        calls = self._running.get(session_id)
        return calls.get(call_id) if calls is not None else None

    def _find(self, metadata: TaskMetadata) -> _Call | None:
        return self._get(metadata.session_id, metadata.id)


reporter = RetryReporter()
"""The ``retry`` entry point: installed, it reports every retry of every session."""
