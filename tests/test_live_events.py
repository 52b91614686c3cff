"""Live, linked run events: the call tree from hooks alone, live relay from process
workers, streaming results, and hook time kept out of timeouts.

"Live" is shown causally, never with timing: an item's body waits for a file that
only the session's plugin writes when it *receives* the item's event, so an event
held back until the item ends would make the item time out (a generous bound).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import daglite_core as d
from daglite_core._process import strided_batches
from daglite_core._protocols import WorkItem
from daglite_core.testing import RecordingPlugin

GENEROUS = 30.0
BACKENDS = ["inline", "thread", "process"]

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def settings() -> d.DagliteSettings:
    return d.DagliteSettings(max_workers=2)


def wait_for(path: Path, what: str) -> None:
    end = time.monotonic() + GENEROUS
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: {path} never appeared")
        time.sleep(0.01)


# -- tasks (module level: they pickle by reference) --------------------------------


@d.task
def leaf(x: int) -> int:
    return x * 10


@d.task
def middle(x: int) -> int:
    return leaf(x) + leaf(x + 1)


@d.task
def top(n: int, backend: str) -> list[int]:
    return d.map_tasks(middle, range(n), backend=backend)


@d.task(name="score-{x}")
def templated(x: int) -> int:
    return x


@d.task
def wait_then(x: int, flag: str) -> int:
    wait_for(Path(flag), "the session never received before_node_execute")
    return x


@d.task
def produce(flag: str) -> Iterator[int]:
    yield 1
    wait_for(Path(flag), "the session never received node_iteration(0)")
    yield 2


@d.task
def first_gates_rest(x: int, flag: str) -> int:
    if x > 0:
        wait_for(Path(flag), "the consumer never received the first result")
    return x


@d.task
def fails_on(x: int, bad: tuple[int, ...]) -> int:
    if x in bad:
        raise ValueError(f"bad {x}")
    return x


@d.task(timeout=0.5)
def quick_timed(x: int) -> int:
    return x


class SlowWorkerHook:
    """Runs in the workers and takes longer than the task's timeout (and its grace) before each item."""

    daglite_in_workers = True

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata) -> None:
        time.sleep(2.2)


class Toucher:
    """Session-side plugin: writes ``path`` when it receives ``hook``."""

    def __init__(self, hook: str, path: Path) -> None:
        self.path = path
        setattr(self, hook, d.hookimpl(specname=hook)(self._touch))

    def _touch(self, **_: Any) -> None:
        self.path.touch()


class TouchOnStart:
    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata) -> None:
        flag = metadata.inputs.get("flag")
        if flag:
            Path(flag).touch()


class TouchOnIteration:
    @d.hookimpl
    def node_iteration(self, metadata: d.TaskMetadata, index: int) -> None:
        if index == 0:
            Path(metadata.inputs["flag"]).touch()


class ReportInWorker:
    """In the workers: reports each item's start to the session."""

    daglite_in_workers = True

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter) -> None:
        reporter.report("started", metadata.inputs.get("flag"))


class TouchOnReport:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @d.hookimpl
    def on_report(self, event: str, data: Any, metadata: d.TaskMetadata | None) -> None:
        self.events.append((event, metadata.name if metadata else None))
        if event == "started" and data:
            Path(data).touch()


# -- 1. linkage -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_call_tree_is_rebuilt_from_hooks_alone(backend: str) -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute", "before_map", "after_map", "before_session_start"])
    with d.session(plugins=[recorder], settings=settings()) as state:
        assert top(3, backend) == [10 * (2 * x + 1) for x in range(3)]

    (start,) = recorder.of("before_session_start")
    session_id = start["session_id"]
    assert isinstance(session_id, uuid.UUID) and session_id == state.id
    calls = [c["metadata"] for c in recorder.of("before_node_execute")]
    (before_map,) = recorder.of("before_map")
    (after_map,) = recorder.of("after_map")
    by_id = {m.id: m for m in calls}
    assert len(by_id) == len(calls) == 1 + 3 + 6
    children: dict[Any, list[d.TaskMetadata]] = {}
    for m in calls:
        assert m.session_id == session_id
        assert isinstance(m.id, uuid.UUID)
        children.setdefault(m.parent_id, []).append(m)

    (root,) = children[None]
    assert (root.name, root.map_id, root.map_index) == ("top", None, None)
    # the map: linked to the task whose body called map_tasks
    assert isinstance(before_map["map_id"], uuid.UUID)
    assert before_map["map_id"] == after_map["map_id"]
    assert before_map["parent_id"] == after_map["parent_id"] == root.id
    assert (before_map["task_name"], before_map["name_template"], before_map["total"]) == ("middle", "middle", 3)
    assert before_map["backend"] == backend
    items = sorted(children[root.id], key=lambda m: m.map_index)
    assert [(m.name, m.map_index, m.map_id, m.backend) for m in items] == [
        (f"middle[{i}]", i, before_map["map_id"], backend) for i in range(3)
    ]
    # inner calls: children of their item, not of the map or the root
    for item in items:
        inner = children[item.id]
        assert sorted(m.inputs["x"] for m in inner) == [item.map_index, item.map_index + 1]
        assert all(m.name == "leaf" and m.map_id is None for m in inner)


