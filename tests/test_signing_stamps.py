"""daglite_core.signing file stamps: every rule that decides whether a file is trusted without hashing."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from daglite_core import signing
from daglite_core.testing import after_a_ctime_tick

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="stamps are POSIX only")

CONTEXT = ("test-store", "some/key", b"\x01" * 32)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", "the key of these tests")
    monkeypatch.delenv(signing.VERIFY_ENV, raising=False)
    signing.reset()
    yield
    signing.reset()


def stamped(tmp_path: Path, data: bytes = b"payload " * 1000) -> tuple[Path, bytes]:
    path = tmp_path / "value.bin"
    path.write_bytes(data)
    path.chmod(0o600)
    fd = os.open(path, os.O_RDONLY)
    try:
        stamp = signing.file_stamp(fd, *CONTEXT)
    finally:
        os.close(fd)
    assert stamp is not None and len(stamp) == 32
    return path, stamp


def matches(path: Path, stamp: object, *context: bytes | str) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return signing.stamp_matches(fd, stamp, *(context or CONTEXT))
    finally:
        os.close(fd)


def test_an_untouched_file_is_trusted(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    assert matches(path, stamp)
    assert signing.stamp_matches(path.stat(), stamp, *CONTEXT)  # an fstat result works too
    assert signing.file_stamp(path.stat(), *CONTEXT) == stamp


def test_a_file_modified_in_place_is_not_trusted_even_with_size_and_mtime_restored(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    before = path.stat()
    after_a_ctime_tick(path)
    with open(path, "r+b") as file:
        file.write(b"P")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert not matches(path, stamp)


def test_a_file_replaced_by_another_inode_is_not_trusted(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    copy = tmp_path / "copy.bin"
    shutil.copy2(path, copy)  # same bytes, same mtime: another inode
    os.replace(copy, path)
    assert not matches(path, stamp)


def test_a_file_made_group_writable_is_not_trusted_even_once_restored(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    after_a_ctime_tick(path)
    path.chmod(0o620)
    assert not matches(path, stamp)
    assert signing.file_stamp(path.stat(), *CONTEXT) is None  # never stamped while others may write
    path.chmod(0o600)
    assert not matches(path, stamp)  # the chmod moved ctime: meanwhile anyone in the group could write


def test_a_world_writable_file_gets_no_stamp(tmp_path: Path) -> None:
    path, _ = stamped(tmp_path)
    path.chmod(0o602)
    assert signing.file_stamp(path.stat(), *CONTEXT) is None


def test_a_file_of_another_owner_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, stamp = stamped(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: path.stat().st_uid + 1)
    assert not matches(path, stamp)
    assert signing.file_stamp(path.stat(), *CONTEXT) is None


def test_a_stamp_made_with_another_key_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, stamp = stamped(tmp_path)
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", "another key")
    signing.reset()
    assert not matches(path, stamp)
    assert matches(path, signing.file_stamp(path.stat(), *CONTEXT))


def test_a_stamp_is_bound_to_its_context(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    assert not matches(path, stamp, "test-store", "other/key", b"\x01" * 32)
    assert not matches(path, stamp, "test-store", "some/key", b"\x02" * 32)
    assert not matches(path, stamp, "other-store", "some/key", b"\x01" * 32)
    assert not matches(path, stamp, "test-store", "some/k", b"ey" + b"\x01" * 32)  # parts are length-framed


@pytest.mark.parametrize("stamp", [None, b"", b"\x00" * 32, b"x" * 31, "a" * 32, bytearray(32)])
def test_missing_or_garbage_stamps_are_not_trusted(tmp_path: Path, stamp: object) -> None:
    path, _ = stamped(tmp_path)
    assert not matches(path, stamp)


def test_a_directory_gets_no_stamp(tmp_path: Path) -> None:
    assert signing.file_stamp(tmp_path.stat(), *CONTEXT) is None


def test_verify_always_trusts_no_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, stamp = stamped(tmp_path)
    monkeypatch.setenv(signing.VERIFY_ENV, "always")
    assert signing.verify_always()
    assert not matches(path, stamp)
    monkeypatch.setenv(signing.VERIFY_ENV, "stamped")
    assert not signing.verify_always()
    assert matches(path, stamp)


def test_an_unknown_verify_value_counts_as_always_and_is_warned_about_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, stamp = stamped(tmp_path)
    monkeypatch.setenv(signing.VERIFY_ENV, "alwyas")
    with pytest.warns(UserWarning, match=r"DAGLITE_VERIFY='alwyas' is not understood") as record:
        assert not matches(path, stamp)
        assert not matches(path, stamp)
    assert len(record) == 1


def test_file_stamp_mode_is_checked_on_the_open_descriptor(tmp_path: Path) -> None:
    path, stamp = stamped(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fd = os.open(path, os.O_RDONLY)
    try:
        assert signing.stamp_matches(fd, stamp, *CONTEXT)
        after_a_ctime_tick(path)
        os.chmod(path, 0o622)
        assert not signing.stamp_matches(fd, stamp, *CONTEXT)  # fstat of the same descriptor sees the change
    finally:
        os.close(fd)
