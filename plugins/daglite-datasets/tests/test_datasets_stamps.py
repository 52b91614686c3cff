"""Stamped pickle datasets: a file the store wrote (or verified) loads without a hashing pass; nothing else does.

Also the save's signing: hashed back from the file while it is synced, so a
format reusing its buffer still gets a valid signature.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from daglite_core import signing
from daglite_core.testing import after_a_ctime_tick
from daglite_datasets import DatasetIntegrityError, DatasetKeyError, FileDatasetStore, _integrity, _store

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="stamps are POSIX only")

MB = 2**20
BIG = os.urandom(2 * MB)  # pickled as one piece past _integrity's read-back size, over STAMP_MIN


def sidecar(root: Path, name: str = "big.pkl") -> Path:
    return root / f".{name}.daglite-stamp"


class Verifications:
    """Counts the full verification passes the store makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = _store.verify_stream

        def counting(key: str, file: Any) -> None:
            self.count += 1
            real(key, file)

        monkeypatch.setattr(_store, "verify_stream", counting)


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Verifications:
    monkeypatch.delenv(signing.VERIFY_ENV, raising=False)
    return Verifications(monkeypatch)


@pytest.fixture
def saved(store: FileDatasetStore, root: Path) -> FileDatasetStore:
    store.save("big.pkl", BIG)
    return store


def test_a_saved_large_pickle_is_stamped_and_loads_without_a_hashing_pass(
    saved: FileDatasetStore, root: Path, passes: Verifications
) -> None:
    assert stat.S_IMODE(sidecar(root).stat().st_mode) == 0o600
    assert len(sidecar(root).read_bytes()) == signing.SIGNATURE_SIZE
    assert saved.load("big.pkl") == BIG
    assert passes.count == 0


