"""A rich logging handler for daglite's own log records."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rich.logging import RichHandler

if TYPE_CHECKING:
    from rich.console import Console


def is_daglite_record(record: logging.LogRecord) -> bool:
    """Whether ``record`` comes from daglite: logger ``daglite`` or ``daglite.*``."""
    return record.name == "daglite" or record.name.startswith("daglite.")


class RichLogHandler(RichHandler):
    """A :class:`rich.logging.RichHandler` that passes only daglite's records.

    Records of the ``daglite`` logger and its children (``daglite.rich``, ...)
    are shown, other records are dropped, so it can be attached anywhere (the root
    logger too) without taking over an application's logging::

        import logging
        from daglite_rich import RichLogHandler

        logging.getLogger("daglite").addHandler(RichLogHandler())

    Sharing the console of a live display keeps log lines above the bars.
    :class:`~daglite_rich.RichProgress` attaches one for the session when no other
    handler would show daglite's records (see its ``log_handler`` option).

    :param level: the handler's level.
    :param console: the console to print on (default: stderr, see
        :class:`~daglite_rich.RichProgress`).
    :param kwargs: passed to :class:`rich.logging.RichHandler` (``show_path=False``
        unless given).
    """

    def __init__(self, level: int | str = logging.NOTSET, *, console: Console | None = None, **kwargs: Any) -> None:
        if console is None:
            from ._console import make_console

            console = make_console()
        kwargs.setdefault("show_path", False)
        super().__init__(level, console=console, **kwargs)
        self.addFilter(is_daglite_record)
