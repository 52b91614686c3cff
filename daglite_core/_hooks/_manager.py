"""The plugin registry: entry-point discovery, ``register_plugins``, session plugin lists.

pluggy supplies the markers (``@hookspec``, ``@hookimpl`` and their options) and
their semantics. The layers, each importing only those below it:

* :mod:`daglite_core._hooks._decl`: specs and implementations are read and
  validated (pluggy's rules, daglite's stricter checks);
* :mod:`daglite_core._hooks._tables`: a :class:`PluginSet` compiles one scope's
  plugins into per-hook tables and dispatches (isolating observer failures);
* this module: the process-wide registry (entry points of the ``daglite`` group,
  loaded lazily, and ``register_plugins``), plugin listings, ``call_hook`` and the
  parsing of a session's ``plugins=``.

Registration is strict, as pluggy's is: registering an object that is already
registered is a :class:`PluginError` naming it; an object without any
``@hookimpl`` is rejected. A name in ``DAGLITE_DISABLE_PLUGINS`` that matches no
installed or registered plugin is warned about (once per process) with the
closest name. With strict hooks (``DAGLITE_STRICT_HOOKS=1``) an installed plugin
that fails to load fails the run instead of being skipped with a warning.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import PluginError
from ._decl import (
    NODE_HOOKS,
    SPECS,
    _Impl,
    _Spec,
    collect_specs,
    is_provider,
    parse_plugin,
    plugin_name,
    spec_changed,
)
from ._tables import FailureLog, HookTables, PluginSet, _Entry, _logger

if TYPE_CHECKING:
    import importlib.metadata

    from .._settings import DagliteSettings
    from ._info import PluginInfo

    # What the registry keeps of an installed entry point (a PluginInfo's fields, in
    # order): the attrs class is imported when plugins are listed, not by the first session.
    _Found = tuple[str, str | None, str | None, tuple[str, ...], str, str, str]

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "NODE_HOOKS",
    "SPECS",
    "FailureLog",
    "HookTables",
    "PluginSet",
    "_Entry",
    "_Impl",
    "_Spec",
    "_registry",
    "is_provider",
    "missing_plugin_hint",
    "add_hookspecs",
    "entry_points",
    "list_plugins",
    "parse_plugin",
    "plugin_name",
    "register_plugins",
    "remove_hookspecs",
    "session_entries",
    "set_builtin_plugin",
    "unregister_plugins",
]

ENTRY_POINT_GROUP = "daglite"

BUILTIN_BACKENDS = frozenset({
    "inline", "sequential", "synchronous",
    "thread", "threads", "threading",
    "process", "processes", "multiprocessing",
})
"""The core's own backend names and aliases (a test checks them against the classes),
known without importing the backends (used to check ``@task(backend=...)``)."""


# -- specs added by plugins ------------------------------------------------------------

_added: dict[int, tuple[object, tuple[str, ...]]] = {}


def add_hookspecs(namespace: object) -> None:
    """Add the ``@hookspec`` functions of ``namespace`` (a module or class) as hooks.

    For plugins that define hooks of their own for other plugins to implement.
    Hook names must be new and must not start with ``_``; spec options daglite
    does not implement (``historic``, ``warn_on_impl``, ``warn_on_impl_args``) are
    rejected. Hooks named ``provide_*`` are provider hooks (their errors
    propagate), every other one an observer hook (isolated failures). Plugins
    registered before, whose ``optionalhook`` implementations match a new hook,
    are checked against it now. Undo with :func:`remove_hookspecs`.

    :raises ValueError: no hookspec in ``namespace``, an existing or private
        name, an unsupported option.
    :raises PluginError: a registered plugin's implementation does not fit.
    """
    new = collect_specs(namespace, checked=True)
    if not new:
        msg = f"{namespace!r} has no @daglite_core.hookspec functions"
        raise ValueError(msg)
    taken = sorted(set(new) & set(SPECS))
    if taken:
        msg = f"Hook(s) {', '.join(map(repr, taken))} of {namespace!r} are already declared"
        raise ValueError(msg)
    SPECS.update(new)
    _added[id(namespace)] = (namespace, tuple(new))
    try:
        _registry.specs_changed()
    except BaseException:
        for name in new:
            SPECS.pop(name, None)
        del _added[id(namespace)]
        _registry.specs_changed()
        raise


def remove_hookspecs(namespace: object) -> None:
    """Remove the hooks :func:`add_hookspecs` added from ``namespace`` (for tests).

    :raises ValueError: ``namespace`` was not added, or a globally registered
        plugin still implements one of its hooks (unregister it first).
    """
    found = _added.get(id(namespace))
    if found is None:
        msg = f"{namespace!r} was not added with add_hookspecs"
        raise ValueError(msg)
    names = set(found[1])
    with _registry.lock:
        users = sorted({(e.name, i.hook) for e in _registry.entries for i in e.impls if i.hook in names})
        if users:
            which = ", ".join(f"{p!r} ({h})" for p, h in users)
            msg = f"Cannot remove hooks still implemented by registered plugin(s) {which}; unregister them first"
            raise ValueError(msg)
        del _added[id(namespace)]
        for name in names:
            SPECS.pop(name, None)
        _registry.specs_changed()


# -- the registry ------------------------------------------------------------------------


class _Registry:
    """The process-wide plugins: entry points (loaded lazily) and ``register_plugins``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.entries: list[_Entry] = []
        self.found: list[_Found] = []
        self.load_errors: list[tuple[str, Exception]] = []
        self.loaded = False
        self._set: PluginSet | None = None
        self._failures = FailureLog()
        self._warned_disabled: set[str] = set()
        self._backend_names: frozenset[str] | None = None
        self.builtin: Callable[[], object] | None = None
        """Returns the core's own plugin (its backends); set by the package (see :func:`set_builtin_plugin`)."""

    @property
    def infos(self) -> list[PluginInfo]:
        """The installed entry points, enabled, disabled or failed (read after they were loaded)."""
        from ._info import PluginInfo

        return [PluginInfo(*found) for found in self.found]

    def invalidate(self) -> None:
        self._set = None
        self._backend_names = None

    def specs_changed(self) -> None:
        """Re-read every registered plugin against the current specs."""
        spec_changed()
        with self.lock:
            self.entries = [e._replace(impls=parse_plugin(e.plugin, e.name)) for e in self.entries]
            self.invalidate()

    def plugin_set(self, strict: bool) -> PluginSet:
        """The registry's compiled set (entry points loaded on first use).

        :raises PluginError: when ``strict`` and an installed plugin failed to load.
        """
        cached = self._set
        if cached is None or cached.strict != strict:
            with self.lock:
                if not self.loaded:
                    self._load_entry_points()
                cached = self._set = PluginSet(self.entries, strict, self._failures)
        if strict and self.load_errors:
            name, error = self.load_errors[0]
            msg = (
                f"daglite plugin {name!r} failed to load ({type(error).__name__}: {error}); "
                "strict hooks are on (DAGLITE_STRICT_HOOKS), so this is an error"
            )
            raise PluginError(msg, plugin=name) from error
        return cached

    def register(self, plugin: object, name: str | None = None, **extra: Any) -> None:
        with self.lock:
            name = name or plugin_name(plugin)
            for entry in self.entries:
                if entry.plugin is plugin:
                    how = "as an installed entry point" if entry.source == "entry point" else f"through {entry.source}"
                    msg = f"Plugin {name!r} ({plugin!r}) is already registered ({how})"
                    raise PluginError(msg, plugin=name)
            self.entries.append(_Entry(name, plugin, parse_plugin(plugin, name), **extra))
            self.invalidate()

    def unregister(self, plugin: object) -> bool:
        with self.lock:
            before = len(self.entries)
            self.entries = [e for e in self.entries if e.plugin is not plugin]
            self.invalidate()
            return len(self.entries) != before

    def _load_entry_points(self) -> None:
        from .._settings import DagliteSettings

        settings = DagliteSettings()
        self.loaded = True
        if self.builtin is not None:
            builtin = self.builtin()
            self.entries.insert(0, _Entry("daglite-core", builtin, parse_plugin(builtin, "daglite-core"), None, "builtin"))
        for ep in sorted(entry_points(), key=lambda e: e.name):
            self.found.append(self._load_one(ep, settings.disable_plugins, settings.plugins_autoload))

    def _load_one(self, ep: importlib.metadata.EntryPoint, disabled: Sequence[str], autoload: bool) -> _Found:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None

        def info(status: str, reason: str = "", hooks: Iterable[str] = ()) -> _Found:
            return (ep.name, dist, version, tuple(sorted(set(hooks))), status, reason, "entry point")

        if ep.name in disabled or (dist is not None and dist in disabled):
            return info("disabled", "listed in DAGLITE_DISABLE_PLUGINS")
        if not autoload:
            return info("disabled", "DAGLITE_PLUGINS_AUTOLOAD=0")
        try:
            plugin = ep.load()
            impls = parse_plugin(plugin, ep.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal (unless strict)
            reason = f"{type(exc).__name__}: {exc}"
            _logger().warning("daglite plugin %r (%s) failed to load: %s", ep.name, ep.value, reason)
            self.load_errors.append((ep.name, exc))
            return info("failed", reason)
        if any(e.plugin is plugin for e in self.entries):
            # Registered in code before the entry points were read: one registration.
            self.entries = [e._replace(name=ep.name, distribution=dist, source="entry point") if e.plugin is plugin else e for e in self.entries]
        else:
            self.entries.append(_Entry(ep.name, plugin, impls, dist, "entry point"))
        return info("enabled", hooks=(i.hook for i in impls))

    def load_by_name(self, name: str) -> _Entry:
        """Load the entry-point plugin ``name`` (for ``session(plugins=["name"])``)."""
        for ep in entry_points():
            if ep.name == name or (ep.dist is not None and ep.dist.name == name):
                try:
                    plugin = ep.load()
                except Exception as exc:
                    msg = f"daglite plugin {name!r} ({ep.value}) failed to load: {exc}"
                    raise PluginError(msg, plugin=name) from exc
                dist = ep.dist.name if ep.dist is not None else None
                return _Entry(ep.name, plugin, parse_plugin(plugin, ep.name), dist, "entry point")
        known = sorted(ep.name for ep in entry_points())
        hint = _did_you_mean(name, known)
        msg = f"No daglite plugin named {name!r} is installed{hint}; installed: {', '.join(known) or 'none'}"
        raise PluginError(msg, plugin=name)

    def check_disabled(self, disabled: Sequence[str]) -> None:
        """Warn (once per name and process) about disable names that match no plugin."""
        fresh = [n for n in disabled if n not in self._warned_disabled]
        if not fresh:
            return
        with self.lock:
            known = {"daglite-core"}
            for info in self.infos:
                known.add(info.name)
                if info.distribution:
                    known.add(info.distribution)
            for entry in self.entries:
                known.add(entry.name)
                if entry.distribution:
                    known.add(entry.distribution)
            for name in fresh:
                self._warned_disabled.add(name)
                if name not in known:
                    _logger().warning(
                        "DAGLITE_DISABLE_PLUGINS names %r, which matches no installed or registered plugin%s; known: %s",
                        name, _did_you_mean(name, sorted(known)), ", ".join(sorted(known)),
                    )

    def reset(self) -> None:
        """Forget every plugin; entry points load again on next use (for tests)."""
        with self.lock:
            self.entries = []
            self.found = []
            self.load_errors = []
            self.loaded = False
            self._warned_disabled = set()
            self._failures = FailureLog()
            self.invalidate()

    # -- what is installed, for messages -------------------------------------------------

    def backend_names(self) -> frozenset[str]:
        """Every backend name (and alias) the process could use: built-in or plugin-provided.

        Asks the ``provide_backends`` of every registered and enabled entry-point
        plugin, and of installed entry-point plugins that are not enabled (those are
        imported for the question, not registered), since a session may still
        enable them by name.
        """
        names = self._backend_names
        if names is not None:
            return names
        found: set[str] = set()
        base = self.plugin_set(False)
        for answer in base.collect("provide_backends"):
            for cls in answer:
                found.update((cls.name, *cls.aliases))
        active = {id(e.plugin) for e in base.entries}
        for info in self.infos:
            if info.status != "disabled":
                continue
            for ep in entry_points():
                if ep.name != info.name:
                    continue
                try:
                    plugin = ep.load()
                    if id(plugin) in active:
                        continue
                    entry = _Entry(ep.name, plugin, parse_plugin(plugin, ep.name))
                    for answer in PluginSet([entry], False).collect("provide_backends"):
                        for cls in answer:
                            found.update((cls.name, *cls.aliases))
                except Exception:  # noqa: BLE001,S112 - a broken plugin provides nothing
                    continue
        names = self._backend_names = frozenset(found)
        return names


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of the ``daglite`` group.

    Read by :mod:`._entry_points` without importing ``importlib.metadata`` (~25 ms)
    in the usual layout, and cached per process until ``sys.path`` or one of its
    directories changes; the objects have ``name``, ``value``, ``dist`` and ``load()``.
    """
    from ._entry_points import scan  # on first discovery, not at import

    return scan(ENTRY_POINT_GROUP)


_registry = _Registry()


def missing_plugin_hint(distribution: str, settings: DagliteSettings) -> str:
    """How to get the plugin ``distribution``: install it, or enable it and by what.

    For messages of features that need a plugin (``cache=True`` needs a cache
    store plugin): an installed plugin that is disabled is never answered with
    "pip install".
    """
    for ep in entry_points():
        dist = ep.dist.name if ep.dist is not None else None
        if dist != distribution and ep.name != distribution:
            continue
        if ep.name in settings.disable_plugins or distribution in settings.disable_plugins:
            env = {n.strip() for n in os.environ.get("DAGLITE_DISABLE_PLUGINS", "").split(",")}
            by = "DAGLITE_DISABLE_PLUGINS" if env & {ep.name, distribution} else "the session's settings (disable_plugins)"
            return f"{distribution} is installed but disabled by {by}; remove {ep.name!r} from it"
        if not settings.plugins_autoload:
            env_off = os.environ.get("DAGLITE_PLUGINS_AUTOLOAD", "").strip().lower() in ("0", "false", "no", "off")
            by = "DAGLITE_PLUGINS_AUTOLOAD=0" if env_off else "plugins_autoload=False"
            return f"{distribution} is installed but not loaded ({by}); enable it for a session with session(plugins=[{ep.name!r}])"
        failed = [i for i in _registry.infos if i.name == ep.name and i.status == "failed"]
        if failed:
            return f"{distribution} is installed but failed to load: {failed[0].reason}"
        return f"{distribution} is installed and enabled but provided nothing for this"
    return f"install it with: pip install {distribution}"


def register_plugins(*plugins: object) -> None:
    """Register plugins for the whole process (every session and bare call sees them).

    :raises TypeError: for a class instead of an instance, or a string.
    :raises PluginError: for an invalid plugin (e.g. a misspelt hook name, no
        ``@hookimpl`` at all) or one that is already registered.
    """
    for plugin in plugins:
        _registry.register(plugin)


def unregister_plugins(*plugins: object) -> None:
    """Remove plugins registered with :func:`register_plugins`."""
    for plugin in plugins:
        _registry.unregister(plugin)


def list_plugins() -> list[PluginInfo]:
    """Every discovered plugin: entry points (enabled, disabled or failed) and registered ones."""
    from ._info import PluginInfo

    _registry.plugin_set(False)
    with _registry.lock:
        listed = list(_registry.infos)
        for entry in _registry.entries:
            if entry.source == "entry point":
                continue
            hooks = tuple(sorted({i.hook for i in entry.impls}))
            listed.append(PluginInfo(entry.name, entry.distribution, None, hooks, "enabled", "", entry.source))
    return listed


def set_builtin_plugin(load: Callable[[], object]) -> None:
    """Register the core's own plugin, listed first whenever the plugins are loaded.

    Called once by ``daglite_core/__init__.py`` with a function returning the
    plugin: it names backends that live in layers above this registry, which must
    not import them, and is imported only when plugins are first loaded.
    """
    with _registry.lock:
        _registry.builtin = load
        if _registry.loaded:  # pragma: no cover - the package sets it before any use
            plugin = load()
            _registry.entries.insert(0, _Entry("daglite-core", plugin, parse_plugin(plugin, "daglite-core"), None, "builtin"))
            _registry.invalidate()


def session_entries(plugins: Any, active: PluginSet | None = None) -> list[_Entry]:
    """Parse a session's ``plugins=``: objects, or entry-point names as strings.

    ``plugins`` may be one name (a string is one name, not a list of letters),
    one module, or an iterable of names and objects. An object registered twice
    -- listed twice, or already registered with ``register_plugins`` or by an
    enclosing session -- is a :class:`PluginError` naming it. An entry-point
    plugin that autoload already enabled, given by name or as the object,
    is simply selected (nothing to do): whether autoload is on depends on the
    environment, and code must not break with it.
    """
    if plugins is None:
        return []
    if isinstance(plugins, (str, bytes)) or not isinstance(plugins, Iterable):
        plugins = [plugins]
    seen: dict[int, str] = {}
    autoloaded: set[int] = set()
    for e in active.entries if active is not None else ():
        if e.source in ("entry point", "builtin"):
            autoloaded.add(id(e.plugin))
        seen[id(e.plugin)] = "in the enclosing session" if e.source == "session" else "globally"
    entries: list[_Entry] = []
    for plugin in plugins:
        if isinstance(plugin, str):
            entry = _registry.load_by_name(plugin)
            if id(entry.plugin) in seen:
                continue
        else:
            name = plugin_name(plugin)
            if id(plugin) in autoloaded:
                continue  # enabled by its entry point (autoload): selecting it is a no-op, as by name
            where = seen.get(id(plugin))
            if where is not None:
                msg = f"Plugin {name!r} ({plugin!r}) is already registered ({where}); register each plugin once"
                raise PluginError(msg, plugin=name)
            entry = _Entry(name, plugin, parse_plugin(plugin, name), source="session")
        seen[id(entry.plugin)] = "earlier in this session's plugins"
        entries.append(entry)
    return entries
