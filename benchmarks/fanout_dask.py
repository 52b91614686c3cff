"""The dask backend per item against a raw ``client.map`` + ``gather`` of the same function.

One ``LocalCluster`` of ``env.workers`` worker processes (one thread each, loopback,
no dashboard) serves both cases; the core's case runs ``map_tasks`` in a session on
``DaskBackend(client=...)`` with that cluster's client, so both pay the same
scheduler and the same workers. Item function ``inc(x) = x + 1``; one sample maps
``ITEMS`` items (1,000; 50 in smoke mode: a raw ``client.map`` is one Dask task
per item, about a millisecond each) and is reported per item. Raw ``client.map``
gets ``pure=False`` too, so that neither side can reuse the other's results.
"""

from __future__ import annotations

import functools
from typing import Any

import workloads
from _harness import Case, Group, in_context, per_item
from env import Env


def build(env: Env) -> list[Group]:
    """The ``dask`` group."""
    n = 50 if env.smoke else 1_000
    labels = [
        ("dask.client_map", f"raw client.map + gather, LocalCluster({env.workers} processes)"),
        ("dask.core_map", "core: map_tasks, dask backend on the same cluster"),
        ("dask.core_map_observed", "core: map_tasks, dask backend, 1 observer plugin (events relayed live)"),
    ]
    reason = _missing()
    if reason is not None:
        return [Group("dask", [Case(key, label, skip=reason) for key, label in labels], 1, env.target_seconds)]
    import distributed

    from daglite_core import DagliteSettings, map_tasks, session
    from daglite_dask import DaskBackend

    cluster = distributed.LocalCluster(
        n_workers=env.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    env.stack.callback(cluster.close)
    client = distributed.Client(cluster, set_as_default=False)
    env.stack.callback(client.close)
    xs = list(range(n))

    def raw() -> int:
        client.gather(client.map(workloads.inc, xs, pure=False))
        return n

    cases = [Case(labels[0][0], labels[0][1], per_item(raw), batch=True)]
    for (key, label), plugins in zip(labels[1:], ([], [workloads.Observer()]), strict=True):
        cm = session(backend=DaskBackend(client=client), settings=DagliteSettings(max_workers=env.workers), plugins=plugins)
        context = in_context(cm, env.stack)
        run = functools.partial(_map_all, map_tasks, xs)
        cases.append(Case(key, label, per_item(run, context), batch=True, profile=functools.partial(context.run, run)))
    for case in cases:
        assert case.sampler is not None
        case.sampler(0)  # warm: workers import the task module, sessions connect
    return [Group("dask", cases, 2 if env.smoke else 5, env.target_seconds)]


def _map_all(map_tasks: Any, xs: list[int]) -> int:
    map_tasks(workloads.inc_task, xs)
    return len(xs)


def _missing() -> str | None:
    for module, dist in (("distributed", "dask[distributed]"), ("daglite_dask", "daglite-dask")):
        try:
            __import__(module)
        except ImportError:
            return f"skipped: {dist} not installed"
    return None
