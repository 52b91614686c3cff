"""What a user sees: a real pseudo-terminal (live bars), pipes (plain lines), NO_COLOR, TERM=dumb, CI."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from rich_helpers import PYTHON, child_env, run_pipe, run_pty

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from daglite_core import MapError, map_tasks, session, task
    from daglite_rich import RichProgress

    @task
    def work(x):
        time.sleep(0.05)
        if x == 4:
            raise ValueError("item four is bad")
        return x

    with session(plugins=[RichProgress(refresh_per_second=20)], backend=sys.argv[1]):
        try:
            map_tasks(work, range(12))
        except MapError:
            pass
        print("result printed by the script")
    """
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text(SCRIPT)
    return path


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_live_bars_and_summary_in_a_terminal(script: Path, backend: str) -> None:
    code, out = run_pty([PYTHON, str(script), backend], child_env(TERM="xterm-256color", DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert code == 0, out
    assert "\x1b[" in out  # drawn with cursor movement and colour
    plain = ANSI.sub("", out)
    # The live view was drawn while the map ran: a bar line "work ━━━ n/12" with a partial count.
    partial = [int(n) for n in re.findall(r"work [━╸╺ ]+ (\d+)/12", plain)]
    assert partial and min(partial) < 12, plain[-3000:]
    assert "running " in plain
    assert re.search(r"task\s+done\s+cached\s+retried\s+failed\s+running\s+elapsed", plain)
    # Then the summary table, and the failure with its message.
    assert re.search(r"daglite run: 12 calls in ", plain)
    assert re.search(r"^\s*work\s+12\s+0\s+0\s+1\s+\S+ \S+\s+\S+ \S+\s*$", plain, re.M), plain[-3000:]
    assert "Failures (1):" in plain and "work[4]: ValueError: item four is bad" in plain
    assert "result printed by the script" in plain
    assert "[daglite]" not in plain  # no plain lines in a terminal
    assert COLOUR.search(out)


def test_no_color_in_a_terminal_keeps_the_bars_without_colour(script: Path) -> None:
    code, out = run_pty([PYTHON, str(script), "thread"], child_env(TERM="xterm-256color", NO_COLOR="1", DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert code == 0, out
    plain = ANSI.sub("", out)
    assert re.search(r"work [━╸╺ ]+ \d+/12", plain)
    colours = [c for c in COLOUR.findall(out) if re.search(r"\[(3\d|4\d|9\d|10\d|38;|48;)", c)]
    assert colours == [], colours[:5]


def test_term_dumb_in_a_terminal_prints_plain_lines(script: Path) -> None:
    code, out = run_pty([PYTHON, str(script), "thread"], child_env(TERM="dumb", DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert code == 0, out
    assert "[daglite] FAILED work[4]: ValueError: item four is bad" in out
    assert re.search(r"\[daglite\] work: 12/12 \(100%\), 1 failed, done in ", out)
    assert "\x1b[1A" not in out and "\x1b[2K" not in out  # no cursor movement


def test_ci_in_a_terminal_with_force_color_prints_plain_lines(script: Path) -> None:
    code, out = run_pty([PYTHON, str(script), "thread"], child_env(TERM="xterm-256color", CI="true", FORCE_COLOR="1", DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert code == 0, out
    assert "[daglite] work: 12/12 (100%)" in ANSI.sub("", out)
    assert "\x1b[1A" not in out


def test_piped_output_is_plain_text_without_ansi(script: Path) -> None:
    result = run_pipe([PYTHON, str(script), "process"], child_env(TERM="xterm-256color", DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "result printed by the script\n"  # progress goes to stderr only
    err = result.stderr
    assert "\x1b" not in err
    lines = err.splitlines()
    assert "[daglite] FAILED work[4]: ValueError: item four is bad" in lines
    assert any(re.fullmatch(r"\[daglite\] work: \d+/12 \(\d+%\)(, 1 failed)?, .+", line) for line in lines), err
    assert re.search(r"^work\s+12\s+0\s+0\s+1\s", err, re.M), err
    assert "Failures (1):" in lines
