"""daglite-timing: an example daglite plugin that reports how long each task took.

Installed, it registers itself through the ``daglite`` entry point group and
prints, when each session ends, the session's task count and its slowest tasks
on stderr. See ``docs/plugins.md`` in the daglite repository for the guide it
illustrates.
"""

from __future__ import annotations

from .plugin import TOP_VARIABLE, SessionTimings, Timing, TimingPlugin

__all__ = ["SessionTimings", "TOP_VARIABLE", "Timing", "TimingPlugin"]
