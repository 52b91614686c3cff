"""How progress is switched on: the entry point, DAGLITE_PROGRESS and ``daglite run --progress/--report``."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import textwrap
from pathlib import Path

import pytest
from daglite_core import list_plugins, register_plugins, session, task

from daglite_rich import RichProgress, _entry
from rich_helpers import PYTHON, child_env, run_pipe, run_pty

DAGLITE = str(Path(sys.executable).with_name("daglite"))

JOBS = textwrap.dedent(
    '''
    from daglite_core import map_tasks, session, task, workflow

    @task
    def double(x: int) -> int:
        if x == 5:
            raise ValueError("five")
        return 2 * x

    @task
    def total(xs: list) -> int:
        return sum(xs)

    @workflow
    def pipeline(n: int = 8) -> int:
        """Double the numbers below n, skipping failures."""
        from daglite_core import MapError
        try:
            values = map_tasks(double, range(n))
        except MapError:
            values = [0]
        return total(values)

    if __name__ == "__main__":
        with session(backend="thread"):
            with session():  # nested: still one display and one summary
                print(pipeline())
    '''
)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.py"
    path.write_text(JOBS)
    return path


def test_the_entry_point_is_installed() -> None:
    eps = [ep for ep in importlib.metadata.entry_points(group="daglite") if ep.name == "rich"]
    assert [ep.value for ep in eps] == ["daglite_rich._entry:plugin"]


def test_installed_but_off_observes_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "1")
    with session() as state:
        assert state.observed is False  # the core's fast path is untouched
    info = [p for p in list_plugins() if p.name == "rich"]
    assert [(p.status, p.hooks) for p in info] == [("enabled", ("provide_run_options", "provide_run_plugins"))]


def test_env_switch_values(caplog: pytest.LogCaptureFixture) -> None:
    assert [_entry.env_mode(v) for v in ("", "0", "off", "No", "1", "on", "TRUE", "auto", "live", "plain")] == [
        None, None, None, None, "auto", "auto", "auto", "auto", "live", "plain",
    ]
    assert _entry.env_mode("sometimes") is None
    assert "ignoring DAGLITE_PROGRESS='sometimes'" in caplog.text


def test_env_on_makes_the_entry_point_a_progress_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_PROGRESS", "plain")
    plugin = _entry.plugin
    assert isinstance(plugin, RichProgress) and plugin.mode == "plain"
    monkeypatch.setenv("DAGLITE_PROGRESS", "0")
    assert not isinstance(_entry.plugin, RichProgress)


def test_daglite_progress_env_in_a_script(jobs: Path) -> None:
    result = run_pipe([PYTHON, str(jobs)], child_env(DAGLITE_PROGRESS="1"), cwd=jobs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"
    err = result.stderr
    assert "\x1b" not in err
    assert "[daglite] FAILED double[5]: ValueError: five" in err
    assert err.count("[daglite] summary:") == 1
    assert re.search(r"^double\s+8\s+0\s+0\s+1\s", err, re.M), err


def test_daglite_progress_env_in_a_terminal_draws_live(jobs: Path) -> None:
    code, out = run_pty([PYTHON, str(jobs)], child_env(DAGLITE_PROGRESS="1", TERM="xterm-256color"))
    assert code == 0, out
    assert "daglite run: 9 calls in" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)


def test_without_the_switch_nothing_is_drawn(jobs: Path) -> None:
    result = run_pipe([PYTHON, str(jobs)], child_env(), cwd=jobs.parent)
    assert (result.returncode, result.stdout, result.stderr) == (0, "0\n", "")


def test_daglite_run_progress_and_report(jobs: Path) -> None:
    env = child_env()
    result = run_pipe([DAGLITE, "run", "jobs.py:pipeline", "--progress", "--report", "run.html", "--n", "6"], env, cwd=jobs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"
    err = result.stderr
    assert "[daglite] FAILED double[5]: ValueError: five" in err
    assert re.search(r"^double\s+6\s+0\s+0\s+1\s", err, re.M), err
    assert "report written to run.html" in err
    assert (jobs.parent / "run.html").read_text().startswith("<!DOCTYPE html>")


def test_daglite_run_report_alone_prints_no_progress(jobs: Path) -> None:
    result = run_pipe([DAGLITE, "run", "jobs.py:pipeline", "--report", "run.svg"], child_env(), cwd=jobs.parent)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "double" in (jobs.parent / "run.svg").read_text()


def test_daglite_run_help_lists_the_options(jobs: Path) -> None:
    result = run_pipe([DAGLITE, "run", "jobs.py:pipeline", "--help"], child_env(), cwd=jobs.parent)
    assert "--progress" in result.stdout and "--report PATH" in result.stdout


def test_daglite_run_without_the_flags_is_quiet(jobs: Path) -> None:
    result = run_pipe([DAGLITE, "run", "jobs.py:pipeline"], child_env(), cwd=jobs.parent)
    assert (result.returncode, result.stdout, result.stderr) == (0, "0\n", "")


def test_one_display_at_a_time() -> None:
    """A session's own RichProgress next to a global one: one draws, the other records."""
    import io

    outer_out, inner_out = io.StringIO(), io.StringIO()
    outer = RichProgress(file=outer_out)
    register_plugins(outer)

    @task
    def one() -> int:
        return 1

    inner = RichProgress(file=inner_out, report=None)
    with session(plugins=[inner]):
        one()
    # The session's own instance is called first (pluggy order) and draws.
    assert "[daglite] summary: 1 task, 1 call" in inner_out.getvalue()
    assert outer_out.getvalue() == ""
    assert [r.calls for r in outer.summary_rows()] == [1]
