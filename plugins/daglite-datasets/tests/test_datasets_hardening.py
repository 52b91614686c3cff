"""Store-root hardening: open roots warned about, symlink swaps, over-long keys, no leftovers."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

import daglite_datasets
from daglite_datasets import DatasetKeyError, DatasetSaveError, FileDatasetStore
from daglite_datasets import _root
from daglite_datasets import _store as store_module


@pytest.fixture(autouse=True)
def _fresh_root_checks() -> None:
    _root.reset()


def test_root_writable_by_others_is_warned_about_once(root: Path) -> None:
    root.mkdir()
    root.chmod(0o777)
    store = FileDatasetStore(root)
    with pytest.warns(daglite_datasets.DatasetStoreWarning) as record:
        store.save("a.json", 1)
        store.save("b.json", 2)
        assert store.load("a.json") == 1
        FileDatasetStore(root).save("c.json", 3)  # another store object on the same root
    assert len(record) == 1
    message = str(record[0].message)
    assert str(root) in message and "writable by others" in message and f"chmod 700 {root}" in message


def test_private_or_new_root_gives_no_warning(root: Path, recwarn: pytest.WarningsRecorder) -> None:
    FileDatasetStore(root).save("x/a.json", 1)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    FileDatasetStore(root).save("x/b.json", 2)
    assert not [w for w in recwarn if issubclass(w.category, daglite_datasets.DatasetStoreWarning)]


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, directory: Path, target: Path) -> None:
    """Replace ``directory`` by a symlink to ``target`` right after the store checked the key."""
    real = store_module.contained_path

    def check_then_swap(*args: Any) -> str:
        path = real(*args)
        if directory.is_dir() and not directory.is_symlink():
            shutil.rmtree(directory)
            directory.symlink_to(target, target_is_directory=True)
        return path

    monkeypatch.setattr(store_module, "contained_path", check_then_swap)


def test_symlink_swapped_in_after_the_check_cannot_redirect_a_save(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileDatasetStore(root)
    store.save("sub/first.json", 0)
    _swap_after_check(monkeypatch, root / "sub", outside)
    with pytest.raises(DatasetSaveError, match=r"'sub/x\.json'.*symlink"):
        store.save("sub/x.json", {"secret": 1})
    assert list(outside.iterdir()) == []


def test_symlink_swapped_in_deeper_cannot_redirect_a_save(root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileDatasetStore(root)
    store.save("a/b/c/first.json", 0)
    _swap_after_check(monkeypatch, root / "a" / "b", outside)
    with pytest.raises(DatasetSaveError):
        store.save("a/b/c/x.json", 1)
    assert list(outside.rglob("*")) == []


def test_symlink_swapped_in_after_the_check_cannot_redirect_a_load(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileDatasetStore(root)
    store.save("sub/x.json", "mine")
    (outside / "x.json").write_text(json.dumps("someone else's file"))
    _swap_after_check(monkeypatch, root / "sub", outside)
    with pytest.raises(daglite_datasets.DatasetLoadError, match="symlink"):
        store.load("sub/x.json")


def test_a_fifo_under_a_dataset_name_is_not_opened(root: Path) -> None:
    store = FileDatasetStore(root)
    store.save("keep.json", 1)
    os.mkfifo(root / "pipe.json")
    with pytest.raises(daglite_datasets.DatasetLoadError, match="not a regular file"):
        store.load("pipe.json")  # would block forever if opened for reading


@pytest.mark.parametrize(
    "key",
    [
        "/".join(["d" * 200] * 25) + "/x.json",  # 5,000+ bytes: past PATH_MAX
        "/".join(["é" * 100] * 25) + "/x.json",  # long in UTF-8 bytes, not in characters
    ],
)
def test_over_long_key_is_a_clear_value_error_and_creates_nothing(root: Path, key: str) -> None:
    store = FileDatasetStore(root)
    for action in (lambda: store.save(key, 1), lambda: store.load(key), lambda: store.exists(key)):
        with pytest.raises(DatasetKeyError, match=r"too long") as info:
            action()
        assert isinstance(info.value, ValueError)
        assert info.value.key == key and key[:30] in str(info.value)
    assert not root.exists()


def test_failed_save_leaves_no_directories_it_created(root: Path) -> None:
    store = FileDatasetStore(root)
    with pytest.raises(DatasetSaveError):
        store.save("new/deep/dir/x.json", {1, 2})  # a set is not JSON
    assert not root.exists()  # the root too was made by this save
    store.save("kept/a.json", 1)
    with pytest.raises(DatasetSaveError):
        store.save("kept/new/x.json", {1, 2})
    assert sorted(p.name for p in root.rglob("*")) == ["a.json", "kept"]


def test_failed_save_of_a_pickle_leaves_no_directories(root: Path) -> None:
    store = FileDatasetStore(root)
    store.save("other.json", 1)
    with pytest.raises(DatasetSaveError):
        store.save("p/q/x.pkl", lambda: None)  # not picklable
    assert sorted(p.name for p in root.rglob("*")) == ["other.json"]
