"""The entry-point plugin (``daglite = rich``): ``daglite run --progress/--report`` and ``DAGLITE_PROGRESS``.

Installing daglite-rich does **not** draw progress on every script. The object
the entry point loads depends on ``DAGLITE_PROGRESS`` when daglite discovers its
plugins (the first session, workflow or task call of the process):

* unset, empty, ``0``/``off``/``false``/``no``: :class:`RunOptions`, which only
  adds ``--progress`` and ``--report`` to ``daglite run``. It implements no task
  hook, so task calls stay unobserved (the core's fast path) and nothing is drawn;
* ``1``/``on``/``true``/``yes``/``auto``, ``live`` or ``plain``: what
  :func:`env_progress` returns, a process-wide :class:`~daglite_rich.RichProgress` in that
  mode (``1`` means ``auto``) that shows every outermost session of the process,
  plus the two options.

Another value is logged as a warning and treated as off. ``DAGLITE_DISABLE_PLUGINS=rich``
or ``DAGLITE_PLUGINS_AUTOLOAD=0`` turn both off.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

if TYPE_CHECKING:
    import argparse

ENV = "DAGLITE_PROGRESS"
_OFF = {"", "0", "off", "false", "no"}
_ON = {"1": "auto", "on": "auto", "true": "auto", "yes": "auto", "auto": "auto", "live": "live", "plain": "plain"}


def env_mode(value: str | None = None) -> str | None:
    """The progress mode ``DAGLITE_PROGRESS`` asks for, or ``None`` for off."""
    raw = os.environ.get(ENV, "") if value is None else value
    key = raw.strip().lower()
    if key in _OFF:
        return None
    mode = _ON.get(key)
    if mode is None:
        import logging  # not with the entry point: every daglite process loads it

        logging.getLogger("daglite.rich").warning(
            "daglite-rich: ignoring %s=%r; use 1, auto, live, plain or 0", ENV, raw
        )
    return mode


class RunOptions:
    """``daglite run`` options: ``--progress`` and ``--report PATH``."""

    daglite_plugin_name = "rich"

    @hookimpl
    def provide_run_options(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("progress (daglite-rich)")
        group.add_argument(
            "--progress", action="store_true",
            help="show live progress on stderr and a summary at the end (plain lines when not a terminal)",
        )
        group.add_argument(
            "--report", metavar="PATH",
            help="write the tree of task calls with a timeline to PATH (.html page or .svg picture)",
        )

    @hookimpl
    def provide_run_plugins(self, args: Any) -> list[object] | None:
        progress = bool(getattr(args, "progress", False)) and not self.draws
        report = getattr(args, "report", None)
        if not progress and report is None:
            return None
        from ._plugin import RichProgress

        return [RichProgress(mode="auto" if progress else "off", report=report)]

    draws = False


def env_progress(mode: str) -> RunOptions:
    """The process-wide progress of ``DAGLITE_PROGRESS``: a RichProgress with the ``daglite run`` options."""
    from ._plugin import RichProgress

    class EnvProgress(RichProgress, RunOptions):
        """The process-wide progress of ``DAGLITE_PROGRESS=1``, with the ``daglite run`` options."""

        daglite_plugin_name = "rich"
        draws = True

    return EnvProgress(mode=mode)


def __getattr__(name: str) -> Any:
    # Evaluated on each entry-point load, so that DAGLITE_PROGRESS is read when
    # daglite discovers its plugins (again after a registry reset).
    if name == "plugin":
        mode = env_mode()
        return RunOptions() if mode is None else env_progress(mode)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
