"""daglite_core.paths: private directories, created component by component."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from daglite_core import paths


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_missing_component_is_created_private(tmp_path: Path) -> None:
    leaf = tmp_path / "a" / "b" / "c"
    assert paths.ensure_private_dir(leaf) is True
    for path in (tmp_path / "a", tmp_path / "a" / "b", leaf):
        assert _mode(path) == 0o700, path


def test_a_restrictive_umask_still_gives_the_owner_access(tmp_path: Path) -> None:
    old = os.umask(0o777)
    try:
        paths.ensure_private_dir(tmp_path / "x" / "y")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x") == 0o700
    assert _mode(tmp_path / "x" / "y") == 0o700


def test_existing_directories_are_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    assert paths.ensure_private_dir(shared) is False
    assert _mode(shared) == 0o755  # not ours to change: callers decide whether to warn
    assert paths.ensure_private_dir(shared / "mine") is True
    assert (_mode(shared), _mode(shared / "mine")) == (0o755, 0o700)


def test_a_file_in_the_way_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        paths.ensure_private_dir(blocker / "sub")


def test_accepts_strings(tmp_path: Path) -> None:
    assert paths.ensure_private_dir(str(tmp_path / "s")) is True
    assert (tmp_path / "s").is_dir()
