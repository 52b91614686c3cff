"""The run as the hooks tell it: counts per task and per map, the running calls, the call tree.

One :class:`RunModel` per displayed session. Every hook event updates it in O(1)
under one lock held for a few dictionary operations; drawing reads a
:class:`~daglite_rich._records.Snapshot` a few times a second. Nothing here
draws or prints.

The call tree is *folded* as it is recorded, so its size follows the shape of the
code, not the number of calls: the items of one map are one node (with counts,
failures and the time span they covered), calls of the same task under the same
parent are one node, and maps run by the items of another map fold into one node
per task. Each node keeps at most :data:`MAX_SPANS` individual call spans for the
report's timeline and :data:`MAX_FAILURES` failure messages.
"""

from __future__ import annotations

import collections
import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from ._records import Failure, MapBar, Snapshot, TaskLine, TaskSummary

if TYPE_CHECKING:
    import uuid

    from daglite_core import TaskMetadata

MAX_SPANS = 200
"""Call spans kept per tree node for the timeline (the rest only count)."""

MAX_FAILURES = 50
"""Failure messages kept per tree node, and :data:`MAX_RUN_FAILURES` for the run."""

MAX_RUN_FAILURES = 200

MILESTONES = (0.1, 0.25, 0.5, 0.75, 0.9)
"""Fractions of a map's items at which plain (non-terminal) output prints a line;
its end (``after_map``) prints the last one."""

KEEP_ENDED = 4
"""Ended top-level maps the live view keeps drawing (the most recent); nested ones leave at once."""

_MAP_SUFFIX = re.compile(r"\[\d+\]$")

OK, FAILED, CACHED = "ok", "failed", "cached"


def error_text(error: BaseException) -> str:
    """``"Type: message"`` on one line (the first line of the message)."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


class Node:
    """One node of the folded call tree (a task under a parent, or one map)."""

    __slots__ = (
        "name", "kind", "parent", "children", "calls", "ok", "failed", "cached", "retried",
        "total", "maps", "first", "last", "busy", "spans", "failures", "failure_count", "counted",
    )

    def __init__(self, name: str, kind: str, parent: Node | None) -> None:
        self.name = name
        self.kind = kind  # "root", "call" or "map"
        self.parent = parent
        self.children: dict[Any, Node] = {}
        self.calls = self.ok = self.failed = self.cached = self.retried = 0
        self.total = 0  # items announced by before_map (map nodes)
        self.maps = 0  # maps folded into this node
        self.first = -1.0
        self.last = 0.0
        self.busy = 0.0
        self.spans: list[tuple[float, float, str]] = []
        self.failures: list[tuple[str, str]] = []
        self.failure_count = 0
        self.counted = 0  # items of counted maps: in the counts, without a span of their own

    def child(self, key: Any, name: str, kind: str) -> Node:
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = Node(name, kind, self)
        return node

    def record(self, start: float, duration: float, status: str) -> None:
        self.calls += 1
        if self.first < 0 or start < self.first:
            self.first = start
        end = start + duration
        if end > self.last:
            self.last = end
        self.busy += duration
        if len(self.spans) < MAX_SPANS:
            self.spans.append((start, duration, status))

    def as_dict(self) -> dict[str, Any]:
        """The node and its subtree as plain data (for the report)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "calls": self.calls,
            "ok": self.ok,
            "failed": self.failed,
            "cached": self.cached,
            "retried": self.retried,
            "total": self.total,
            "maps": self.maps,
            "start": max(self.first, 0.0),
            "end": self.last,
            "busy": self.busy,
            "spans": [[round(s, 6), round(d, 6), st] for s, d, st in self.spans],
            "failures": [[label, msg] for label, msg in self.failures],
            "failure_count": self.failure_count,
            "counted": self.counted,
            "children": [c.as_dict() for c in self.children.values()],
        }


