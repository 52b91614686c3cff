"""Helpers for testing daglite and its plugins.

:class:`RecordingPlugin` records every observer hook call in order; the pytest
fixtures in :mod:`daglite_core.pytest_plugin` (loaded automatically through the
``pytest11`` entry point) register one for a test and isolate global state.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import attrs

from ._codegen import define
from ._hooks import SPECS, WRAPPER_HOOKS, hookimpl

__all__ = ["HookCall", "RecordingPlugin", "after_a_ctime_tick", "observer_hooks"]


def after_a_ctime_tick(path: str | os.PathLike[str], timeout: float = 5.0) -> None:
    """Return once a change made now would give a file a later ``st_ctime`` than ``path`` has.

    For tests that modify a stamped file (see :func:`daglite_core.signing.file_stamp`):
    on a filesystem with a coarse clock a change right after the stamp may keep the
    same ctime. A probe file beside ``path`` is touched until its ctime moves past
    (immediate on Linux 6.13+). :raises TimeoutError: the clock did not move in ``timeout`` s.
    """
    target = os.fspath(path)
    probe = f"{target}.ctime-probe"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with open(probe, "wb") as file:
                file.write(b"x")
            if os.stat(probe).st_ctime_ns > os.stat(target).st_ctime_ns:
                return
            time.sleep(0.001)
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    msg = f"the filesystem clock did not move past the ctime of {target} in {timeout} s"
    raise TimeoutError(msg)


def observer_hooks() -> list[str]:
    """Names of every observer hook (not ``provide_*``, not the ``node_attempt`` wrapper hook), sorted."""
    return sorted(h for h in SPECS if not h.startswith("provide_") and h not in WRAPPER_HOOKS)


@attrs.frozen
class HookCall:
    """One recorded hook call: the hook's name and its keyword arguments."""

    hook: str
    kwargs: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.kwargs[name]


class _RecordingBase:
    def __init__(self, hooks: list[str] | None = None) -> None:
        self.calls: list[HookCall] = []
        self._only = set(hooks) if hooks is not None else None
        self._lock = threading.Lock()

    def _record(self, hook: str, kwargs: dict[str, Any]) -> None:
        if self._only is None or hook in self._only:
            with self._lock:
                self.calls.append(HookCall(hook, kwargs))

    def names(self) -> list[str]:
        """The recorded hook names, in call order."""
        return [c.hook for c in self.calls]

    def of(self, hook: str) -> list[HookCall]:
        """The recorded calls of ``hook``, in order."""
        return [c for c in self.calls if c.hook == hook]

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self.calls.clear()


def _make_recorder() -> type:
    namespace: dict[str, Any] = {}
    for hook in observer_hooks():
        args = SPECS[hook].argnames
        params = ", ".join(args)
        body = ", ".join(f"{a!r}: {a}" for a in args)
        source = f"def {hook}(self, {params}):\n    self._record({hook!r}, {{{body}}})\n"
        define(source, hook, f"RecordingPlugin.{hook}", namespace)
    methods = {hook: hookimpl(namespace[hook]) for hook in observer_hooks()}
    doc = (
        "A plugin that records every observer hook call, in order, in ``calls``.\n\n"
        "``RecordingPlugin(hooks=[...])`` records only those hooks. Thread-safe. In a\n"
        "process-backend session it stays in the session's process and sees the\n"
        "relayed worker events."
    )
    return type("RecordingPlugin", (_RecordingBase,), {**methods, "__doc__": doc, "__module__": __name__})


RecordingPlugin: Any = _make_recorder()
