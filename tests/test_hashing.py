"""Cache keys in linear time: shared sub-objects are encoded once per key, equal values keep equal keys."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from daglite_core import default_cache_hash
from daglite_core import _hashing
from daglite_core._hashing import UnhashableInputError


def f(x: Any) -> Any:
    return x


def key(value: Any) -> str:
    return default_cache_hash(f, {"x": value})


def shared_lists(depth: int) -> list[Any]:
    """``[x, x]`` nested ``depth`` times: 2**depth paths, ``depth`` distinct lists."""
    x: list[Any] = []
    for _ in range(depth):
        x = [x, x]
    return x


def fresh_lists(depth: int) -> list[Any]:
    """The same value as :func:`shared_lists`, with no sharing at all."""
    return [] if depth == 0 else [fresh_lists(depth - 1), fresh_lists(depth - 1)]


class Node:
    """An object graph: pickled, with its children list inside its ``__dict__``."""

    def __init__(self, children: list[Any]) -> None:
        self.children = children

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other.children == self.children


class Counter:
    """Counts calls of the container encoders during one key computation."""

    LIMIT = 10_000  # far above every bound below: a regression fails fast instead of running for hours

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real_seq, real_other = _hashing._enc_seq, _hashing._enc_other

        def seq(*args: Any) -> None:
            self.tick()
            real_seq(*args)

        def other(*args: Any) -> None:
            self.tick()
            real_other(*args)

        monkeypatch.setattr(_hashing, "_enc_seq", seq)
        monkeypatch.setattr(_hashing, "_enc_other", other)

    def tick(self) -> None:
        self.calls += 1
        if self.calls > self.LIMIT:
            raise AssertionError("exponential: the encoder walks every path through shared objects")


def test_depth_30_shared_list_dag_is_encoded_once_per_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counter(monkeypatch)
    result = key(shared_lists(30))
    # 31 distinct lists, 61 references to them; the few smallest (not memoized) are
    # re-encoded per reference: a bound linear in the depth (the exponential
    # encoder made 2**31 calls).
    assert counter.calls <= 3 * 31
    assert result.startswith("test_hashing.f:")


def test_shared_object_graph_is_linear_too(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node([])
    for _ in range(30):
        node = Node([node, node])
    counter = Counter(monkeypatch)
    key(node)
    assert counter.calls <= 4 * 31


@pytest.mark.parametrize("depth", [0, 1, 3, 12])
def test_sharing_does_not_change_the_key(depth: int) -> None:
    assert key(shared_lists(depth)) == key(fresh_lists(depth))
    assert key(shared_lists(depth)) == key(copy.deepcopy(shared_lists(depth)))


def test_shared_dicts_sets_and_objects_keep_equal_keys() -> None:
    d = {"a": list(range(50))}
    s = frozenset(range(40))
    shared = [d, d, s, s, (d, s), (d, s)]
    fresh = [{"a": list(range(50))}, {"a": list(range(50))}, frozenset(range(40)), frozenset(range(40)),
             ({"a": list(range(50))}, frozenset(range(40))), ({"a": list(range(50))}, frozenset(range(40)))]
    assert key(shared) == key(fresh)
    leaf = Node(["leaf"])
    assert key(Node([leaf, leaf])) == key(Node([Node(["leaf"]), Node(["leaf"])]))


def test_different_values_still_give_different_keys() -> None:
    base = shared_lists(12)
    other = fresh_lists(12)
    other[0][0][0] = [[], [[]]]  # one leaf differs deep inside
    assert key(base) != key(other)
    big = list(range(5000))  # encoded past the inline limit: compressed to its digest
    assert key(big) != key([*big[:-1], -1])
    assert key([big, big]) == key([list(range(5000)), list(range(5000))])
    assert key([1, 2]) != key((1, 2)) != key({1, 2})


class Temp:
    """Pickles through a fresh state dict each time (a temporary whose id could be reused)."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __getstate__(self) -> dict[str, Any]:
        return {"v": self.v}


def test_temporaries_made_while_pickling_never_alias_in_the_memo() -> None:
    values = [Temp(i) for i in range(200)]
    assert key(values) == key([Temp(i) for i in range(200)])
    swapped = [Temp(i) for i in range(200)]
    swapped[10], swapped[11] = Temp(11), Temp(10)
    assert key(values) != key(swapped)


def test_self_reference_is_still_unhashable() -> None:
    loop: list[Any] = [1, 2]
    loop.append(loop)
    with pytest.raises(UnhashableInputError, match="refers to itself"):
        key(loop)
    d: dict[str, Any] = {"a": 1}
    d["self"] = d
    with pytest.raises(UnhashableInputError, match="refers to itself"):
        key(d)


def test_closure_holding_a_shared_structure_hashes_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    data = shared_lists(30)

    def uses() -> int:
        return len(data)

    counter = Counter(monkeypatch)
    default_cache_hash(uses, {})
    assert counter.calls <= 3 * 31 + 4
