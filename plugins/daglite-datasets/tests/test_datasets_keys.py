"""Path safety: the bad keys of reliability.md section 3, symlinks, and template keys."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from daglite_core import TaskError, load_dataset, map_tasks, save_dataset, session, task
from daglite_datasets import DatasetKeyError, FileDatasetStore

# (key, words the rule must contain)
BAD_KEYS = [
    ("../x", "'..' segment"),
    ("a/../../x", "'..' segment"),
    ("a/..", "'..' segment"),
    ("..", "'..' segment"),
    (".", "'.' segment"),
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("//server/share/x", "UNC"),
    ("C:\\x", "backslash"),
    ("C:x", "drive"),
    ("..\\..\\x", "backslash"),
    ("a\\b", "backslash"),
    ("~/x", "'~'"),
    ("file:///etc/passwd", "URL"),
    ("s3://bucket/x", "URL"),
    ("a//b", "empty segment"),
    ("a/./b", "'.' segment"),
    ("a/b/", "ends with '/'"),
    ("x\x00y", "NUL"),
    ("x\ny", "control character"),
    ("CON", "reserved device name"),
    ("results/nul.txt", "reserved device name"),
    ("aux.pkl", "reserved device name"),
    ("a /b", "ends with a space"),
    ("b./c", "ends with a space or a dot"),
    ("x:stream", "drive"),  # on Windows, x: is a drive
    ("data:stream", "':'"),
    ("a*b", "'*'"),
    ("e\u0301.pkl", "NFC"),
    ("x" * 300, "bytes long"),
    ("results/.x.pkl.0123456789ab.tmp", "temporary files"),
]
GOOD_KEYS = ["ünïcode.txt", "with space/ok.txt", ".hidden.pkl", "a/b/c/d.json", "x.bin", "é.pkl"]


def _all_operations(store: FileDatasetStore, key: str) -> list[tuple[str, object]]:
    return [
        ("resolve", lambda: store.resolve(key, "pickle")),
        ("save", lambda: store.save(key, 1, format="pickle")),
        ("load", lambda: store.load(key, format="pickle")),
        ("exists", lambda: store.exists(key)),
        ("delete", lambda: store.delete(key)),
        ("path", lambda: store.path(key)),
    ]


@pytest.mark.parametrize(("key", "rule"), BAD_KEYS, ids=[repr(k)[:30] for k, _ in BAD_KEYS])
def test_bad_key_is_rejected_by_every_operation(store: FileDatasetStore, root: Path, outside: Path, key: str, rule: str) -> None:
    for name, operation in _all_operations(store, key):
        with pytest.raises(ValueError, match="rejected") as info:
            operation()  # type: ignore[operator]
        error = info.value
        assert isinstance(error, DatasetKeyError), name
        assert error.key == key
        assert repr(key) in str(error)
        assert rule in error.rule, (name, error.rule)
    assert not root.exists()  # nothing was created, not even the root
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(("key", "rule"), BAD_KEYS[:8], ids=[repr(k)[:30] for k, _ in BAD_KEYS[:8]])
def test_bad_key_through_save_and_load_dataset(root: Path, key: str, rule: str) -> None:
    with session(dataset_store=root):
        with pytest.raises(ValueError, match=re.escape(rule)):
            save_dataset(key, 1, format="pickle")
        with pytest.raises(ValueError, match="rejected"):
            load_dataset(key, format="pickle")
    assert not root.exists()


def test_non_str_key_is_a_type_error(store: FileDatasetStore) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        store.resolve(b"x.pkl")  # type: ignore[arg-type]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys_round_trip(store: FileDatasetStore, root: Path, key: str) -> None:
    store.resolve(key, "pickle")
    store.save(key, {"key": key}, format="pickle")
    assert store.exists(key)
    assert store.load(key, format="pickle") == {"key": key}
    assert store.list() == [key]
    assert (root / key).is_file()


def test_symlink_inside_root_pointing_out_is_rejected(store: FileDatasetStore, root: Path, outside: Path) -> None:
    store.save("first.txt", "x")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (outside / "secret.txt").write_text("secret")
    for key in ("link/x.pkl", "link/secret.txt"):
        with pytest.raises(DatasetKeyError, match="outside the store root") as info:
            store.resolve(key)
        assert info.value.key == key
    with pytest.raises(DatasetKeyError):
        store.save("link/x.pkl", 1)
    with pytest.raises(DatasetKeyError):
        store.load("link/secret.txt")
    with pytest.raises(DatasetKeyError):
        store.delete("link/secret.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"
    assert store.list() == ["first.txt"]  # the link is not followed by list


def test_symlink_at_the_final_name_pointing_out_is_rejected(store: FileDatasetStore, root: Path, outside: Path) -> None:
    store.save("keep.txt", "x")
    target = outside / "target.txt"
    target.write_text("outside")
    (root / "victim.txt").symlink_to(target)
    with pytest.raises(DatasetKeyError, match="outside the store root"):
        store.save("victim.txt", "overwritten")
    assert target.read_text() == "outside"
    assert store.list() == ["keep.txt"]


def test_symlink_to_a_directory_inside_the_root_is_allowed(store: FileDatasetStore, root: Path) -> None:
    store.save("real/a.json", [1])
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert store.load("alias/a.json") == [1]


def test_root_with_a_common_string_prefix_is_not_inside(tmp_path: Path) -> None:
    """``/x/store`` vs ``/x/storex``: commonpath, not a string prefix."""
    root = tmp_path / "store"
    sibling = tmp_path / "storex"
    sibling.mkdir()
    root.mkdir()
    (root / "s").symlink_to(sibling, target_is_directory=True)
    with pytest.raises(DatasetKeyError, match="outside"):
        FileDatasetStore(root).resolve("s/x.pkl")


# -- keys built from dataset= templates: checked before the body runs -------------------


@pytest.mark.parametrize("value", ["../../x", "a/b", "..", "a\\b"])
def test_template_parameter_climbing_out_never_runs_the_body(root: Path, outside: Path, value: str) -> None:
    ran: list[str] = []

    @task(dataset="results/{param}.pkl")
    def produce(param: str) -> int:
        ran.append(param)
        return 1

    with session(dataset_store=root), pytest.raises((ValueError, TaskError)) as info:
        produce(value)
    assert repr(value) in str(info.value) or "param" in str(info.value)
    assert ran == []
    assert not root.exists()
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(("value", "rule"), [("CON", "reserved"), ("x ", "ends with a space"), ("e\u0301", "NFC"), ("a:b", "':'")])
def test_template_filling_a_bad_key_never_runs_the_body(root: Path, value: str, rule: str) -> None:
    ran: list[str] = []

    @task(dataset="results/{param}")
    def produce(param: str) -> str:
        ran.append(param)
        return "x"

    with session(dataset_store=root), pytest.raises(ValueError, match=rule) as info:
        produce(value)
    assert f"results/{value}" in str(info.value) or repr(f"results/{value}") in str(info.value)
    assert ran == []
    assert not root.exists()


@pytest.mark.parametrize("backend", ["inline", "thread"])
def test_bad_template_key_in_a_map_runs_no_body_of_that_item(root: Path, backend: str) -> None:
    ran: list[str] = []

    @task(dataset="out/{name}.json")
    def produce(name: str) -> str:
        ran.append(name)
        return name

    with session(dataset_store=root), pytest.raises(Exception, match=r"\b1\b") as info:
        map_tasks(produce, ["ok", "..", "fine"], backend=backend)
    assert sorted(ran) == ["fine", "ok"]
    assert "1" in str(info.value)
    assert FileDatasetStore(root).list() == ["out/fine.json", "out/ok.json"]


def test_nothing_is_read_outside_the_root(store: FileDatasetStore, outside: Path) -> None:
    (outside / "planted.txt").write_text("planted")
    relative = os.path.relpath(outside / "planted.txt", store.root)
    with pytest.raises(DatasetKeyError):
        store.load(relative)
