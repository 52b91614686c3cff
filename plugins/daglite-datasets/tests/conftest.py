"""Fixtures: fresh daglite state, a private signing key, a clean environment, a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daglite_core import signing
from daglite_datasets import FileDatasetStore


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test: entry-point plugins loaded afresh, strict hooks, its own signing key file."""
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path_factory.mktemp("key") / "signing.key"))
    signing.reset()  # the key is read once per process
    for name in ("DAGLITE_SIGNING_KEY", "DAGLITE_DATASET_STORE", "DAGLITE_DISABLE_PLUGINS", "DAGLITE_PLUGINS_AUTOLOAD", "DAGLITE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A store root that does not exist yet, with a sibling ``outside`` directory."""
    (tmp_path / "outside").mkdir()
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> FileDatasetStore:
    return FileDatasetStore(root)


@pytest.fixture
def outside(root: Path) -> Path:
    """A directory beside the store root that nothing may touch."""
    return root.parent / "outside"
