"""Calls and fan-outs made by a map item on the fast path: linked to its map.

Such an item has no metadata and no id (plugins with ``daglite_map_progress`` let
items keep the fast path while they watch), so what its body starts takes the map's
``map_id`` as ``parent_id``; ``current_metadata()`` names the map too.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import daglite_core as d

BACKENDS = ["inline", "thread"]


@d.task
def leaf(x: int) -> int:
    return x + 1


class Watcher:
    """Counts map items (so they keep the fast path); records what else starts."""

    daglite_map_progress = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any, Any]] = []
        self.maps: list[tuple[str, Any, Any]] = []

    @d.hookimpl
    def before_node_execute(self, metadata: d.TaskMetadata) -> None:
        with self.lock:
            self.calls.append((metadata.name, metadata.parent_id, metadata.map_id))

    @d.hookimpl
    def before_map(self, map_id: Any, task_name: str, parent_id: Any) -> None:
        with self.lock:
            self.maps.append((task_name, map_id, parent_id))

    @d.hookimpl
    def map_progress(self, map_id: Any, per_item: bool) -> None:
        pass


@pytest.mark.parametrize("backend", BACKENDS)
def test_what_a_fast_item_starts_has_its_map_as_parent(backend: str) -> None:
    seen: list[d.TaskMetadata | None] = []

    @d.task
    def item(x: int) -> int:
        seen.append(d.current_metadata())
        return leaf(x) + sum(d.map_tasks(leaf, [x, x]))

    watcher = Watcher()
    with d.session(plugins=[watcher], backend=backend):
        assert d.map_tasks(item, [1, 2]) == [2 + 4, 3 + 6]
    [(name, outer_id, outer_parent)] = [m for m in watcher.maps if m[0] == "item"]
    assert outer_parent is None
    inner = [m for m in watcher.maps if m[0] == "leaf"]
    assert len(inner) == 2 and all(parent == outer_id for _, _, parent in inner)
    # The direct calls of leaf inside the items are watched, with the map as their parent.
    direct = [c for c in watcher.calls if c[2] is None]
    assert [(n, p) for n, p, _ in direct] == [("leaf", outer_id)] * 2
    # The items themselves were not watched (fast path), nor the inner maps' items.
    assert not [c for c in watcher.calls if c[0].startswith("item")]
    # current_metadata() inside a fast item: its map and the map's parent.
    assert [(m.map_id, m.parent_id, m.map_index) for m in seen if m is not None] in (
        [(outer_id, None, 0), (outer_id, None, 1)], [(outer_id, None, 1), (outer_id, None, 0)],
    )


def test_a_direct_call_on_the_fast_path_has_no_parent() -> None:
    @d.task
    def top() -> Any:
        return d.current_metadata()

    with d.session():
        meta = top()
    assert meta is not None and (meta.parent_id, meta.map_id) == (None, None)
