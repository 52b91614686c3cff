"""The records daglite-retry reports: one per failed attempt, one per retried call, one per session."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._names import EVENT

if TYPE_CHECKING:
    from daglite_core import Reporter, TaskMetadata

    from ._policy import Decision



def error_text(error: BaseException) -> str:
    """``Type: message`` of an error (the type alone when the message is empty)."""
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@attrs.frozen
class RetryEvent:
    """A failed attempt and what was decided about it (picklable: sent from workers).

    :ivar task: the call's task name (as resolved, e.g. ``fetch-3``).
    :ivar call_id: the call's ``TaskMetadata.id``.
    :ivar session_id: the call's session id, ``None`` outside a session.
    :ivar attempt: the failed attempt's number, from 1.
    :ivar max_attempts: the most attempts the call may have (retries + 1).
    :ivar error_type: the error's class name.
    :ivar error_message: ``str()`` of the error.
    :ivar delay: seconds before the next attempt, or ``None`` when it is not retried.
    :ivar reason: why it is not retried (empty when it is).
    """

    task: str
    call_id: Any
    session_id: Any
    attempt: int
    max_attempts: int
    error_type: str
    error_message: str
    delay: float | None
    reason: str = ""

    @property
    def retried(self) -> bool:
        """Whether another attempt follows."""
        return self.delay is not None

    def message(self) -> str:
        """The log line for this event."""
        error = f"{self.error_type}: {self.error_message}" if self.error_message else self.error_type
        head = f"Task {self.task!r} attempt {self.attempt} of {self.max_attempts} failed ({error})"
        if self.delay is None:
            return f"{head}; not retrying: {self.reason}"
        return f"{head}; retrying in {self.delay:.3g} s" if self.delay > 0 else f"{head}; retrying now"


@attrs.frozen
class CallRetries:
    """One call that retried at least once.

    :ivar task: the call's task name.
    :ivar call_id: the call's ``TaskMetadata.id``.
    :ivar attempts: how many attempts ran.
    :ivar outcome: ``"succeeded"``, ``"failed"``, or ``"running"`` (no outcome seen
        yet: a summary taken while the session runs).
    :ivar waited: seconds spent waiting between attempts (the delays applied).
    :ivar error: the last failed attempt's ``Type: message``.
    :ivar reason: why the last failure was not retried (empty if unknown or success).
    """

    task: str
    call_id: Any
    attempts: int
    outcome: str
    waited: float
    error: str
    reason: str = ""

    def line(self) -> str:
        """One line of the summary."""
        text = f"{self.task}: {self.attempts} attempts, {self.outcome}"
        if self.outcome == "failed":
            text += f" ({self.error})"
            if self.reason:
                text += f", not retried: {self.reason}"
        return f"{text}, waited {self.waited:.3g} s"


@attrs.frozen
class RetrySummary:
    """The calls of one session that retried, in the order they first failed.

    ``str()`` is the text daglite-retry logs at the end of the session.

    :ivar session_id: the session's id (``None``: calls outside any session).
    :ivar calls: one :class:`CallRetries` per call that retried.
    """

    session_id: Any
    calls: tuple[CallRetries, ...]

    @property
    def retries(self) -> int:
        """Retries made in total."""
        return sum(c.attempts - 1 for c in self.calls)

    @property
    def waited(self) -> float:
        """Seconds spent waiting between attempts, in total (summed over calls)."""
        return sum(c.waited for c in self.calls)

    @property
    def failed(self) -> tuple[CallRetries, ...]:
        """The calls that failed in the end despite their retries."""
        return tuple(c for c in self.calls if c.outcome == "failed")

    def by_task(self) -> dict[str, list[CallRetries]]:
        """The calls grouped by task name."""
        grouped: dict[str, list[CallRetries]] = {}
        for call in self.calls:
            grouped.setdefault(call.task, []).append(call)
        return grouped

    def __str__(self) -> str:
        return self.text()

    def text(self, limit: int = 20) -> str:
        """The summary: a head line, then one line per call (at most ``limit``)."""
        if not self.calls:
            return "daglite-retry: no task retried"
        failed = len(self.failed)
        head = (
            f"daglite-retry: {len(self.calls)} call(s) retried, {self.retries} retries, "
            f"{self.waited:.3g} s waiting; {len(self.calls) - failed} succeeded, {failed} failed"
        )
        lines = [head, *(f"  {c.line()}" for c in self.calls[:limit])]
        if len(self.calls) > limit:
            lines.append(f"  ... and {len(self.calls) - limit} more")
        return "\n".join(lines)


def report(reporter: Reporter, metadata: TaskMetadata, error: BaseException, attempt: int, decision: Decision) -> None:
    """Send ``decision`` about ``metadata``'s failed attempt as a :class:`RetryEvent`."""
    event = RetryEvent(
        task=metadata.name,
        call_id=metadata.id,
        session_id=metadata.session_id,
        attempt=attempt,
        max_attempts=decision.max_retries + 1,
        error_type=type(error).__name__,
        error_message=str(error),
        delay=decision.delay,
        reason=decision.reason,
    )
    reporter.report(EVENT, event)
