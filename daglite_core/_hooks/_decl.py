"""Hook declarations: the specs (what hooks exist) and plugins' implementations of them.

This module reads ``@hookspec`` / ``@hookimpl`` markers and validates them; it
calls nothing. Dispatch lives in :mod:`daglite_core._hooks._tables`, the registry
and entry points in :mod:`daglite_core._hooks._manager`.

The rules are pluggy's, checked by ``tests/test_plugins_pluggy.py`` against a real
``pluggy.PluginManager``:

* A hook implementation is a function, bound method, ``staticmethod`` or
  ``classmethod`` carrying the ``@hookimpl`` marker, found on the plugin without
  running properties or ``__getattr__`` (as :func:`inspect.getattr_static`
  finds it). A marked function stored on the *instance* is an implementation of
  that instance only, called as stored (not bound).
* An implementation receives the arguments its positional parameters without a
  default name (``self``/``cls`` of a method excluded); each must be an argument
  of the spec (its parameters, defaulted or not). A parameter with a default
  receives the argument of that name when the spec has one (by keyword, as
  pluggy 1.7 does), else keeps its default.

Where daglite is stricter than pluggy (each is a mistake pluggy only reports
later, or never):

* wrappers (new-style, ``wrapper=True``) are accepted on ``node_attempt`` only
  (see :mod:`daglite_core._hooks._wrappers`), which takes nothing else;
  old-style ``hookwrapper=True`` is rejected;
* an implementation of a hook no spec declares is an error when it is
  registered (pluggy: when ``check_pending`` is called), unless marked
  ``optionalhook``;
* ``tryfirst=True`` together with ``trylast=True`` is an error;
* a keyword-only parameter without a default (pluggy would fail on every call)
  is an error;
* a plugin with no ``@hookimpl`` at all is an error (it was surely meant to
  implement something);
* spec options daglite does not implement (``historic``, ``warn_on_impl``,
  ``warn_on_impl_args``) are rejected by :func:`add_hookspecs`, never ignored;
  hook names starting with ``_`` are rejected (they are not hooks anywhere).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, NamedTuple

from .._errors import PluginError
from . import _specs as _hookspecs
from ._wrappers import WRAPPER_HOOKS

_IMPL_ATTR = f"{_hookspecs.PROJECT_NAME}_impl"
_SPEC_ATTR = f"{_hookspecs.PROJECT_NAME}_spec"
_IMPLICIT = ("self", "cls")
_IMPL_OPTIONS = frozenset({"wrapper", "hookwrapper", "optionalhook", "tryfirst", "trylast", "specname"})
_SUPPORTED_SPEC_OPTIONS = frozenset({"firstresult"})


# _Spec, _Impl are named tuples, not attrs classes: attrs compiles each class's
# methods when it is created (~0.6 ms apiece of `import daglite_core`).
class _Spec(NamedTuple):
    """A hook: its name, arguments (spec order) and whether it stops at a first result.

    ``defaults`` holds the spec parameters that have a default: a
    :func:`~daglite_core.call_hook` may leave them out.
    """

    name: str
    argnames: tuple[str, ...]
    firstresult: bool
    defaults: dict[str, Any]
    namespace: object = None


class _Impl(NamedTuple):
    hook: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    plugin_name: str
    tryfirst: bool
    trylast: bool
    kwargnames: tuple[str, ...] = ()  # defaulted parameters that the spec provides (passed by keyword)


def signature_names(func: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(required, defaulted, keyword_only_required)`` parameter names of ``func``.

    ``required``/``defaulted`` are positional parameters; the implicit first
    parameter of a method (bound, or a function whose qualified name shows it
    is defined in a class and whose first parameter is ``self``/``cls``) is
    left out, as pluggy does.
    """
    bound = type(func) is types.MethodType
    target: Any = func.__func__ if bound else func  # type: ignore[attr-defined]
    if hasattr(target, "__wrapped__"):
        target = inspect.unwrap(target)
        if type(target) is types.MethodType:
            bound, target = True, target.__func__
    code = getattr(target, "__code__", None)
    if code is None:  # a builtin or a callable object: read its signature
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            return (), (), ()
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return (
            tuple(p.name for p in params if p.kind in positional and p.default is p.empty),
            tuple(p.name for p in params if p.kind in positional and p.default is not p.empty),
            tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty),
        )
    names = code.co_varnames[: code.co_argcount]
    ndefaults = len(target.__defaults__ or ())
    required, defaulted = names[: len(names) - ndefaults], names[len(names) - ndefaults :]
    kwonly = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    kwdefaults = target.__kwdefaults__ or {}
    if required:
        tail = getattr(target, "__qualname__", "").rsplit("<locals>.", 1)[-1]
        if bound or ("." in tail and required[0] in _IMPLICIT):
            required = required[1:]
    return required, defaulted, tuple(n for n in kwonly if n not in kwdefaults)


