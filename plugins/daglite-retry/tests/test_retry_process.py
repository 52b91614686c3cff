"""Tasks on process workers: policies decide in the workers; reports reach the session's process."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import retry_helpers
from retry_helpers import broken, flaky, is_transient, waits_for_report

import daglite_core as d
from daglite_retry import EVENT, RetryEvent, RetryPolicies, fixed, reporter


def _events(caplog: pytest.LogCaptureFixture) -> list[RetryEvent]:
    return [r.daglite_retry for r in caplog.records if isinstance(getattr(r, "daglite_retry", None), RetryEvent)]


def test_process_backend_retries_with_the_policy_and_reports_home(tmp_path: Path, retry_log: pytest.LogCaptureFixture) -> None:
    policy = fixed(0.01, retries=3, retry_on=ConnectionError, retry_if=is_transient)
    marker = str(tmp_path)
    with d.session(plugins=[RetryPolicies({"flaky-0": policy, "flaky-?": policy})], settings=d.DagliteSettings(max_workers=2)) as state:
        results = d.map_tasks(flaky, [0, 1, 2], [marker] * 3, [2, 0, 1], backend="process")
    assert results == [0, 1, 2]
    # The attempts ran in worker processes.
    pids = {int(p.name.rsplit(".", 1)[1]) for p in tmp_path.iterdir()}
    assert os.getpid() not in pids
    retried = _events(retry_log)
    assert sorted((e.task, e.attempt, e.max_attempts, e.delay) for e in retried) == [
        ("flaky-0[0]", 1, 4, 0.01), ("flaky-0[0]", 2, 4, 0.01), ("flaky-2[2]", 1, 4, 0.01),
    ]
    assert all(e.error_type == "ConnectionError" and e.session_id == state.id for e in retried)
    summary = reporter.summary(state.id)
    assert sorted((c.task, c.attempts, c.outcome, c.waited) for c in summary.calls) == [
        ("flaky-0[0]", 3, "succeeded", 0.02), ("flaky-2[2]", 2, "succeeded", 0.01),
    ]


def test_process_backend_failure_outcome_and_reason(tmp_path: Path) -> None:
    marker = str(tmp_path)
    policies = RetryPolicies(default=fixed(0.0, retries=1, retry_on=ConnectionError))
    with d.session(plugins=[policies]) as state:
        with pytest.raises(d.MapError) as info:
            d.map_tasks(flaky, [0], [marker], [5], backend="process")
        with pytest.raises(d.MapError):
            d.map_tasks(broken, [7], backend="process")
    assert info.value.failed_indexes == [0]
    (call,) = reporter.summary(state.id).calls  # broken-7 was never retried: not in the summary
    assert (call.task, call.attempts, call.outcome, call.error) == ("flaky-0[0]", 2, "failed", "ConnectionError: item 0 refused")
    assert call.reason == "no retries left (1 allowed)"


def test_process_backend_without_policies_logs_the_core_default(tmp_path: Path, retry_log: pytest.LogCaptureFixture) -> None:
    task = flaky.with_options(retries=1)
    with d.session() as state:
        assert d.map_tasks(task, [3], [str(tmp_path)], [1], backend="process") == [3]
    (event,) = _events(retry_log)
    assert (event.task, event.attempt, event.max_attempts, event.delay) == ("flaky-3[0]", 1, 2, 0.0)
    warnings = [r.getMessage() for r in retry_log.records if r.levelno == logging.WARNING]
    assert warnings[0] == "Task 'flaky-3[0]' attempt 1 of 2 failed (ConnectionError: item 3 refused); retrying now"
    assert [c.outcome for c in reporter.summary(state.id).calls] == ["succeeded"]


def test_helpers_module_is_importable_in_workers() -> None:
    # Guards the other tests: the workers import tasks by module name.
    assert retry_helpers.flaky.func.__module__ == "retry_helpers"


class MarksReports:
    """Stays in the session's process: marks the arrival of the first retry report with a file."""

    def __init__(self, marker_dir: Path) -> None:
        self.marker = marker_dir / "reported"

    @d.hookimpl
    def on_report(self, event: str, data: object) -> None:
        if event == EVENT and isinstance(data, RetryEvent) and data.retried:
            self.marker.touch()


def test_process_retry_reports_arrive_while_the_item_runs(tmp_path: Path) -> None:
    """The item's second attempt only ends once the first attempt's report was received home."""
    policies = RetryPolicies({"waits": fixed(0.0, retries=1)})
    with d.session(plugins=[policies, MarksReports(tmp_path)]) as state:
        assert d.map_tasks(waits_for_report, [str(tmp_path)], backend="process") == ["report arrived while the item ran"]
    (call,) = reporter.summary(state.id).calls
    assert (call.task, call.attempts, call.outcome) == ("waits[0]", 2, "succeeded")
