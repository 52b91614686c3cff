"""A plugin that listens only to failures keeps successful calls on the fast path,
and still sees (and may retry) every failure, direct or mapped, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import daglite_core as d
from daglite_core.testing import RecordingPlugin

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


@d.task
def flaky(x: int, marker: str) -> int:
    """Fails the first time it runs for ``x`` (a marker file remembers, across processes)."""
    path = Path(marker) / str(x)
    if not path.exists():
        path.touch()
        raise ConnectionError(f"first try of {x}")
    return x


@d.task
def always_fails(x: int) -> int:
    raise ValueError(f"bad {x}")


class FailureRecorder:
    """Implements only hooks that fire after a failed attempt."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, d.TaskMetadata]] = []

    @d.hookimpl
    def on_node_error(self, metadata: d.TaskMetadata) -> None:
        self.calls.append(("on_node_error", metadata))

    @d.hookimpl
    def before_node_retry(self, metadata: d.TaskMetadata) -> None:
        self.calls.append(("before_node_retry", metadata))

    @d.hookimpl
    def after_node_retry(self, metadata: d.TaskMetadata) -> None:
        self.calls.append(("after_node_retry", metadata))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, hook: str) -> list[d.TaskMetadata]:
        return [m for name, m in self.calls if name == hook]


class RetryOnce:
    """Retries any failed attempt once, at once; runs in workers too."""

    daglite_in_workers = True

    @d.hookimpl
    def provide_retry_delay(self, attempt: int) -> float | bool:
        return 0.0 if attempt == 1 else False


def test_failure_listeners_leave_the_fast_path_on() -> None:
    with d.session(plugins=[FailureRecorder(), RetryOnce()]) as state:
        assert not state.observed and state.listening
    with d.session(plugins=[RecordingPlugin(hooks=["after_node_execute"])]) as state:
        assert state.observed


def test_a_direct_plain_call_that_fails_is_retried_and_reported(tmp_path: Path) -> None:
    recorder = FailureRecorder()
    with d.session(plugins=[recorder, RetryOnce()]) as state:
        assert not state.observed
        assert flaky(1, str(tmp_path)) == 1
        with pytest.raises(d.TaskError, match="bad 2") as caught:
            always_fails(2)
    assert caught.value.attempts == 2
    assert recorder.names() == [
        "before_node_retry", "after_node_retry",  # flaky(1): retried, then succeeded
        "before_node_retry", "after_node_retry", "on_node_error",  # always_fails(2)
    ]
    assert recorder.of("on_node_error")[0].name == "always_fails"


def test_without_failure_listeners_the_fast_error_is_unchanged() -> None:
    with d.session():
        with pytest.raises(d.TaskError) as caught:
            always_fails(3)
    assert caught.value.attempts == 1 and isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_mapped_failures_reach_failure_listeners(backend: str, tmp_path: Path) -> None:
    recorder = FailureRecorder()
    settings = d.DagliteSettings(max_workers=2)
    with d.session(backend=backend, plugins=[recorder, RetryOnce()], settings=settings) as state:
        assert not state.observed
        assert d.map_tasks(flaky, range(4), [str(tmp_path)] * 4) == [0, 1, 2, 3]
        with pytest.raises(d.MapError) as caught:
            d.map_tasks(always_fails, range(3))
    assert caught.value.failed_indexes == [0, 1, 2]
    retried = sorted(m.map_index for m in recorder.of("before_node_retry"))
    assert retried == [0, 0, 1, 1, 2, 2, 3]
    failed = recorder.of("on_node_error")
    assert sorted(m.map_index for m in failed) == [0, 1, 2]
    assert all(m.map_id is not None and m.name.startswith("always_fails[") for m in failed)
