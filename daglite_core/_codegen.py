"""Generated code, registered with :mod:`linecache`: the one way the core generates code.

Task argument binders (``_task``), fast record constructors (``_records``) and the
test helpers use it. Apart from ``_records`` so that defining a task does not load
``uuid`` (see ``tests/test_startup.py``).
"""

from __future__ import annotations

import itertools
import linecache
from typing import Any

_generated = itertools.count(1)


def define(source: str, name: str, label: str, namespace: dict[str, Any]) -> Any:
    """Run generated ``source`` in ``namespace`` and return its function ``name``.

    The one way the core generates code: the source is registered with
    :mod:`linecache` under a unique ``<daglite ...>`` file name, so tracebacks,
    ``inspect.getsource`` and debuggers show the generated lines.
    """
    filename = f"<daglite {label} #{next(_generated)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the callers generate it from their own data
    return namespace[name]