def _static_lookup(plugin: object, attr: str, own: bool = True) -> tuple[Any, Callable[..., Any]] | None:
    """``(marker_holder, callable)`` for a hookable attribute, running no user code.

    Hookable: plain functions (bound as ``getattr`` would), ``staticmethod``,
    ``classmethod`` and bound methods; values in an instance's ``__dict__`` are
    used as they are. Properties, other descriptors and ``__getattr__`` are not
    looked at. A module's attributes are its ``__dict__`` (what ``getattr_static``
    finds for any name a function can have, at a fraction of its cost: the core's
    specs and most plugins are modules, read on import and at the first session).
    """
    if own and not isinstance(plugin, (type, types.ModuleType)):
        values = getattr(plugin, "__dict__", None)
        if values is not None and attr in values:
            value = values[attr]
            if type(value) is types.MethodType:
                return value.__func__, value
            if isinstance(value, types.FunctionType):
                return value, value
            return None
    if type(plugin) is types.ModuleType:
        static = vars(plugin).get(attr)
    else:
        static = inspect.getattr_static(plugin, attr, None)
    if isinstance(static, staticmethod):
        return static, static.__func__
    if isinstance(static, classmethod):
        owner = plugin if isinstance(plugin, type) else type(plugin)
        return static, static.__get__(owner, owner)
    if type(static) is types.MethodType:
        return static.__func__, static
    if isinstance(static, types.FunctionType):
        if isinstance(plugin, (type, types.ModuleType)):
            return static, static
        return static, static.__get__(plugin, type(plugin))
    return None


def _marker(holder: Any, attr: str) -> dict[str, Any] | None:
    opts = getattr(holder, attr, None)
    if opts is None:
        opts = getattr(getattr(holder, "__func__", None), attr, None)
    return opts if isinstance(opts, dict) else None


# -- specs ---------------------------------------------------------------------


def collect_specs(namespace: object, *, checked: bool) -> dict[str, _Spec]:
    """The ``@hookspec`` functions of a module or class, as specs.

    ``checked``: reject options daglite does not implement and private names
    (for specs added by plugins; the core's own are known good).
    """
    specs: dict[str, _Spec] = {}
    for attr in dir(namespace):
        found = _static_lookup(namespace, attr)
        if found is None:
            continue
        opts = _marker(found[0], _SPEC_ATTR)
        if opts is None:
            continue
        if checked:
            where = f"hookspec {attr!r} of {getattr(namespace, '__qualname__', None) or getattr(namespace, '__name__', None) or repr(namespace)}"
            if attr.startswith("_"):
                msg = f"{where}: hook names cannot start with '_'"
                raise ValueError(msg)
            unsupported = sorted(k for k, v in opts.items() if k not in _SUPPORTED_SPEC_OPTIONS and v not in (None, False))
            if unsupported:
                msg = (
                    f"{where} uses option(s) daglite does not support: {', '.join(unsupported)} "
                    "(daglite hooks support only firstresult)"
                )
                raise ValueError(msg)
        required, defaulted, _ = signature_names(found[1])
        func = inspect.unwrap(found[1])
        defaults = dict(zip(defaulted, func.__defaults__ or (), strict=True)) if defaulted else {}
        specs[attr] = _Spec(attr, (*required, *defaulted), bool(opts.get("firstresult")), defaults, namespace)
    return specs


