"""Plugin registration, entry-point discovery and hook dispatch.

pluggy supplies the markers (``@hookspec``, ``@hookimpl`` and their options) and
their semantics; daglite compiles every registered plugin's implementations into a
:class:`PluginSet`, one table per hook, in pluggy's call order. Two reasons not to
dispatch through a ``pluggy.PluginManager``:

* isolation: pluggy stops at the first implementation that raises, so the other
  plugins would miss the event; daglite calls each implementation on its own;
* cost: a session with its own plugins needs its own table, and building a
  ``PluginManager`` with the specs costs 0.1–0.7 ms, while merging two compiled
  tables is a few microseconds. A hook no plugin implements costs nothing.
"""

from __future__ import annotations

import inspect
import threading
import types
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import attrs

from . import _hookspecs
from ._errors import PluginError

if TYPE_CHECKING:
    import importlib.metadata
    import logging


def _logger() -> logging.Logger:
    """The ``daglite`` logger (logging is imported on first use: ~5 ms of the core's import)."""
    import logging

    return logging.getLogger("daglite")


_IMPL_ATTR = f"{_hookspecs.PROJECT_NAME}_impl"
_SPEC_ATTR = f"{_hookspecs.PROJECT_NAME}_spec"
ENTRY_POINT_GROUP = "daglite"


# _Spec, _Impl and _Entry are named tuples, not attrs classes: attrs compiles each
# class's methods when it is created (~0.6 ms apiece of `import daglite_core`).
class _Spec(NamedTuple):
    name: str
    argnames: tuple[str, ...]
    firstresult: bool


