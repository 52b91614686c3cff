"""Hook dispatch: one set of plugins compiled into per-hook tables.

:class:`PluginSet` holds the plugins of one scope (the process, or a session) and
their compiled tables in :attr:`PluginSet.hook`, a :class:`HookTables` with one
attribute per hook (as pluggy's ``pm.hook``), kept apart from the set's methods so
that no hook name can shadow one. Each table is a tuple of ``(callable,
plugin_name)`` in pluggy's call order, each callable taking the hook's arguments
positionally in spec order; a hook nobody implements has an empty tuple and
costs nothing.

Why not dispatch through a ``pluggy.PluginManager`` (see DESIGN §4 "Dispatch"):

* isolation: pluggy stops at the first implementation that raises, so the other
  plugins would miss the event; daglite calls each implementation on its own;
* cost: a session with its own plugins needs its own table, and building a
  ``PluginManager`` with the specs costs 0.1–0.7 ms, while merging two compiled
  tables is a few microseconds.

Failures of observer hooks are reported once per (plugin, hook) and session; later
failures of the same pair are only counted (a broken hook in a 10,000-item map
costs one traceback, not 10,000) and summed up when the session ends
(:meth:`PluginSet.report_failures`), or at interpreter exit for calls outside any
session.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import PluginError
from .._vars import SESSION
from ._decl import FAILURE_NODE_HOOKS, SPECS, SUCCESS_NODE_HOOKS, _Impl, _Spec, is_provider
from ._wrappers import HOOK as WRAPPER_HOOK

if TYPE_CHECKING:
    import logging


def _logger() -> logging.Logger:
    """The ``daglite`` logger (logging is imported on first use: ~5 ms of the core's import)."""
    import logging

    return logging.getLogger("daglite")


class _Entry(NamedTuple):
    """A registered plugin: its name, the object, its parsed implementations."""

    name: str
    plugin: object
    impls: list[_Impl]
    distribution: str | None = None
    source: str = "register_plugins"

    def disabled_by(self, names: Sequence[str]) -> bool:
        return self.name in names or (self.distribution is not None and self.distribution in names)


_Caller = tuple[Callable[..., Any], str]


def _adapt(impl: _Impl, spec: _Spec) -> Callable[..., Any]:
    """A callable taking the spec's arguments positionally, passing what the impl wants."""
    if impl.argnames == spec.argnames and not impl.kwargnames:
        return impl.function
    params = ", ".join(spec.argnames)
    passed = ", ".join([*impl.argnames, *(f"{a}={a}" for a in impl.kwargnames)])
    adapter: Callable[..., Any] = eval(f"lambda {params}: fn({passed})", {"fn": impl.function})  # noqa: S307
    return adapter


class HookTables:
    """The compiled tables: ``tables.<hook>`` is a tuple of ``(callable, plugin_name)``.

    Deliberately without methods of its own (a hook may be called anything that
    does not start with ``_``). A hook added by ``add_hookspecs`` after the set
    was compiled reads as an empty table.
    """

    def __getattr__(self, name: str) -> tuple[_Caller, ...]:
        if name in SPECS:
            return ()
        raise AttributeError(name)


class FailureLog:
    """Failures of observer hooks, per scope: the first per (scope, plugin, hook) is logged.

    A scope is the session whose call failed (its id), or ``None`` outside any
    session. One log is shared by a set and every set derived from it, so a
    session pays nothing for it until a hook fails.
    """

    __slots__ = ("counts", "lock")

    def __init__(self) -> None:
        self.counts: dict[tuple[Any, str, str], int] = {}
        self.lock = threading.Lock()

    def add(self, scope: Any, plugin: str, hook: str) -> int:
        """Count one failure; return how many there were of this triple (1 = first)."""
        key = (scope, plugin, hook)
        with self.lock:
            count = self.counts[key] = self.counts.get(key, 0) + 1
        return count

    def report(self, scope: Any, where: str) -> None:
        """Log, per (plugin, hook) that failed more than once in ``scope``, the further failures."""
        if not self.counts:
            return
        with self.lock:
            mine = sorted((k, n) for k, n in self.counts.items() if k[0] == scope)
            for key, _ in mine:
                del self.counts[key]
        for (_, plugin, hook), count in mine:
            if count > 1:
                _logger().error(
                    "Plugin %r raised in hook %r %d more time(s) in %s (only the first was reported above)",
                    plugin, hook, count - 1, where,
                )


_exit_logs: list[FailureLog] = []


def _report_at_exit() -> None:
    for log in _exit_logs:
        log.report(None, "this process (outside any session)")


def _current_scope() -> Any:
    state = SESSION.get()
    return None if state is None else state.id


MAP_PROGRESS_ATTR = "daglite_map_progress"
"""A plugin with this attribute true is not called per item for the success hooks of
map items that run on the fast path; it counts them through ``map_progress``."""


class PluginSet:
    """The plugins of one scope (global, or a session's) and their compiled hook tables.

    :ivar entries: the registered plugins, in registration order.
    :ivar strict: whether a raising observer hook propagates (strict mode).
    :ivar hook: the :class:`HookTables`.
    :ivar observes_nodes: whether any plugin implements a node hook that fires on
        success (or wraps attempts): calls then leave the fast path.
    :ivar observes_items: like ``observes_nodes``, leaving out plugins that count map
        items instead (``daglite_map_progress = True``): whether map items leave
        the fast path.
    :ivar observes_failures: whether any plugin implements a node hook that fires
        only after a failed attempt (see ``FAILURE_NODE_HOOKS``).
    :ivar wraps_attempts: whether any plugin implements the ``node_attempt`` wrapper.
    :ivar failures: the :class:`FailureLog` of the scope.
    """

    def __init__(self, entries: Sequence[_Entry], strict: bool, failures: FailureLog | None = None) -> None:
        self.entries = tuple(entries)
        self.strict = strict
        self.failures = failures if failures is not None else FailureLog()
        self.hook = HookTables()
        rows: dict[str, list[tuple[int, int, _Caller]]] = {name: [] for name in SPECS}
        item_observers = False  # success hooks of a plugin that wants map items one by one
        for order, entry in enumerate(self.entries):
            counts_items = bool(getattr(entry.plugin, MAP_PROGRESS_ATTR, False))
            for impl in entry.impls:
                if not counts_items and impl.hook in SUCCESS_NODE_HOOKS:
                    item_observers = True
                spec = SPECS.get(impl.hook)
                if spec is None:  # its spec was removed (remove_hookspecs) since it was parsed
                    continue
                rank = 0 if impl.trylast else 2 if impl.tryfirst else 1
                # pluggy's order: tryfirst, then plain, then trylast; within tryfirst
                # and plain the last registered first, within trylast the first.
                rows[impl.hook].append((rank, order if rank == 0 else -order, (_adapt(impl, spec), impl.plugin_name)))
        tables = self.hook.__dict__
        for name, found in rows.items():
            found.sort(key=lambda r: (-r[0], r[1]))
            tables[name] = tuple(caller for _, _, caller in found)
        self.wraps_attempts = bool(tables.get(WRAPPER_HOOK))
        self.observes_nodes = self.wraps_attempts or any(tables[h] for h in SUCCESS_NODE_HOOKS)
        self.observes_items = self.wraps_attempts or item_observers
        self.observes_failures = any(tables[h] for h in FAILURE_NODE_HOOKS)

    # -- observer hooks ----------------------------------------------------------

    def notify(self, hook: str, *args: Any) -> None:
        """Call every implementation of observer ``hook`` (arguments in spec order), isolating failures."""
        for func, name in getattr(self.hook, hook):
            try:
                func(*args)
            except Exception as exc:  # noqa: BLE001
                self.hook_failed(name, hook, exc)

    def hook_failed(self, plugin: str, hook: str, exc: Exception) -> None:
        """Report (or, in strict mode, raise) ``plugin``'s failure in ``hook``.

        Reported on the ``daglite`` logger with the traceback the first time the
        pair fails in the active session (or outside any); later failures are
        counted (see :meth:`report_failures`).
        """
        msg = f"Plugin {plugin!r} raised in hook {hook!r}: {type(exc).__name__}: {exc}"
        if self.strict:
            raise PluginError(msg, plugin=plugin, hook=hook) from exc
        scope = _current_scope()
        if self.failures.add(scope, plugin, hook) == 1:
            if scope is None and self.failures not in _exit_logs:
                if not _exit_logs:
                    atexit.register(_report_at_exit)
                _exit_logs.append(self.failures)
            _logger().error("%s", msg, exc_info=exc)

    def report_failures(self, session_id: Any) -> None:
        """Log how often each (plugin, hook) failed in session ``session_id`` after its first report."""
        self.failures.report(session_id, f"session {session_id}")

    # -- provider hooks and keyword calls -----------------------------------------

    def first(self, hook: str, **kwargs: Any) -> Any:
        """Call provider ``hook`` until an implementation returns non-``None``."""
        args = [kwargs[a] for a in SPECS[hook].argnames]
        for func, name in getattr(self.hook, hook):
            try:
                result = func(*args)
            except Exception as exc:
                if isinstance(exc, PluginError) and exc.plugin:
                    raise  # already names the plugin at fault
                raise _provider_error(name, hook, exc) from exc
            if result is not None:
                return result
        return None

    def collect(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call provider ``hook`` on every implementation; return non-``None`` answers."""
        args = [kwargs[a] for a in SPECS[hook].argnames]
        answers = []
        for func, name in getattr(self.hook, hook):
            try:
                result = func(*args)
            except Exception as exc:
                if isinstance(exc, PluginError) and exc.plugin:
                    raise  # already names the plugin at fault
                raise _provider_error(name, hook, exc) from exc
            if result is not None:
                answers.append(result)
        return answers

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call any hook with keyword arguments, checked against its spec.

        Returns the first non-``None`` answer for a ``firstresult`` hook, else the
        list of non-``None`` answers. Observer hooks isolate failures (see
        :meth:`notify`); provider hooks (``provide_*``) raise
        :class:`PluginError` naming the plugin, chained to the error.

        :raises ValueError: for an unknown hook; :raises TypeError: for a missing
            or unknown argument.
        """
        spec = SPECS.get(hook)
        if spec is None:
            import difflib

            close = difflib.get_close_matches(hook, SPECS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"Unknown hook {hook!r}{hint}"
            raise ValueError(msg)
        unknown = sorted(set(kwargs) - set(spec.argnames))
        missing = [a for a in spec.argnames if a not in kwargs and a not in spec.defaults]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown argument(s) {', '.join(map(repr, unknown))}")
            if missing:
                parts.append(f"missing argument(s) {', '.join(map(repr, missing))}")
            msg = f"Hook {hook!r} called with {' and '.join(parts)}; it takes {', '.join(spec.argnames) or 'no arguments'}"
            raise TypeError(msg)
        args = [kwargs[a] if a in kwargs else spec.defaults[a] for a in spec.argnames]
        if is_provider(hook):
            values = dict(zip(spec.argnames, args, strict=True))
            return self.first(hook, **values) if spec.firstresult else self.collect(hook, **values)
        answers = []
        for func, name in getattr(self.hook, hook):
            try:
                result = func(*args)
            except Exception as exc:  # noqa: BLE001 - isolated, as in notify
                self.hook_failed(name, hook, exc)
                continue
            if result is not None:
                if spec.firstresult:
                    return result
                answers.append(result)
        return None if spec.firstresult else answers

    # -- the set --------------------------------------------------------------------

    def plugins(self) -> list[object]:
        """The plugin objects, in registration order."""
        return [e.plugin for e in self.entries]

    def without(self, disabled: Sequence[str], autoload: bool) -> PluginSet:
        """This set minus plugins disabled by name/distribution (or all entry-point ones)."""
        keep = [
            e
            for e in self.entries
            if not e.disabled_by(disabled) and (autoload or e.source != "entry point")
        ]
        return self if len(keep) == len(self.entries) else PluginSet(keep, self.strict, self.failures)

    def plus(self, extra: Sequence[_Entry], strict: bool) -> PluginSet:
        """This set with ``extra`` registered after it (duplicates were refused before)."""
        if not extra and strict == self.strict:
            return self
        return PluginSet([*self.entries, *extra], strict, self.failures)

    def subset(self, entries: Sequence[_Entry]) -> PluginSet:
        """A set of some of these ``entries``, reporting failures in this set's scope."""
        if len(entries) == len(self.entries):
            return self
        return PluginSet(entries, self.strict, self.failures)


def _provider_error(plugin: str, hook: str, exc: Exception) -> PluginError:
    msg = f"Plugin {plugin!r} raised in provider hook {hook!r}: {type(exc).__name__}: {exc}"
    return PluginError(msg, plugin=plugin, hook=hook)