SPECS: dict[str, _Spec] = collect_specs(_hookspecs, checked=False)
BUILTIN_SPECS = frozenset(SPECS)
SUCCESS_NODE_HOOKS = ("before_node_execute", "after_node_execute", "node_iteration", "on_cache_hit")
"""Node hooks that fire on a call that succeeds: implementing one takes every call of
the scope off the fast path (the call must build its metadata and fire them)."""
FAILURE_NODE_HOOKS = ("on_node_error", "before_node_retry", "after_node_retry", "provide_retry_delay")
"""Node hooks that fire only once an attempt failed: a plugin implementing only these
(a retry policy, an error reporter) leaves successful calls on the fast path; a
failed fast call goes on in the full lifecycle (see ``_lifecycle.after_fast_failure``)."""
NODE_HOOKS = SUCCESS_NODE_HOOKS + FAILURE_NODE_HOOKS


def is_provider(hook: str) -> bool:
    """Provider hooks (``provide_*``) answer; their errors propagate. Others observe."""
    return hook.startswith("provide_")


# -- implementations -------------------------------------------------------------


def plugin_name(plugin: object) -> str:
    """The name daglite uses for ``plugin`` in messages and listings."""
    explicit = getattr(plugin, "daglite_plugin_name", None)
    if isinstance(explicit, str):
        return explicit
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__qualname__


# A parsed declaration: (attribute, hook, argnames, tryfirst, trylast, function,
# bind, kwargnames): ``function`` is called as is, or bound to the plugin when ``bind``.
_Decl = tuple[str, str, tuple[str, ...], bool, bool, Callable[..., Any], bool, tuple[str, ...]]

# Per-class parse cache of the declarations found on the class, so that a session
# that registers a fresh instance of a known class costs a few lookups. Cleared
# whenever the specs change.
_parse_cache: dict[type, tuple[list[_Decl], int]] = {}


