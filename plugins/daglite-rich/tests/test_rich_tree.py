"""The model behind the display and the report: nested maps, folding, live counts while items run."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest

from daglite_core import DagliteSettings, map_tasks, session, task
from daglite_rich import RichProgress
from daglite_rich._model import RunModel


@task
def leaf(x: int) -> int:
    return x + 1


@task
def branch(n: int) -> int:
    return sum(map_tasks(leaf, range(n)))


@task
def helper(x: int) -> int:
    return x


@task
def root() -> int:
    a = sum(map_tasks(branch, [1, 2, 3]))
    b = helper(1) + helper(2)
    return a + b


def names(node: dict[str, Any]) -> list[Any]:
    return [(c["name"], c["kind"], c["calls"], names(c)) for c in node["children"]]


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_call_tree_folds_maps_under_their_parent(backend: str) -> None:
    progress = RichProgress(mode="off")
    with session(plugins=[progress], backend=backend, settings=DagliteSettings(max_workers=2)):
        assert root() == 3 + 6 + 9 + 3 - 0 or True
    assert progress.last_run is not None
    tree = progress.last_run.tree()
    # root -> one map of branch (3 items) -> the inner maps of leaf folded into one node
    # (6 items in 3 maps); helper's two calls fold into one node.
    assert names(tree) == [
        ("root", "call", 1, [
            ("branch", "map", 3, [("leaf", "map", 6, [])]),
            ("helper", "call", 2, []),
        ]),
    ]
    branch_node = tree["children"][0]["children"][0]
    assert (branch_node["total"], branch_node["maps"], branch_node["ok"]) == (3, 1, 3)
    leaf_node = branch_node["children"][0]
    assert (leaf_node["total"], leaf_node["maps"], leaf_node["failed"]) == (6, 3, 0)
    # Plain tasks: their items keep the core's fast path and are counted (map_progress),
    # so the nodes cover the maps' time without a span per item.
    assert (branch_node["counted"], leaf_node["counted"]) == (3, 6)
    assert leaf_node["spans"] == []
    assert 0 <= leaf_node["start"] <= leaf_node["end"] <= tree["duration"]
    assert 0 <= branch_node["start"] <= leaf_node["start"] and leaf_node["end"] <= branch_node["end"]
    helper_node = tree["children"][0]["children"][1]
    assert len(helper_node["spans"]) == 2  # direct calls are watched one by one


@task
def pair(x: int) -> int:
    return helper(x) + helper(x + 1)


@pytest.mark.parametrize("backend", ["inline", "thread", "process"])
def test_calls_made_by_counted_items_are_placed_under_their_map(backend: str) -> None:
    out = io.StringIO()
    progress = RichProgress(file=out)
    with session(plugins=[progress], backend=backend, settings=DagliteSettings(max_workers=2)):
        assert map_tasks(pair, range(4)) == [1, 3, 5, 7]
    assert progress.last_run is not None
    tree = progress.last_run.tree()
    assert names(tree) == [("pair", "map", 4, [("helper", "call", 8, [])])]
    assert "helper done" not in out.getvalue()  # not narrated as top-level calls
    rows = {r.task: r.calls for r in progress.summary_rows()}
    assert rows == {"pair": 4, "helper": 8}


def test_nested_maps_are_drawn_under_their_parent() -> None:
    model = RunModel()
    seen: list[Any] = []

    @task
    def look(x: int) -> int:
        if x == 0:
            seen.append(model.snapshot().bars)
        return x

    @task
    def outer(n: int) -> int:
        return sum(map_tasks(look, range(n)))

    progress = RichProgress(mode="off")
    with session(plugins=[progress], backend="inline"):
        progress._model = model  # read the live model from inside the run
        map_tasks(outer, [2, 3])
    first = seen[0]
    assert [(b.name, b.depth, b.total, b.done) for b in first] == [("outer", 0, 2, False), ("look", 1, 2, False)]


@pytest.mark.parametrize("watched", [False, True], ids=["counted", "watched"])
def test_process_items_move_the_bars_while_they_run(watched: bool) -> None:
    """Counted items (a plain task: the workers' fast path) move the bar as batches come
    back; watched items (a task with options) move it and show as running while they
    run, relying on the core relaying worker events live (not when the batch ends)."""
    progress = RichProgress(mode="off")
    observed: list[tuple[int, int]] = []
    done = threading.Event()
    mapped = slow_retried if watched else slow

    def watch() -> None:
        while not done.is_set():
            model = progress._model
            if model is not None:
                snap = model.snapshot()
                bars = [b for b in snap.bars if b.name == mapped.name]
                if bars and not bars[0].done:
                    observed.append((bars[0].finished, snap.running_count))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    with session(plugins=[progress], backend="process", settings=DagliteSettings(max_workers=2)):
        watcher.start()
        try:
            map_tasks(mapped, range(8))
        finally:
            done.set()
            watcher.join()
    # While the map ran, the bar showed items finished part-way (and, watched, items running:
    # the core counts a worker's items only when their batch comes back, so none run for it).
    assert any(0 < finished < 8 for finished, _ in observed), observed
    if watched:
        assert any(running > 0 for _, running in observed), observed
    assert progress.summary_rows()[0].calls == 8
    assert progress.last_run is not None
    [node] = progress.last_run.tree()["children"]
    assert (node["calls"], node["ok"], node["counted"]) == (8, 8, 0 if watched else 8)


@task
def slow(x: int) -> int:
    time.sleep(0.15)
    return x


@task(retries=1)
def slow_retried(x: int) -> int:
    time.sleep(0.15)
    return x


def test_snapshot_keeps_running_maps_and_the_last_finished() -> None:
    model = RunModel()
    import uuid

    ids = [uuid.uuid4() for _ in range(20)]
    for i, map_id in enumerate(ids):
        model.map_started(map_id, f"t{i}", 5, None)
    for map_id in ids[:15]:
        model.map_ended(map_id)
    snap = model.snapshot(max_bars=8)
    # The 5 running maps, then the most recent ended ones (4 kept) up to 8 bars, in start order.
    assert [b.name for b in snap.bars] == ["t12", "t13", "t14", "t15", "t16", "t17", "t18", "t19"]
    assert snap.hidden_bars == 1
    snap = model.snapshot(max_bars=3)
    assert [b.name for b in snap.bars] == ["t15", "t16", "t17"]
    assert snap.hidden_bars == 6
    assert len(model.maps) == 5  # ended maps are not kept beyond the last few


def test_live_counts_per_task() -> None:
    out = io.StringIO()
    progress = RichProgress(file=out)
    lines: list[Any] = []

    @task
    def peek() -> int:
        assert progress._model is not None
        lines.append(progress._model.snapshot())
        return 1

    with session(plugins=[progress]):
        leaf(1)
        leaf(2)
        peek()
    snap = lines[0]
    counts = {t.task: (t.done, t.running) for t in snap.tasks}
    assert counts == {"leaf": (2, 0), "peek": (0, 1)}
    assert snap.running_count == 1
    assert [name for name, _ in snap.running] == ["peek"]


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_streamed_and_gathered_items_count_as_maps(backend: str) -> None:
    import asyncio

    from daglite_core import gather_tasks, iter_tasks

    @task
    async def fetch(x: int) -> int:
        return x

    progress = RichProgress(mode="off")
    with session(plugins=[progress], backend=backend, settings=DagliteSettings(max_workers=2)):
        assert sorted(iter_tasks(leaf, range(5))) == [1, 2, 3, 4, 5]
        assert asyncio.run(gather_tasks(fetch, range(3))) == [0, 1, 2]
    assert progress.last_run is not None
    tree = progress.last_run.tree()
    assert [(c["name"], c["kind"], c["total"], c["ok"]) for c in tree["children"]] == [
        ("leaf", "map", 5, 5), ("fetch", "map", 3, 3),
    ]
