"""Where a :class:`~daglite_dask.DaskBackend` runs: a client and what it owns.

Precedence: a ``client`` given to the backend (used as is, never closed), then an
``address`` given to it, then ``DAGLITE_DASK_ADDRESS`` (a client is connected and
closed at the end; the scheduler is left running), else a ``LocalCluster``
started on demand and closed at the end.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

ADDRESS_ENV = "DAGLITE_DASK_ADDRESS"
PROCESSES_ENV = "DAGLITE_DASK_PROCESSES"
DASHBOARD_ENV = "DAGLITE_DASK_DASHBOARD"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    """A boolean environment variable; a bad value is a ``ValueError`` naming it."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"Environment variable {name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)"
    raise ValueError(msg)


def env_dashboard() -> str | None:
    """``DAGLITE_DASK_DASHBOARD``: an address (``:8787``), ``1`` for ``:8787``, or off."""
    raw = os.environ.get(DASHBOARD_ENV, "").strip()
    if not raw or raw.lower() in _FALSE:
        return None
    if raw.lower() in _TRUE:
        return ":8787"
    return raw


@attrs.define
class Connection:
    """A live client, and whether this backend started (and must close) it and a cluster."""

    client: Any
    cluster: Any = None
    owns_client: bool = False

    @property
    def where(self) -> str:
        """The scheduler's address (for messages)."""
        return str(getattr(self.client.scheduler, "address", "?"))

    def close(self) -> None:
        """Close what this backend started; a given client and a remote scheduler stay."""
        try:
            if self.owns_client:
                self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def connect(
    *,
    client: Any,
    address: str | None,
    workers: int,
    processes: bool,
    dashboard: str | None,
    cluster_kwargs: dict[str, Any],
    timeout: float,
) -> Connection:
    """A :class:`Connection` following the module's precedence."""
    if client is not None:
        return Connection(client)
    from distributed import Client

    address = address or os.environ.get(ADDRESS_ENV) or None
    if address is not None:
        try:
            made = Client(address, set_as_default=False, timeout=timeout)  # type: ignore[no-untyped-call]
        except OSError as exc:
            source = "" if address != os.environ.get(ADDRESS_ENV) else f" (from {ADDRESS_ENV})"
            msg = f"dask backend: cannot connect to the Dask scheduler at {address!r}{source}: {exc}"
            raise ConnectionError(msg) from exc
        return Connection(made, owns_client=True)
    from distributed import LocalCluster

    options: dict[str, Any] = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": processes,
        "dashboard_address": dashboard,
    }
    if processes:
        options["host"] = "127.0.0.1"  # loopback only; in-process clusters use inproc://
    if dashboard is None:
        # The scheduler serves /health and /metrics even without a dashboard, by
        # default on 0.0.0.0:8787: keep it on a free loopback port instead.
        options["scheduler_kwargs"] = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
    given = dict(cluster_kwargs)
    if "scheduler_kwargs" in given:
        given["scheduler_kwargs"] = {**options.get("scheduler_kwargs", {}), **given["scheduler_kwargs"]}
    options.update(given)
    cluster = LocalCluster(**options)  # type: ignore[no-untyped-call]
    try:
        made = Client(cluster, set_as_default=False, timeout=timeout)  # type: ignore[no-untyped-call]
    except BaseException:
        cluster.close()
        raise
    return Connection(made, cluster, owns_client=True)
