"""Names the ``retry`` entry point needs when it loads, apart from the records that use them.

The entry point (:data:`daglite_retry.reporter`) is imported by every process that
opens a session; it must not import ``logging``, ``argparse``, ``random`` or build
the attrs records until a retry happens (``tests_integration/test_plugin_imports.py`` checks it).
"""

from __future__ import annotations

EVENT = "daglite_retry.attempt_failed"
"""The ``reporter.report`` event name of a :class:`~daglite_retry.RetryEvent` (see ``on_report``)."""

LOGGER = "daglite.retry"
"""The name of :data:`daglite_retry.logger`."""
