"""The example plugin installs and works as a user installs it.

One new virtual environment (``venv``, no system site-packages, so a missing
dependency cannot hide), into which pip installs daglite-core from this
repository, ``examples/plugin-timing`` and pytest (from pip's configured indexes;
build dependencies through pip's build isolation). Then, as a user would:
``daglite plugins`` lists the plugin, a ``daglite run`` prints its timings, the
documented switches turn it off, and its own test-suite passes there with the
fixtures daglite-core ships. Takes about 30 s, most of it pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin-timing"
CORE_SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "VERSION", "daglite_core")

WORKFLOW = '''
import time

from daglite_core import map_tasks, task, workflow


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def slowest() -> str:
    time.sleep(0.2)
    return "done"


@workflow
def naps(n: int = 3) -> list[float]:
    slowest()
    return map_tasks(nap, [0.01] * n)
'''


def _env(**extra: str) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_") and k not in drop}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _run(*command: str | Path, cwd: Path, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=_env(**extra), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with daglite-core, daglite-timing and pytest installed."""
    home = tmp_path_factory.mktemp("timing-venv")
    # Build from copies: pip builds in the source tree, and stale build/ dirs there
    # could feed removed files into a later wheel.
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".mypy_cache", ".pytest_cache")
    core = home / "src" / "daglite-core"
    core.mkdir(parents=True)
    for name in CORE_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, core / name, ignore=skip)
        else:
            shutil.copy2(ROOT / name, core / name)
    example = shutil.copytree(EXAMPLE, home / "src" / "plugin-timing", ignore=skip)
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(home / "venv")
    bin_dir = home / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    proc = _run(bin_dir / "python", "-m", "pip", "install", "-q", core, example, "pytest>=8", cwd=home, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield bin_dir


def test_the_environment_has_only_what_was_installed(venv_bin: Path, tmp_path: Path) -> None:
    proc = _run(venv_bin / "python", "-c", "import daglite_core, daglite_timing, sys; print(sys.prefix)", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == venv_bin.parent
    absent = _run(venv_bin / "python", "-c", "import daglite_diskcache", cwd=tmp_path)
    assert absent.returncode != 0 and "ModuleNotFoundError" in absent.stderr


def test_daglite_plugins_lists_it(venv_bin: Path, tmp_path: Path) -> None:
    proc = _run(venv_bin / "daglite", "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split("timing  (daglite-timing 0.1.0)\n", 1)[1].split("\n\n", 1)[0]
    assert "status: enabled" in block and "source: entry point" in block
    assert "hooks:  after_node_execute, after_session_end, before_session_start, on_node_error" in block

    off = _run(venv_bin / "daglite", "plugins", cwd=tmp_path, DAGLITE_DISABLE_PLUGINS="timing")
    assert "status: disabled" in off.stdout.split("timing  (daglite-timing 0.1.0)\n", 1)[1].split("\n\n", 1)[0]


def test_daglite_run_prints_the_timings(venv_bin: Path, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(WORKFLOW)
    proc = _run(venv_bin / "daglite", "run", "flow.py:naps", "--n", "3", cwd=tmp_path, DAGLITE_TIMING_TOP="2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0.01, 0.01, 0.01]"  # the result alone on stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("daglite-timing") or line.startswith("  ")]
    assert lines[0].startswith("daglite-timing: 4 tasks in "), proc.stderr
    assert lines[1].endswith(" s  slowest") and float(lines[1].split()[0]) >= 0.2
    assert " s  nap[" in lines[2]
    assert lines[3] == "  (+ 2 more)"

    off = _run(venv_bin / "daglite", "run", "flow.py:naps", cwd=tmp_path, DAGLITE_DISABLE_PLUGINS="timing")
    assert off.returncode == 0 and "daglite-timing" not in off.stderr


def test_its_own_tests_pass_with_the_shipped_fixtures(venv_bin: Path, tmp_path: Path) -> None:
    # Run from elsewhere so that ``daglite_timing`` is the installed copy, not the source tree.
    proc = _run(venv_bin / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout
