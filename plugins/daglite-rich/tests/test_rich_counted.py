"""Counted maps: items on the core's fast path reported by ``map_progress``, not one by one.

These tests drive ``RichProgress``'s hook methods directly with the events the core
sends for a counted map (``before_map``, ``map_progress(per_item=False)`` a few
times, ``on_node_error`` per failed item, the final ``map_progress``, ``after_map``)
and check the bar, the per-task counts, "running now", the summary and the report.
"""

from __future__ import annotations

import io
import re
import threading
import uuid
from typing import Any

import pytest
from rich.console import Console

from daglite_core import TaskMetadata
from daglite_rich import Failure, RichProgress, TaskSummary
from daglite_rich._draw import live_view
from daglite_rich._model import RunModel


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def item(map_id: uuid.UUID, name: str, index: int) -> TaskMetadata:
    return TaskMetadata(uuid.uuid4(), f"{name}[{index}]", "thread", {"x": index}, "", index, None, False, False, map_id)


def start(progress: RichProgress, clock: Clock | None = None) -> RunModel:
    progress.before_session_start(uuid.uuid4())
    model = progress._model
    assert model is not None
    if clock is not None:  # the model's times from the test's clock from here on
        model.clock = clock
        model.t0 = clock()
    return model


def end(progress: RichProgress) -> None:
    progress.after_session_end(progress._session_id)


def render(snapshot: Any) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(live_view(snapshot))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_counts_drive_the_bar_the_task_counts_and_running_now() -> None:
    clock = Clock()
    progress = RichProgress(mode="off")
    model = start(progress, clock)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 10, None)
    clock.now += 0.1
    progress.map_progress(map_id, 4, 2, 0, False)

    snap = model.snapshot()
    [bar] = snap.bars
    assert (bar.name, bar.total, bar.finished, bar.failed, bar.done) == ("double", 10, 2, 0, False)
    [line] = snap.tasks
    assert (line.task, line.done, line.cached, line.retried, line.failed, line.running) == ("double", 2, 0, 0, 0, 2)
    assert snap.running == ()  # no item watched one by one
    assert snap.running_maps == (("double", 2),)
    assert snap.running_count == 2
    drawn = render(snap)
    assert "running double: 2 running" in drawn
    assert "+" not in drawn.split("running double")[1].splitlines()[0]  # no "+N more": all accounted for
    assert re.search(r"double\s+2\s+0\s+0\s+0\s+2\s", drawn), drawn

    clock.now += 0.1
    progress.map_progress(map_id, 9, 7, 0, False)
    snap = model.snapshot()
    assert snap.bars[0].finished == 7
    assert snap.tasks[0].done == 7 and snap.tasks[0].running == 2
    end(progress)


def test_a_counted_map_summarises_with_its_wall_time_and_the_failures_seen_one_by_one() -> None:
    clock = Clock()
    out = io.StringIO()
    progress = RichProgress(file=out, mode="plain")
    start(progress, clock)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 10, None)
    clock.now += 0.2
    progress.map_progress(map_id, 6, 5, 0, False)
    # Failure hooks still reach the plugin per item (no before_node_execute came first).
    progress.on_node_error(item(map_id, "double", 7), None, ValueError("bad 7"), 0.01)
    clock.now += 0.2
    progress.map_progress(map_id, 10, 10, 1, False)
    progress.after_map(map_id, "double", 10, 1, 0.5)
    end(progress)

    [row] = progress.summary_rows()
    # Total: the map's wall time (not item times, which the core did not measure); mean: per item.
    assert row == TaskSummary("double", 10, 0, 0, 1, pytest.approx(0.5), pytest.approx(0.05))
    assert progress.failures() == [Failure("double[7]", "ValueError: bad 7", 7)]
    text = out.getvalue()
    assert "[daglite] FAILED double[7]: ValueError: bad 7" in text
    assert re.search(r"^double\s+10\s+0\s+0\s+1\s+500\.0 ms\s+50\.0 ms$", text, re.M), text
    assert "[daglite] double: 10/10 (100%), 1 failed, done in 500.0 ms" in text
    # Milestones: the counts jump, so one line per report that passed a mark (5 of 10: 10%..50%),
    # then the end line.
    milestones = [m.group(1) for line in text.splitlines() if (m := re.match(r"\[daglite\] double: (\d+)/10", line))]
    assert milestones == ["5", "10"], text

    assert progress.last_run is not None
    tree = progress.last_run.tree()
    [node] = tree["children"]
    assert (node["name"], node["kind"], node["total"], node["calls"], node["ok"], node["failed"]) == ("double", "map", 10, 10, 9, 1)
    assert node["counted"] == 9  # successes without a span of their own
    assert node["failures"] == [["double[7]", "ValueError: bad 7"]]
    assert [s[2] for s in node["spans"]] == ["failed"]
    assert node["start"] == pytest.approx(0.0) and node["end"] == pytest.approx(0.4)
    assert node["busy"] == pytest.approx(0.5)


