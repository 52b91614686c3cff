"""``daglite run --backend dask`` and the plugin's registration."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from daglite_core import list_plugins, session
from daglite_core.cli import main
from daglite_dask import DaskBackend

PIPELINE = '''
from daglite_core import map_tasks, task, workflow


@task
def square(x: int) -> int:
    return x * x


@workflow
def squares(n: int) -> list[int]:
    return map_tasks(square, range(n))
'''


def test_run_with_the_dask_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    """The CLI's --backend dask runs the workflow's map on the scheduler of DAGLITE_DASK_ADDRESS."""
    (tmp_path / "dask_pipeline.py").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGLITE_DASK_ADDRESS", address)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        assert main(["run", "dask_pipeline:squares", "--n", "5", "--backend", "dask", "--json"]) == 0
    finally:
        sys.modules.pop("dask_pipeline", None)
    assert json.loads(capsys.readouterr().out) == [0, 1, 4, 9, 16]


def test_entry_point_provides_the_backend() -> None:
    """The installed entry point supplies DaskBackend under "dask" and "distributed"."""
    assert any(info.name == "daglite-dask" or "dask" in info.name for info in list_plugins())
    with session() as state:
        classes: dict[str, Any] = state.backend_classes()
    assert classes["dask"] is DaskBackend
    assert classes["distributed"] is DaskBackend


def test_importing_the_plugin_does_not_import_dask() -> None:
    """Autoloading the plugin stays cheap: distributed is imported on first use only."""
    import subprocess

    code = "import daglite_dask.plugin, sys; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
