"""Checked by mypy (tox -e typing): tasks keep their function's parameters and return type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, assert_type

import daglite_core as d


@d.task
def add(x: int, y: int = 1) -> int:
    return x + y


@d.task(retries=2, name="mul-{x}")
def mul(x: int, y: int) -> float:
    return x * y * 1.0


@d.task
async def fetch(url: str) -> bytes:
    return url.encode()


@d.task
def count(n: int) -> Iterator[int]:
    yield from range(n)


@d.task
async def acount(n: int) -> AsyncIterator[str]:
    for i in range(n):
        yield str(i)


assert_type(add(1), int)
assert_type(add(1, y=2), int)
assert_type(mul(2, 3), float)


async def use_fetch() -> None:
    assert_type(await fetch("u"), bytes)
    pending: Coroutine[Any, Any, bytes] = fetch("u")
    await pending

assert_type(count(3), Iterator[int])
assert_type(acount(3), AsyncIterator[str])

add("one")  # type: ignore[arg-type]
add(1, 2, 3)  # type: ignore[call-arg]
mul(1)  # type: ignore[call-arg]


@d.workflow
def pipeline(n: int) -> list[int]:
    return d.map_tasks(add, range(n))


assert_type(pipeline(3), list[int])
pipeline("x")  # type: ignore[arg-type]
