"""The cache-miss sentinel (its own module so the hot path imports no protocol)."""

from __future__ import annotations

from typing import Any

__all__ = ["CACHE_MISS"]


class _Miss:
    """Type of :data:`CACHE_MISS`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CACHE_MISS"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "CACHE_MISS"


CACHE_MISS: Any = _Miss()
"""What :meth:`CacheStore.get` returns when a key holds no (live) value.

A sentinel, so that a cached ``None`` or ``0`` is a hit."""
