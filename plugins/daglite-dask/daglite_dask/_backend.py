"""The ``dask`` backend: :class:`DaskBackend`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ._connect import PROCESSES_ENV, Connection, connect, env_bool, env_dashboard

if TYPE_CHECKING:
    from daglite_core import DagliteSettings, ItemRunner, Outcome, WorkItem


class DaskBackend:
    """Runs ``map_tasks`` / ``iter_tasks`` items on ``dask.distributed``.

    Where (first match wins; nothing starts until a map first runs):

    * ``client=``: a ``distributed.Client`` of yours, used as is and never closed;
    * ``address=``, else the ``DAGLITE_DASK_ADDRESS`` environment variable: a
      running scheduler (``tcp://host:8786``); the backend connects its own client
      and closes only that client when the session ends — the cluster is left
      running;
    * else a ``LocalCluster`` started on demand: ``settings.workers`` workers
      (``DAGLITE_MAX_WORKERS``, default the CPU count; an instance made without
      ``settings`` takes those of the session that first uses it) of one thread each, worker
      processes unless ``processes=False`` (or ``DAGLITE_DASK_PROCESSES=0``),
      listening on loopback (``127.0.0.1``; in-process clusters use ``inproc://``),
      no dashboard unless ``dashboard=":8787"`` (or ``DAGLITE_DASK_DASHBOARD``);
      ``cluster_kwargs`` go to ``LocalCluster``. It is closed when the session ends.

    Use it by name (``session(backend="dask")``, ``map_tasks(t, xs,
    backend="dask")``, ``daglite run --backend dask``; alias ``distributed``), or
    configured, as an instance: ``session(backend=DaskBackend(address=...))``.
    :meth:`close` releases what the backend started; a closed backend starts again
    on its next map.

    Semantics (those of the ``process`` backend):

    * Results in input order; each item's metadata has its ``map_index``,
      ``map_id`` and ``parent_id``. Items go in batches, one Dask task per batch
      (about four per worker thread, at most 512 items), each with a unique key
      and ``pure=False``: no batch is ever deduplicated or cached by Dask.
    * Hooks: every node, dataset and report event of an item reaches the
      session's plugins while the item runs: the worker publishes them on the
      client's event topic (``Worker.log_event``) in chunks every ~20 ms, and the
      map's thread replays them; a batch's outcomes are handed out only after all
      its events were replayed. Plugins with ``daglite_in_workers = True`` run in
      the workers instead. Hook arguments that cannot be pickled reach plugins as
      stand-ins (:class:`~daglite_dask.Unpicklable`); a result that cannot be
      pickled fails its item alone.
    * Settings travel with the task: the session's ``DagliteSettings``, its stores
      and worker plugins are pickled with each map, and the client's ``DAGLITE_*``
      environment variables are set in each worker process before its items run
      (Dask workers do not see the client's environment). Cache and dataset stores
      must be reachable from the workers (a shared directory).
    * Failures: a failing item is an error outcome; ``map_tasks`` raises
      ``MapError`` naming every failing index, with the worker traceback as the
      ``__cause__`` of the original error.
    * A worker that dies mid-batch: Dask runs the batch again on another worker
      (``distributed.scheduler.allowed-failures`` times, 3 by default); items of
      it that had finished then run again, and plugins may see their first
      ``before_node_execute`` twice. When Dask gives up (``KilledWorker``), each
      item of the batch runs again on its own, so only the culprit fails, with
      :class:`~daglite_dask.DaskWorkerLostError` naming the item and the worker.
    * ``timeout=T``: items go one per Dask task. The worker's own timer answers
      after ``T`` (``TaskTimeoutError``; retries as usual); the body keeps running
      in an abandoned thread of the worker until it returns (Dask cannot stop a
      thread, and daglite does not restart shared workers). If the worker does
      not answer within ``(T + 0.5) × (retries + 1)`` seconds of the batch's
      start (a hung worker thread, a hook that blocks), the item fails here with
      ``TaskTimeoutError`` and its Dask task is cancelled; whatever still runs in
      the worker is abandoned and its late events are dropped.
    * Closing an ``iter_tasks`` iterator early cancels the batches not finished.
    * Async tasks run on a fresh event loop in the worker thread; generator tasks'
      items are the lists of what they yield.

    Requirements: ``daglite-core``, ``daglite-dask``, the plugins the session uses
    and the tasks' modules must be importable on the workers (tasks defined in
    ``__main__`` travel by value through cloudpickle).
    """

    name: ClassVar[str] = "dask"
    aliases: ClassVar[tuple[str, ...]] = ("distributed",)

    def __init__(
        self,
        settings: DagliteSettings | None = None,
        *,
        address: str | None = None,
        client: Any = None,
        processes: bool | None = None,
        dashboard: str | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        """The settings it was made with (by the session), or ``None``: then the
        settings of the session that first runs a map on it size the cluster."""
        self.address = address
        self.client_given = client
        self.processes = env_bool(PROCESSES_ENV, True) if processes is None else processes
        self.dashboard = dashboard if dashboard is not None else env_dashboard()
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.connect_timeout = connect_timeout
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    # -- the connection -------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` maps run on (connected or started on first use)."""
        connection = self._connection
        if connection is None:
            with self._lock:
                connection = self._connection
                if connection is None:
                    connection = self._connection = connect(
                        client=self.client_given,
                        address=self.address,
                        workers=self._workers(),
                        processes=self.processes,
                        dashboard=self.dashboard,
                        cluster_kwargs=self.cluster_kwargs,
                        timeout=self.connect_timeout,
                    )
        return connection.client

    def _workers(self) -> int:
        settings = self.settings
        if settings is None:
            from daglite_core import active_session

            settings = active_session().settings
        return settings.workers

    @property
    def cluster(self) -> Any:
        """The ``LocalCluster`` this backend started, or ``None``."""
        connection = self._connection
        return None if connection is None else connection.cluster

    def close(self) -> None:
        """Close what this backend started (its client, its ``LocalCluster``); idempotent."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    # -- the Backend protocol ---------------------------------------------------------

    def run(self, runner: ItemRunner, items: Sequence[WorkItem]) -> list[Outcome]:
        """Every item's outcome, in input order."""
        outcomes: list[Outcome | None] = [None] * len(items)
        for position, outcome in self.stream(runner, items):
            outcomes[position] = outcome
        missing = [items[p].index for p, o in enumerate(outcomes) if o is None]
        if missing:  # pragma: no cover - every path of the stream answers its items
            msg = f"dask backend lost the outcomes of items {missing}"
            raise AssertionError(msg)
        return outcomes  # type: ignore[return-value]

    def stream(self, runner: ItemRunner, items: Sequence[WorkItem]) -> Iterator[tuple[int, Outcome]]:
        """``(position in items, outcome)`` pairs as the Dask futures finish."""
        from ._fanout import DaskMap

        if not items:
            return iter(())
        return DaskMap(self.client, runner, items).stream()

    def __repr__(self) -> str:
        connection = self._connection
        where = "not started" if connection is None else connection.where
        return f"<DaskBackend {where}>"
