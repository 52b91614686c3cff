"""``daglite run --retries N --retry-delay S ...`` (the installed ``daglite`` command, as a subprocess)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daglite_retry import RetryPolicies, RetryPolicy, reporter

WORKFLOW = '''
from pathlib import Path

from daglite_core import task, workflow

COUNT = Path(__file__).with_name("attempts.txt")


@task
def fetch(failures: int) -> int:
    n = int(COUNT.read_text()) + 1 if COUNT.exists() else 1
    COUNT.write_text(str(n))
    if n <= failures:
        raise ConnectionError(f"refused {n}")
    return n


@workflow
def pipeline(failures: int = 2) -> int:
    return fetch(failures)
'''


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "wf.py").write_text(textwrap.dedent(WORKFLOW))
    daglite = Path(sys.executable).with_name("daglite")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_")}
    return subprocess.run(
        [str(daglite), "run", "wf.py:pipeline", *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_run_retries_every_task_with_the_given_delay(tmp_path: Path) -> None:
    done = run(tmp_path, "--retries", "3", "--retry-delay", "0.01", "--retry-backoff", "2", "--failures", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"
    lines = done.stderr.splitlines()
    assert "Task 'fetch' attempt 1 of 4 failed (ConnectionError: refused 1); retrying in 0.01 s" in lines
    assert "Task 'fetch' attempt 2 of 4 failed (ConnectionError: refused 2); retrying in 0.02 s" in lines
    assert "daglite-retry: 1 call(s) retried, 2 retries, 0.03 s waiting; 1 succeeded, 0 failed" in lines


def test_run_without_retry_options_does_not_retry(tmp_path: Path) -> None:
    done = run(tmp_path, "--failures", "1")
    assert done.returncode == 1
    assert "Task 'fetch' failed: ConnectionError: refused 1" in done.stderr
    assert "retrying" not in done.stderr


def test_run_gives_up_after_the_retries(tmp_path: Path) -> None:
    done = run(tmp_path, "--retries", "1", "--failures", "5")
    assert done.returncode == 1
    assert "Task 'fetch' failed after 2 attempts: ConnectionError: refused 2" in done.stderr


@pytest.mark.parametrize(("option", "value"), [("--retries", "-1"), ("--retries", "two"), ("--retry-delay", "nan"), ("--retry-backoff", "0")])
def test_run_rejects_bad_values(tmp_path: Path, option: str, value: str) -> None:
    done = run(tmp_path, option, value)
    assert done.returncode == 2
    assert f"argument {option}" in done.stderr


def test_run_options_build_the_default_policy() -> None:
    parser = argparse.ArgumentParser()
    reporter.provide_run_options(parser)
    args = parser.parse_args(["--retry-delay", "0.5", "--retry-backoff", "3", "--retry-max-delay", "4", "--retry-jitter", "0.1", "--retry-deadline", "60", "--retry-timeouts"])
    (plugin,) = reporter.provide_run_plugins(args) or []
    assert isinstance(plugin, RetryPolicies)
    assert plugin.default == RetryPolicy(retries=None, delay=0.5, backoff=3.0, max_delay=4.0, jitter=0.1, deadline=60.0, retry_timeouts=True)
    assert reporter.provide_run_plugins(parser.parse_args([])) is None
