"""Streaming and balance: time to the first result of a large map, and stragglers.

* ``streaming.*_first``: seconds from the call to the first result of a 100,000-item
  map (2,000 in smoke mode) of ``inc``, two warm workers: ``iter_tasks`` on the
  process backend against ``ProcessPoolExecutor.map(chunksize=100)``. The rest of
  the map is drained outside the timing, so every sample starts on idle workers.
* ``stragglers.*``: 400 items whose first 40 sleep 10 ms (the rest return at once),
  two workers: the wall time of the whole map against the ideal, the total sleep
  divided by the workers (0.2 s). Batches made of contiguous slabs put every slow
  item in one worker's batch and take about twice the ideal; the peers'
  ``ThreadPoolExecutor.map`` (one submit per item) and joblib are shown for scale.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import workloads
from _harness import Case, Group, in_context
from env import Env

SLOW, TOTAL, SLOW_SECONDS = 40, 400, 0.01


def build(env: Env) -> list[Group]:
    """The ``streaming`` and ``stragglers`` groups."""
    return [_first(env), _stragglers(env)]


def _first_sampler(start: Callable[[], Any], context: Any = None) -> Callable[[int], float]:
    def sample(_n: int) -> float:
        def once() -> float:
            began = time.perf_counter()
            stream = start()
            next(stream)
            took = time.perf_counter() - began
            for _ in stream:  # drain outside the timing
                pass
            return took

        return context.run(once) if context is not None else once()

    return sample


def _first(env: Env) -> Group:
    from daglite_core import DagliteSettings, iter_tasks, session

    n = 2_000 if env.smoke else 100_000
    xs = list(range(n))
    ppe = ProcessPoolExecutor(env.workers, mp_context=multiprocessing.get_context("fork"))
    env.stack.callback(ppe.shutdown)
    context = in_context(session(backend="process", settings=DagliteSettings(max_workers=env.workers)), env.stack)
    cases = [
        Case("streaming.ppe_first", f"ProcessPoolExecutor({env.workers}).map chunksize=100: first of {n:,}",
             _first_sampler(lambda: ppe.map(workloads.inc, xs, chunksize=100)), batch=True),
        Case("streaming.core_first", f"core: iter_tasks, process({env.workers}): first of {n:,}",
             _first_sampler(lambda: iter_tasks(workloads.inc_task, xs), context), batch=True),
    ]
    for case in cases:
        assert case.sampler is not None
        case.sampler(0)  # warm the pools
    return Group("streaming", cases, 2 if env.smoke else 7, env.target_seconds)


def _wall(run: Callable[[], Any], context: Any = None) -> Callable[[int], float]:
    def sample(_n: int) -> float:
        began = time.perf_counter()
        context.run(run) if context is not None else run()
        return time.perf_counter() - began

    return sample


def _stragglers(env: Env) -> Group:
    from daglite_core import DagliteSettings, map_tasks, session

    durations = [SLOW_SECONDS] * SLOW + [0.0] * (TOTAL - SLOW)
    ideal = sum(durations) / env.workers
    tpe = ThreadPoolExecutor(env.workers)
    env.stack.callback(tpe.shutdown)
    cases = [
        Case("stragglers.ideal", f"ideal: total sleep / {env.workers} workers", lambda _n: ideal, batch=True),
        Case("stragglers.tpe_map", f"ThreadPoolExecutor({env.workers}).map", _wall(lambda: list(tpe.map(workloads.nap, durations))), batch=True),
    ]
    for backend in ("thread", "process"):
        context = in_context(session(backend=backend, settings=DagliteSettings(max_workers=env.workers)), env.stack)
        run = functools.partial(map_tasks, workloads.nap_task, durations)
        cases.append(Case(f"stragglers.core_{backend}", f"core: map_tasks, {backend}({env.workers})", _wall(run, context), batch=True))
    cases.append(_joblib(env, durations))
    for case in cases:
        if case.sampler is not None:
            case.sampler(0)  # warm the pools
    return Group("stragglers", cases, 1 if env.smoke else 5, env.target_seconds)


def _joblib(env: Env, durations: list[float]) -> Case:
    try:
        import joblib
    except ImportError:
        return Case("stragglers.joblib", "joblib.Parallel(loky)", skip="skipped: joblib not installed")
    parallel = joblib.Parallel(n_jobs=env.workers)

    def run() -> None:
        parallel(joblib.delayed(workloads.nap)(s) for s in durations)

    return Case("stragglers.joblib", f"joblib.Parallel(n_jobs={env.workers}), loky", _wall(run), batch=True)
