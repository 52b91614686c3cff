"""The two ways of showing a run: an animated rich ``Live`` view, or plain lines.

Both are driven by :class:`~daglite_rich._plugin.RichProgress`. The live view
never draws from a hook: rich's refresh thread asks for the renderable a few
times a second and gets one snapshot of the model. Plain output prints a line
per milestone of a top-level map (10%, 25%, 50%, 75%, 90%, done; maps nested in
other tasks are not narrated), per failure (the first
:data:`MAX_FAILURE_LINES`) and per finished top-level call (at most
:data:`LINES_PER_SECOND` a second), without colour or cursor movement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _text
from ._model import MapState, RunModel
from ._records import Failure

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

MAX_FAILURE_LINES = 20
LINES_PER_SECOND = 4.0


class PlainDisplay:
    """Line-based progress for a console that cannot be animated."""

    def __init__(self, console: Console, model: RunModel) -> None:
        self.console = console
        self.model = model
        self._lock = threading.Lock()
        self._failures = 0
        self._last_call_line = 0.0
        self.broken = False

    def start(self) -> None:
        pass

    def line(self, text: str) -> None:
        if self.broken:
            return
        with self._lock:
            self.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def milestone(self, map_: MapState) -> None:
        if map_.depth:
            return  # maps run by other tasks' items: counted in the summary, not narrated
        elapsed = self.model.elapsed() - map_.start
        self.line(_text.milestone_line(map_.name, map_.finished, map_.total, map_.failed, elapsed))

    def map_done(self, name: str, total: int, failed: int, duration: float) -> None:
        self.line(_text.map_done_line(name, total, failed, duration))

    def failure(self, failure: Failure) -> None:
        with self._lock:
            self._failures += 1
            count = self._failures
        if count <= MAX_FAILURE_LINES:
            self.line(_text.failure_line(failure))
        elif count == MAX_FAILURE_LINES + 1:
            self.line(f"{_text.PREFIX} more failures: listed in the summary")

    def call_done(self, name: str, duration: float) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_call_line < 1.0 / LINES_PER_SECOND:
                return  # rate-limited: the summary counts every call
            self._last_call_line = now
        self.line(_text.call_done_line(name, duration))

    def stop(self) -> None:
        pass

    def summary(self, text: str) -> None:
        self.line(text)


class LiveDisplay:
    """An animated view: rich ``Live`` with our renderable, refreshed by rich's thread."""

    def __init__(self, console: Console, model: RunModel, refresh_per_second: float, on_error: Callable[[BaseException], None]) -> None:
        from rich.live import Live

        self.console = console
        self.model = model
        self.on_error = on_error
        self.broken = False
        self.live: Live = Live(
            console=console, get_renderable=self.render, refresh_per_second=refresh_per_second,
            transient=True, redirect_stdout=True, redirect_stderr=True,
        )

    def render(self) -> RenderableType:
        """The view (called by rich's refresh thread); a drawing error blanks it, once reported."""
        from rich.text import Text

        if self.broken:
            return Text("")
        try:
            from ._draw import live_view

            return live_view(self.model.snapshot())
        except Exception as exc:  # noqa: BLE001 - drawing must never fail a task
            self.broken = True
            self.on_error(exc)
            return Text("")

    def start(self) -> None:
        self.live.start(refresh=False)

    def stop(self) -> None:
        self.live.stop()

    # Live views show all of these through the refreshed renderable.
    def milestone(self, map_: MapState) -> None:
        pass

    def map_done(self, name: str, total: int, failed: int, duration: float) -> None:
        pass

    def failure(self, failure: Failure) -> None:
        pass

    def call_done(self, name: str, duration: float) -> None:
        pass

    def summary(self, view: Any) -> None:
        self.console.print(view)
