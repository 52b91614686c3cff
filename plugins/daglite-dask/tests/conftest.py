"""Fixtures: an in-process ``LocalCluster`` shared by the suite, daglite state isolated per test.

Entry-point autoload stays on (the dask backend is found by name through its entry
point, as users get it); strict hooks make a raising hook fail the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None) -> None:
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    monkeypatch.delenv("DAGLITE_DASK_ADDRESS", raising=False)
    monkeypatch.delenv("DAGLITE_BACKEND", raising=False)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """Two in-process workers of two threads each (``inproc://``, no dashboard)."""
    made = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=False, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    yield made
    made.close()


@pytest.fixture
def address(cluster: Any) -> str:
    return str(cluster.scheduler_address)
