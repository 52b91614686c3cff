"""Fixtures: fresh daglite state with the installed plugins, strict hooks, a fake clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from daglite_core import signing
from daglite_retry import reporter


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test: entry-point plugins loaded afresh, strict hooks, no leftover retry records."""
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path_factory.mktemp("key") / "signing.key"))
    signing.reset()
    for name in ("DAGLITE_DISABLE_PLUGINS", "DAGLITE_PLUGINS_AUTOLOAD", "DAGLITE_BACKEND", "DAGLITE_CACHE_STORE", "DAGLITE_DATASET_STORE"):
        monkeypatch.delenv(name, raising=False)
    reporter.clear()
    yield
    reporter.clear()


class FakeClock:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def retry_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Records of the ``daglite.retry`` logger, from DEBUG up."""
    caplog.set_level(logging.DEBUG, logger="daglite.retry")
    return caplog