def test_before_map_gives_the_base_name_and_the_template() -> None:
    recorder = RecordingPlugin(hooks=["before_map", "before_node_execute"])
    with d.session(plugins=[recorder]):
        d.map_tasks(templated, [1, 2])
    (before,) = recorder.of("before_map")
    assert (before["task_name"], before["name_template"], before["parent_id"]) == ("templated", "score-{x}", None)
    assert sorted(c["metadata"].name for c in recorder.of("before_node_execute")) == ["score-1[0]", "score-2[1]"]


def test_gather_tasks_items_are_linked_too() -> None:
    @d.task
    async def double(x: int) -> int:
        return 2 * x

    recorder = RecordingPlugin(hooks=["before_map", "before_node_execute"])

    async def main() -> list[int]:
        async with d.async_session(plugins=[recorder]):
            return await d.gather_tasks(double, [1, 2])

    assert asyncio.run(main()) == [2, 4]
    (before,) = recorder.of("before_map")
    assert {c["metadata"].map_id for c in recorder.of("before_node_execute")} == {before["map_id"]}


# -- 2. live relay from process workers ---------------------------------------------


def test_before_node_execute_arrives_while_the_item_runs(tmp_path: Path) -> None:
    flag = str(tmp_path / "started")
    with d.session(backend="process", plugins=[TouchOnStart()], settings=settings()):
        # The body only ends once the session received its before_node_execute.
        assert d.map_tasks(wait_then, [7], [flag]) == [7]


def test_node_iteration_arrives_as_items_are_produced(tmp_path: Path) -> None:
    flag = str(tmp_path / "first")
    recorder = RecordingPlugin(hooks=["node_iteration"])
    with d.session(backend="process", plugins=[TouchOnIteration(), recorder], settings=settings()):
        assert d.map_tasks(produce, [flag]) == [[1, 2]]
    assert [c["index"] for c in recorder.of("node_iteration")] == [0, 1]


