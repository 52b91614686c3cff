"""What every area's ``build`` receives: mode, scratch directory, cleanup stack."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Env:
    """The run's settings and resources.

    :ivar smoke: few iterations (CI); every case still runs.
    :ivar tmp: a scratch directory removed at the end of the run.
    :ivar stack: callbacks that close sessions, pools and stores at the end.
    :ivar log: progress output (stderr).
    """

    smoke: bool
    tmp: Path
    stack: contextlib.ExitStack
    log: Callable[[str], None]
    workers: int = 2
    items: int = field(init=False)
    rounds_calls: int = field(init=False)
    rounds_slow: int = field(init=False)

    def __post_init__(self) -> None:
        self.items = 200 if self.smoke else 10_000
        self.rounds_calls = 2 if self.smoke else 21
        self.rounds_slow = 1 if self.smoke else 7

    @property
    def target_seconds(self) -> float:
        """Time per sample of a per-call case."""
        return 0.002 if self.smoke else 0.025