class MapState:
    """One fan-out (``map_tasks``, ``iter_tasks``, ``gather_tasks``): its bar and its node.

    A map is *counted* when the core reports its items only through
    ``map_progress(per_item=False)`` (they run on the core's fast path): then
    ``started``/``done``/``failed`` hold the last counts reported, and the item
    successes and running items are applied to the task's counts and the node
    from them. Failures still arrive one by one (``on_node_error``).
    """

    __slots__ = (
        "name", "total", "finished", "failed", "depth", "path", "start", "end", "node", "counts", "next_mark", "marks",
        "counted", "started", "done", "reported_failed", "ok", "running", "item_busy",
    )

    def __init__(self, name: str, total: int, path: tuple[int, ...], start: float, node: Node) -> None:
        self.name = name
        self.path = path  # start sequence numbers from the outermost map: sorts children under parents
        depth = len(path) - 1
        self.total = total
        self.finished = 0
        self.failed = 0
        self.depth = depth
        self.start = start
        self.end = -1.0
        self.node = node
        self.counts: Counts  # set by RunModel.map_started
        # Item counts at which a milestone line is due, ascending; next_mark is the first.
        marks = sorted({max(1, math.ceil(f * total - 1e-9)) for f in MILESTONES if total})
        self.marks = [m for m in marks if m < total]
        self.next_mark = self.marks[0] if self.marks else -1
        self.counted: bool | None = None  # unknown until the first map_progress
        self.started = self.done = self.reported_failed = 0  # the last counts reported
        self.ok = 0  # successes applied from the counts
        self.running = 0  # running items applied to ``counts.running`` from the counts
        self.item_busy = 0.0  # seconds added by this map's per-item events (failures)

    def cross(self) -> bool:
        """Whether ``finished`` reached the next milestone (dropping every mark passed).

        Counts may jump past several marks (a counted map): one line for them all;
        none when the jump reaches the end, which ``after_map``'s line tells.
        """
        marks = self.marks
        if not marks or self.finished < marks[0]:
            return False
        while marks and self.finished >= marks[0]:
            marks.pop(0)
        self.next_mark = marks[0] if marks else -1
        return self.finished < self.total


class Counts:
    """Live counts of one task name."""

    __slots__ = ("name", "done", "cached", "retried", "failed", "running", "busy", "first", "last")

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.done = self.cached = self.retried = self.failed = self.running = 0
        self.busy = 0.0
        self.first = now
        self.last = now


# A running call: (task name, resolved name, tree node, task counts, the map it is an
# item of, the innermost map it runs under, start). A tuple, not a class: it is built
# once per call on the hot path.
Call = tuple[str, str, Node, Counts, "MapState | None", "MapState | None", float]
NAME: Final = 0
LABEL: Final = 1
NODE: Final = 2
COUNTS: Final = 3
MAP: Final = 4
SCOPE: Final = 5
START: Final = 6


