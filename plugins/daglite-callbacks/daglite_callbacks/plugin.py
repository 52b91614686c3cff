"""The ``daglite`` entry point of daglite-callbacks (``callbacks = daglite_callbacks.plugin``).

It registers the plugin so that ``daglite plugins`` lists it and
``DAGLITE_DISABLE_PLUGINS`` / ``session(plugins=["callbacks"])`` can name it.

* ``provide_cli_commands``: ``daglite callbacks pending | resume | sweep``.
* ``before_session_start``: with ``DAGLITE_CALLBACKS_RESUME=1``, the first session
  a process opens resumes the default outbox (callbacks left by processes that
  died) before the session's own work. Off by default: it opens a database on
  session start (a session otherwise opens in microseconds), and it runs another
  program's leftover callbacks in this one, which should be asked for.

It implements no node hook on purpose: callbacks are dispatched by the signature
call itself, after the task call returned its final outcome (so after retries,
and with a cache hit as a success), and callbacks are task calls that fire the
core's hooks like any other. A node hook here would switch off the core's fast
path for every task of every session, for nothing.

Importing this module (what the entry point does in every process that opens a
session) imports nothing else of the package: the CLI (argparse) and the outbox
(sqlite3) are imported when their hook first needs them, and the resume hook
returns before any import when ``DAGLITE_CALLBACKS_RESUME`` is unset.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

if TYPE_CHECKING:
    import argparse

__all__ = ["before_session_start", "daglite_plugin_name", "provide_cli_commands"]

daglite_plugin_name = "callbacks"

_resumed: set[tuple[int, str]] = set()
_resuming = threading.local()
_lock = threading.Lock()


@hookimpl
def provide_cli_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``daglite callbacks``."""
    from ._cli import add_commands

    add_commands(subparsers)


@hookimpl
def before_session_start() -> None:
    """With ``DAGLITE_CALLBACKS_RESUME=1``: resume the default outbox once per process."""
    if os.environ.get("DAGLITE_CALLBACKS_RESUME", "").strip().lower() not in ("1", "true", "yes", "on"):
        return
    if getattr(_resuming, "active", False):
        return  # a session opened by a resumed callback
    import logging

    from ._outbox import OutboxError, default_outbox

    logger = logging.getLogger("daglite.callbacks")
    box = default_outbox()
    key = (os.getpid(), str(box.path))
    with _lock:
        if key in _resumed:
            return
        _resumed.add(key)
    if not box.path.exists():
        return
    _resuming.active = True
    try:
        report = box.resume()
    except OutboxError as exc:
        logger.error("Resuming callbacks at session start: %s", exc)
        return
    finally:
        _resuming.active = False
    if report.delivered or report.unloadable:
        logger.info(
            "Resumed %d callback(s) from %s at session start (%d failed, %d could not be loaded)",
            report.delivered, box.path, report.failed, report.unloadable,
        )
