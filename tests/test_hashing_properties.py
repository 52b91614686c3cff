"""Cache keys, by property: equal values give equal keys in any process and under any
hash seed, order of dicts and sets does not matter, distinct values give distinct keys.

The core's own environment has no plugin installed, so these run against whichever
digest the core picks there (BLAKE2b without ``xxhash``); a subprocess test covers the
other one as well.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from daglite_core import default_cache_hash
from daglite_core._hashing import UnhashableInputError

# Values built the same way in this process and in subprocesses (``exec``-ed there):
# sets and dicts of strings iterate in an order that depends on PYTHONHASHSEED.
VALUES_SOURCE = """
import collections, decimal, fractions
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
VALUES = {
    "int": 7,
    "big_int": 2**200 + 1,
    "negative": -(2**70),
    "float": 1.5,
    "complex": 2 - 3j,
    "str": "snowman \\u2603",
    "bytes": b"\\x00\\x01\\xff",
    "big_bytes": bytes(range(256)) * 40,
    "none": None,
    "bool": True,
    "tuple": (1, "a", None),
    "list": [1, [2, [3]]],
    "set_of_str": set(words),
    "frozenset_of_str": frozenset(words),
    "mixed_set": {1, "a", None, (2, 3), 2.5},
    "dict_str_keys": {w: i for i, w in enumerate(words)},
    "dict_mixed_keys": {None: 1, "b": 2, 3: [4], (5, 6): {"x"}},
    "nested": {"rows": [{"id": i, "tags": {f"t{i}", f"u{i}"}} for i in range(5)]},
    "ordered_dict": collections.OrderedDict(b=1, a=2),
    "counter": collections.Counter("mississippi"),
    "decimal": decimal.Decimal("1.10"),
    "fraction": fractions.Fraction(2, 3),
    "range": range(3, 30, 4),
    "type": collections.OrderedDict,
}
"""

# The function whose calls are keyed: a stdlib function is the same in every process.
FUNC = json.dumps

KEYS_SCRIPT = f"""
import json
from daglite_core import default_cache_hash
exec({VALUES_SOURCE!r})
print(json.dumps({{name: default_cache_hash(json.dumps, {{"obj": value}}) for name, value in VALUES.items()}}))
"""


def values() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(VALUES_SOURCE, namespace)  # noqa: S102 - our own constant, shared with the subprocesses
    result: dict[str, Any] = namespace["VALUES"]
    return result


def key(value: Any, name: str = "obj") -> str:
    return default_cache_hash(FUNC, {name: value})


def keys_in_subprocess(seed: str, *, block_xxhash: bool = False) -> dict[str, str]:
    script = ("import sys; sys.modules['xxhash'] = None\n" if block_xxhash else "") + KEYS_SCRIPT
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


# -- equal values, equal keys -------------------------------------------------------


def test_equal_values_give_equal_keys_under_every_hash_seed_and_in_every_process() -> None:
    here = {name: key(value) for name, value in values().items()}
    for seed in ("0", "1", "4242"):
        assert keys_in_subprocess(seed) == here, f"keys differ with PYTHONHASHSEED={seed}"


def test_the_fallback_digest_is_stable_too_and_never_collides_with_xxh3() -> None:
    blake = keys_in_subprocess("0", block_xxhash=True)
    assert blake == keys_in_subprocess("99", block_xxhash=True)
    assert all(k.split(":")[1].startswith("b") for k in blake.values())
    here = {name: key(value) for name, value in values().items()}
    if all(k.split(":")[1].startswith("b") for k in here.values()):
        assert blake == here  # this process uses BLAKE2b as well (no xxhash installed)
    else:
        assert not set(blake.values()) & set(here.values())


def test_equal_but_distinct_objects_give_equal_keys() -> None:
    for name, value in values().items():
        rebuilt = values()[name]
        assert rebuilt is not value or isinstance(value, (int, str, bytes, type(None), bool, type, range, float))
        assert key(rebuilt) == key(value), name


@pytest.mark.parametrize("size", [0, 1, 5, 50, 500])
def test_dict_insertion_order_does_not_matter(size: int) -> None:
    items = [(f"k{i}", [i, {f"v{i}"}]) for i in range(size)]
    assert key(dict(items)) == key(dict(reversed(items)))
    assert key(dict(items)) == key(dict(sorted(items, key=lambda kv: hash(kv[0]))))


@pytest.mark.parametrize("size", [0, 1, 5, 50, 500])
def test_set_construction_order_does_not_matter(size: int) -> None:
    words = [f"w{i}" for i in range(size)]
    forward, backward = set(), set()
    for w in words:
        forward.add(w)
    for w in reversed(words):
        backward.add(w)
    assert key(forward) == key(backward)
    assert key(frozenset(words)) == key(frozenset(reversed(words)))


def test_argument_order_does_not_matter() -> None:
    assert default_cache_hash(FUNC, {"a": 1, "b": 2}) == default_cache_hash(FUNC, {"b": 2, "a": 1})


def test_a_set_grown_and_shrunk_equals_one_built_directly() -> None:
    grown = {f"x{i}" for i in range(1000)}
    for i in range(10, 1000):
        grown.discard(f"x{i}")
    assert key(grown) == key({f"x{i}" for i in range(10)})  # same elements, other table size


# -- distinct values, distinct keys ---------------------------------------------------

TRICKY_PAIRS: list[tuple[str, Any, Any]] = [
    ("int vs float", 1, 1.0),
    ("int vs bool", 1, True),
    ("zero vs False", 0, False),
    ("zero vs None", 0, None),
    ("str vs bytes", "a", b"a"),
    ("bytes vs bytearray", b"a", bytearray(b"a")),
    ("empty str vs None", "", None),
    ("empty tuple vs empty list", (), []),
    ("empty list vs empty dict", [], {}),
    ("empty set vs empty frozenset", set(), frozenset()),
    ("empty dict vs empty set", {}, set()),
    ("tuple vs list", ("a", "b"), ["a", "b"]),
    ("split strings", ("a", "bc"), ("ab", "c")),
    ("joined strings", ("a", "b"), ("ab",)),
    ("nesting", [[1], 2], [1, [2]]),
    ("depth", [[1]], [1]),
    ("dict vs pairs", {"a": 1}, [("a", 1)]),
    ("dict vs set of pairs", {"a": 1}, {("a", 1)}),
    ("key vs value", {"a": "b"}, {"b": "a"}),
    ("list vs tuple inside dict", {"a": [1]}, {"a": (1,)}),
    ("small ints", 1, 2),
    ("sign", -1, 1),
    ("beyond 64 bits", 2**64, 2**64 + 1),
    ("beyond 32 bits", 2**31, 2**31 - 1 + 1.0),
    ("float bits", 0.1 + 0.2, 0.3),
    ("negative zero", 0.0, -0.0),
    ("complex vs tuple", 1 + 2j, (1.0, 2.0)),
    ("nul byte", "a\x00b", "a"),
    ("trailing nul", b"ab", b"ab\x00"),
    ("long strings differing at the end", "x" * 5000 + "a", "x" * 5000 + "b"),
    ("big buffers differing at the end", b"\x00" * 10_000 + b"a", b"\x00" * 10_000 + b"b"),
    ("big buffers differing in length", b"\x00" * 10_000, b"\x00" * 10_001),
    ("string with separator-like text", ["a,b"], ["a", "b"]),
    ("mixed set members", {1, "1"}, {"1", 1.0}),
    ("dict key types", {1: "a"}, {"1": "a"}),
    ("decimals", decimal.Decimal("1.1"), decimal.Decimal("1.10")),
    ("fractions", fractions.Fraction(1, 3), fractions.Fraction(2, 3)),
    ("ranges", range(3), range(1, 3)),
    ("types", int, float),
    ("type vs its name", int, "builtins.int"),
    ("counter vs dict", collections.Counter(a=1), {"a": 1}),
]


@pytest.mark.parametrize(("left", "right"), [(a, b) for _, a, b in TRICKY_PAIRS], ids=[p[0] for p in TRICKY_PAIRS])
def test_distinct_values_give_distinct_keys(left: Any, right: Any) -> None:
    assert key(left) != key(right)


def test_all_tricky_values_and_the_shared_values_have_pairwise_distinct_keys() -> None:
    pool = [v for _, a, b in TRICKY_PAIRS for v in (a, b)] + list(values().values())
    keys: dict[str, Any] = {}
    for value in pool:
        k = key(value)
        if k in keys:
            # only a value equal to one seen before (same type) may share its key
            seen = keys[k]
            assert type(seen) is type(value) and seen == value, (seen, value)
        keys[k] = value


def test_the_argument_name_and_the_function_are_part_of_the_key() -> None:
    assert key(1, "a") != key(1, "b")
    assert default_cache_hash(json.dumps, {"obj": 1}) != default_cache_hash(json.loads, {"obj": 1})
    assert default_cache_hash(json.dumps, {"obj": 1}).startswith("json.dumps:")


class Point:
    """A plain object: encoded through pickle."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


def test_objects_are_keyed_by_their_state() -> None:
    assert key(Point(1, 2)) == key(Point(1, 2))
    assert key(Point(1, 2)) != key(Point(2, 1))
    assert key(Point(1, {"b", "a"})) == key(Point(1, {"a", "b"}))  # type: ignore[arg-type]


def test_an_argument_that_cannot_be_keyed_is_named_in_the_error() -> None:
    with pytest.raises(UnhashableInputError, match=r"argument 'lock' of json\.dumps cannot be hashed") as info:
        default_cache_hash(FUNC, {"lock": threading.Lock()})
    assert isinstance(info.value, TypeError) and info.value.__cause__ is not None


def test_keys_are_plain_text_with_a_readable_prefix(tmp_path: Path) -> None:
    k = key({"a": 1})
    prefix, digest = k.split(":")
    assert prefix == "json.dumps"
    assert digest[0] in "xb" and len(digest) == 33 and int(digest[1:], 16) >= 0