def test_per_item_maps_ignore_the_counts() -> None:
    """``per_item=True``: every item's hooks reached the plugin; the counts must not add to them."""
    progress = RichProgress(mode="off")
    model = start(progress)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "inc", 3, None)
    metas = [item(map_id, "inc", i) for i in range(3)]
    for meta in metas:
        progress.before_node_execute(meta, None)
    progress.after_node_execute(metas[0], None, 0.01, 1)
    progress.map_progress(map_id, 3, 1, 0, True)
    snap = model.snapshot()
    assert snap.bars[0].finished == 1
    assert (snap.tasks[0].done, snap.tasks[0].running) == (1, 2)
    assert snap.running_maps == ()
    assert sorted(name for name, _ in snap.running) == ["inc[1]", "inc[2]"]
    progress.after_node_execute(metas[1], None, 0.02, 2)
    progress.on_node_error(metas[2], None, RuntimeError("no"), 0.03)
    progress.map_progress(map_id, 3, 3, 1, True)
    progress.after_map(map_id, "inc", 3, 1, 5.0)
    end(progress)
    [row] = progress.summary_rows()
    # Item times as measured per call; the map's wall time is not added.
    assert row == TaskSummary("inc", 3, 0, 0, 1, pytest.approx(0.06), pytest.approx(0.02))
    assert progress.last_run is not None
    [node] = progress.last_run.tree()["children"]
    assert (node["calls"], node["ok"], node["failed"], node["counted"], len(node["spans"])) == (3, 2, 1, 0, 3)


def test_out_of_order_and_repeated_reports_count_once() -> None:
    progress = RichProgress(mode="off")
    model = start(progress)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 100, None)
    progress.map_progress(map_id, 50, 40, 0, False)
    progress.map_progress(map_id, 45, 30, 0, False)  # an older report, delivered late by another thread
    progress.map_progress(map_id, 50, 40, 0, False)  # the same again
    snap = model.snapshot()
    assert snap.bars[0].finished == 40
    assert (snap.tasks[0].done, snap.tasks[0].running) == (40, 10)
    progress.map_progress(map_id, 100, 100, 0, False)
    progress.map_progress(map_id, 100, 100, 0, False)  # the final report, after a periodic one with the same counts
    progress.after_map(map_id, "double", 100, 0, 1.0)
    end(progress)
    [row] = progress.summary_rows()
    assert (row.calls, row.failures) == (100, 0)
    snap = model.snapshot()
    assert (snap.tasks[0].done, snap.tasks[0].running, snap.running_count) == (100, 0, 0)


def test_failures_only_in_the_counts_are_still_counted() -> None:
    """Defensive: a failure the counts report but no ``on_node_error`` announced (no message)."""
    progress = RichProgress(mode="off")
    start(progress)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 4, None)
    progress.map_progress(map_id, 4, 4, 2, False)
    progress.on_node_error(item(map_id, "double", 1), None, ValueError("one"), 0.0)
    progress.after_map(map_id, "double", 4, 2, 0.2)
    end(progress)
    [row] = progress.summary_rows()
    assert (row.calls, row.failures) == (4, 2)
    assert progress.failures() == [Failure("double[1]", "ValueError: one", 1)]
    assert progress.last_run is not None
    [node] = progress.last_run.tree()["children"]
    assert (node["calls"], node["ok"], node["failed"], node["failure_count"]) == (4, 2, 2, 2)
    bar = progress.last_run.snapshot().bars[0]
    assert (bar.finished, bar.failed, bar.done) == (4, 2, True)