class RunModel:
    """Everything a display, the summary and the report need, updated per hook event.

    Running calls and maps are keyed by their UUID's ``int`` (a slot read, where
    hashing a ``uuid.UUID`` calls Python code).
    """

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self.clock = clock
        self.t0 = clock()
        self.wall_start = time.time()
        self.lock = threading.Lock()
        self.root = Node("session", "root", None)
        self.tasks: dict[str, Counts] = {}
        self.maps: dict[int, MapState] = {}  # maps running now
        self.ended: collections.deque[MapState] = collections.deque(maxlen=KEEP_ENDED)
        self.map_count = 0
        self.running: dict[int, Call] = {}
        self.failures: list[Failure] = []
        self.failure_count = 0
        self.end = -1.0

    # -- lookups (lock held) -----------------------------------------------

    def _counts(self, name: str, now: float) -> Counts:
        counts = self.tasks.get(name)
        if counts is None:
            counts = self.tasks[name] = Counts(name, now)
        return counts

    def _call(self, metadata: TaskMetadata, now: float) -> Call:
        """Where a call belongs: its task's counts, its tree node, its map."""
        map_id = metadata.map_id
        map_ = self.maps.get(map_id.int) if map_id is not None else None
        if map_ is not None:
            return (map_.name, metadata.name, map_.node, map_.counts, map_, map_, now)
        parent_id = metadata.parent_id
        name = metadata.name
        if metadata.map_index is not None:  # an item of a map we did not see start
            name = _MAP_SUFFIX.sub("", name)
        if parent_id is None:
            return (name, metadata.name, self.root.child(("call", name), name, "call"), self._counts(name, now), None, None, now)
        parent = self.running.get(parent_id.int)
        if parent is not None:
            node = parent[NODE].child(("call", name), name, "call")
            return (name, metadata.name, node, self._counts(name, now), None, parent[SCOPE], now)
        owner = self.maps.get(parent_id.int)  # made by a counted item of this map
        under = owner.node if owner is not None else self.root
        return (name, metadata.name, under.child(("call", name), name, "call"), self._counts(name, now), None, owner, now)

    # -- events ------------------------------------------------------------

    def map_started(self, map_id: uuid.UUID, task_name: str, total: int, parent_id: uuid.UUID | None) -> None:
        """A map starts (``before_map``).

        Its parent is the running call that started it, or the map whose counted
        item did (the core then gives that map's id as ``parent_id``): the map is
        drawn and folded under it.
        """
        now = self.clock() - self.t0
        with self.lock:
            parent = self.running.get(parent_id.int) if parent_id is not None else None
            scope = parent[SCOPE] if parent is not None else None
            under = parent[NODE] if parent is not None else self.root
            owner = self.maps.get(parent_id.int) if parent is None and parent_id is not None else None
            if owner is not None:  # started by an item of a counted map
                under = owner.node
                scope = owner
            if owner is not None or (parent is not None and parent[MAP] is not None):
                key: Any = ("map", task_name)  # maps run by a map's items fold into one node
            else:
                key = ("map", map_id)
            node = under.child(key, task_name, "map")
            node.total += total
            node.maps += 1
            self.map_count += 1
            path = (*scope.path, self.map_count) if scope is not None else (self.map_count,)
            map_ = MapState(task_name, total, path, now, node)
            map_.counts = self._counts(task_name, now)
            self.maps[map_id.int] = map_

    def map_ended(self, map_id: uuid.UUID, duration: float | None = None) -> MapState | None:
        """The map's end (``after_map``); ``duration`` is its wall time as the core measured it.

        For a counted map this settles what the counts stand for: its running items
        leave the task's counts, failures reported in the counts but not seen one by
        one are added (without a message), and the map's wall time (``duration``,
        else our own clock) becomes the time of its items, replacing the durations
        its failed items added one by one.
        """
        now = self.clock() - self.t0
        with self.lock:
            map_ = self.maps.pop(map_id.int, None)
            if map_ is not None:
                map_.end = now
                if map_.counted:
                    self._settle(map_, now, now - map_.start if duration is None else duration)
                if not map_.depth:  # nested maps leave the view when they end
                    self.ended.append(map_)
            return map_

    @staticmethod
    def _settle(map_: MapState, now: float, wall: float) -> None:
        counts, node = map_.counts, map_.node
        counts.running -= map_.running
        map_.running = 0
        missing = map_.reported_failed - map_.failed
        if missing > 0:  # failures the counts report and no on_node_error told us about
            map_.failed += missing
            map_.finished += missing
            counts.failed += missing
            node.failed += missing
            node.failure_count += missing
            node.calls += missing
        extra = max(0.0, wall - map_.item_busy)
        counts.busy += extra
        node.busy += extra
        start = map_.start
        if node.first < 0 or start < node.first:
            node.first = start
        if now > node.last:
            node.last = now
        counts.last = now

    def map_progress(
        self, map_id: uuid.UUID, started: int, done: int, failed: int, per_item: bool,
    ) -> MapState | None:
        """Counts of a map's items (the ``map_progress`` hook); return the map when a milestone was crossed.

        ``per_item=True``: each item's hooks reach us, which already counted it; the
        counts are ignored. ``per_item=False``: the map is *counted*: successes
        (``done - failed``) and running items (``started - done``) are applied to the
        task's counts, the tree node and the bar from these counts. Counts may come
        from several threads slightly out of order: they only ever grow, so an
        older report than the last one applied changes nothing.
        """
        now = self.clock() - self.t0
        with self.lock:
            map_ = self.maps.get(map_id.int)
            if map_ is None:
                return None
            if map_.counted is None:
                map_.counted = not per_item
            if not map_.counted:
                return None
            if done < map_.done or started < map_.started:
                return None  # an older report than one already applied
            map_.started, map_.done = started, done
            if failed > map_.reported_failed:
                map_.reported_failed = failed
            counts, node = map_.counts, map_.node
            running = max(0, started - done)
            counts.running += running - map_.running
            map_.running = running
            ok = done - failed
            if ok <= map_.ok:
                return None
            delta = ok - map_.ok
            map_.ok = ok
            counts.done += delta
            counts.last = now
            node.ok += delta
            node.calls += delta
            node.counted += delta
            if node.first < 0 or map_.start < node.first:
                node.first = map_.start
            if now > node.last:
                node.last = now
            map_.finished += delta
            return map_ if map_.cross() else None

    def started(self, metadata: TaskMetadata) -> None:
        now = self.clock() - self.t0
        map_id = metadata.map_id
        with self.lock:
            map_ = self.maps.get(map_id.int) if map_id is not None else None
            if map_ is not None:  # the common case, kept short: an item of a known map
                call: Call = (map_.name, metadata.name, map_.node, map_.counts, map_, map_, now)
            else:
                call = self._call(metadata, now)
            call[COUNTS].running += 1
            self.running[metadata.id.int] = call

    def _ended(self, metadata: TaskMetadata, now: float) -> Call:
        call = self.running.pop(metadata.id.int, None)
        if call is None:  # no before_node_execute seen (e.g. a plugin joined late)
            return self._call(metadata, now)
        call[COUNTS].running -= 1
        return call

    @staticmethod
    def _map_item(map_: MapState | None, failed: bool) -> MapState | None:
        """Count an ended item of ``map_``; return it when a milestone was crossed."""
        if map_ is None:
            return None
        map_.finished += 1
        if failed:
            map_.failed += 1
        return map_ if map_.cross() else None

    def succeeded(self, metadata: TaskMetadata, duration: float) -> MapState | None:
        """Record a success; return the call's map when it crossed a milestone."""
        now = self.clock() - self.t0
        with self.lock:
            call = self._ended(metadata, now)
            counts = call[COUNTS]
            counts.done += 1
            counts.busy += duration
            counts.last = now
            node = call[NODE]
            node.ok += 1
            # Node.record, inlined (the hot path)
            node.calls += 1
            start = now - duration
            if start < node.first or node.first < 0:
                node.first = start
            if now > node.last:
                node.last = now
            node.busy += duration
            if len(node.spans) < MAX_SPANS:
                node.spans.append((start, duration, OK))
            map_ = call[MAP]
            if map_ is None:
                return None
            map_.finished += 1
            if 0 < map_.next_mark <= map_.finished:
                return map_ if map_.cross() else None
            return None

    def failed(self, metadata: TaskMetadata, error: BaseException, duration: float) -> tuple[Failure, MapState | None]:
        """Record a failure; return it, and the call's map when it crossed a milestone."""
        now = self.clock() - self.t0
        text = error_text(error)
        failure = Failure(metadata.name, text, metadata.map_index)
        with self.lock:
            call = self._ended(metadata, now)
            counts = call[COUNTS]
            counts.failed += 1
            counts.busy += duration
            counts.last = now
            node = call[NODE]
            node.failed += 1
            node.failure_count += 1
            if len(node.failures) < MAX_FAILURES:
                node.failures.append((metadata.name, text))
            node.record(now - duration, duration, FAILED)
            self.failure_count += 1
            if len(self.failures) < MAX_RUN_FAILURES:
                self.failures.append(failure)
            map_ = call[MAP]
            if map_ is not None:
                map_.item_busy += duration
            return failure, self._map_item(map_, True)

    def cache_hit(self, metadata: TaskMetadata) -> MapState | None:
        """Record a cache hit (no before/after events fire for one)."""
        now = self.clock() - self.t0
        with self.lock:
            call = self._call(metadata, now)
            counts = call[COUNTS]
            counts.cached += 1
            counts.last = now
            node = call[NODE]
            node.cached += 1
            node.record(now, 0.0, CACHED)
            return self._map_item(call[MAP], False)

    def retried(self, metadata: TaskMetadata) -> None:
        with self.lock:
            call = self.running.get(metadata.id.int)
            if call is None:
                call = self._call(metadata, self.clock() - self.t0)
            call[COUNTS].retried += 1
            call[NODE].retried += 1

    def finish(self) -> None:
        """Mark the run's end (the session closed)."""
        with self.lock:
            self.end = self.clock() - self.t0

    # -- reading -------------------------------------------------------------

    def elapsed(self) -> float:
        return (self.end if self.end >= 0 else self.clock() - self.t0)

    def snapshot(self, max_bars: int = 12, max_running: int = 6) -> Snapshot:
        """The live view: bars of the running maps and of the last few ended ones.

        The calls running now are the oldest ones watched one by one, then per
        counted map (items on the core's fast path) how many of its items run.
        Costs O(running maps + running calls shown), whatever the run's length.
        """
        now = self.clock() - self.t0
        with self.lock:
            maps = [*self.maps.values(), *self.ended]
            running = []
            for call in self.running.values():
                running.append((call[LABEL], now - call[START]))
                if len(running) >= max_running:
                    break
            running_count = len(self.running)
            counted: list[tuple[str, int]] = []
            for m in self.maps.values():
                if m.running > 0:
                    running_count += m.running
                    if len(counted) < max_running:
                        counted.append((m.name, m.running))
            tasks = tuple(
                TaskLine(c.name, c.done, c.cached, c.retried, c.failed, c.running,
                         (now if c.running else c.last) - c.first)
                for c in self.tasks.values()
            )
            bars = [
                (m.path, MapBar(m.name, m.total, m.finished, m.failed, m.depth,
                                (m.end if m.end >= 0 else now) - m.start, m.end >= 0))
                for m in maps
            ]
        hidden = 0
        if len(bars) > max_bars:
            # The running maps first (the outermost, oldest), then the most recent ended ones.
            live = sorted((b for b in bars if not b[1].done), key=lambda b: b[0])
            ended = [b for b in bars if b[1].done]
            chosen = live[:max_bars] + ended[len(ended) - max(0, max_bars - len(live)):] if len(live) < max_bars else live[:max_bars]
            hidden = len(bars) - len(chosen)
            bars = chosen
        bars.sort(key=lambda b: b[0])
        return Snapshot(tuple(b for _, b in bars), hidden, tuple(running), running_count, tasks, now, tuple(counted))

    def summary(self) -> list[TaskSummary]:
        """One row per task name, in order of first call."""
        with self.lock:
            rows = []
            for c in self.tasks.values():
                executed = c.done + c.failed
                rows.append(TaskSummary(
                    c.name, executed + c.cached, c.cached, c.retried, c.failed,
                    c.busy, c.busy / executed if executed else 0.0,
                ))
            return rows

    def run_failures(self) -> tuple[list[Failure], int]:
        """The failures kept (at most :data:`MAX_RUN_FAILURES`) and how many there were."""
        with self.lock:
            return list(self.failures), self.failure_count

    def tree(self) -> dict[str, Any]:
        """The folded call tree as plain data, with the run's timing (for the report)."""
        with self.lock:
            root = self.root.as_dict()
            return {
                "started": self.wall_start,
                "duration": self.elapsed(),
                "children": root["children"],
            }