def _parse_one(plugin: object, attr: str, name: str, own: bool) -> tuple[_Decl | None, bool]:
    """The declaration at ``plugin.attr`` and whether a marker was there.

    ``None`` for a marked ``optionalhook`` whose spec is unknown (still a marker).
    """
    found = _static_lookup(plugin, attr, own)
    if found is None:
        return None, False
    opts = _marker(found[0], _IMPL_ATTR)
    if opts is None:
        return None, False
    unknown_opts = sorted(set(opts) - _IMPL_OPTIONS)
    hook = opts.get("specname") or attr
    if unknown_opts:
        msg = f"Plugin {name!r}: hook {hook!r} has unknown @hookimpl option(s) {', '.join(unknown_opts)}"
        raise PluginError(msg, plugin=name, hook=hook)
    spec = SPECS.get(hook)
    if spec is None:
        if opts.get("optionalhook"):
            return None, True
        import difflib  # only for this message: kept off the import path

        close = difflib.get_close_matches(hook, SPECS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = f"Plugin {name!r} implements unknown hook {hook!r}{hint}"
        raise PluginError(msg, plugin=name, hook=hook)
    wrapper = bool(opts.get("wrapper"))
    if opts.get("hookwrapper"):
        msg = (
            f"Plugin {name!r}: hook {hook!r} is an old-style hookwrapper; daglite supports "
            f"only new-style wrappers (@hookimpl(wrapper=True)), on {', '.join(sorted(WRAPPER_HOOKS))}"
        )
        raise PluginError(msg, plugin=name, hook=hook)
    if wrapper and hook not in WRAPPER_HOOKS:
        msg = (
            f"Plugin {name!r}: hook {hook!r} is a wrapper; daglite calls each observer "
            f"implementation on its own, and supports wrappers only on {', '.join(sorted(WRAPPER_HOOKS))}"
        )
        raise PluginError(msg, plugin=name, hook=hook)
    if hook in WRAPPER_HOOKS and not wrapper:
        msg = f"Plugin {name!r}: hook {hook!r} takes wrappers only: mark it @hookimpl(wrapper=True) and yield once"
        raise PluginError(msg, plugin=name, hook=hook)
    if wrapper and not inspect.isgeneratorfunction(inspect.unwrap(found[1])):
        msg = f"Plugin {name!r}: hook {hook!r} is declared wrapper=True but is not a generator function (it must yield once)"
        raise PluginError(msg, plugin=name, hook=hook)
    tryfirst, trylast = bool(opts.get("tryfirst")), bool(opts.get("trylast"))
    if tryfirst and trylast:
        msg = f"Plugin {name!r}: hook {hook!r} is marked both tryfirst and trylast; choose one"
        raise PluginError(msg, plugin=name, hook=hook)
    required, defaulted, kwonly = signature_names(found[1])
    unknown = [a for a in required if a not in spec.argnames]
    if unknown:
        msg = (
            f"Plugin {name!r}: hook {hook!r} asks for unknown argument(s) "
            f"{', '.join(map(repr, unknown))}; the hook provides {', '.join(spec.argnames) or 'no arguments'}"
        )
        raise PluginError(msg, plugin=name, hook=hook)
    if kwonly:
        msg = (
            f"Plugin {name!r}: hook {hook!r} has keyword-only parameter(s) without a default "
            f"({', '.join(map(repr, kwonly))}); hooks pass positional parameters only"
        )
        raise PluginError(msg, plugin=name, hook=hook)
    function, bind = found[1], False
    if type(function) is types.MethodType and function.__self__ is plugin:
        function, bind = function.__func__, True  # bound per instance (the cache is per class)
    passed = tuple(a for a in defaulted if a in spec.argnames)
    return (attr, hook, required, tryfirst, trylast, function, bind, passed), True


def _parse_all(plugin: object, attrs: list[str], name: str, own: bool) -> tuple[list[_Decl], int]:
    decls, markers = [], 0
    for attr in attrs:
        if attr.startswith("__"):
            continue
        decl, marked = _parse_one(plugin, attr, name, own)
        markers += marked
        if decl is not None:
            decls.append(decl)
    return decls, markers


def parse_plugin(plugin: object, name: str | None = None) -> list[_Impl]:
    """Validate ``plugin`` and return its hook implementations.

    :raises TypeError: for a class (register an instance), ``None``, or a string
        where an object was expected.
    :raises PluginError: for an object without any ``@hookimpl``, an unknown
        (misspelt) hook name, a wrapper, or an argument the hook does not provide;
        the message names plugin and hook.
    """
    if plugin is None or isinstance(plugin, (type, str, bytes)):
        # "expects plugins to be registered as instances": daglite 0.9's phrase, kept.
        what = plugin.__qualname__ if isinstance(plugin, type) else repr(plugin)
        fix = f"register {what}() instead" if isinstance(plugin, type) else "give a module or an instance"
        msg = f"daglite expects plugins to be registered as instances (or modules), not {what}; {fix}"
        raise TypeError(msg)
    name = name or plugin_name(plugin)
    if isinstance(plugin, types.ModuleType):
        decls, markers = _parse_all(plugin, list(vars(plugin)), name, True)
    else:
        cls = type(plugin)
        cached = _parse_cache.get(cls)
        if cached is None:
            cached = _parse_cache[cls] = _parse_all(plugin, dir(cls), name, False)
        decls, markers = cached
        own = getattr(plugin, "__dict__", None)
        if own:
            # Implementations set on this instance (they shadow the class's).
            hookable = [a for a, v in own.items() if isinstance(v, (types.FunctionType, types.MethodType))]
            extra, extra_markers = _parse_all(plugin, hookable, name, True) if hookable else ([], 0)
            if extra or extra_markers:
                shadowed = {d[0] for d in extra}
                decls = [d for d in decls if d[0] not in shadowed] + extra
                markers += extra_markers
    if not markers:
        msg = (
            f"Plugin {name!r} ({type(plugin).__name__}) has no @daglite_core.hookimpl "
            "functions; mark its hook implementations with @hookimpl"
        )
        raise PluginError(msg, plugin=name)
    method = types.MethodType
    return [
        _Impl(hook, method(function, plugin) if bind else function, argnames, name, first, last, kwargnames)
        for _, hook, argnames, first, last, function, bind, kwargnames in decls
    ]


def spec_changed() -> None:
    """Forget parsed declarations (an optional hook may have become a real one)."""
    _parse_cache.clear()
