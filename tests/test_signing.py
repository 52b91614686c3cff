"""daglite_core.signing: the key file, its failures and its permissions."""

from __future__ import annotations

import os
import stat
import threading
import warnings
from pathlib import Path

import pytest

from daglite_core import signing


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "signing.key"
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(path))
    monkeypatch.delenv("DAGLITE_SIGNING_KEY", raising=False)
    signing.reset()
    return path


def test_new_key_file_is_private_and_round_trips(key_file: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        blob = signing.sign(b"data")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert signing.verify(blob) == b"data"
    with pytest.raises(signing.SignatureError):
        signing.verify(blob[:-1] + b"x")


def test_missing_parents_of_a_new_key_file_are_private_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the key's own directory: every directory created for it is 0o700."""
    path = tmp_path / "home" / ".config" / "daglite" / "signing.key"
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(path))
    monkeypatch.delenv("DAGLITE_SIGNING_KEY", raising=False)
    signing.reset()
    try:
        signing.signing_key()
    finally:
        signing.reset()
    for directory in (tmp_path / "home", tmp_path / "home" / ".config", path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory


def test_key_file_readable_by_others_is_warned_about_once(key_file: Path) -> None:
    key_file.parent.mkdir()
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o644)
    with pytest.warns(signing.SigningKeyWarning, match=rf"{key_file} is accessible to other users \(mode 644\).*chmod 600") as record:
        signing.sign(b"a")
        signing.sign(b"b")
    assert len(record) == 1


def test_too_short_key_file_is_one_clear_error_read_once(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file.parent.mkdir()
    key_file.write_bytes(b"short")
    os.utime(key_file, (1, 1))  # an old file: nobody is still writing it
    reads: list[str] = []
    real_open = open

    def counting_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(key_file):
            reads.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", counting_open)
    for _ in range(3):
        with pytest.raises(signing.SigningKeyError, match=rf"{key_file} holds 5 bytes; at least 16 are needed\. Delete it") as info:
            signing.signing_key()
        assert isinstance(info.value, ValueError) and info.value.path == key_file
    assert len(reads) == 1  # the failure is remembered, not re-read on every call
    monkeypatch.undo()
    key_file.write_bytes(os.urandom(32))
    signing.reset()
    assert len(signing.signing_key()) == 32


def test_key_file_being_written_is_waited_for(key_file: Path) -> None:
    key_file.parent.mkdir()
    key_file.write_bytes(b"")
    key_file.chmod(0o600)
    key = os.urandom(32)
    writer = threading.Timer(0.05, lambda: key_file.write_bytes(key))
    writer.start()
    try:
        assert signing.signing_key() == key
    finally:
        writer.join()


def test_key_path_that_is_a_directory_or_cannot_be_created(key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file.mkdir(parents=True)
    with pytest.raises(signing.SigningKeyError, match=rf"{key_file} is a directory"):
        signing.signing_key()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(blocker / "sub" / "signing.key"))
    signing.reset()
    with pytest.raises(signing.SigningKeyError, match=r"cannot be read or created \((NotADirectoryError|FileExistsError)") as info:
        signing.signing_key()
    assert isinstance(info.value.__cause__, OSError)


def test_environment_key_needs_no_file(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", "a shared secret for the cluster")
    signing.reset()
    assert signing.verify(signing.sign(b"x")) == b"x"
    assert not key_file.exists()
