"""The hook system: specifications, declarations, dispatch tables, registry.

Layers, each importing only those below it (as pluggy splits ``_hooks``,
``_callers`` and ``_manager``):

* :mod:`._specs` — every hook a plugin can implement, documented like pytest's;
* :mod:`._wrappers` — running ``wrapper=True`` implementations around an attempt;
* :mod:`._decl` — reading and validating specs and implementations (pluggy markers);
* :mod:`._tables` — :class:`PluginSet`: compiled per-hook tables and isolated dispatch;
* :mod:`._manager` — the process-wide registry, entry points, session plugin lists;
* :mod:`._info` — :class:`PluginInfo`, imported only when plugins are listed.
"""

from ._manager import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    NODE_HOOKS,
    SPECS,
    FailureLog,
    HookTables,
    PluginSet,
    _Entry,
    _Impl,
    _registry,
    _Spec,
    add_hookspecs,
    entry_points,
    is_provider,
    list_plugins,
    missing_plugin_hint,
    parse_plugin,
    plugin_name,
    register_plugins,
    remove_hookspecs,
    session_entries,
    set_builtin_plugin,
    unregister_plugins,
)
from ._specs import hookimpl, hookspec
from ._wrappers import WRAPPER_HOOKS, run_wrapped, wrap_attempt

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "NODE_HOOKS",
    "SPECS",
    "WRAPPER_HOOKS",
    "FailureLog",
    "HookTables",
    "PluginSet",
    "_Entry",
    "_Impl",
    "_Spec",
    "_registry",
    "add_hookspecs",
    "entry_points",
    "hookimpl",
    "hookspec",
    "is_provider",
    "list_plugins",
    "missing_plugin_hint",
    "parse_plugin",
    "plugin_name",
    "register_plugins",
    "remove_hookspecs",
    "run_wrapped",
    "session_entries",
    "set_builtin_plugin",
    "unregister_plugins",
    "wrap_attempt",
]
