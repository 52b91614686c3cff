"""Every test: strict hooks (a raising hook fails the test) and no autoloaded plugins.

``daglite_isolated`` (a fixture daglite-core ships through its ``pytest11`` entry
point) forgets global plugins before and after each test; autoload is switched off
so the installed copy of this very plugin does not print into every test.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _strict_and_alone(monkeypatch: pytest.MonkeyPatch, daglite_isolated: None) -> None:
    monkeypatch.setenv("DAGLITE_STRICT_HOOKS", "1")
    monkeypatch.setenv("DAGLITE_PLUGINS_AUTOLOAD", "0")
    monkeypatch.delenv("DAGLITE_TIMING_TOP", raising=False)
