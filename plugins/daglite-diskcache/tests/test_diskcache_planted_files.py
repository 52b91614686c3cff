"""Planted value-file names: only regular files inside the cache directory are ever touched.

An attacker who can write to ``cache.db`` can make an entry's ``filename`` column
name anything: an absolute path, a path with ``..``, a FIFO, a device node or a
symlink. Whatever it names must never be read, opened or deleted, by a cached
call, by ``daglite cache check [--fix]`` or by ``daglite cache clear``.

Every action runs in a watchdog thread: opening a FIFO blocks forever, so a
regression must fail the test, not hang it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daglite_core import CacheWarning, default_cache_hash, session, task

from daglite_diskcache import DiskCacheStore, _handles, plugin

BIG = 100_000  # stored as a .val file
VALID_NAME = os.path.join("ab", "cd", "0123456789abcdef0123456789ab.val")  # the shape diskcache gives


def make_task() -> tuple[Any, list[int]]:
    calls: list[int] = []

    @task(cache=True)
    def payload(x: int) -> bytes:
        calls.append(x)
        return bytes([x % 256]) * BIG

    return payload, calls


class Planted:
    """A cache entry whose value-file name points somewhere it must not."""

    def __init__(self, kind: str, cache_dir: Path, outside: Path) -> None:
        self.kind = kind
        self.cache_dir = cache_dir
        self.outside = outside
        self.fifos: list[Path] = []
        self.keep: dict[Path, bytes | None] = {}  # path -> content (None: not a regular file)
        self.dirs: list[Path] = []

    def plant(self, key: str) -> None:
        """Point ``key``'s row at the planted target (a copy of its real, validly signed file)."""
        con = sqlite3.connect(self.cache_dir / "cache.db")
        try:
            ((real,),) = con.execute("SELECT filename FROM Cache WHERE key = ?", (key,)).fetchall()
            blob = (self.cache_dir / real).read_bytes()
            name = self._make_target(blob)
            con.execute("UPDATE Cache SET filename = ? WHERE key = ?", (name, key))
            con.commit()
        finally:
            con.close()

    def _outside_copy(self, blob: bytes) -> Path:
        target = self.outside / "victim" / "deep" / "x.val"
        target.parent.mkdir(parents=True)
        target.write_bytes(blob)
        self.keep[target] = blob
        self.dirs += [target.parent, target.parent.parent]
        return target

    def _fifo(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        self.fifos.append(path)
        self.keep[path] = None
        return path

    def _make_target(self, blob: bytes) -> str:
        inside = self.cache_dir / VALID_NAME
        if self.kind == "absolute path":
            return str(self._outside_copy(blob))
        if self.kind == "dotdot path":
            return os.path.relpath(self._outside_copy(blob), self.cache_dir)
        if self.kind == "dotdot under a valid prefix":
            return os.path.join("ab", "cd", os.path.relpath(self._outside_copy(blob), self.cache_dir / "ab" / "cd"))
        if self.kind == "symlink to outside file":
            target = self._outside_copy(blob)
            inside.parent.mkdir(parents=True, exist_ok=True)
            inside.symlink_to(target)
            self.keep[inside] = None
            return VALID_NAME
        if self.kind == "symlink to outside fifo":
            fifo = self._fifo(self.outside / "pipe")
            inside.parent.mkdir(parents=True, exist_ok=True)
            inside.symlink_to(fifo)
            self.keep[inside] = None
            return VALID_NAME
        if self.kind == "symlinked directory":
            target = self._outside_copy(blob)
            (self.cache_dir / "ab").mkdir(exist_ok=True)
            (self.cache_dir / "ab" / "cd").symlink_to(target.parent)
            self.keep[self.cache_dir / "ab" / "cd"] = None
            return os.path.join("ab", "cd", "x.val")
        if self.kind == "fifo inside":
            self._fifo(inside)
            return VALID_NAME
        if self.kind == "fifo outside (absolute)":
            return str(self._fifo(self.outside / "pipe"))
        if self.kind == "device inside":
            inside.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mknod(inside, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
            except (PermissionError, AttributeError, OSError) as exc:
                pytest.skip(f"cannot create a device node here: {exc}")
            self.keep[inside] = None
            return VALID_NAME
        raise AssertionError(self.kind)

    def release(self) -> None:
        """Unblock a reader stuck opening one of the FIFOs (the regression being tested)."""
        for fifo in self.fifos:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            os.close(fd)

    def assert_untouched(self) -> None:
        for path, content in self.keep.items():
            assert os.path.lexists(path), f"{path} was deleted"
            if content is not None:
                assert path.read_bytes() == content, f"{path} was modified"
            else:
                assert not stat.S_ISREG(os.lstat(path).st_mode)
        for directory in self.dirs:
            assert directory.is_dir(), f"{directory} was deleted"


KINDS = [
    "absolute path",
    "dotdot path",
    "dotdot under a valid prefix",
    "symlink to outside file",
    "symlink to outside fifo",
    "symlinked directory",
    "fifo inside",
    "fifo outside (absolute)",
    "device inside",
]


def within(seconds: float, action: Callable[[], Any], planted: Planted) -> Any:
    """Run ``action`` in a thread; fail (after unblocking it) if it does not finish in time."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = action()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        planted.release()
        thread.join(5)
        pytest.fail("the call hung: a planted file name was opened (FIFO)")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="daglite")
    plugin.provide_cli_commands(subparsers=parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    code = args.handler(args)
    assert isinstance(code, int)
    return code


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


def _store_entry(cache_dir: Path) -> tuple[Any, list[int], str]:
    payload, calls = make_task()
    with session(cache_store=cache_dir):
        payload(5)
    _handles.close_all()
    return payload, calls, default_cache_hash(payload.func, {"x": 5})


@pytest.mark.parametrize("kind", KINDS)
def test_cached_call_never_touches_a_planted_file(cache_dir: Path, outside: Path, kind: str) -> None:
    payload, calls, key = _store_entry(cache_dir)
    planted = Planted(kind, cache_dir, outside)
    planted.plant(key)

    def call() -> Any:
        with session(cache_store=cache_dir):
            with pytest.warns(CacheWarning, match="Task 'payload'") as record:
                value = payload(5)
            return value, [str(w.message) for w in record]

    value, messages = within(10, call, planted)
    assert value == bytes([5]) * BIG
    assert calls == [5, 5], "the value was served from a file outside the cache"
    assert len(messages) == 1 and key in messages[0]
    planted.assert_untouched()
    with session(cache_store=cache_dir):
        assert payload(5) == bytes([5]) * BIG  # stored again, in a real file: a hit
    assert calls == [5, 5]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("argv", [("check",), ("check", "--fix"), ("clear",), ("clear", "--expired")])
def test_cli_never_touches_a_planted_file(
    cache_dir: Path, outside: Path, kind: str, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, key = _store_entry(cache_dir)
    planted = Planted(kind, cache_dir, outside)
    planted.plant(key)
    if argv == ("clear", "--expired"):
        con = sqlite3.connect(cache_dir / "cache.db")
        con.execute("UPDATE Cache SET expire_time = 1 WHERE key = ?", (key,))
        con.commit()
        con.close()
    within(10, lambda: cli("cache", *argv, "--dir", str(cache_dir)), planted)
    planted.assert_untouched()
    out = capsys.readouterr().out
    if argv[0] == "check":
        assert key in out  # the entry is reported as bad
    if argv != ("check",):  # the row is gone (the file it named is not)
        con = sqlite3.connect(cache_dir / "cache.db")
        assert con.execute("SELECT COUNT(*) FROM Cache WHERE key = ?", (key,)).fetchall() == [(0,)]
        con.close()


@pytest.mark.parametrize("kind", ["absolute path", "dotdot path", "fifo inside", "symlink to outside file"])
@pytest.mark.parametrize("operation", ["delete", "clear prefix", "overwrite", "evict"])
def test_store_operations_never_touch_a_planted_file(cache_dir: Path, outside: Path, kind: str, operation: str) -> None:
    _, _, key = _store_entry(cache_dir)
    planted = Planted(kind, cache_dir, outside)
    planted.plant(key)
    store = DiskCacheStore(cache_dir)
    actions = {
        "delete": lambda: store.delete(key),
        "clear prefix": lambda: store.clear(prefix=key.rpartition(":")[0]),
        "overwrite": lambda: store.set(key, b"new" * BIG),  # diskcache removes the old file
        "evict": lambda: store._handle().cull(retry=True),
    }
    if operation == "evict":
        store._handle().reset("size_limit", 1)
    within(10, actions[operation], planted)
    planted.assert_untouched()


def test_check_fix_still_removes_orphan_regular_files(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, key = _store_entry(cache_dir)
    orphan = cache_dir / "ef" / "01" / "23456789abcdef0123456789abcd.val"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a crash")
    assert cli("cache", "check", "--dir", str(cache_dir)) == 1
    assert cli("cache", "check", "--fix", "--dir", str(cache_dir)) == 0
    assert not orphan.exists() and not orphan.parent.exists()
    assert cli("cache", "check", "--dir", str(cache_dir)) == 0
    assert DiskCacheStore(cache_dir).get(key) == bytes([5]) * BIG
