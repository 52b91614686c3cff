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
        "total", "maps", "first", "last", "busy", "spans", "failures", "failure_count",
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
            "children": [c.as_dict() for c in self.children.values()],
        }


class MapState:
    """One ``map_tasks`` call: its bar and its node."""

    __slots__ = ("name", "total", "finished", "failed", "depth", "path", "start", "end", "node", "counts", "next_mark", "marks")

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
        parent = self.running.get(parent_id.int) if parent_id is not None else None
        name = metadata.name
        if metadata.map_index is not None:  # an item of a map we did not see start
            name = _MAP_SUFFIX.sub("", name)
        under = parent[NODE] if parent is not None else self.root
        node = under.child(("call", name), name, "call")
        return (name, metadata.name, node, self._counts(name, now), None, parent[SCOPE] if parent is not None else None, now)

    # -- events ------------------------------------------------------------

    def map_started(self, map_id: uuid.UUID, task_name: str, total: int, parent_id: uuid.UUID | None) -> None:
        now = self.clock() - self.t0
        with self.lock:
            parent = self.running.get(parent_id.int) if parent_id is not None else None
            under = parent[NODE] if parent is not None else self.root
            if parent is not None and parent[MAP] is not None:
                key: Any = ("map", task_name)  # maps run by a map's items fold into one node
            else:
                key = ("map", map_id)
            node = under.child(key, task_name, "map")
            node.total += total
            node.maps += 1
            self.map_count += 1
            scope = parent[SCOPE] if parent is not None else None
            path = (*scope.path, self.map_count) if scope is not None else (self.map_count,)
            map_ = MapState(task_name, total, path, now, node)
            map_.counts = self._counts(task_name, now)
            self.maps[map_id.int] = map_

    def map_ended(self, map_id: uuid.UUID) -> MapState | None:
        now = self.clock() - self.t0
        with self.lock:
            map_ = self.maps.pop(map_id.int, None)
            if map_ is not None:
                map_.end = now
                if not map_.depth:  # nested maps leave the view when they end
                    self.ended.append(map_)
            return map_

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
        if map_.finished == map_.next_mark:
            marks = map_.marks
            marks.pop(0)
            map_.next_mark = marks[0] if marks else -1
            return map_
        return None

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
            if map_.finished == map_.next_mark:
                marks = map_.marks
                marks.pop(0)
                map_.next_mark = marks[0] if marks else -1
                return map_
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
            return failure, self._map_item(call[MAP], True)

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
        return Snapshot(tuple(b for _, b in bars), hidden, tuple(running), running_count, tasks, now)

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
