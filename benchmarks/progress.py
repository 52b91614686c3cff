"""daglite-rich's cost: a 10,000-item ``map_tasks`` on the thread backend with
``RichProgress`` against the same map without it (and with a no-op observer, the
floor any plugin that watches task calls pays in the core).

``RichProgress`` draws its live view at its default 8 refreshes a second onto a
console that is a terminal (``force_terminal=True``) writing into memory, so the
refresh thread's drawing is part of the figure, not the cost of a real terminal.
Two workers; one sample maps ``env.items`` items (10,000; 200 in smoke mode).

``RichProgress`` sets ``daglite_map_progress``: the items of this plain task keep the
core's fast path and reach it as counts (``map_progress``, about ten a second), so
the row measures the counting and drawing, not the observed call path the no-op
observer pays.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import workloads
from _harness import Case, Group, in_context, per_item
from env import Env


def build(env: Env) -> list[Group]:
    """The ``progress`` group."""
    from daglite_core import DagliteSettings, map_tasks, session

    xs = list(range(env.items))
    settings = DagliteSettings(max_workers=env.workers)
    run = functools.partial(_map_all, map_tasks, xs)
    cases = []
    variants: list[tuple[str, str, Any]] = [
        ("progress.thread_bare", f"map_tasks thread({env.workers}), no plugin", lambda: []),
        ("progress.thread_observer", f"map_tasks thread({env.workers}), 1 no-op observer plugin", lambda: [workloads.Observer()]),
        ("progress.thread_rich", f"map_tasks thread({env.workers}) with RichProgress (live view)", _rich),
    ]
    for key, label, plugins in variants:
        try:
            chosen = plugins()
        except ImportError as exc:
            cases.append(Case(key, label, skip=f"skipped: {exc.name or exc} not installed"))
            continue
        context = in_context(session(backend="thread", settings=settings, plugins=chosen), env.stack)
        cases.append(Case(key, label, per_item(run, context), batch=True, profile=functools.partial(context.run, run)))
    for case in cases:
        if case.sampler is not None:
            case.sampler(0)  # warm the pools
    return [Group("progress", cases, 2 if env.smoke else 7, env.target_seconds)]


def _rich() -> list[Any]:
    from rich.console import Console

    from daglite_rich import RichProgress

    console = Console(file=io.StringIO(), force_terminal=True, force_interactive=True, width=120)
    return [RichProgress(console=console, mode="live", log_handler=False)]


def _map_all(map_tasks: Any, xs: list[int]) -> int:
    map_tasks(workloads.inc_task, xs)
    return len(xs)
