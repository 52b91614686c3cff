"""Cache keys (``daglite_core.default_cache_hash``): equal values, equal keys, everywhere."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daglite_core import default_cache_hash


def key(func: Any, **inputs: Any) -> str:
    return default_cache_hash(func, inputs)


def add(x: Any, y: Any = 0) -> Any:
    return x


def test_key_names_the_function_and_is_stable() -> None:
    k = key(add, x=1, y=2)
    assert k.startswith(f"{__name__}.add:")
    assert k == key(add, x=1, y=2)
    assert k != key(add, x=2, y=1)


def test_argument_order_of_the_mapping_does_not_matter() -> None:
    assert default_cache_hash(add, {"x": 1, "y": 2}) == default_cache_hash(add, {"y": 2, "x": 1})


def test_dicts_and_sets_in_any_order_give_one_key() -> None:
    a = {"b": 1, "a": [1, 2], "c": {"z": 1, "y": 2}}
    b = {"c": {"y": 2, "z": 1}, "a": [1, 2], "b": 1}
    assert key(add, x=a) == key(add, x=b)
    assert key(add, x={3, 1, 2}) == key(add, x={2, 3, 1})
    assert key(add, x=frozenset("abc")) == key(add, x=frozenset("cba"))
    assert key(add, x={1, 2}) != key(add, x=frozenset({1, 2}))


def test_mixed_type_sets_and_dict_keys_do_not_crash() -> None:
    s1 = {1, "a", None, (1, 2), 2.5}
    s2 = {2.5, (1, 2), None, "a", 1}
    assert key(add, x=s1) == key(add, x=s2)
    assert key(add, x={None: 1, "b": 2, 3: 4}) == key(add, x={3: 4, "b": 2, None: 1})


def test_types_are_part_of_the_key() -> None:
    keys = {key(add, x=v) for v in (1, 1.0, True, "1", b"1", (1,), [1])}
    assert len(keys) == 7


def test_buffers_are_hashed_by_content() -> None:
    data = bytes(range(256)) * 100  # above the inline limit: digested in place
    assert key(add, x=data) == key(add, x=bytes(bytearray(data)))
    assert key(add, x=bytearray(data)) == key(add, x=bytearray(data))
    assert key(add, x=memoryview(data)) == key(add, x=memoryview(bytes(data)))
    assert key(add, x=data) != key(add, x=data[:-1] + b"\x00")
    small = b"abc"
    assert key(add, x=memoryview(bytearray(small))) == key(add, x=memoryview(small))


def test_numpy_arrays_by_dtype_shape_and_bytes() -> None:
    a = np.arange(1_000_000, dtype=np.float64)
    assert key(add, x=a) == key(add, x=a.copy())
    assert key(add, x=a) != key(add, x=a.astype(np.float32))
    assert key(add, x=a) != key(add, x=a.reshape(1000, 1000))
    b = a.copy()
    b[-1] += 1
    assert key(add, x=a) != key(add, x=b)
    # A strided view hashes like its contiguous copy.
    assert key(add, x=a[::2]) == key(add, x=np.ascontiguousarray(a[::2]))
    assert key(add, x=np.asfortranarray(a.reshape(1000, 1000))) == key(add, x=a.reshape(1000, 1000))
    # Scalars, 0-d arrays, datetimes and structured dtypes work and stay distinct.
    assert key(add, x=np.float64(1)) != key(add, x=np.array(1.0))
    dates = np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
    assert key(add, x=dates) == key(add, x=dates.copy())
    rec = np.zeros(3, dtype=[("a", "i4"), ("b", "f8")])
    assert key(add, x=rec) == key(add, x=rec.copy())


def test_object_arrays_go_through_pickle_not_their_pointers() -> None:
    a = np.array([{"k": 1}, "x"], dtype=object)
    b = np.array([{"k": 1}, "x"], dtype=object)
    assert key(add, x=a) == key(add, x=b)


class Point:
    def __init__(self, tags: set[str], size: int) -> None:
        self.tags = tags
        self.size = size


def test_other_objects_fall_back_to_pickle_with_canonical_sets_and_no_memo() -> None:
    shared = "a" * 40
    p1 = Point({"x", "y", "z"}, 1)
    p2 = Point({"z", "y", "x"}, 1)
    assert key(add, x=p1) == key(add, x=p2)
    assert key(add, x=[Point({shared}, 1), Point({shared}, 1)]) == key(
        add, x=[Point({"a" * 40}, 1), Point({"".join(["a"] * 40)}, 1)]
    )
    assert key(add, x=p1) != key(add, x=Point({"x"}, 1))


def test_unhashable_argument_raises_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"argument 'x' of .*add cannot be hashed") as info:
        key(add, x=threading.Lock(), y=1)
    assert type(info.value).__name__ == "UnhashableInputError"
    assert info.value.__cause__ is not None
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(TypeError, match="argument 'x'.*refers to itself"):
        key(add, x=loop)


def make_scaler(k: int) -> Any:
    def scale(x: int) -> int:
        return x * k

    return scale


def test_closures_with_different_captured_values_never_share_a_key() -> None:
    assert key(make_scaler(2), x=10) != key(make_scaler(3), x=10)
    assert key(make_scaler(2), x=10) == key(make_scaler(2), x=10)


def test_defaults_are_part_of_the_identity() -> None:
    def f1(x: int, y: int = 1) -> int:
        return x

    def f2(x: int, y: int = 1) -> int:
        return x

    f2.__defaults__ = (2,)
    f2.__qualname__ = f1.__qualname__
    assert key(f1, x=1) != key(f2, x=1)


def test_recursive_closure_and_functions_as_arguments() -> None:
    def outer() -> Any:
        def fib(n: int) -> int:
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        return fib

    assert key(outer(), n=3) == key(outer(), n=3)
    assert key(add, x=make_scaler(2)) != key(add, x=make_scaler(3))


def test_unhashable_closure_value_is_named() -> None:
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return x

    with pytest.raises(TypeError, match="closure variable 'lock'"):
        key(uses_lock, x=1)


MODULE = '''
import dataclasses

@dataclasses.dataclass
class Config:
    names: set
    weights: dict

def work(x, y=3):
    return x + y
'''


def _write_module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))
    importlib.invalidate_caches()


def test_editing_the_body_changes_the_key_but_decorators_do_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_module(tmp_path, "edited_mod", "def work(x):\n    return x + 1\n")
    import edited_mod  # type: ignore[import-not-found]

    before = key(edited_mod.work, x=1)
    _write_module(tmp_path, "edited_mod", "def work(x):\n    return x + 2\n")
    importlib.reload(edited_mod)
    after = key(edited_mod.work, x=1)
    assert before != after
    _write_module(tmp_path, "edited_mod", "import functools\n@functools.lru_cache(maxsize=3)\ndef work(x):\n    return x + 2\n")
    importlib.reload(edited_mod)
    assert key(edited_mod.work.__wrapped__, x=1) == after
    sys.modules.pop("edited_mod", None)


CHILD = """
import sys, json
from daglite_core import default_cache_hash
import keys_mod
args = {"x": {"alpha": {"b", "a", "c"}, 2: [1.5, None]}, "y": keys_mod.Config({"q", "r", "s"}, {"w": 1, "v": 2})}
print(default_cache_hash(keys_mod.work, args))
"""


@pytest.mark.parametrize("seeds", [("0", "1"), ("123", "random")])
def test_keys_agree_across_interpreters_and_hash_seeds(
    tmp_path: Path, subprocess_env: dict[str, str], seeds: tuple[str, str]
) -> None:
    _write_module(tmp_path, "keys_mod", MODULE)
    results = []
    for seed in seeds:
        env = {**subprocess_env, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
        results.append(out.stdout.strip())
    assert results[0] == results[1]
    assert results[0].startswith("keys_mod.work:")


def test_without_xxhash_keys_use_blake2b(subprocess_env: dict[str, str]) -> None:
    code = (
        "import sys; sys.modules['xxhash'] = None\n"
        "from daglite_core import default_cache_hash\n"
        "def f(x): return x\n"
        "print(default_cache_hash(f, {'x': b'a' * 10000}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, check=True)
    name, _, digest = out.stdout.strip().partition(":")
    assert name == "__main__.f"
    assert digest.startswith("b") and len(digest) == 33


def test_mutually_recursive_closures_key_alike_whichever_is_hashed_first() -> None:
    def make_pair() -> tuple[Any, Any]:
        def ping(n: int) -> int:
            return pong(n - 1) if n else 0

        def pong(n: int) -> int:
            return ping(n - 1) if n else 1

        return ping, pong

    ping1, pong1 = make_pair()
    first = (key(pong1, n=1), key(ping1, n=1))
    ping2, pong2 = make_pair()
    second = (key(ping2, n=1), key(pong2, n=1))
    assert first == (second[1], second[0])


def test_hashing_never_imports_numpy(subprocess_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from daglite_core import default_cache_hash\n"
        "def f(x): return x\n"
        "default_cache_hash(f, {'x': [b'a' * 10000, {1, 'b'}, 2.5]})\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
