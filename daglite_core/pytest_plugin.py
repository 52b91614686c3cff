"""pytest fixtures for daglite plugin authors (loaded through the ``pytest11`` entry point).

- ``daglite_isolated``: forget global plugins and the default state before and after
  the test (entry points load again on next use).
- ``daglite_recorder``: a :class:`~daglite_core.testing.RecordingPlugin` registered
  for the whole process during the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import signing
from ._context import reset_default_state
from ._hooks import _registry, register_plugins, unregister_plugins
from .testing import RecordingPlugin


def _reset() -> None:
    signing.reset()
    reset_default_state()
    _registry.reset()


@pytest.fixture
def daglite_isolated() -> Iterator[None]:
    """Isolate daglite's process-wide state (plugins, default session) for one test."""
    _reset()
    yield
    _reset()


@pytest.fixture
def daglite_recorder(daglite_isolated: None) -> Iterator[Any]:
    """A RecordingPlugin registered process-wide for the test."""
    recorder = RecordingPlugin()
    register_plugins(recorder)
    yield recorder
    unregister_plugins(recorder)
