"""daglite-diskcache: the persistent cache store for daglite, on diskcache.

Installing the distribution registers the plugin (entry point ``daglite`` →
``diskcache``): ``@task(cache=True)`` then keeps results in ``.daglite/cache`` under
the working directory, or wherever ``session(cache_store=...)``,
``DAGLITE_CACHE_STORE``, ``@task(cache_store=...)`` or ``@task(cache="dir")`` say.
"""

from __future__ import annotations

from ._errors import CacheEntryError, CacheWriteError, DiskCacheWarning
from ._paths import DEFAULT_RELATIVE_DIR, default_cache_dir
from ._store import DEFAULT_SIZE_LIMIT, DiskCacheStore, StoreConfig

__all__ = [
    "DEFAULT_RELATIVE_DIR",
    "DEFAULT_SIZE_LIMIT",
    "CacheEntryError",
    "CacheWriteError",
    "DiskCacheStore",
    "DiskCacheWarning",
    "StoreConfig",
    "default_cache_dir",
]
