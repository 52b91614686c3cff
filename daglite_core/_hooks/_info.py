"""What ``daglite plugins`` lists: :class:`PluginInfo` (imported when plugins are listed).

An attrs class costs ~0.5 ms to create (attrs compiles its methods); the registry
keeps the same fields as plain tuples (``_manager._Found``), so neither
``import daglite_core`` nor the first session pays for it.
"""

from __future__ import annotations

import attrs


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
