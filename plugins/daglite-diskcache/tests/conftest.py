"""Fixtures: each test runs in its own working directory with its own signing key.

Other plugins may be installed in the same environment; entry-point autoload is
switched off and this plugin is registered explicitly, so no other plugin can
answer ``provide_cache_store`` first. (``test_plugin.py`` checks the entry point.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from daglite_core import register_plugins

import daglite_diskcache.plugin
from daglite_diskcache import _handles, _paths, _trouble
from daglite_core import signing


@pytest.fixture(autouse=True)
def _isolated(
    monkeypatch: pytest.MonkeyPatch, daglite_isolated: None, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(key_dir / "signing.key"))
    signing.reset()  # the key is read once per process
    for name in ("DAGLITE_SIGNING_KEY", "DAGLITE_CACHE_STORE", "DAGLITE_CACHE_MODE", "DAGLITE_BACKEND",
                 "DAGLITE_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    register_plugins(daglite_diskcache.plugin)
    _paths._checked.clear()
    _trouble.reset()
    yield
    _handles.close_all()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A cache directory path that does not exist yet."""
    return tmp_path / "cache"


@pytest.fixture
def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for child interpreters: same key file, the test's imports available."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(tmp_path), env.get("PYTHONPATH", "")])
    return env
