"""daglite_core.signing, by property: round trips, every tampering detected, keys.

(The key file's creation, permissions and failures are covered in test_signing.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daglite_core import signing


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = "a shared secret for every machine"
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", secret)
    signing.reset()
    return secret


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 4096, 1 << 20])
def test_sign_then_verify_round_trips(size: int) -> None:
    data = os.urandom(size)
    blob = signing.sign(data)
    assert len(blob) == signing.SIGNATURE_SIZE + size
    assert blob.endswith(data)
    assert signing.verify(blob) == data
    assert type(signing.verify(blob)) is bytes


def test_signing_is_deterministic_and_depends_on_the_data() -> None:
    assert signing.sign(b"abc") == signing.sign(b"abc")
    assert signing.sign(b"abc")[: signing.SIGNATURE_SIZE] != signing.sign(b"abd")[: signing.SIGNATURE_SIZE]


def test_verify_accepts_any_bytes_like_blob() -> None:
    blob = signing.sign(b"payload")
    assert signing.verify(bytearray(blob)) == b"payload"  # type: ignore[arg-type]
    assert signing.verify(memoryview(blob)) == b"payload"  # type: ignore[arg-type]


def test_flipping_any_bit_anywhere_is_detected() -> None:
    blob = signing.sign(b"twelve bytes")
    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= bit
            with pytest.raises(signing.SignatureError, match="signature mismatch"):
                signing.verify(bytes(tampered))


def test_truncating_or_extending_is_detected() -> None:
    blob = signing.sign(b"some stored pickle")
    for length in range(len(blob)):
        with pytest.raises(signing.SignatureError):
            signing.verify(blob[:length])
    with pytest.raises(signing.SignatureError, match="truncated"):
        signing.verify(blob[: signing.SIGNATURE_SIZE - 1])
    with pytest.raises(signing.SignatureError):
        signing.verify(blob + b"\x00")


def test_swapping_signatures_between_blobs_is_detected() -> None:
    a, b = signing.sign(b"value a"), signing.sign(b"value b")
    with pytest.raises(signing.SignatureError):
        signing.verify(a[: signing.SIGNATURE_SIZE] + b[signing.SIGNATURE_SIZE :])


def test_signature_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="truncated"):
        signing.verify(b"")


def test_a_blob_signed_with_another_key_does_not_verify(monkeypatch: pytest.MonkeyPatch, env_key: str) -> None:
    blob = signing.sign(b"data")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", env_key + " (rotated)")
    assert signing.verify(blob) == b"data"  # the key is read once per process...
    signing.reset()  # ...until reset
    with pytest.raises(signing.SignatureError, match="another key"):
        signing.verify(blob)
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", env_key)
    signing.reset()
    assert signing.verify(blob) == b"data"


def test_the_environment_key_wins_over_the_key_file(env_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(os.urandom(32))
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(key_file))
    signing.reset()
    assert signing.signing_key() == env_key.encode()


def test_a_key_file_is_read_as_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGLITE_SIGNING_KEY", raising=False)
    key_file = tmp_path / "signing.key"
    raw = bytes(range(256))[:40]  # not text: any bytes are a key
    key_file.write_bytes(raw)
    key_file.chmod(0o600)  # private, as a key file should be
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(key_file))
    signing.reset()
    assert signing.key_path() == key_file
    assert signing.signing_key() == raw
    blob = signing.sign(b"x")
    key_file.write_bytes(os.urandom(32))  # replaced on disk: this process keeps its key
    assert signing.verify(blob) == b"x"


def test_the_default_key_path_follows_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGLITE_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert signing.key_path() == tmp_path / "config" / "daglite" / "signing.key"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert signing.key_path() == tmp_path / "home" / ".config" / "daglite" / "signing.key"
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", "~/keys/daglite.key")
    assert signing.key_path() == tmp_path / "home" / "keys" / "daglite.key"


def test_a_created_key_file_is_shared_by_every_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGLITE_SIGNING_KEY", raising=False)
    key_file = tmp_path / "new" / "signing.key"
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(key_file))
    signing.reset()
    blob = signing.sign(b"from the parent")
    assert len(key_file.read_bytes()) == 32
    script = (
        "import sys\n"
        "from daglite_core import signing\n"
        "assert signing.verify(bytes.fromhex(sys.argv[1])) == b'from the parent'\n"
        "print(signing.sign(b'from the child').hex())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, blob.hex()], capture_output=True, text=True, check=True, timeout=60
    )
    assert signing.verify(bytes.fromhex(done.stdout.strip())) == b"from the child"


@pytest.mark.parametrize("key_size", [16, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("size", [0, 1, 55, 64, 119, 4096])
def test_mac_is_hmac_sha256_and_new_mac_agrees(monkeypatch: pytest.MonkeyPatch, key_size: int, size: int) -> None:
    """``mac`` spells HMAC out on SHA-256 states: it must be the standard tag, for any key length."""
    import hashlib
    import hmac

    key = bytes(range(33, 33 + 90)) * 3
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", key[:key_size].decode())
    signing.reset()
    data = os.urandom(size)
    expected = hmac.new(key[:key_size], data, hashlib.sha256).digest()
    assert signing.mac(data) == expected
    assert signing.mac(memoryview(data)) == expected
    assert signing.sign(data)[: signing.SIGNATURE_SIZE] == expected
    state = signing.new_mac()
    state.update(data[:7])
    state.update(data[7:])
    assert state.digest() == expected
    assert signing.mac(data) == expected  # the keyed states were copied, not fed
    monkeypatch.setenv("DAGLITE_SIGNING_KEY", "another key, other states")
    signing.reset()
    assert signing.mac(data) != expected
