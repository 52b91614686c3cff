"""daglite-diskcache: the persistent cache store for daglite, on diskcache.

Installing the distribution registers the plugin (entry point ``daglite`` →
``diskcache``): ``@task(cache=True)`` then keeps results in ``.daglite/cache`` under
the working directory, or wherever ``session(cache_store=...)``,
``DAGLITE_CACHE_STORE``, ``@task(cache_store=...)`` or ``@task(cache="dir")`` say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

if TYPE_CHECKING:
    from ._errors import CacheEntryError, CacheWriteError, DiskCacheWarning
    from ._paths import DEFAULT_RELATIVE_DIR, default_cache_dir
    from ._store import DEFAULT_SIZE_LIMIT, DiskCacheStore, StoreConfig

# Names are imported on first use (PEP 562): the entry point imports only ``plugin``,
# which every process that opens a session loads; the rest waits for its first use.
_LAZY = {
    "CacheEntryError": "._errors",
    "CacheWriteError": "._errors",
    "DEFAULT_RELATIVE_DIR": "._paths",
    "DEFAULT_SIZE_LIMIT": "._store",
    "DiskCacheStore": "._store",
    "DiskCacheWarning": "._errors",
    "StoreConfig": "._store",
    "default_cache_dir": "._paths",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
