"""The ``daglite`` entry point of daglite-callbacks (``callbacks = daglite_callbacks.plugin``).

It registers the plugin so that ``daglite plugins`` lists it and
``DAGLITE_DISABLE_PLUGINS`` / ``session(plugins=["callbacks"])`` can name it. It
implements no hook on purpose: callbacks are dispatched by the signature call
itself, after the task call returned its final outcome (so after retries, and with
a cache hit as a success), and callbacks are task calls that fire the core's
hooks like any other. Implementing a node hook here would switch off the core's
fast path for every task of every session, for nothing.
"""

from __future__ import annotations

daglite_plugin_name = "callbacks"
