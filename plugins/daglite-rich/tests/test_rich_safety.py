"""A bug in drawing never fails a task; daglite's own log records through rich."""

from __future__ import annotations

import io
import logging
from typing import Any

import re
from pathlib import Path

import pytest
from daglite_core import map_tasks, session, task

from daglite_rich import RichLogHandler, RichProgress, _draw
from daglite_rich._model import RunModel
from rich_helpers import PYTHON, child_env, run_pipe


@task
def add(x: int, y: int = 1) -> int:
    return x + y


def broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("drawing bug")


def test_a_model_error_never_fails_a_task(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # DAGLITE_STRICT_HOOKS=1 is set: an escaping error would fail the call.
    monkeypatch.setattr(RunModel, "succeeded", broken)
    out = io.StringIO()
    with session(plugins=[RichProgress(file=out)], backend="thread"):
        assert add(1) == 2
        assert map_tasks(add, range(50)) == list(range(1, 51))
    errors = [r for r in caplog.records if r.name == "daglite.rich"]
    assert len(errors) == 1  # logged once, then the display is off
    assert "switched off after an error: RuntimeError: drawing bug" in errors[0].getMessage()
    assert "summary" not in out.getvalue()


def test_a_render_error_blanks_the_live_view(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_draw, "live_view", broken)
    out = io.StringIO()
    progress = RichProgress(file=out, mode="live", refresh_per_second=50)
    with session(plugins=[progress]):
        assert [add(i) for i in range(5)] == [1, 2, 3, 4, 5]
    assert [r.getMessage() for r in caplog.records if r.name == "daglite.rich"] == [
        "daglite-rich: progress display switched off after an error: RuntimeError: drawing bug"
    ]
    assert progress.summary_rows()[0].calls == 5  # counting went on


def test_a_console_that_fails_does_not_stop_the_session(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    out.close()  # every write raises ValueError
    with session(plugins=[RichProgress(file=out)]):
        assert add(2) == 3
    assert "switched off after an error" in caplog.text


def test_the_live_view_draws_every_part() -> None:
    from rich.console import Console

    model = RunModel()
    import uuid

    map_id = uuid.uuid4()
    model.map_started(map_id, "inc", 4, None)
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(_draw.live_view(model.snapshot()))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "inc" in text and "0/4" in text and "daglite:" in text


def test_rich_log_handler_shows_only_daglite_records() -> None:
    from rich.console import Console

    out = io.StringIO()
    handler = RichLogHandler(console=Console(file=out, width=200, color_system=None))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("daglite.cache").warning("entry %s unreadable", "abc")
        logging.getLogger("daglitex").warning("not ours")
        logging.getLogger("app").warning("the application's")
    finally:
        root.removeHandler(handler)
    text = out.getvalue()
    assert "entry abc unreadable" in text
    assert "not ours" not in text and "the application's" not in text


def test_progress_routes_daglite_logs_while_the_session_runs() -> None:
    out = io.StringIO()
    daglite_logger = logging.getLogger("daglite")
    before = list(daglite_logger.handlers)

    @task
    def chatty() -> int:
        logging.getLogger("daglite.demo").warning("something daglite says")
        return 1

    with session(plugins=[RichProgress(file=out, log_handler=True)]):
        assert len(daglite_logger.handlers) == len(before) + 1
        chatty()
    assert daglite_logger.handlers == before
    assert "something daglite says" in out.getvalue()


def test_auto_log_handler_when_logging_is_not_configured(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(
        "import logging\n"
        "from daglite_core import session, task\n"
        "from daglite_rich import RichProgress\n"
        "@task\n"
        "def chatty():\n"
        "    logging.getLogger('daglite.demo').warning('something daglite says')\n"
        "with session(plugins=[RichProgress()]):\n"
        "    chatty()\n"
    )
    result = run_pipe([PYTHON, str(script)], child_env(DAGLITE_PLUGINS_AUTOLOAD="0", COLUMNS="150"))
    assert result.returncode == 0, result.stderr
    # rich's handler (level column), not logging's last-resort bare message.
    assert re.search(r"WARNING\s+something daglite says", result.stderr), result.stderr


def test_progress_leaves_configured_logging_alone() -> None:
    daglite_logger = logging.getLogger("daglite")
    mine = logging.NullHandler()
    daglite_logger.addHandler(mine)
    try:
        with session(plugins=[RichProgress(file=io.StringIO())]):
            assert daglite_logger.handlers == [mine]
    finally:
        daglite_logger.removeHandler(mine)


def test_a_display_that_cannot_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from daglite_rich import _display, _plugin

    monkeypatch.setattr(_display.PlainDisplay, "start", broken)
    daglite_logger = logging.getLogger("daglite")
    before = list(daglite_logger.handlers)
    out = io.StringIO()
    progress = RichProgress(file=out, log_handler=True)
    with session(plugins=[progress]):
        assert add(1) == 2
        assert daglite_logger.handlers == before  # the handler attached for it was removed
    assert _plugin._drawing is None  # another instance may draw
    assert "switched off after an error: RuntimeError: drawing bug" in caplog.text
    assert out.getvalue() == ""
    assert progress.summary_rows()[0].calls == 1  # still recorded
