"""The store: roots, the provider hook, sessions, protocol methods, pickling, permissions."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

import daglite_datasets
from daglite_core import DagliteSettings, DatasetStore, MissingPluginError, load_dataset, save_dataset, session, task
from daglite_datasets import DatasetKeyError, DatasetNotFoundError, FileDatasetStore
from daglite_datasets.plugin import provide_dataset_store


def test_public_names_are_sorted_and_exported() -> None:
    assert daglite_datasets.__all__ == sorted(daglite_datasets.__all__)
    for name in daglite_datasets.__all__:
        assert getattr(daglite_datasets, name) is not None


def test_store_follows_the_core_protocol(store: FileDatasetStore) -> None:
    assert isinstance(store, DatasetStore)


def test_default_root_is_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = FileDatasetStore()
    assert store.root == str(tmp_path)
    monkeypatch.chdir("/")
    store.save("here.json", 1)  # the root was fixed when the store was made
    assert (tmp_path / "here.json").is_file()


def test_default_store_of_save_dataset_is_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert save_dataset("d/x.json", [1]) == "d/x.json"
    assert json_file(tmp_path / "d/x.json") == "[1]"
    assert load_dataset("d/x.json") == [1]


def test_environment_variable_selects_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_DATASET_STORE", str(tmp_path / "env-root"))
    with session():
        save_dataset("e.txt", "from env")
    assert (tmp_path / "env-root" / "e.txt").read_text() == "from env"


def test_session_and_task_stores(tmp_path: Path) -> None:
    @task(dataset="{name}.json")
    def default_store(name: str) -> str:
        return name

    @task(dataset="{name}.json", dataset_store=str(tmp_path / "per-task"))
    def own_store(name: str) -> str:
        return name

    with session(dataset_store=tmp_path / "session"):
        default_store("a")
        own_store("b")
    assert FileDatasetStore(tmp_path / "session").list() == ["a.json"]
    assert FileDatasetStore(tmp_path / "per-task").list() == ["b.json"]


def test_session_accepts_a_store_object(tmp_path: Path) -> None:
    store = FileDatasetStore(tmp_path / "obj")
    with session(dataset_store=store):
        save_dataset("x.bin", b"1")
    assert store.load("x.bin") == b"1"


def test_provider_answers_paths_and_none_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = DagliteSettings()
    monkeypatch.chdir(tmp_path)
    assert provide_dataset_store(None, settings) == FileDatasetStore(tmp_path)
    assert provide_dataset_store(str(tmp_path / "s"), settings) == FileDatasetStore(tmp_path / "s")
    assert provide_dataset_store(tmp_path / "p", settings) == FileDatasetStore(tmp_path / "p")
    assert provide_dataset_store(42, settings) is None
    assert provide_dataset_store(b"bytes", settings) is None
    with pytest.raises(ValueError, match="is a URL"):
        provide_dataset_store("s3://bucket/prefix", settings)


def test_disabled_plugin_gives_the_core_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLITE_DISABLE_PLUGINS", "datasets")
    with session(dataset_store=tmp_path), pytest.raises(MissingPluginError, match="daglite-datasets"):
        save_dataset("x.json", 1)


def test_constructor_rejects_non_paths() -> None:
    with pytest.raises(TypeError, match="must be a path"):
        FileDatasetStore(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_after"):
        FileDatasetStore("x", stale_after=-1)


def test_store_pickles_as_its_root_and_options(store: FileDatasetStore) -> None:
    store.save("x.json", [1])
    store.registry()
    copy = pickle.loads(pickle.dumps(FileDatasetStore(store.root, stale_after=5)))
    assert copy == FileDatasetStore(store.root, stale_after=5)
    assert copy.stale_after == 5.0
    assert copy.load("x.json") == [1]
    assert len(pickle.dumps(store)) < 300  # no registry, no state


def test_nothing_is_created_until_something_is_written(store: FileDatasetStore, root: Path) -> None:
    store.resolve("a/b/c.json")
    assert not store.exists("a/b/c.json")
    assert store.list() == []
    assert store.list("a/") == []
    store.delete("a/b/c.json")
    with pytest.raises(DatasetNotFoundError):
        store.load("a/b/c.json")
    assert store.sweep() == []
    assert not root.exists()
    store.save("a/b/c.json", 1)
    assert root.is_dir()


def test_missing_dataset_is_a_file_not_found_error_naming_the_key(store: FileDatasetStore) -> None:
    with pytest.raises(FileNotFoundError, match="'nope.json'") as info:
        store.load("nope.json")
    assert isinstance(info.value, DatasetNotFoundError)
    assert (info.value.key, info.value.format) == ("nope.json", "json")


def test_exists_delete_and_overwrite(store: FileDatasetStore) -> None:
    store.save("k.txt", "one")
    store.save("k.txt", "two")
    assert store.load("k.txt") == "two"
    assert store.exists("k.txt")
    store.delete("k.txt")
    assert not store.exists("k.txt")
    store.delete("k.txt")  # absent: no error
    store.save("d/inner.txt", "x")
    assert not store.exists("d")  # a directory is not a dataset


def test_list_prefix_sorted_and_temp_files_ignored(store: FileDatasetStore, root: Path) -> None:
    for key in ("b.json", "a.json", "results/eu/1.json", "results/eu/0.json", "results/us/0.json", "resume.txt"):
        store.save(key, 1, format="json")
    (root / "results/eu/.0.json.0123456789ab.tmp").write_bytes(b"partial")
    (root / "stray\\name.txt").write_text("not a valid key")
    assert store.list() == ["a.json", "b.json", "results/eu/0.json", "results/eu/1.json", "results/us/0.json", "resume.txt"]
    assert store.list("results/") == ["results/eu/0.json", "results/eu/1.json", "results/us/0.json"]
    assert store.list("results/eu/1") == ["results/eu/1.json"]
    assert store.list("res") == ["results/eu/0.json", "results/eu/1.json", "results/us/0.json", "resume.txt"]
    assert store.list("nothing/") == []
    with pytest.raises(ValueError, match="as a prefix"):
        store.list("../")


def test_permissions_follow_the_umask_and_directories_are_private(store: FileDatasetStore, root: Path) -> None:
    old = os.umask(0o022)
    try:
        store.save("sub/dir/f.json", 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE((root / "sub/dir/f.json").stat().st_mode) == 0o644
    for directory in (root, root / "sub", root / "sub/dir"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    old = os.umask(0o077)
    try:
        store.save("private.json", 1)
    finally:
        os.umask(old)
    assert stat.S_IMODE((root / "private.json").stat().st_mode) == 0o600


def test_existing_root_permissions_are_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    FileDatasetStore(tmp_path).save("x.json", 1)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_errors_pickle_with_their_attributes(store: FileDatasetStore) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        store.load("missing.json")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is DatasetNotFoundError
    assert (copy.key, copy.format, str(copy)) == ("missing.json", "json", str(info.value))
    with pytest.raises(DatasetKeyError) as key_info:
        store.resolve("../x.json")
    key_copy = pickle.loads(pickle.dumps(key_info.value))
    assert (key_copy.key, key_copy.rule) == ("../x.json", key_info.value.rule)


def test_delete_of_a_directory_is_refused(store: FileDatasetStore, root: Path) -> None:
    store.save("dir/x.json", 1)
    with pytest.raises(DatasetKeyError, match="names a directory"):
        store.delete("dir")
    assert store.exists("dir/x.json")


def json_file(path: Path) -> str:
    return path.read_text()
