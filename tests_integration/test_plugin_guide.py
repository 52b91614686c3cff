"""Every code block of docs/plugins.md is real.

Python blocks run in a fresh interpreter, each in its own directory: a block that
defines ``test_*`` functions runs under pytest (as a plugin author runs it, so the
shipped fixtures come from the ``pytest11`` entry point), any other as a script.
``ini`` and ``toml`` blocks must appear verbatim in the example plugin's files,
which ``test_plugin_timing_install.py`` installs and runs. Any other kind of block
fails here, so nothing in the guide goes unchecked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "plugin-timing"
TEXT = GUIDE.read_text()
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```$", TEXT, flags=re.DOTALL | re.MULTILINE)
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
CHECKED = {"ini": EXAMPLE / "setup.cfg", "toml": EXAMPLE / "pyproject.toml"}


def _heading(block: str) -> str:
    before = TEXT[: TEXT.index(block)]
    return re.findall(r"^#+ (.+)$", before, flags=re.MULTILINE)[-1]


def _ids(blocks: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for block in blocks:
        heading = _heading(block)
        seen[heading] = seen.get(heading, 0) + 1
        ids.append(f"{heading} #{seen[heading]}")
    return ids


def test_the_guide_is_linked_from_the_readme() -> None:
    assert "(docs/plugins.md)" in (ROOT / "README.md").read_text()


def test_every_block_is_a_kind_this_suite_checks() -> None:
    assert len(PYTHON) >= 6
    assert {lang for lang, _ in BLOCKS} <= {"python", *CHECKED}, [lang for lang, _ in BLOCKS]


def test_the_first_hook_implementation_fits_in_ten_lines() -> None:
    first = PYTHON[0]
    plugin = first[first.index("class ") : first.index("\n\n\n@task")]
    assert len(plugin.strip().splitlines()) <= 10, plugin


@pytest.mark.parametrize(("lang", "block"), [(lang, b) for lang, b in BLOCKS if lang in CHECKED])
def test_config_blocks_are_the_example_plugins(lang: str, block: str) -> None:
    assert block in CHECKED[lang].read_text()


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_block_runs(block: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_") and k != "PYTHONPATH"}
    env["DAGLITE_SIGNING_KEY_FILE"] = str(tmp_path / "signing.key")
    env["DAGLITE_PLUGINS_AUTOLOAD"] = "0"  # the blocks' own plugins only (exact hook orders, logs)
    if "def test_" in block:
        path = tmp_path / "test_block.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(path)]
    else:
        path = tmp_path / "block.py"
        command = [sys.executable, "-W", "error", str(path)]
    path.write_text(block)
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "def test_" in block:
        assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout
