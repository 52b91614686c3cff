"""Fan-out per item: ``map_tasks`` on the thread and process backends against
``concurrent.futures`` and daglite 0.9, two workers, pools warm.

Item function ``inc(x) = x + 1``; one sample maps ``env.items`` items (10,000; 200
in smoke mode) and is reported per item. Process pools use the platform default
start method for the core (fork on Linux) and fork for ``ProcessPoolExecutor``.

There is no Dask row yet: the core has no ``dask`` backend (``daglite-dask`` is not
written), so the ``client.map`` comparison of DESIGN §8 is skipped and reported so.
"""

from __future__ import annotations

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import peers
import workloads
from _harness import Case, Group, in_context, per_item
from env import Env


def build(env: Env) -> list[Group]:
    """The ``fanout`` group."""
    n = env.items
    xs = list(range(n))
    inc = workloads.inc

    threads = ThreadPoolExecutor(env.workers)
    env.stack.callback(threads.shutdown)
    processes = ProcessPoolExecutor(env.workers, mp_context=multiprocessing.get_context("fork"))
    env.stack.callback(processes.shutdown)

    def tpe_submit() -> int:
        futures = [threads.submit(inc, x) for x in xs]
        for future in futures:
            future.result()
        return n

    def ppe_map() -> int:
        list(processes.map(inc, xs, chunksize=100))
        return n

    big = list(range(1_000 if env.smoke else 100_000))

    def ppe_map_big() -> int:
        list(processes.map(inc, big, chunksize=100))
        return len(big)

    cases = [
        Case("fanout.tpe_submit", f"ThreadPoolExecutor({env.workers}) submit + result", per_item(tpe_submit), batch=True),
        Case("fanout.ppe_map100", f"ProcessPoolExecutor({env.workers}).map chunksize=100", per_item(ppe_map), batch=True),
        Case("fanout.ppe_map100_1e5", f"ProcessPoolExecutor({env.workers}).map chunksize=100, {len(big):,} items", per_item(ppe_map_big), batch=True),
    ]
    cases += _core(env, xs)
    cases += _core_big(env, big)
    cases += _old(env, xs)
    for case in cases:
        if case.sampler is not None:
            case.sampler(0)  # warm the pools
    return [Group("fanout", cases, 2 if env.smoke else 5, env.target_seconds)]


def _core(env: Env, xs: list[int]) -> list[Case]:
    from daglite_core import DagliteSettings, map_tasks, session

    cases = []
    for backend, observed in (("thread", False), ("process", False), ("thread", True), ("process", True)):
        key = f"fanout.core_{backend}" + ("_observed" if observed else "")
        label = f"core: map_tasks, {backend}({env.workers})" + (", 1 observer plugin" if observed else "")
        if not _has_backend(backend):
            cases.append(Case(key, label, skip=f"skipped: the core has no {backend!r} backend installed"))
            continue
        plugins = [workloads.Observer()] if observed else []
        cm = session(backend=backend, settings=DagliteSettings(max_workers=env.workers), plugins=plugins)
        context = in_context(cm, env.stack)

        run = functools.partial(_map_all, map_tasks, xs)
        cases.append(Case(key, label, per_item(run, context), batch=True, profile=functools.partial(context.run, run)))
    return cases


def _core_big(env: Env, xs: list[int]) -> list[Case]:
    """``map_tasks`` on the process backend at 100,000 items (issue 17.4: 1e4 and 1e5)."""
    from daglite_core import DagliteSettings, map_tasks, session

    key, label = "fanout.core_process_1e5", f"core: map_tasks, process({env.workers}), {len(xs):,} items"
    if not _has_backend("process"):
        return [Case(key, label, skip="skipped: the core has no 'process' backend installed")]
    context = in_context(session(backend="process", settings=DagliteSettings(max_workers=env.workers)), env.stack)
    run = functools.partial(_map_all, map_tasks, xs)
    return [Case(key, label, per_item(run, context), batch=True, profile=functools.partial(context.run, run))]


def _map_all(map_tasks: Any, xs: list[int]) -> int:
    map_tasks(workloads.inc_task, xs)
    return len(xs)


def _has_backend(name: str) -> bool:
    from daglite_core import session

    with session() as state:
        return name in state.backend_classes()


def _old(env: Env, xs: list[int]) -> list[Case]:
    reason = peers.skip_reason("daglite")
    labels = [(f"fanout.old_{b}", f"daglite 0.9: map_tasks, {b}({env.workers})") for b in ("thread", "process")]
    if reason is not None:
        return [Case(key, label, skip=reason) for key, label in labels]
    old = peers.DagliteOld()
    cases = []
    for (key, label), backend in zip(labels, ("thread", "process"), strict=True):
        context = in_context(old.daglite.session(backend=backend, settings=old.settings()), env.stack)

        def run(n: int = len(xs)) -> int:
            old.daglite.map_tasks(old.inc, xs)
            return n

        cases.append(Case(key, label, per_item(run, context), batch=True))
    return cases
