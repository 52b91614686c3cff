"""Fixtures: isolated daglite state, a clean terminal environment, helpers to run scripts.

Entry-point autoload is off in-process (each test registers what it uses); the
subprocess helpers run scripts with a controlled environment, on a pipe or in a
pseudo-terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rich_helpers import TERMINAL_VARS  # noqa: E402 - after the path insert


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    for name in ("DAGLITE_PROGRESS", "DAGLITE_BACKEND", "DAGLITE_CACHE_STORE", "DAGLITE_DISABLE_PLUGINS", *TERMINAL_VARS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    from daglite_rich import _plugin

    _plugin._drawing = None  # a test that failed mid-session must not silence the next one
