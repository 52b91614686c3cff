"""The runnable example in ``examples/orders.py`` works and prints what its callbacks saw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "orders.py"


@pytest.mark.parametrize("backend", ["inline", "thread"])
def test_example_runs_and_its_callbacks_fire(backend: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), backend], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "[ops] order 7 ready: 70.0"
    assert lines[1].startswith("[alert level 2] order 13 (eu) failed: Task 'load_order' failed: LookupError")
    assert lines[2].startswith("raised after the error callback:")
    assert lines[3] == "[billing] order 5 ready: 55.0"
    assert lines[4] == "[summary] 3 orders, 60.0 in total"
