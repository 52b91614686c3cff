"""The timing plugin, tested with daglite-core's shipped fixtures and RecordingPlugin."""

from __future__ import annotations

import importlib.metadata
import io
import time

import pytest
from daglite_timing import TimingPlugin

import daglite_core as d
from daglite_core.testing import RecordingPlugin


@d.task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@d.task
def fails(x: int) -> int:
    raise ValueError(f"bad {x}")


def test_prints_the_slowest_tasks_when_the_session_ends() -> None:
    out = io.StringIO()
    timing = TimingPlugin(top=2, stream=out)
    with d.session(plugins=[timing]):
        nap(0.05)
        d.map_tasks(nap, [0.0, 0.0, 0.0])
        assert out.getvalue() == ""  # nothing before the end
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("daglite-timing: 4 tasks in ")
    assert lines[1].endswith(" s  nap") and float(lines[1].split()[0]) >= 0.05
    assert lines[2].endswith("]") and "nap[" in lines[2]
    assert lines[3] == "  (+ 2 more)"
    assert timing.last is not None
    assert sorted(t.name for t in timing.last.timings) == ["nap", "nap[0]", "nap[1]", "nap[2]"]


def test_failed_tasks_are_timed_and_marked() -> None:
    out = io.StringIO()
    timing = TimingPlugin(stream=out)
    with d.session(plugins=[timing]):
        with pytest.raises(d.TaskError):
            fails(3)
    assert "1 tasks in" in out.getvalue() and "(1 failed)" in out.getvalue()
    assert out.getvalue().splitlines()[1].endswith("fails  FAILED")


def test_sessions_are_reported_separately_and_bare_calls_are_ignored() -> None:
    out = io.StringIO()
    timing = TimingPlugin(stream=out)
    d.register_plugins(timing)  # process-wide; daglite_isolated removes it after the test
    nap(0.0)  # outside any session: no session end to report at
    with d.session():
        nap(0.0)
    with d.session():
        nap(0.0)
        nap(0.0)
    heads = [line for line in out.getvalue().splitlines() if line.startswith("daglite-timing")]
    assert [h.split(" tasks")[0] for h in heads] == ["daglite-timing: 1", "daglite-timing: 2"]


def test_sees_exactly_the_events_the_recorder_fixture_sees(daglite_recorder: RecordingPlugin) -> None:
    timing = TimingPlugin(stream=io.StringIO())
    with d.session(plugins=[timing]):
        d.map_tasks(nap, [0.0] * 5, backend="thread")
    assert timing.last is not None
    recorded = sorted(c["metadata"].name for c in daglite_recorder.of("after_node_execute"))
    assert sorted(t.name for t in timing.last.timings) == recorded
    assert len(recorded) == 5


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_items_run_in_worker_processes_are_timed() -> None:
    timing = TimingPlugin(stream=io.StringIO())
    settings = d.DagliteSettings(max_workers=2)
    with d.session(plugins=[timing], backend="process", settings=settings):
        assert d.map_tasks(nap, [0.0] * 4) == [0.0] * 4
    assert timing.last is not None and len(timing.last.timings) == 4


def test_top_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_TIMING_TOP", "0")
    out = io.StringIO()
    with d.session(plugins=[TimingPlugin(stream=out)]):
        nap(0.0)
    assert len(out.getvalue().splitlines()) == 1
    monkeypatch.setenv("DAGLITE_TIMING_TOP", "many")
    with pytest.raises(ValueError, match="DAGLITE_TIMING_TOP='many' is not an integer"):
        TimingPlugin()


def test_the_entry_point_is_found_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        importlib.metadata.distribution("daglite-timing")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("daglite-timing is not installed (pip install -e examples/plugin-timing)")
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "1")
    [info] = [p for p in d.list_plugins() if p.name == "timing"]
    assert (info.distribution, info.status) == ("daglite-timing", "enabled")
    assert info.hooks == ("after_node_execute", "after_session_end", "before_session_start", "on_node_error")