def _argnames(func: Callable[..., Any]) -> tuple[str, ...]:
    """Positional parameters without defaults (pluggy's rule), ``self`` excluded."""
    target, drop = func, 0
    if type(func) is types.MethodType:
        target, drop = func.__func__, 1
    if type(target) is types.FunctionType and not hasattr(target, "__wrapped__") and not hasattr(target, "__signature__"):
        # What inspect.signature gives for a plain function, read from its code (~20x faster).
        code = target.__code__
        names = code.co_varnames[: code.co_argcount]
        return names[drop : len(names) - len(target.__defaults__ or ())]
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return ()
    return tuple(
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def _collect_specs(*namespaces: object) -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    for namespace in namespaces:
        for attr in dir(namespace):
            func = getattr(namespace, attr, None)
            opts = getattr(func, _SPEC_ATTR, None)
            if opts is None or func is None:
                continue
            names = _argnames(func)
            if isinstance(namespace, type) and names[:1] == ("self",):
                names = names[1:]  # specs declared as methods of a class
            specs[attr] = _Spec(attr, names, bool(opts.get("firstresult")))
    return specs


SPECS: dict[str, _Spec] = _collect_specs(_hookspecs)
NODE_HOOKS = (
    "before_node_execute",
    "after_node_execute",
    "on_node_error",
    "node_iteration",
    "before_node_retry",
    "after_node_retry",
    "on_cache_hit",
    "provide_retry_delay",  # asked on every failed attempt: its implementers must see every call
)


def add_hookspecs(namespace: object) -> None:
    """Add the ``@hookspec`` functions of ``namespace`` (a module or class) as hooks.

    For plugins that define hooks of their own for other plugins to implement.
    Call it before registering those plugins.
    """
    new = _collect_specs(namespace)
    if not new:
        msg = f"{namespace!r} has no @daglite_core.hookspec functions"
        raise ValueError(msg)
    SPECS.update(new)
    _registry.invalidate()


class _Impl(NamedTuple):
    hook: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    plugin_name: str
    tryfirst: bool
    trylast: bool


# Per-class parse cache: (attribute, hook, argnames, tryfirst, trylast), so that a
# session that registers a fresh instance of a known class costs a few getattr calls.
_parse_cache: dict[type, list[tuple[str, str, tuple[str, ...], bool, bool]]] = {}


def plugin_name(plugin: object) -> str:
    """The name daglite uses for ``plugin`` in messages and listings."""
    explicit = getattr(plugin, "daglite_plugin_name", None)
    if isinstance(explicit, str):
        return explicit
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__qualname__


def _parse_declarations(plugin: object, name: str) -> list[tuple[str, str, tuple[str, ...], bool, bool]]:
    found = []
    for attr in dir(plugin):
        if attr.startswith("__"):
            continue
        try:
            func = getattr(plugin, attr)
        except Exception:  # noqa: BLE001 - properties may raise; they are not hooks
            continue
        opts = getattr(func, _IMPL_ATTR, None)
        if not isinstance(opts, dict) or not callable(func):
            continue
        hook = opts.get("specname") or attr
        spec = SPECS.get(hook)
        if spec is None:
            if opts.get("optionalhook"):
                continue
            import difflib  # only for this message: kept off the import path

            close = difflib.get_close_matches(hook, SPECS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"Plugin {name!r} implements unknown hook {hook!r}{hint}"
            raise PluginError(msg, plugin=name, hook=hook)
        if opts.get("wrapper") or opts.get("hookwrapper"):
            msg = (
                f"Plugin {name!r}: hook {hook!r} is a wrapper; daglite calls each "
                "implementation on its own and does not support hook wrappers"
            )
            raise PluginError(msg, plugin=name, hook=hook)
        argnames = _argnames(func)
        unknown = [a for a in argnames if a not in spec.argnames]
        if unknown:
            msg = (
                f"Plugin {name!r}: hook {hook!r} asks for unknown argument(s) "
                f"{', '.join(map(repr, unknown))}; the hook provides {', '.join(spec.argnames)}"
            )
            raise PluginError(msg, plugin=name, hook=hook)
        found.append((attr, hook, argnames, bool(opts.get("tryfirst")), bool(opts.get("trylast"))))
    return found


def parse_plugin(plugin: object, name: str | None = None) -> list[_Impl]:
    """Validate ``plugin`` and return its hook implementations.

    :raises TypeError: for a class (register an instance) or ``None``.
    :raises PluginError: for an unknown (misspelt) hook name, a wrapper, or an
        argument the hook does not provide; the message names plugin and hook.
    """
    if plugin is None or isinstance(plugin, type):
        what = plugin.__qualname__ if isinstance(plugin, type) else "None"
        msg = (
            f"daglite expects plugins to be registered as instances (or modules), not {what}"
            + (f"; register {what}() instead" if plugin is not None else "")
        )
        raise TypeError(msg)
    name = name or plugin_name(plugin)
    cls = type(plugin)
    cacheable = not isinstance(plugin, types.ModuleType) and "__getattr__" not in vars(cls)
    decls = _parse_cache.get(cls) if cacheable else None
    if decls is None:
        decls = _parse_declarations(plugin, name)
        if cacheable:
            _parse_cache[cls] = decls
    return [
        _Impl(hook, getattr(plugin, attr), argnames, name, first, last)
        for attr, hook, argnames, first, last in decls
    ]


@attrs.frozen
class PluginInfo:
    """One plugin as ``daglite plugins`` lists it.

    :ivar name: entry-point name (or the plugin's name when registered in code).
    :ivar distribution: the distribution that provides it, if known.
    :ivar version: that distribution's version, if known.
    :ivar hooks: the hooks it implements, sorted.
    :ivar status: ``enabled``, ``disabled`` or ``failed``.
    :ivar reason: why it is disabled or failed (empty when enabled).
    :ivar source: ``entry point``, ``register_plugins`` or ``builtin``.
    """

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    status: str
    reason: str
    source: str


class _Entry(NamedTuple):
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
    if impl.argnames == spec.argnames:
        return impl.function
    params = ", ".join(spec.argnames)
    passed = ", ".join(f"{a}={a}" for a in impl.argnames)
    adapter: Callable[..., Any] = eval(f"lambda {params}: fn({passed})", {"fn": impl.function})  # noqa: S307
    return adapter


class PluginSet:
    """Compiled hook tables for one set of plugins (global, or a session's).

    For each hook, ``self.<hook>`` is a tuple of ``(callable, plugin_name)`` in call
    order (empty when nobody implements it), each callable taking the hook's
    arguments positionally in spec order.
    """

    def __init__(self, entries: Sequence[_Entry], strict: bool) -> None:
        self.entries = tuple(entries)
        self.strict = strict
        tables: dict[str, list[tuple[int, int, _Caller]]] = {name: [] for name in SPECS}
        for order, entry in enumerate(self.entries):
            for impl in entry.impls:
                rank = 2 if impl.tryfirst else 0 if impl.trylast else 1
                tables[impl.hook].append((rank, order, (_adapt(impl, SPECS[impl.hook]), impl.plugin_name)))
        for name, rows in tables.items():
            # pluggy's order: tryfirst, then last registered first, then trylast.
            rows.sort(key=lambda r: (-r[0], -r[1]))
            setattr(self, name, tuple(caller for _, _, caller in rows))
        self.observes_nodes = any(getattr(self, h) for h in NODE_HOOKS)

    def __getattr__(self, name: str) -> tuple[_Caller, ...]:
        # Hooks added by add_hookspecs after this set was compiled.
        if name in SPECS:
            return ()
        raise AttributeError(name)

    def notify(self, hook: str, *args: Any) -> None:
        """Call every implementation of observer ``hook``, isolating failures."""
        for func, name in getattr(self, hook):
            try:
                func(*args)
            except Exception as exc:  # noqa: BLE001
                self.hook_failed(name, hook, exc)

    def hook_failed(self, plugin: str, hook: str, exc: Exception) -> None:
        """Report (or, in strict mode, raise) ``plugin``'s failure in ``hook``."""
        msg = f"Plugin {plugin!r} raised in hook {hook!r}: {type(exc).__name__}: {exc}"
        if self.strict:
            raise PluginError(msg, plugin=plugin, hook=hook) from exc
        _logger().error("%s", msg, exc_info=exc)

    def first(self, hook: str, **kwargs: Any) -> Any:
        """Call provider ``hook`` until an implementation returns non-``None``."""
        args = [kwargs[a] for a in SPECS[hook].argnames]
        for func, _ in getattr(self, hook):
            result = func(*args)
            if result is not None:
                return result
        return None

    def collect(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call provider ``hook`` on every implementation; return non-``None`` answers."""
        args = [kwargs[a] for a in SPECS[hook].argnames]
        return [r for func, _ in getattr(self, hook) if (r := func(*args)) is not None]

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
        return self if len(keep) == len(self.entries) else PluginSet(keep, self.strict)

    def plus(self, extra: Sequence[_Entry], strict: bool) -> PluginSet:
        """This set with ``extra`` registered after it."""
        if not extra and strict == self.strict:
            return self
        known = {id(e.plugin) for e in self.entries}
        return PluginSet([*self.entries, *(e for e in extra if id(e.plugin) not in known)], strict)


class _Registry:
    """The process-wide plugins: entry points (loaded lazily) and ``register_plugins``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.entries: list[_Entry] = []
        self.infos: list[PluginInfo] = []
        self.loaded = False
        self._set: PluginSet | None = None
        self._strict: bool | None = None

    def invalidate(self) -> None:
        self._set = None

    def plugin_set(self, strict: bool) -> PluginSet:
        cached = self._set
        if cached is not None and cached.strict == strict:
            return cached
        with self.lock:
            if not self.loaded:
                self._load_entry_points()
            self._set = PluginSet(self.entries, strict)
            return self._set

    def register(self, plugin: object, name: str | None = None, **extra: Any) -> bool:
        with self.lock:
            if any(e.plugin is plugin for e in self.entries):
                return False
            name = name or plugin_name(plugin)
            self.entries.append(_Entry(name, plugin, parse_plugin(plugin, name), **extra))
            self._set = None
            return True

    def unregister(self, plugin: object) -> bool:
        with self.lock:
            before = len(self.entries)
            self.entries = [e for e in self.entries if e.plugin is not plugin]
            self._set = None
            return len(self.entries) != before

    def _load_entry_points(self) -> None:
        from ._builtin import BUILTIN

        from ._settings import DagliteSettings

        settings = DagliteSettings()
        self.loaded = True
        self.entries.insert(0, _Entry("daglite-core", BUILTIN, parse_plugin(BUILTIN, "daglite-core"), None, "builtin"))
        for ep in sorted(entry_points(), key=lambda e: e.name):
            self.infos.append(self._load_one(ep, settings.disable_plugins, settings.plugins_autoload))

    def _load_one(self, ep: importlib.metadata.EntryPoint, disabled: Sequence[str], autoload: bool) -> PluginInfo:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None

        def info(status: str, reason: str = "", hooks: Iterable[str] = ()) -> PluginInfo:
            return PluginInfo(ep.name, dist, version, tuple(sorted(set(hooks))), status, reason, "entry point")

        if ep.name in disabled or (dist is not None and dist in disabled):
            return info("disabled", "listed in DAGLITE_DISABLE_PLUGINS")
        if not autoload:
            return info("disabled", "DAGLITE_PLUGINS_AUTOLOAD=0")
        try:
            plugin = ep.load()
            impls = parse_plugin(plugin, ep.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            reason = f"{type(exc).__name__}: {exc}"
            _logger().warning("daglite plugin %r (%s) failed to load: %s", ep.name, ep.value, reason)
            return info("failed", reason)
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
        msg = f"No daglite plugin named {name!r} is installed; installed: {', '.join(known) or 'none'}"
        raise PluginError(msg, plugin=name)

    def reset(self) -> None:
        """Forget every plugin; entry points load again on next use (for tests)."""
        with self.lock:
            self.entries = []
            self.infos = []
            self.loaded = False
            self._set = None


def entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of the ``daglite`` group."""
    import importlib.metadata  # ~25 ms: imported on first plugin lookup, not with the core

    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


_registry = _Registry()


def register_plugins(*plugins: object) -> None:
    """Register plugins for the whole process (every session and bare call sees them).

    Registering an already registered object does nothing.

    :raises TypeError: for a class instead of an instance.
    :raises PluginError: for an invalid plugin (e.g. a misspelt hook name).
    """
    for plugin in plugins:
        _registry.register(plugin)


def unregister_plugins(*plugins: object) -> None:
    """Remove plugins registered with :func:`register_plugins`."""
    for plugin in plugins:
        _registry.unregister(plugin)


def list_plugins() -> list[PluginInfo]:
    """Every discovered plugin: entry points (enabled, disabled or failed) and registered ones."""
    _registry.plugin_set(False)
    with _registry.lock:
        listed = list(_registry.infos)
        for entry in _registry.entries:
            if entry.source == "entry point":
                continue
            hooks = tuple(sorted({i.hook for i in entry.impls}))
            listed.append(PluginInfo(entry.name, entry.distribution, None, hooks, "enabled", "", entry.source))
    return listed


def call_hook(hook: str, **kwargs: Any) -> Any:
    """Call provider ``hook`` on the active session's plugins (the global ones outside).

    For plugins that consume another plugin's provider (a dataset store collecting
    ``provide_dataset_formats``). Returns the first non-``None`` answer for a
    ``firstresult`` hook, else the list of non-``None`` answers.
    """
    from ._context import current_state

    spec = SPECS.get(hook)
    if spec is None or not hook.startswith("provide_"):
        msg = f"{hook!r} is not a provider hook; known: {', '.join(h for h in sorted(SPECS) if h.startswith('provide_'))}"
        raise ValueError(msg)
    plugins = current_state().plugins
    return plugins.first(hook, **kwargs) if spec.firstresult else plugins.collect(hook, **kwargs)


def session_entries(plugins: Iterable[object]) -> list[_Entry]:
    """Parse a session's ``plugins=`` list: objects, or entry-point names as strings."""
    entries = []
    for plugin in plugins:
        if isinstance(plugin, str):
            entries.append(_registry.load_by_name(plugin))
        else:
            name = plugin_name(plugin)
            entries.append(_Entry(name, plugin, parse_plugin(plugin, name), source="session"))
    return entries
