"""Cache keys (placeholder: replaced by the cache-key work of the diskcache issue)."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Mapping
from typing import Any, Callable


class UnhashableInputError(TypeError):
    """An argument cannot be turned into a cache key."""


def default_cache_hash(func: Callable[..., Any], inputs: Mapping[str, Any]) -> str:
    """Return the cache key of calling ``func`` with ``inputs``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{func.__module__}:{func.__qualname__}".encode())
    try:
        h.update(pickle.dumps(sorted(inputs.items()), protocol=5))
    except Exception as exc:
        raise UnhashableInputError(str(exc)) from exc
    return h.hexdigest()
