"""The ``retry`` plugin: logs every retry and summarises each session's retries.

This module is the entry point's (``retry = daglite_retry:reporter``), imported by
every process that opens a session, most of which never retry: it imports neither
``logging``, the policies (``random``, ``fnmatch``) nor the attrs records. They are
imported by the first hook call that needs them: a failed attempt, a retry event,
the summary of a session in which a call retried (a session without retries keeps
``None`` for its summary until someone reads it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

from ._cli import RunOptions
from ._names import EVENT

if TYPE_CHECKING:
    from daglite_core import Reporter, TaskMetadata

    from ._records import CallRetries, RetrySummary

_KEPT_SUMMARIES = 32
_KEPT_CALLS = 10_000  # per session: the oldest retried calls are dropped beyond it
_NO_SESSION = object()  # ``_last`` before any session ended
_DEBUG, _INFO, _WARNING = 10, 20, 30  # logging's levels, named without importing it


def _log(level: int, message: str, *args: Any, data: Any) -> None:
    """Log on :data:`daglite_retry.logger` (imports ``logging`` the first time)."""
    from ._log import logger

    logger.log(level, message, *args, extra={"daglite_retry": data})


def _error_text(error: BaseException) -> str:
    from ._records import error_text

    return error_text(error)


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
        from ._records import CallRetries

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

    Cost: it implements only hooks that fire once an attempt failed, so successful
    calls keep the core's fast path; ``DAGLITE_DISABLE_PLUGINS=retry`` turns
    reporting off.
    """

    daglite_plugin_name = "retry"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, OrderedDict[Any, _Call]] = {}
        # An ended session's summary, ``None`` when no call retried in it (built when read).
        self._ended: OrderedDict[Any, RetrySummary | None] = OrderedDict()
        self._last: Any = _NO_SESSION

    @property
    def last_summary(self) -> RetrySummary | None:
        """The summary of the session that ended last (``None`` before any)."""
        with self._lock:
            return None if self._last is _NO_SESSION else self._ended_summary(self._last)

    # -- reading ---------------------------------------------------------------

    def summary(self, session_id: Any) -> RetrySummary:
        """The retries of session ``session_id``: final once it ended, else so far.

        The last 32 ended sessions are kept. Calls outside any session belong to
        the process's default session (``TaskMetadata.session_id`` tells its id).
        """
        with self._lock:
            if session_id in self._ended:
                return self._ended_summary(session_id)
            return _summary(session_id, self._running.get(session_id))

    def clear(self) -> None:
        """Forget every session (for tests)."""
        with self._lock:
            self._running.clear()
            self._ended.clear()
            self._last = _NO_SESSION

    # -- hooks -------------------------------------------------------------------

    @hookimpl(trylast=True)
    def provide_retry_delay(
        self, metadata: TaskMetadata, reporter: Reporter, error: BaseException, attempt: int, retries: int
    ) -> None:
        """Asked last, when no policy answered: report the core's default decision, answer nothing."""
        if retries == 0:
            return  # not retried, as always: nothing to report
        from ._policy import Decision
        from ._records import report

        if attempt <= retries:
            report(reporter, metadata, error, attempt, Decision(0.0, retries))
        else:
            report(reporter, metadata, error, attempt, Decision(None, retries, f"no retries left ({retries} allowed)"))

    @hookimpl
    def on_report(self, event: str, data: Any, metadata: TaskMetadata | None) -> None:
        if event != EVENT:
            return
        from ._records import RetryEvent

        if not isinstance(data, RetryEvent):
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
        _log(_WARNING if retried else _INFO if data.attempt > 1 else _DEBUG, "%s", data.message(), data=data)

    @hookimpl
    def before_node_retry(self, metadata: TaskMetadata, error: BaseException, attempt: int) -> None:
        with self._lock:
            call = self._call(metadata.session_id, metadata.id, metadata.name)
            reported = call.failures >= attempt
            if not reported:
                call.failures = attempt
                call.error = _error_text(error)
            call.retried = True
        if not reported:
            _log(
                _WARNING, "Task %r attempt %d failed (%s); retrying (decided by another plugin)",
                metadata.name, attempt, _error_text(error), data=None,
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
                call.error = _error_text(error)

    @hookimpl
    def after_session_end(self, session_id: Any) -> None:
        with self._lock:
            calls = self._running.pop(session_id, None)
            summary = _summary(session_id, calls) if calls and any(c.retried for c in calls.values()) else None
            self._ended[session_id] = summary
            while len(self._ended) > _KEPT_SUMMARIES:
                self._ended.popitem(last=False)
            self._last = session_id
        if summary is not None:
            _log(_WARNING, "%s", summary.text(), data=summary)

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

    def _ended_summary(self, session_id: Any) -> RetrySummary:
        """An ended session's summary, built now for a session without retries (under the lock)."""
        summary = self._ended[session_id]
        if summary is None:
            summary = self._ended[session_id] = _summary(session_id, None)
        return summary

    def _get(self, session_id: Any, call_id: Any) -> _Call | None:
        calls = self._running.get(session_id)
        return calls.get(call_id) if calls is not None else None

    def _find(self, metadata: TaskMetadata) -> _Call | None:
        return self._get(metadata.session_id, metadata.id)


def _summary(session_id: Any, calls: OrderedDict[Any, _Call] | None) -> RetrySummary:
    from ._records import RetrySummary

    return RetrySummary(session_id, tuple(c.record() for c in (calls or {}).values() if c.retried))


reporter = RetryReporter()
"""The ``retry`` entry point: installed, it reports every retry of every session."""
