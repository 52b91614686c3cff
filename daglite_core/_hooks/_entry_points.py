"""Reading the installed entry points of one group, without ``importlib.metadata``.

Importing ``importlib.metadata`` (zipfile, email, csv, pathlib...) costs more than
the rest of the core's import; this module reads the same files itself in the
common layout -- ``*.dist-info`` / ``*.egg-info`` directories in the directories
of ``sys.path`` -- and falls back to ``importlib.metadata`` whenever the layout is
anything else (a zip file on ``sys.path``, a meta-path finder that supplies
distributions of its own), so the answer is always the one
``importlib.metadata.entry_points(group=...)`` would give.

Rules followed from ``importlib.metadata``: the directories of ``sys.path`` in
order (``""`` is the working directory); one distribution per normalized name,
the first found wins; ``entry_points.txt`` is an ini file whose section is the
group. The scan is cached per process, keyed by ``sys.path`` and the modification
time of each of its directories (installing or removing a distribution changes
its directory's mtime), so repeated lookups cost a few ``stat`` calls.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

__all__ = ["DistInfo", "EntryPoint", "scan"]


class DistInfo:
    """The distribution an entry point comes from: its ``name`` and ``version``.

    Read from the ``METADATA`` (or ``PKG-INFO``) headers on first use.
    """

    __slots__ = ("_name", "_path", "_version")

    def __init__(self, path: str) -> None:
        self._path = path
        self._name: str | None = None
        self._version: str | None = None

    def _read(self) -> None:
        name = version = None
        for file in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(self._path, file), encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            break  # end of the headers
                        key, _, value = line.partition(":")
                        key = key.strip().lower()
                        if key == "name" and name is None:
                            name = value.strip()
                        elif key == "version" and version is None:
                            version = value.strip()
                break
            except OSError:
                continue
        stem = os.path.basename(self._path).rpartition(".")[0]
        stem_name, _, stem_version = stem.partition("-")
        self._name = name or stem_name
        self._version = version or stem_version

    @property
    def name(self) -> str:
        if self._name is None:
            self._read()
        return self._name or ""

    @property
    def version(self) -> str:
        if self._version is None:
            self._read()
        return self._version or ""

    def __repr__(self) -> str:
        return f"DistInfo({self._path!r})"


class EntryPoint:
    """One entry point: ``name``, ``value`` (``module:attr``), ``group``, ``dist``; :meth:`load`."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: DistInfo | None) -> None:
        self.name = name
        self.value = value
        self.group = group
        self.dist = dist

    def load(self) -> Any:
        """Import the module and return the object the value names (as ``importlib.metadata``)."""
        import importlib

        spec = self.value.partition("[")[0].strip()
        module_name, _, attrs = spec.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


_lock = threading.Lock()
_cache: dict[str, tuple[object, list[Any]]] = {}


def _normalize(name: str) -> str:
    out = []
    for ch in name.lower():
        out.append("_" if ch in "-_." else ch)
    text = "".join(out)
    while "__" in text:
        text = text.replace("__", "_")
    return text


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
            continue
        if inside:
            name, sep, value = line.partition("=")
            if sep:
                found.append((name.strip(), value.strip()))
    return found


def _key() -> object | None:
    """The cache key (``sys.path`` and each directory's mtime), or None when the layout needs importlib.metadata."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return None
    parts = []
    for entry in sys.path:
        path = entry or "."
        try:
            st = os.stat(path)
        except OSError:
            continue  # missing: nothing to find there
        if not os.path.isdir(path):
            return None  # a zip or egg file: importlib.metadata reads those
        parts.append((entry, os.path.abspath(path), st.st_mtime_ns))
    return tuple(parts)


def _scan_paths(key: tuple[tuple[str, str, int], ...], group: str) -> list[Any]:
    seen: set[str] = set()
    found: list[Any] = []
    for _, path, _ in key:
        try:
            names = os.listdir(path)
        except OSError:
            continue
        for child in names:
            low = child.lower()
            if not (low.endswith(".dist-info") or low.endswith(".egg-info")):
                continue
            stem = child.rpartition(".")[0]
            norm = _normalize(stem.partition("-")[0])
            if norm in seen:
                continue
            full = os.path.join(path, child)
            if not os.path.isdir(full):
                continue
            seen.add(norm)
            try:
                with open(os.path.join(full, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if group not in text:
                continue
            dist = DistInfo(full)
            found.extend(EntryPoint(name, value, group, dist) for name, value in _parse(text, group))
    return found


def scan(group: str) -> list[Any]:
    """The installed entry points of ``group`` (light ones, or ``importlib.metadata``'s).

    Both kinds have ``name``, ``value``, ``group``, ``dist`` (with ``name`` and
    ``version``) and ``load()``.
    """
    key = _key()
    if key is None:
        import importlib.metadata

        return list(importlib.metadata.entry_points(group=group))
    with _lock:
        cached = _cache.get(group)
        if cached is not None and cached[0] == key:
            return list(cached[1])
        found = _scan_paths(key, group)  # type: ignore[arg-type]
        _cache[group] = (key, found)
        return list(found)
