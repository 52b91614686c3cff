"""``daglite cache stats | clear | check [--fix]`` through the ``provide_cli_commands`` hook."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daglite_diskcache import DiskCacheStore, _handles, plugin


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="daglite")
    subparsers = parser.add_subparsers(dest="command")
    plugin.provide_cli_commands(subparsers=subparsers)
    args = parser.parse_args(list(argv))
    code = args.handler(args)
    assert isinstance(code, int)
    return code


def fill(directory: Path) -> DiskCacheStore:
    store = DiskCacheStore(directory)
    for i in range(3):
        store.set(f"pkg.mod.alpha:x{i}", i)
    store.set("pkg.mod.beta:x0", "b" * 50_000)
    store.set("pkg.mod.beta:x1", "short-lived", ttl=0.001)
    return store


def test_stats_counts_entries_per_function(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(cache_dir)
    assert run("cache", "stats", "--dir", str(cache_dir)) == 0
    out = capsys.readouterr().out
    assert f"Cache directory: {cache_dir}" in out
    assert "Entries:         5" in out
    assert "3  pkg.mod.alpha" in out and "2  pkg.mod.beta" in out
    assert "GiB limit (least-recently-stored)" in out


def test_default_directory_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fill(Path.cwd() / ".daglite" / "cache")
    assert run("cache", "stats") == 0
    assert f"Cache directory: {Path.cwd() / '.daglite' / 'cache'}" in capsys.readouterr().out
    monkeypatch.setenv("DAGLITE_CACHE_STORE", str(tmp_path / "elsewhere"))
    assert run("cache", "stats") == 0
    assert f"No cache at {tmp_path / 'elsewhere'}" in capsys.readouterr().out
    assert not (tmp_path / "elsewhere").exists()  # never created by inspection


def test_clear_all_or_one_function(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(cache_dir)
    assert run("cache", "clear", "--dir", str(cache_dir), "--function", "pkg.mod.alpha") == 0
    assert "Removed 3 entries" in capsys.readouterr().out
    assert sorted(DiskCacheStore(cache_dir).keys()) == ["pkg.mod.beta:x0", "pkg.mod.beta:x1"]
    assert run("cache", "clear", "--dir", str(cache_dir)) == 0
    assert "Removed 2 entries" in capsys.readouterr().out
    assert list(DiskCacheStore(cache_dir).keys()) == []


def test_check_clean_then_bad_entries_then_fix(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = fill(cache_dir)
    assert run("cache", "check", "--dir", str(cache_dir)) == 0
    assert f"{cache_dir}: OK" in capsys.readouterr().out
    store._cache._sql("UPDATE Cache SET value = ? WHERE key = ?", (os.urandom(100), "pkg.mod.alpha:x1"))
    (cache_dir / "stray.val").write_bytes(b"orphan")
    assert run("cache", "check", "--dir", str(cache_dir)) == 1
    out = capsys.readouterr().out
    assert "bad entry pkg.mod.alpha:x1" in out and "stray.val" in out and "run with --fix" in out
    assert run("cache", "check", "--dir", str(cache_dir), "--fix") == 0
    assert "fixed" in capsys.readouterr().out
    assert run("cache", "check", "--dir", str(cache_dir)) == 0
    assert "pkg.mod.alpha:x1" not in set(DiskCacheStore(cache_dir).keys())


def test_unreadable_database(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(cache_dir)
    _handles.close_all()
    db = cache_dir / "cache.db"
    db.write_bytes(b"\x00" * db.stat().st_size)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert run("cache", "stats", "--dir", str(cache_dir)) == 1
    assert "check --fix" in capsys.readouterr().err
    assert run("cache", "check", "--dir", str(cache_dir)) == 1
    assert run("cache", "check", "--dir", str(cache_dir), "--fix") == 0
    assert "moved aside to" in capsys.readouterr().out
    assert run("cache", "check", "--dir", str(cache_dir)) == 0


def test_cache_without_subcommand_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("cache") == 2
    assert "stats" in capsys.readouterr().err


def _daglite_command() -> list[str] | None:
    exe = shutil.which("daglite") or str(Path(sys.executable).with_name("daglite"))
    return [exe] if Path(exe).exists() else None


@pytest.mark.skipif(_daglite_command() is None, reason="the daglite console script is not installed")
def test_daglite_cache_stats_command(cache_dir: Path) -> None:
    fill(cache_dir)
    env = {**os.environ, "DAGLITE_PLUGINS_AUTOLOAD": "1"}
    env.pop("DAGLITE_DISABLE_PLUGINS", None)
    command = _daglite_command()
    assert command is not None
    out = subprocess.run(
        [*command, "cache", "stats", "--dir", str(cache_dir)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "Entries:         5" in out.stdout