def test_counted_and_watched_calls_of_one_task_add_up() -> None:
    """A direct call of a task (watched) next to a counted map of it: one summary row."""
    progress = RichProgress(mode="off")
    start(progress)
    direct = TaskMetadata(uuid.uuid4(), "double", "inline", {"x": 1})
    progress.before_node_execute(direct, None)
    progress.after_node_execute(direct, None, 0.1, 2)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 4, None)
    progress.map_progress(map_id, 4, 4, 0, False)
    progress.after_map(map_id, "double", 4, 0, 0.4)
    end(progress)
    [row] = progress.summary_rows()
    assert row == TaskSummary("double", 5, 0, 0, 0, pytest.approx(0.5), pytest.approx(0.1))


def test_reports_from_many_threads_count_every_item_once() -> None:
    progress = RichProgress(mode="off")
    model = start(progress)
    map_id = uuid.uuid4()
    total = 4000
    progress.before_map(map_id, "double", total, None)
    lock = threading.Lock()
    state = {"started": 0, "done": 0}

    def worker() -> None:
        for _ in range(total // 4):
            with lock:  # the core's counters; the report itself is sent outside the lock
                state["started"] += 1
                state["done"] += 1
                counts = (state["started"], state["done"])
            progress.map_progress(map_id, counts[0], counts[1], 0, False)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.map_progress(map_id, total, total, 0, False)
    snap = model.snapshot()
    assert snap.bars[0].finished == total
    assert (snap.tasks[0].done, snap.tasks[0].running) == (total, 0)
    progress.after_map(map_id, "double", total, 0, 1.0)
    end(progress)
    assert progress.summary_rows()[0].calls == total


def test_a_nested_counted_map_is_drawn_under_its_parent_map() -> None:
    """A map started by a watched item of an outer map: nested bar, folded node."""
    progress = RichProgress(mode="off")
    model = start(progress)
    outer = uuid.uuid4()
    progress.before_map(outer, "outer", 2, None)
    parent = item(outer, "outer", 0)
    progress.before_node_execute(parent, None)
    inner = uuid.uuid4()
    progress.before_map(inner, "leaf", 3, parent.id)
    progress.map_progress(inner, 3, 1, 0, False)
    bars = model.snapshot().bars
    assert [(b.name, b.depth, b.finished) for b in bars] == [("outer", 0, 0), ("leaf", 1, 1)]
    progress.map_progress(inner, 3, 3, 0, False)
    progress.after_map(inner, "leaf", 3, 0, 0.03)
    progress.after_node_execute(parent, None, 0.05, 6)
    end(progress)
    assert progress.last_run is not None
    [node] = progress.last_run.tree()["children"]
    assert [(c["name"], c["kind"], c["calls"], c["counted"]) for c in node["children"]] == [("leaf", "map", 3, 3)]


def test_an_error_in_map_progress_switches_the_display_off_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    progress = RichProgress(mode="off")
    model = start(progress)
    map_id = uuid.uuid4()
    progress.before_map(map_id, "double", 4, None)

    def boom(*args: Any) -> None:
        raise RuntimeError("model broke")

    model.map_progress = boom  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="daglite.rich"):
        progress.map_progress(map_id, 1, 1, 0, False)
        progress.map_progress(map_id, 2, 2, 0, False)
    assert [r.getMessage() for r in caplog.records].count(
        "daglite-rich: progress display switched off after an error: RuntimeError: model broke"
    ) == 1
    end(progress)


def test_the_plugin_asks_for_counts_not_per_item_calls() -> None:
    assert RichProgress.daglite_map_progress is True
    assert RichProgress().daglite_map_progress is True


def test_map_progress_outside_a_shown_session_is_ignored() -> None:
    progress = RichProgress(mode="off")
    progress.map_progress(uuid.uuid4(), 1, 1, 0, False)  # no session: nothing to count into
    model = start(progress)
    progress.map_progress(uuid.uuid4(), 1, 1, 0, False)  # a map not announced by before_map
    assert model.snapshot().bars == ()
    end(progress)
