"""Signed pickles: tampering, swapping, foreign pickles, the ``trusted`` escape hatch."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from daglite_core import load_dataset, session, signing
from daglite_datasets import DatasetIntegrityError, DatasetLoadError, FileDatasetStore


class Payload:
    """Unpickling it writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "code ran"))


def test_pickle_file_is_signed_and_bound_to_its_key(store: FileDatasetStore, root: Path) -> None:
    store.save("p.pkl", {"a": 1})
    blob = (root / "p.pkl").read_bytes()
    assert b"daglite-dataset\x00p.pkl\x00" in blob[:64]
    assert store.load("p.pkl") == {"a": 1}


def test_tampered_pickle_is_refused_before_unpickling(store: FileDatasetStore, root: Path, tmp_path: Path) -> None:
    store.save("model.pkl", [1, 2, 3])
    marker = tmp_path / "marker"
    path = root / "model.pkl"
    blob = path.read_bytes()
    header_end = blob.index(b"model.pkl\x00") + len(b"model.pkl\x00")
    path.write_bytes(blob[:header_end] + pickle.dumps(Payload(marker)))
    with pytest.raises(DatasetIntegrityError, match="'model.pkl'") as info:
        store.load("model.pkl")
    assert "signature mismatch" in str(info.value)
    assert (info.value.key, info.value.format) == ("model.pkl", "pickle")
    assert info.value.__cause__ is not None
    assert not marker.exists()


def test_planted_plain_pickle_is_refused_unless_trusted(store: FileDatasetStore, root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    root.mkdir()
    (root / "planted.pkl").write_bytes(pickle.dumps(Payload(marker)))
    with session(dataset_store=root), pytest.raises(DatasetIntegrityError, match="trusted") as info:
        load_dataset("planted.pkl")
    assert "'planted.pkl'" in str(info.value)
    assert not marker.exists()


def test_foreign_pickle_loads_with_the_trusted_option(store: FileDatasetStore, root: Path) -> None:
    root.mkdir()
    (root / "foreign.pkl").write_bytes(pickle.dumps({"from": "another tool"}))
    assert store.load("foreign.pkl", options={"trusted": True}) == {"from": "another tool"}
    store.save("own.pkl", [1])
    assert store.load("own.pkl", options={"trusted": True}) == [1]  # a signed file also loads


def test_file_copied_from_another_key_is_refused(store: FileDatasetStore, root: Path) -> None:
    store.save("a.pkl", "value of a")
    store.save("b.pkl", "value of b")
    (root / "b.pkl").write_bytes((root / "a.pkl").read_bytes())
    with pytest.raises(DatasetIntegrityError, match="signed for the dataset key 'a.pkl'"):
        store.load("b.pkl")


def test_truncated_pickle_is_an_integrity_error(store: FileDatasetStore, root: Path) -> None:
    store.save("t.pkl", list(range(1000)))
    path = root / "t.pkl"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DatasetIntegrityError, match="truncated"):
        store.load("t.pkl")


def test_another_signing_key_cannot_load(store: FileDatasetStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store.save("k.pkl", 1)
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(tmp_path / "other.key"))
    signing.reset()  # the key is read once per process
    with pytest.raises(DatasetIntegrityError, match="another key"):
        store.load("k.pkl")


def test_a_broken_key_file_is_not_blamed_on_the_dataset(store: FileDatasetStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store.save("k.pkl", 1)
    bad = tmp_path / "short.key"
    bad.write_bytes(b"short")
    monkeypatch.setenv("DAGLITE_SIGNING_KEY_FILE", str(bad))
    signing.reset()  # the key is read once per process
    with pytest.raises(ValueError, match="at least 16") as info:
        store.load("k.pkl")
    assert not isinstance(info.value, DatasetLoadError)


def test_other_formats_are_not_signed(store: FileDatasetStore, root: Path) -> None:
    store.save("x.json", {"a": 1})
    assert (root / "x.json").read_bytes() == b'{"a": 1}'
