"""Core test fixtures: every test runs with no entry-point plugin and fresh global state.

The core's tox environment has no plugin installed; in a development venv with
plugins installed, autoload is switched off so the core is tested alone either way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daglite_core import signing


@pytest.fixture(autouse=True)
def _core_alone(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "0")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path_factory.mktemp("key") / "signing.key"))
    signing.reset()  # the key is read once per process
    for name in ("DAGLITE_BACKEND", "DAGLITE_CACHE_STORE", "DAGLITE_DATASET_STORE", "DAGLITE_DISABLE_PLUGINS", "DAGLITE_CACHE_MODE", "DAGLITE_MAX_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    yield
