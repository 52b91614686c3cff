"""``RichProgress``: the session plugin that shows a run and summarises it."""

from __future__ import annotations

import logging
import os
import threading
from typing import IO, TYPE_CHECKING, Any

from daglite_core import hookimpl

from ._model import RunModel, error_text
from ._records import Failure, TaskSummary

if TYPE_CHECKING:
    import uuid

    from rich.console import Console

    from daglite_core import TaskMetadata

    from ._display import LiveDisplay, PlainDisplay

MODES = ("auto", "live", "plain", "off")
REPORT_SUFFIXES = (".html", ".htm", ".svg")

log = logging.getLogger("daglite.rich")

# The instance drawing now: a second one (a nested session's, or the global one of
# DAGLITE_PROGRESS next to a session's own) records but does not draw.
_drawing_lock = threading.Lock()
_drawing: RichProgress | None = None


class RichProgress:
    """Live progress on the console, a summary at the end, and optionally a report file.

    Register it for a session: ``session(plugins=[RichProgress()])``. From the
    session's start to its end it shows one bar per ``map_tasks`` call (nested maps
    under the map whose items ran them), the calls running now, and per task name
    the calls done, cached, retried and failed with their elapsed time. When the
    session ends it prints a summary table (task, calls, cache hits, retries,
    failures, total and mean time) and the failures with their messages.

    Where a terminal cannot be animated (output piped or captured, ``TERM=dumb``,
    a CI service) it prints plain lines instead: a line when a map reaches 10%,
    25%, 50%, 75% and 90% of its items and when it ends, one per failure, one per
    finished top-level call (rate-limited), and the same summary as text. Output
    goes to stderr; ``NO_COLOR`` removes colour. The display redirects the task
    code's ``print`` output above the live view (rich's ``Live``).

    Cost: each task event updates a few counters under one lock; drawing happens
    on rich's refresh thread, ``refresh_per_second`` times a second. The items of
    a map of a plain sync task are not watched one by one: they keep the core's
    fast path and are counted through the ``map_progress`` hook (see
    :attr:`daglite_map_progress`); such a map's items show as ``double: 2
    running`` rather than by name, and its summary time is the map's wall time
    (the mean: wall time per item). An error in
    this plugin (drawing, the report) is logged once on the ``daglite.rich``
    logger and switches the display off; it never fails or changes a task.

    One instance draws at a time in a process: registered again in a nested
    session (which sees the outer one's plugins anyway), or next to the global
    instance of ``DAGLITE_PROGRESS=1``, a second instance records (for its
    ``report``) but does not draw.

    :param mode: ``"auto"`` (animate when the console is interactive, else plain
        lines), ``"live"`` (always animate), ``"plain"`` (always lines) or
        ``"off"`` (no output at all; with ``report`` only the file is written).
    :param report: a path ending in ``.html`` (an interactive page) or ``.svg`` (a
        picture): the tree of task calls with a timeline, written when the session
        ends (see :func:`daglite_rich.write_report`).
    :param console: the :class:`rich.console.Console` to draw on (default: a new
        one on stderr following ``NO_COLOR``, ``FORCE_COLOR``, ``TERM`` and CI).
    :param file: a text stream to draw on instead of stderr (ignored with ``console``).
    :param refresh_per_second: how often the live view is redrawn.
    :param summary: print the summary table when the session ends.
    :param log_handler: ``"auto"`` routes daglite's own log records (loggers
        ``daglite``, ``daglite.*``) through a :class:`RichLogHandler` on the same
        console while the session runs, unless logging already has a handler for
        them; ``True`` always, ``False`` never.
    :raises ValueError: for an unknown ``mode``, a ``report`` path with another
        suffix, or a ``refresh_per_second`` that is not positive.
    """

    daglite_plugin_name = "daglite-rich"

    daglite_map_progress = True
    """Map items on the core's fast path are counted, not watched one by one.

    The core then does not call this plugin's success hooks (``before_node_execute``,
    ``after_node_execute``, ``node_iteration``, ``on_cache_hit``) for the items of a
    plain sync task's map, which keep the fast path; it reports them through
    :meth:`map_progress` instead (failures still arrive one by one). Every other
    call is watched as before.
    """

    def __init__(
        self,
        *,
        mode: str = "auto",
        report: str | os.PathLike[str] | None = None,
        console: Console | None = None,
        file: IO[str] | None = None,
        refresh_per_second: float = 8.0,
        summary: bool = True,
        log_handler: bool | str = "auto",
    ) -> None:
        if mode not in MODES:
            msg = f"RichProgress: unknown mode {mode!r}; use one of {', '.join(MODES)}"
            raise ValueError(msg)
        if report is not None:
            suffix = os.path.splitext(os.fspath(report))[1].lower()
            if suffix not in REPORT_SUFFIXES:
                msg = f"RichProgress: report path {os.fspath(report)!r} must end in .html or .svg"
                raise ValueError(msg)
        if not refresh_per_second > 0:
            msg = f"RichProgress: refresh_per_second must be positive, got {refresh_per_second!r}"
            raise ValueError(msg)
        if log_handler not in (True, False, "auto"):
            msg = f"RichProgress: log_handler must be True, False or 'auto', got {log_handler!r}"
            raise ValueError(msg)
        self.mode = mode
        self.report = os.fspath(report) if report is not None else None
        self.summary = summary
        self.refresh_per_second = refresh_per_second
        self.log_handler = log_handler
        self._console = console
        self._file = file
        self._session_id: uuid.UUID | str | None = None
        self._model: RunModel | None = None
        self._display: LiveDisplay | PlainDisplay | None = None
        self._handler: logging.Handler | None = None
        self._failed_once = False
        self.last_run: RunModel | None = None
        """The model of the last session shown (its summary, failures and tree), for tests and tools."""

    def summary_rows(self) -> list[TaskSummary]:
        """The summary of the last session this instance showed (one row per task name)."""
        return self.last_run.summary() if self.last_run is not None else []

    def failures(self) -> list[Failure]:
        """The failures of the last session this instance showed (at most 200 kept)."""
        return self.last_run.run_failures()[0] if self.last_run is not None else []

    def __repr__(self) -> str:
        return f"RichProgress(mode={self.mode!r}, report={self.report!r})"

    # -- session -----------------------------------------------------------

    @hookimpl
    def before_session_start(self, session_id: Any) -> None:
        global _drawing
        if self._session_id is not None:
            return  # a session nested in the one shown: its events count there
        self._session_id = session_id
        self._failed_once = False
        model = RunModel()
        display = None
        try:
            if self.mode != "off":
                with _drawing_lock:
                    mine = _drawing is None
                    if mine:
                        _drawing = self
                if mine:
                    display = self._make_display(model)
                    self._attach_log_handler(display.console)
                    display.start()
        except Exception as exc:  # noqa: BLE001 - progress must never stop a run
            if display is not None:
                try:
                    display.stop()
                except Exception:  # noqa: BLE001, S110 - already failing; reported below
                    pass
            self._detach_log_handler()
            self._drop_drawing()
            self._error(exc)
            display = None
        self._display = display
        self._model = model

    @hookimpl
    def after_session_end(self, session_id: Any) -> None:
        if session_id != self._session_id:
            return
        model, display = self._model, self._display
        self._model = self._display = None
        self._session_id = None
        if model is None:
            return
        model.finish()
        self.last_run = model
        if display is not None:
            try:
                display.stop()
                if self.summary and not display.broken:
                    self._print_summary(model, display)
            except Exception as exc:  # noqa: BLE001
                self._error(exc)
            finally:
                self._detach_log_handler()
                self._drop_drawing()
        if self.report is not None:
            self._write_report(model, display)

    def _make_display(self, model: RunModel) -> LiveDisplay | PlainDisplay:
        from ._console import make_console
        from ._display import LiveDisplay, PlainDisplay

        console = self._console or make_console(self._file)
        live = self.mode == "live" or (self.mode == "auto" and console.is_interactive)
        if live:
            return LiveDisplay(console, model, self.refresh_per_second, self._error)
        return PlainDisplay(console, model)

    def _print_summary(self, model: RunModel, display: LiveDisplay | PlainDisplay) -> None:
        from ._display import PlainDisplay

        rows = model.summary()
        failures, count = model.run_failures()
        if isinstance(display, PlainDisplay):
            from ._text import summary_text

            display.summary(summary_text(rows, failures, count, model.elapsed()))
        else:
            from ._draw import summary_view

            display.summary(summary_view(rows, failures, count, model.elapsed()))

    def _write_report(self, model: RunModel, display: LiveDisplay | PlainDisplay | None) -> None:
        from ._report import write_report

        assert self.report is not None  # noqa: S101 - called only when a report was asked for (for mypy)
        try:
            write_report(self.report, model.tree())
        except Exception as exc:  # noqa: BLE001 - the run's result matters more than its picture
            log.error("daglite-rich: could not write the report %r: %s", self.report, error_text(exc))
            return
        if display is not None:
            try:
                display.console.print(f"report written to {self.report}", markup=False, highlight=False, soft_wrap=True)
            except Exception:  # noqa: BLE001, S110 - the file is written; the notice is optional
                pass

    def _drop_drawing(self) -> None:
        global _drawing
        with _drawing_lock:
            if _drawing is self:
                _drawing = None

    def _attach_log_handler(self, console: Console) -> None:
        daglite_logger = logging.getLogger("daglite")
        if self.log_handler is False or (self.log_handler == "auto" and daglite_logger.hasHandlers()):
            return
        from ._logging import RichLogHandler

        self._handler = RichLogHandler(console=console)
        daglite_logger.addHandler(self._handler)

    def _detach_log_handler(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            logging.getLogger("daglite").removeHandler(handler)

    def _error(self, exc: BaseException) -> None:
        """Switch the display off after an error of ours; log it once per session."""
        display = self._display
        if display is not None:
            display.broken = True  # drawn blank / silent; still stopped at the session's end
        if not self._failed_once:
            self._failed_once = True
            log.error("daglite-rich: progress display switched off after an error: %s", error_text(exc), exc_info=exc)

    # -- fan-out -----------------------------------------------------------

    @hookimpl
    def before_map(self, map_id: Any, task_name: str, total: int, parent_id: Any) -> None:
        model = self._model
        if model is None:
            return
        try:
            model.map_started(map_id, task_name, total, parent_id)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def after_map(self, map_id: Any, task_name: str, total: int, failed: int, duration: float) -> None:
        model = self._model
        if model is None:
            return
        try:
            map_ = model.map_ended(map_id, duration)
            display = self._display
            if display is not None and (map_ is None or map_.depth == 0):
                display.map_done(task_name, total, failed, duration)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def map_progress(self, map_id: Any, started: int, done: int, failed: int, per_item: bool) -> None:
        """Counts of a map's items, a few times a second and once more at its end.

        For a map whose items run on the core's fast path (``per_item=False``) these
        counts drive its bar, the task's done and running counts, the summary and
        the report; for any other map each item's own hooks do, and the counts are
        ignored (they would count the items twice). Called from whichever thread
        finished an item: the model's lock makes it safe.
        """
        model = self._model
        if model is None:
            return
        try:
            crossed = model.map_progress(map_id, started, done, failed, per_item)
            display = self._display
            if display is not None and crossed is not None:
                display.milestone(crossed)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    # -- nodes (the hot path: full spec arguments, so the core calls them directly) --

    @hookimpl
    def before_node_execute(self, metadata: TaskMetadata, reporter: Any) -> None:
        model = self._model
        if model is None:
            return
        try:
            model.started(metadata)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def after_node_execute(self, metadata: TaskMetadata, reporter: Any, duration: float, result: Any) -> None:
        model = self._model
        if model is None:
            return
        try:
            crossed = model.succeeded(metadata, duration)
            display = self._display
            if display is not None:
                if crossed is not None:
                    display.milestone(crossed)
                elif metadata.parent_id is None and metadata.map_index is None:
                    display.call_done(metadata.name, duration)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def on_node_error(self, metadata: TaskMetadata, reporter: Any, error: BaseException, duration: float) -> None:
        model = self._model
        if model is None:
            return
        try:
            failure, crossed = model.failed(metadata, error, duration)
            display = self._display
            if display is not None:
                display.failure(failure)
                if crossed is not None:
                    display.milestone(crossed)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def on_cache_hit(self, metadata: TaskMetadata, reporter: Any, key: str, value: Any) -> None:
        model = self._model
        if model is None:
            return
        try:
            crossed = model.cache_hit(metadata)
            display = self._display
            if display is not None and crossed is not None:
                display.milestone(crossed)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    @hookimpl
    def before_node_retry(self, metadata: TaskMetadata, reporter: Any, error: BaseException, attempt: int) -> None:
        model = self._model
        if model is None:
            return
        try:
            model.retried(metadata)
        except Exception as exc:  # noqa: BLE001
            self._error(exc)
