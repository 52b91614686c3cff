"""The timing plugin: each task's duration, and the slowest ones when a session ends.

``plugin`` (an instance) is what the ``daglite`` entry point names; installing the
distribution is all it takes for every session to use it. Output goes to stderr so
that a workflow's printed result on stdout stays clean.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from typing import TextIO

import attrs

from daglite_core import TaskMetadata, hookimpl

TOP_VARIABLE = "DAGLITE_TIMING_TOP"
"""Environment variable: how many of the slowest tasks to print (default 5, 0 for none)."""


@attrs.frozen
class Timing:
    """One finished task call: its name (``[i]`` for a map item), seconds, and whether it failed."""

    name: str
    duration: float
    failed: bool = False


@attrs.frozen
class SessionTimings:
    """Every task call of one session, in the order they finished."""

    session_id: uuid.UUID
    duration: float
    timings: tuple[Timing, ...]

    def slowest(self, n: int) -> list[Timing]:
        """The ``n`` slowest calls, slowest first (ties keep finishing order)."""
        return sorted(self.timings, key=lambda t: t.duration, reverse=True)[:n]

    def render(self, top: int) -> str:
        """The summary printed at the end of the session."""
        failed = sum(t.failed for t in self.timings)
        head = f"daglite-timing: {len(self.timings)} tasks in {self.duration:.3f} s"
        lines = [head + (f" ({failed} failed)" if failed else "")]
        shown = self.slowest(top)
        lines += [f"  {t.duration:9.3f} s  {t.name}{'  FAILED' if t.failed else ''}" for t in shown]
        if len(self.timings) > len(shown) and shown:
            lines.append(f"  (+ {len(self.timings) - len(shown)} more)")
        return "\n".join(lines)


def _top_from_environment() -> int:
    raw = os.environ.get(TOP_VARIABLE, "").strip()
    if not raw:
        return 5
    try:
        top = int(raw)
    except ValueError:
        msg = f"{TOP_VARIABLE}={raw!r} is not an integer"
        raise ValueError(msg) from None
    if top < 0:
        msg = f"{TOP_VARIABLE}={raw!r} must be >= 0"
        raise ValueError(msg)
    return top


class TimingPlugin:
    """Collect each task call's duration per session; print the slowest at its end.

    :param top: how many of the slowest calls to print (default: ``DAGLITE_TIMING_TOP``,
        else 5); ``0`` prints only the one-line total.
    :param stream: where to print (default: ``sys.stderr`` at the time of printing).

    Calls outside any session are not timed (there is no session end to report
    at). Events from process workers are relayed to the session's process, so
    this plugin needs no ``daglite_in_workers``. Thread-safe.
    """

    def __init__(self, top: int | None = None, stream: TextIO | None = None) -> None:
        if top is not None and top < 0:
            msg = f"TimingPlugin(top={top!r}): top must be >= 0"
            raise ValueError(msg)
        self.top = _top_from_environment() if top is None else top
        self.stream = stream
        self.last: SessionTimings | None = None
        """The timings of the most recently ended session."""
        self._open: dict[uuid.UUID, list[Timing]] = {}
        self._lock = threading.Lock()

    def _add(self, metadata: TaskMetadata, timing: Timing) -> None:
        if metadata.session_id is None:
            return
        with self._lock:
            calls = self._open.get(metadata.session_id)
            if calls is not None:
                calls.append(timing)

    @hookimpl
    def before_session_start(self, session_id: uuid.UUID) -> None:
        with self._lock:
            self._open[session_id] = []

    @hookimpl
    def after_node_execute(self, metadata: TaskMetadata, duration: float) -> None:
        self._add(metadata, Timing(metadata.name, duration))

    @hookimpl
    def on_node_error(self, metadata: TaskMetadata, duration: float) -> None:
        self._add(metadata, Timing(metadata.name, duration, failed=True))

    @hookimpl(trylast=True)  # after other plugins' session-end output
    def after_session_end(self, session_id: uuid.UUID, duration: float) -> None:
        with self._lock:
            calls = self._open.pop(session_id, None)
        if not calls:
            return
        self.last = SessionTimings(session_id, duration, tuple(calls))
        print(self.last.render(self.top), file=self.stream or sys.stderr, flush=True)


plugin = TimingPlugin()
"""The instance the ``daglite`` entry point registers."""