def test_reporter_events_from_workers_arrive_while_the_item_runs(tmp_path: Path) -> None:
    flag = str(tmp_path / "reported")
    receiver = TouchOnReport()
    with d.session(backend="process", plugins=[ReportInWorker(), receiver], settings=settings()):
        assert d.map_tasks(wait_then, [1], [flag]) == [1]
    assert receiver.events == [("started", "wait_then[0]")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_items_events_arrive_in_order(backend: str) -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute", "after_node_execute", "on_node_error"])
    with d.session(backend=backend, plugins=[recorder], settings=settings()):
        with pytest.raises(d.MapError):
            d.map_tasks(fails_on, range(40), [(3, 17)] * 40)
    per_item: dict[int, list[str]] = {}
    for call in recorder.calls:
        per_item.setdefault(call["metadata"].map_index, []).append(call.hook)
    assert len(per_item) == 40
    for index, hooks in per_item.items():
        end = "on_node_error" if index in (3, 17) else "after_node_execute"
        assert hooks == ["before_node_execute", end], index


def test_hook_time_never_counts_against_the_timeout() -> None:
    # The worker-side hook takes 2.2 s before an item whose timeout is 0.5 s.
    with d.session(backend="process", plugins=[SlowWorkerHook()], settings=settings()):
        assert d.map_tasks(quick_timed, [1, 2]) == [1, 2]


# -- 3. streaming results -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_iter_tasks_ordered_gives_map_tasks_results(backend: str) -> None:
    with d.session(backend=backend, settings=settings()):
        assert list(d.iter_tasks(leaf, range(50))) == d.map_tasks(leaf, range(50))


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_iter_tasks_yields_the_first_result_before_the_others_finish(backend: str, tmp_path: Path) -> None:
    flag = tmp_path / "got-first"
    seen = []
    with d.session(backend=backend, settings=settings()):
        for index, value in d.iter_tasks(first_gates_rest, range(2), [str(flag)] * 2, ordered=False):
            seen.append((index, value))
            flag.touch()  # item 1 can only end after the consumer got item 0
    assert sorted(seen) == [(0, 0), (1, 1)]
    assert seen[0] == (0, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_iter_tasks_failures_are_named_after_every_item_ran(backend: str) -> None:
    recorder = RecordingPlugin(hooks=["after_map"])
    with d.session(backend=backend, plugins=[recorder], settings=settings()):
        got = []
        with pytest.raises(d.MapError) as caught:
            for index, _value in d.iter_tasks(fails_on, range(10), [(2, 5)] * 10, ordered=False):
                got.append(index)
        assert sorted(got) == [0, 1, 3, 4, 6, 7, 8, 9]
        assert caught.value.failed_indexes == [2, 5]

        ordered = []
        with pytest.raises(d.MapError) as caught:
            for value in d.iter_tasks(fails_on, range(10), [(2, 5)] * 10):
                ordered.append(value)
        # nothing past the first failure, so values never shift against inputs
        assert ordered == [0, 1]
        assert caught.value.failed_indexes == [2, 5]
    assert [c["failed"] for c in recorder.of("after_map")] == [2, 2]


def test_iter_tasks_checks_its_arguments_when_called() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        d.iter_tasks(fails_on, [1, 2], [()])
    with pytest.raises(d.BackendError):
        d.iter_tasks(leaf, [1], backend="nope")


def test_closing_iter_tasks_early_stops_items_not_started() -> None:
    ran: list[int] = []

    @d.task
    def slow(x: int) -> int:
        ran.append(x)
        time.sleep(0.01)
        return x

    with d.session(backend="thread", settings=settings()):
        stream = d.iter_tasks(slow, range(2000), ordered=False)
        next(stream)
        stream.close()
        stopped_at = len(ran)
        time.sleep(0.2)
    assert len(ran) <= stopped_at + 2  # at most the items already running
    assert len(ran) < 2000


def test_aiter_tasks() -> None:
    async def main() -> list[Any]:
        async with d.async_session(backend="thread", settings=settings()):
            return [v async for v in d.aiter_tasks(leaf, range(5))]

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]


# -- 4. no stragglers: batches are strided ---------------------------------------------


def test_strided_batches_spread_neighbours_and_cover_every_item_once() -> None:
    items = [WorkItem(i, (i,)) for i in range(400)]
    batches = strided_batches(items, 50)
    assert len(batches) == 8
    positions = sorted(p for b in batches for p in b.positions)
    assert positions == list(range(400))
    for batch in batches:
        assert [item.index for item in batch.items] == list(batch.positions)
        # the first 40 items (slow together) land 5 in every batch
        assert sum(1 for p in batch.positions if p < 40) == 5


# -- threads a task starts itself -----------------------------------------------------


def test_bind_session_carries_the_session_and_the_parent_into_threads() -> None:
    import threading

    recorder = RecordingPlugin(hooks=["before_node_execute"])

    @d.task
    def spawner() -> list[int]:
        out: list[int] = []
        bound = d.bind_session(lambda: out.append(leaf(1)))
        threads = [threading.Thread(target=bound) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    with d.session(plugins=[recorder]):
        assert spawner() == [10, 10]
    calls = [c["metadata"] for c in recorder.of("before_node_execute")]
    (parent,) = [m for m in calls if m.name == "spawner"]
    assert [m.parent_id for m in calls if m.name == "leaf"] == [parent.id, parent.id]


# -- Ctrl-C on the thread backend, orphans of a dead session -----------------------------


def test_ctrl_c_on_the_thread_backend_starts_no_new_item() -> None:
    import signal
    import threading

    started: list[int] = []

    @d.task
    def slow(x: int) -> int:
        started.append(x)
        if len(started) == 4:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        time.sleep(0.05)
        return x

    with d.session(backend="thread", settings=settings()):
        with pytest.raises(KeyboardInterrupt):
            d.map_tasks(slow, range(400))
        at_interrupt = len(started)
        time.sleep(0.3)
    # the two threads may each have been inside an item; none started after
    assert len(started) <= at_interrupt + 2
    assert len(started) < 20
    assert threading.active_count() >= 1


ORPHAN_SCRIPT = """
import os, signal, sys, threading, time
import daglite_core as d

log = sys.argv[1]

@d.task
def item(x):
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {x}\\n")
    time.sleep(0.05)
    return x

def die():
    while not os.path.exists(log) or len(open(log).read().splitlines()) < 6:
        time.sleep(0.01)
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))

if __name__ == "__main__":
    threading.Thread(target=die, daemon=True).start()
    with d.session(backend="process", settings=d.DagliteSettings(max_workers=2)):
        d.map_tasks(item, range(2000))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
@pytest.mark.parametrize("signame", ["SIGKILL", "SIGTERM"])
def test_workers_exit_when_the_session_process_dies(tmp_path: Path, signame: str) -> None:
    import subprocess
    import sys

    script = tmp_path / "orphans.py"
    script.write_text(ORPHAN_SCRIPT)
    log = tmp_path / "log"
    proc = subprocess.run([sys.executable, str(script), str(log), signame], timeout=GENEROUS, capture_output=True, text=True)
    assert proc.returncode < 0, proc.stderr
    died = time.monotonic()
    workers = {int(line.split()[0]) for line in log.read_text().splitlines()}
    assert workers and proc.returncode not in workers
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() - died < 5, "workers outlived their session's process"
        time.sleep(0.05)
    lines = len(log.read_text().splitlines())
    time.sleep(0.3)
    assert len(log.read_text().splitlines()) == lines  # no item started after
    assert lines < 100
    assert "Traceback" not in proc.stderr


class ReportsToItself:
    """Runs in the workers and reports; its copy in the session's process receives."""

    daglite_in_workers = True

    def __init__(self) -> None:
        self.received: list[tuple[str, Any, str | None]] = []
        self.pid = os.getpid()

    @d.hookimpl
    def after_node_execute(self, metadata: d.TaskMetadata, reporter: d.Reporter, result: Any) -> None:
        reporter.report("done", result)

    @d.hookimpl
    def on_report(self, event: str, data: Any, metadata: d.TaskMetadata | None) -> None:
        assert os.getpid() == self.pid, "on_report must run in the session's process"
        self.received.append((event, data, metadata.name if metadata else None))


def test_a_worker_plugin_receives_its_own_reports_in_the_session_process() -> None:
    plugin = ReportsToItself()
    with d.session(backend="process", plugins=[plugin], settings=settings()):
        assert d.map_tasks(leaf, [1, 2]) == [10, 20]
    assert sorted(plugin.received) == [("done", 10, "leaf[0]"), ("done", 20, "leaf[1]")]


def test_relayed_item_metadata_is_the_same_as_in_process() -> None:
    """Process items are relayed compactly and their metadata rebuilt: every field matches."""

    def fields(backend: str) -> list[tuple[Any, ...]]:
        recorder = RecordingPlugin(hooks=["before_node_execute", "after_node_execute"])
        with d.session(backend=backend, plugins=[recorder], settings=settings()):
            assert d.map_tasks(leaf, [3, 4]) == [30, 40]
        out = []
        for call in recorder.calls:
            m = call["metadata"]
            assert isinstance(m.id, uuid.UUID) and m.backend == backend and m.map_id is not None
            out.append((call.hook, m.name, m.inputs, m.description, m.map_index, m.parent_id, m.is_async, m.is_generator))
            if call.hook == "after_node_execute":
                assert call["result"] == 10 * m.inputs["x"] and call["duration"] >= 0
        return sorted(out, key=repr)

    assert fields("process") == fields("thread")


@d.task
def reports_and_nests(x: int) -> tuple[Any, Any]:
    """A process item that asks for its own metadata and calls a task."""
    own = d.current_metadata()
    leaf(x)
    return (own.id if own else None, own.name if own else None)


def test_a_compactly_relayed_item_still_knows_itself_and_parents_its_calls() -> None:
    recorder = RecordingPlugin(hooks=["before_node_execute"])
    with d.session(backend="process", plugins=[recorder], settings=settings()):
        (own_id, own_name), = d.map_tasks(reports_and_nests, [2])
    calls = {c["metadata"].name: c["metadata"] for c in recorder.calls}
    item, inner = calls["reports_and_nests[0]"], calls["leaf"]
    assert (own_id, own_name) == (item.id, "reports_and_nests[0]")
    assert inner.parent_id == item.id
