"""Running one task call: in this thread, on the event loop, or on the session's backend.

Policies:

* A generator task's result is the list of its items (the generator is drained,
  as ``map_tasks`` does for generator items), so callbacks fire once, on
  exhaustion, with that list.
* An async task called from sync code runs on a fresh event loop: in this thread
  when none is running here, otherwise in a helper thread (never blocking a
  running loop).
* Off the ``inline`` backend, the task body runs as a one-item ``map_tasks`` call on
  that backend (hooks see it as ``name[0]`` with ``backend`` set). ``map_tasks``
  passes positional arguments only, so a task whose input needs keyword-only or
  ``**kwargs`` parameters (or no argument at all) runs in the calling thread instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from daglite_core import BaseTask, MapError, map_tasks, run_coroutine

INLINE = frozenset({"inline", "sequential", "synchronous"})


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def call_inline(task: BaseTask[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call ``task`` in this thread; drain generators; bridge async tasks."""
    call: Any = task  # every concrete task kind is callable; BaseTask itself declares no __call__
    if task.is_async:
        if task.is_generator:
            return run_coroutine(_collect(call(**kwargs)))
        return run_coroutine(call(**kwargs))
    if task.is_generator:
        return list(call(**kwargs))
    return call(**kwargs)


async def acall_inline(task: BaseTask[..., Any], kwargs: dict[str, Any]) -> Any:
    """Await ``task`` on the running loop; a sync task runs in a thread."""
    call: Any = task
    if not task.is_async:
        return await asyncio.to_thread(call_inline, task, kwargs)
    if task.is_generator:
        return await _collect(call(**kwargs))
    return await call(**kwargs)


def positional(task: BaseTask[..., Any], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """``kwargs`` as positional arguments of ``task``, or ``None`` when some must stay keywords."""
    bound = task.signature.bind_partial(**kwargs)
    if bound.kwargs:
        return None
    return tuple(bound.args)


def call_on(task: BaseTask[..., Any], kwargs: dict[str, Any], backend: str | None) -> Any:
    """Run ``task`` with ``kwargs`` on ``backend`` (``None``/inline: in this thread)."""
    if backend is None or backend in INLINE:
        return call_inline(task, kwargs)
    args = positional(task, kwargs)
    if args is None:
        return call_inline(task, kwargs)
    try:
        return map_tasks(task, *([a] for a in args), backend=backend)[0] if args else call_inline(task, kwargs)
    except MapError as exc:
        raise exc.errors[0] from exc.errors[0].__cause__


async def acall_on(task: BaseTask[..., Any], kwargs: dict[str, Any], backend: str | None) -> Any:
    """:func:`call_on` for async callers: off the loop unless inline and async."""
    if backend is None or backend in INLINE:
        return await acall_inline(task, kwargs)
    return await asyncio.to_thread(call_on, task, kwargs, backend)
