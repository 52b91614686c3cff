"""Atomic writes: failing serializers, interrupts, SIGKILL mid-write, temp files and the sweep."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

from daglite_core import hookimpl, session
from daglite_datasets import DatasetSaveError, FileDatasetStore


def temp_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.tmp"))


@attrs.frozen
class HalfWriter:
    """Writes half its payload, then raises ``error``."""

    error: BaseException
    name: str = "half"
    extensions: tuple[str, ...] = (".half",)

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        file.write(b"partial" * 1000)
        file.flush()
        raise self.error

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return file.read()


class Formats:
    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt

    @hookimpl
    def provide_dataset_formats(self) -> list[Any]:
        return [self.fmt]


def test_csv_failing_mid_write_keeps_the_previous_version(store: FileDatasetStore, root: Path) -> None:
    previous = [{"a": "old"}]
    store.save("t.csv", previous)
    rows = [{"a": i} for i in range(5000)] + [{"b": "not a column"}]
    with pytest.raises(DatasetSaveError, match="'t.csv' as 'csv'") as info:
        store.save("t.csv", rows, options={"fieldnames": ["a"]})
    assert isinstance(info.value.__cause__, ValueError)
    assert store.load("t.csv") == previous
    assert temp_files(root) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("serializer bug")])
def test_serializer_error_after_partial_write(store: FileDatasetStore, root: Path, error: Exception) -> None:
    with session(plugins=[Formats(HalfWriter(error))]):
        store.save("v.half", b"", format="bytes")
        with pytest.raises(DatasetSaveError, match="'v.half' as 'half'") as info:
            store.save("v.half", b"new")
    assert info.value.__cause__ is error
    assert (root / "v.half").read_bytes() == b""
    assert temp_files(root) == []


def test_keyboard_interrupt_mid_write_removes_the_temp_file_and_propagates(store: FileDatasetStore, root: Path) -> None:
    store.save("v.half", b"previous", format="bytes")
    with session(plugins=[Formats(HalfWriter(KeyboardInterrupt()))]), pytest.raises(KeyboardInterrupt):
        store.save("v.half", b"new")
    assert (root / "v.half").read_bytes() == b"previous"
    assert temp_files(root) == []


def test_unpicklable_value_leaves_no_file(store: FileDatasetStore, root: Path) -> None:
    store.save("p.pkl", {"ok": 1})
    with pytest.raises(DatasetSaveError, match="'p.pkl' as 'pickle'"):
        store.save("p.pkl", {"ok": 1, "bad": lambda: None})
    assert store.load("p.pkl") == {"ok": 1}
    assert sorted(p.name for p in root.iterdir()) == ["p.pkl"]


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_stale_temp_files_are_ignored_then_swept_by_save(store: FileDatasetStore, root: Path) -> None:
    store.save("d/x.json", 1)
    stale = root / "d" / ".x.json.0123456789ab.tmp"
    fresh = root / "d" / ".x.json.ba9876543210.tmp"
    stale.write_bytes(b"{partial")
    fresh.write_bytes(b"{partial")
    _age(stale, 7200)
    assert store.load("d/x.json") == 1
    assert store.list() == ["d/x.json"]
    FileDatasetStore(root).save("d/y.json", 2)  # a new store object sweeps the directory it writes to
    assert not stale.exists()
    assert fresh.exists()  # may belong to a write in progress


def test_explicit_sweep(store: FileDatasetStore, root: Path) -> None:
    store.save("a/b/x.json", 1)
    old = [root / ".x.json.000000000000.tmp", root / "a/b/.x.json.111111111111.tmp"]
    for path in old:
        path.write_bytes(b"")
        _age(path, 7200)
    young = root / "a/.y.json.222222222222.tmp"
    young.write_bytes(b"")
    assert store.sweep() == [".x.json.000000000000.tmp", "a/b/.x.json.111111111111.tmp"]
    assert all(not p.exists() for p in old)
    assert young.exists()
    assert store.sweep(older_than=0) == ["a/.y.json.222222222222.tmp"]
    assert temp_files(root) == []
    assert store.list() == ["a/b/x.json"]


def test_sweep_reports_relative_paths_sorted(store: FileDatasetStore, root: Path) -> None:
    store.save("z/x.json", 1)
    for name in ("z/.b.json.333333333333.tmp", ".a.json.444444444444.tmp"):
        (root / name).write_bytes(b"")
    assert store.sweep(older_than=0) == [".a.json.444444444444.tmp", "z/.b.json.333333333333.tmp"]


def test_long_names_get_a_temp_name_within_limits(store: FileDatasetStore) -> None:
    key = "é" * 120 + ".json"  # 245 bytes
    store.save(key, [1])
    assert store.load(key) == [1]


def test_a_symlink_inside_the_root_at_the_final_name_is_replaced_not_followed(store: FileDatasetStore, root: Path) -> None:
    store.save("target.txt", "target")
    (root / "alias.txt").symlink_to(root / "target.txt")
    store.save("alias.txt", "through alias")
    assert store.load("target.txt") in {"target", "through alias"}
    assert store.load("alias.txt") == "through alias"


# -- SIGKILL mid-write ---------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import itertools, sys
    from daglite_datasets import FileDatasetStore

    store = FileDatasetStore(sys.argv[1])
    size = int(sys.argv[2])
    print("started", flush=True)
    for version in itertools.count(1):
        store.save("big.pkl", (version, bytes([version % 251]) * size))
        store.save("big.bin", bytes([version % 251]) * size)
    """
)


def _check_complete(store: FileDatasetStore) -> int:
    version, payload = store.load("big.pkl")
    assert payload == bytes([version % 251]) * len(payload) and len(payload) == SIZE
    raw = store.load("big.bin")
    assert len(raw) == SIZE and raw == raw[:1] * SIZE
    return int(version)


SIZE = 8 * 1024 * 1024


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_sigkill_mid_write_leaves_the_previous_version(store: FileDatasetStore, root: Path, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    store.save("big.pkl", (0, bytes([0]) * SIZE))
    store.save("big.bin", bytes([0]) * SIZE)
    rng = random.Random(1234)
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, str(script), str(root), str(SIZE)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        _check_complete(store)  # whichever version won, it is whole and verifies
        assert store.list() == ["big.bin", "big.pkl"]
    store.sweep(older_than=0)
    assert temp_files(root) == []
    _check_complete(store)
