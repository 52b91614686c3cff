"""Text the ``daglite`` command prints: plugin listings, versions, results.

Decisions:

* ``daglite plugins`` prints one block per plugin (name, distribution and
  version, status with the reason, source, hooks on their own line) because hook
  lists are too long for a table row; ``--json`` prints the same records for tools.
* ``daglite --version`` prints the core's version and then, like pytest's header,
  every *enabled* entry-point plugin as ``distribution-version``, so a bug report
  carries the plugin set.
* Results are printed with ``repr`` (nothing for ``None``, as the Python prompt
  does) or, with ``--json``, as JSON; paths, sets, tuples, dataclasses, attrs
  classes, dates and numpy values are converted, anything else is an error that
  names its type rather than a silent ``str()``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
from collections.abc import Iterable
from typing import Any

import attrs

from .._hooks._info import PluginInfo


def core_version() -> str:
    """The installed daglite-core version."""
    import daglite_core

    return str(daglite_core.__version__)


def version_text(plugins: Iterable[PluginInfo]) -> str:
    """``daglite --version``: the core, then each enabled plugin's distribution."""
    lines = [f"daglite-core {core_version()}"]
    enabled = sorted(
        {
            f"{p.distribution or p.name}-{p.version}" if p.version else (p.distribution or p.name)
            for p in plugins
            if p.status == "enabled" and p.source == "entry point"
        }
    )
    lines.append(f"plugins: {', '.join(enabled) if enabled else 'none'}")
    return "\n".join(lines)


def plugins_text(plugins: Iterable[PluginInfo]) -> str:
    """``daglite plugins``: one block per plugin."""
    blocks = []
    for p in plugins:
        dist = p.distribution or ("daglite-core" if p.source == "builtin" else "-")
        version = p.version or (core_version() if p.source == "builtin" else "")
        status = p.status if not p.reason else f"{p.status}: {p.reason}"
        head = f"{p.name}  ({dist} {version})".replace(" )", ")")
        hooks = ", ".join(p.hooks) if p.hooks else "(none)"
        blocks.append(f"{head}\n  status: {status}\n  source: {p.source}\n  hooks:  {hooks}")
    return "\n\n".join(blocks) if blocks else "no plugins"


def plugins_json(plugins: Iterable[PluginInfo]) -> str:
    """``daglite plugins --json``: the :class:`PluginInfo` records."""
    return json.dumps([attrs.asdict(p) for p in plugins], indent=2)


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if attrs.has(type(value)):
        return attrs.asdict(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    to_dict = getattr(value, "to_dict", None)  # pandas objects
    if callable(to_dict):
        return to_dict()
    msg = f"the workflow's result contains a {type(value).__qualname__}, which is not JSON serializable"
    raise TypeError(msg)


def result_text(result: Any, as_json: bool) -> str | None:
    """What ``daglite run`` prints for ``result`` (``None``: nothing)."""
    if as_json:
        return json.dumps(result, default=_jsonable, indent=2)
    return None if result is None else repr(result)
