"""Tiny in-memory stores for the core's tests (the real ones are plugins)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import daglite_core as d


class MemoryCache:
    """A CacheStore in a dict; ``broken`` keys raise on get, ``fail_set`` raises on set."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.ttls: dict[str, float | None] = {}
        self.broken: set[str] = set()
        self.fail_set = False
        self.lock = threading.Lock()

    def get(self, key: str) -> Any:
        if key in self.broken:
            self.broken.discard(key)
            self.data.pop(key, None)
            raise ValueError("entry is truncated")
        with self.lock:
            return self.data.get(key, d.CACHE_MISS)

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        if self.fail_set:
            raise OSError(28, "No space left on device")
        with self.lock:
            self.data[key] = value
            self.ttls[key] = ttl


class MemoryDatasets:
    """A DatasetStore in a dict with json/text formats and a simple unsafe-key rule."""

    formats = {".json": "json", ".txt": "text"}

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def resolve(self, key: str, format: str | None = None) -> tuple[str, str]:
        if ".." in key.split("/") or key.startswith("/"):
            msg = f"Dataset key {key!r} would leave the store"
            raise ValueError(msg)
        fmt = format or next((f for ext, f in self.formats.items() if key.endswith(ext)), None)
        if fmt not in ("json", "text"):
            msg = f"Dataset key {key!r}: unknown format {fmt!r}"
            raise ValueError(msg)
        return key, fmt

    def save(self, key: str, value: Any, *, format: str, options: Mapping[str, Any] | None = None) -> None:
        self.data[key] = json.dumps(value) if format == "json" else str(value)

    def load(self, key: str, return_type: type | None = None, *, format: str, options: Mapping[str, Any] | None = None) -> Any:
        raw = self.data[key]
        return json.loads(raw) if format == "json" else raw

    def exists(self, key: str) -> bool:
        return key in self.data

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.data if k.startswith(prefix))


class Providers:
    """A plugin that provides the memory stores for any spec."""

    def __init__(self) -> None:
        self.cache = MemoryCache()
        self.datasets = MemoryDatasets()
        self.specs: list[Any] = []

    @d.hookimpl
    def provide_cache_store(self, spec: Any, settings: d.DagliteSettings) -> Any:
        self.specs.append(("cache", spec))
        return self.cache

    @d.hookimpl
    def provide_dataset_store(self, spec: Any, settings: d.DagliteSettings) -> Any:
        self.specs.append(("dataset", spec))
        return self.datasets
