"""The README's Python examples run as shown (each block in a fresh interpreter).

A block that defines ``test_*`` functions is run with pytest, as a plugin author
would run it; every other block runs as a script. Blocks are self-contained.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _heading(block: str) -> str:
    text = README.read_text()
    before = text[: text.index(block)]
    return re.findall(r"^#+ (.+)$", before, flags=re.MULTILINE)[-1]


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("block", BLOCKS, ids=[_heading(b) for b in BLOCKS])
def test_readme_python_block_runs(block: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGLITE_")}
    env["DAGLITE_SIGNING_KEY_FILE"] = str(tmp_path / "signing.key")
    env["DAGLITE_STRICT_HOOKS"] = "1"
    if "def test_" in block:
        path = tmp_path / "test_block.py"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", str(path)]
    else:
        path = tmp_path / "block.py"
        command = [sys.executable, "-W", "error", str(path)]
    path.write_text(block)
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