def test_a_small_pickle_gets_no_sidecar_nor_a_signing_thread(
    store: FileDatasetStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_helper(*args: Any) -> None:
        raise AssertionError("a small save started the read-back helper (a thread and a second sync)")

    monkeypatch.setattr(_integrity, "_ReadBackHasher", no_helper)
    store.save("small.pkl", {"a": 1, "b": b"x" * (MB - 100)})  # under the read-back size piece by piece
    assert not sidecar(root, "small.pkl").exists()
    assert store.load("small.pkl") == {"a": 1, "b": b"x" * (MB - 100)}


def test_a_file_modified_in_place_with_size_and_mtime_restored_is_refused(
    saved: FileDatasetStore, root: Path, passes: Verifications
) -> None:
    path = root / "big.pkl"
    before = path.stat()
    after_a_ctime_tick(path)
    with open(path, "r+b") as file:
        file.seek(before.st_size - 100)
        file.write(b"\x00")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(DatasetIntegrityError, match="signature mismatch"):
        saved.load("big.pkl")
    assert passes.count == 1


def test_a_stamped_file_swapped_for_another_is_refused(saved: FileDatasetStore, root: Path, passes: Verifications) -> None:
    path = root / "big.pkl"
    forged = bytearray(path.read_bytes())
    forged[-10] ^= 0xFF
    swap = root / "swap"
    swap.write_bytes(bytes(forged))
    swap.chmod(0o600)
    os.replace(swap, path)  # ours, private, the sidecar still there: only the stamp tells it apart
    with pytest.raises(DatasetIntegrityError, match="signature mismatch"):
        saved.load("big.pkl")


def test_a_file_saved_but_not_yet_stamped_loads_by_a_full_pass_and_is_stamped(
    saved: FileDatasetStore, root: Path, passes: Verifications
) -> None:
    sidecar(root).unlink()  # a crash between the rename and the sidecar
    assert saved.load("big.pkl") == BIG
    assert passes.count == 1
    assert sidecar(root).exists()
    assert saved.load("big.pkl") == BIG
    assert passes.count == 1


def test_a_stale_sidecar_means_a_full_pass(store: FileDatasetStore, root: Path, passes: Verifications) -> None:
    store.save("big.pkl", BIG)
    old = sidecar(root).read_bytes()
    store.save("big.pkl", BIG[::-1])
    sidecar(root).write_bytes(old)
    assert store.load("big.pkl") == BIG[::-1]
    assert passes.count == 1


def test_a_copied_store_is_verified_once_then_stamped(saved: FileDatasetStore, root: Path, tmp_path: Path, passes: Verifications) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    copied = FileDatasetStore(copy)
    assert copied.load("big.pkl") == BIG
    assert copied.load("big.pkl") == BIG
    assert passes.count == 1


def test_verify_always_makes_every_load_a_full_pass(
    saved: FileDatasetStore, passes: Verifications, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(signing.VERIFY_ENV, "always")
    saved.load("big.pkl")
    saved.load("big.pkl")
    assert passes.count == 2


def test_a_symlinked_sidecar_is_neither_followed_nor_written(
    saved: FileDatasetStore, root: Path, outside: Path, passes: Verifications
) -> None:
    target = outside / "precious"
    target.write_bytes(b"keep me")
    sidecar(root).unlink()
    sidecar(root).symlink_to(target)
    assert saved.load("big.pkl") == BIG
    assert passes.count == 1
    assert sidecar(root).is_symlink()
    assert target.read_bytes() == b"keep me"


def test_a_sidecar_linked_to_another_file_is_not_written_into(
    saved: FileDatasetStore, root: Path, outside: Path, passes: Verifications
) -> None:
    other = outside / "other"
    other.write_bytes(b"keep me")
    sidecar(root).unlink()
    os.link(other, sidecar(root))
    assert saved.load("big.pkl") == BIG
    assert passes.count == 1
    assert other.read_bytes() == b"keep me"


def test_a_fifo_sidecar_does_not_block_a_load(saved: FileDatasetStore, root: Path, passes: Verifications) -> None:
    sidecar(root).unlink()
    os.mkfifo(sidecar(root))
    assert saved.load("big.pkl") == BIG
    saved.save("big.pkl", BIG)  # nor a save
    assert stat.S_ISFIFO(sidecar(root).lstat().st_mode)


def test_sidecar_names_are_reserved_hidden_and_deleted_with_their_dataset(saved: FileDatasetStore, root: Path) -> None:
    with pytest.raises(DatasetKeyError, match="daglite-stamp"):
        saved.save("x.daglite-stamp", 1)
    with pytest.raises(DatasetKeyError, match="daglite-stamp"):
        saved.load(".big.pkl.daglite-stamp", format="bytes")
    assert saved.list() == ["big.pkl"]
    saved.delete("big.pkl")
    assert not sidecar(root).exists()


def test_a_format_reusing_its_buffer_still_gets_a_valid_signature(tmp_path: Path) -> None:
    buffer = bytearray(2 * MB)

    def save(out: Any) -> None:
        for fill in (1, 2, 3):
            buffer[:] = bytes([fill]) * len(buffer)  # changed as soon as write returned
            out.write(buffer)

    path = tmp_path / "f"
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "wb") as file:
        tag = _integrity.write_signed("k", file, save)
    with open(path, "rb") as file:
        _integrity.verify_stream("k", file)
        assert file.read() == b"".join(bytes([fill]) * len(buffer) for fill in (1, 2, 3))
    assert path.read_bytes()[: signing.SIGNATURE_SIZE] == tag


def test_a_group_writable_save_is_signed_from_memory_and_not_stamped(store: FileDatasetStore, root: Path, passes: Verifications) -> None:
    old = os.umask(0o002)
    try:
        store.save("big.pkl", BIG)
    finally:
        os.umask(old)
    assert stat.S_IMODE((root / "big.pkl").stat().st_mode) & stat.S_IWGRP
    assert not sidecar(root).exists()
    assert store.load("big.pkl") == BIG


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("not today")


def test_a_failed_save_stops_its_signing_helper_and_leaves_nothing(store: FileDatasetStore, root: Path) -> None:
    store.save("big.pkl", BIG)
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(Exception, match="not today"):
        store.save("big.pkl", [BIG, Unpicklable()])  # fails after a large piece was written
    assert not [t for t in threading.enumerate() if t.name == "daglite-datasets-sign"]
    assert sorted(p.name for p in root.iterdir()) == before
    assert store.load("big.pkl") == BIG


def test_read_back_signing_of_pieces_smaller_and_larger_than_its_step(tmp_path: Path) -> None:
    pieces = [os.urandom(n) for n in (10, 3 * MB + 1, 5, MB, 0, 7 * MB // 2)]
    path = tmp_path / "f"
    with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "wb") as file:
        _integrity.write_signed("k", file, lambda out: [out.write(p) for p in pieces])
    with open(path, "rb") as file:
        _integrity.verify_stream("k", file)
        assert file.read() == b"".join(pieces)
    blob = path.read_bytes()
    assert _integrity.open_envelope("k", blob) == b"".join(pieces)
    assert io.BytesIO(blob).read(signing.SIGNATURE_SIZE) != b"\0" * signing.SIGNATURE_SIZE


def test_the_tag_is_synced_before_the_rename_publishes_the_file(
    store: FileDatasetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daglite_datasets import _dirfd

    events: list[str] = []
    real_sync, real_pwrite, real_replace = _dirfd._fdatasync, os.pwrite, os.replace

    def sync(fd: int) -> None:
        events.append("sync")
        real_sync(fd)

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        events.append(f"pwrite@{offset}")
        return real_pwrite(fd, data, offset)

    def replace(*args: Any, **kwargs: Any) -> None:
        events.append("rename")
        real_replace(*args, **kwargs)

    monkeypatch.setattr(_dirfd, "_fdatasync", sync)
    monkeypatch.setattr(_integrity, "_fdatasync", sync)
    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "replace", replace)
    store.save("big.pkl", BIG)
    # data synced (the hash overlapped), tag written and synced, published, then the stamp sidecar
    assert events == ["sync", "pwrite@0", "sync", "rename", "pwrite@0"]
    monkeypatch.undo()
    assert store.load("big.pkl") == BIG
