"""Formats: built-ins, choice by name or extension, options, refusals, the registry hook."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import attrs
import pytest

from daglite_core import hookimpl, load_dataset, save_dataset, session
from daglite_datasets import (
    DatasetFormatError,
    DatasetLoadError,
    DatasetSaveError,
    FileDatasetStore,
)

ROUND_TRIPS = [
    ("v.pkl", "pickle", {"a": {1, 2}, "b": (1, 2.5, None)}),
    ("v.pickle", "pickle", [object.__name__]),
    ("v.json", "json", {"a": [1, 2.5, None, True, "é"]}),
    ("v.txt", "text", "line one\r\nline two\nünïcode"),
    ("v.bin", "bytes", b"\x00\x01\xff"),
    ("v.csv", "csv", [{"a": "1", "b": "x, \"quoted\""}, {"a": "2", "b": "line\nbreak"}]),
    ("V.JSON", "json", [1]),
]


@pytest.mark.parametrize(("key", "fmt", "value"), ROUND_TRIPS, ids=[k for k, _, _ in ROUND_TRIPS])
def test_builtin_round_trip_chosen_by_extension(store: FileDatasetStore, key: str, fmt: str, value: Any) -> None:
    assert store.resolve(key) == (key, fmt)
    store.save(key, value)
    assert store.load(key) == value


def test_format_by_name_overrides_the_extension(store: FileDatasetStore, root: Path) -> None:
    assert store.resolve("data.pkl", "json") == ("data.pkl", "json")
    store.save("data.pkl", {"x": 1}, format="json")
    assert json.loads((root / "data.pkl").read_text()) == {"x": 1}
    assert store.load("data.pkl", format="json") == {"x": 1}


def test_json_file_is_json_not_a_pickle(store: FileDatasetStore, root: Path) -> None:
    """daglite 0.9 silently pickled a dict saved to ``cfg.json``."""
    store.save("cfg.json", {"k": [1, 2]})
    assert json.loads((root / "cfg.json").read_bytes()) == {"k": [1, 2]}


def test_text_is_read_without_pickle(store: FileDatasetStore, root: Path) -> None:
    """daglite 0.9 unpickled ``hello.txt`` when no return_type was given."""
    (root).mkdir()
    (root / "hello.txt").write_bytes(b"hello")
    assert store.load("hello.txt") == "hello"


def test_csv_values_come_back_as_strings_and_columns_union(store: FileDatasetStore, root: Path) -> None:
    store.save("t.csv", [{"a": 1, "b": 2}, {"a": 3, "c": 4}])
    assert (root / "t.csv").read_text().splitlines()[0] == "a,b,c"
    assert store.load("t.csv") == [{"a": "1", "b": "2", "c": ""}, {"a": "3", "b": "", "c": "4"}]
    store.save("empty.csv", [])
    assert store.load("empty.csv") == []


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("s.json", {1, 2}, "not JSON serializable"),
        ("n.json", float("nan"), "Out of range float"),
        ("s.bin", "a str", "holds bytes, not str"),
        ("b.txt", b"bytes", "holds a str, not bytes"),
        ("c.csv", "a,b\n1,2", "list of dicts, not str"),
        ("r.csv", [{"a": 1}, ["not", "a", "dict"]], "row 1 is a list"),
        ("u.pkl", lambda: None, "Can't pickle"),
    ],
)
def test_value_the_format_cannot_hold_names_key_and_format(store: FileDatasetStore, key: str, value: Any, words: str) -> None:
    fmt = store.resolve(key)[1]
    with pytest.raises(DatasetSaveError, match=words) as info:
        store.save(key, value)
    error = info.value
    assert (error.key, error.format) == (key, fmt)
    assert repr(key) in str(error) and repr(fmt) in str(error)
    assert error.__cause__ is not None
    assert store.list() == []  # nothing under the final name, no temp file either


def test_unknown_format_lists_the_known_ones(store: FileDatasetStore) -> None:
    with pytest.raises(DatasetFormatError, match="unknown format 'yaml'") as info:
        store.resolve("x.yaml", "yaml")
    message = str(info.value)
    for name in ("bytes", "csv", "json", "pickle", "text"):
        assert name in message
    assert isinstance(info.value, ValueError)
    assert (info.value.key, info.value.format) == ("x.yaml", "yaml")


@pytest.mark.parametrize("key", ["x.yaml", "no_extension", "archive.tar"])
def test_unknown_extension_without_format_is_an_error_never_pickle(store: FileDatasetStore, key: str) -> None:
    with pytest.raises(DatasetFormatError, match="no format= was given") as info:
        store.resolve(key)
    assert repr(key) in str(info.value)
    assert ".pkl" in str(info.value) and ".json" in str(info.value)
    with pytest.raises(DatasetFormatError):
        store.save(key, {"x": 1})
    assert store.list() == []


def test_options_reach_the_format(store: FileDatasetStore, root: Path) -> None:
    store.save("pretty.json", {"b": 1, "a": 2}, options={"indent": 2, "sort_keys": True})
    assert (root / "pretty.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'
    store.save("semi.csv", [{"a": "1", "b": "2"}], options={"delimiter": ";"})
    assert (root / "semi.csv").read_bytes() == b"a;b\r\n1;2\r\n"
    assert store.load("semi.csv", options={"delimiter": ";"}) == [{"a": "1", "b": "2"}]
    store.save("latin.txt", "é", options={"encoding": "latin-1"})
    assert (root / "latin.txt").read_bytes() == b"\xe9"
    assert store.load("latin.txt", options={"encoding": "latin-1"}) == "é"
    store.save("old.pkl", [1], options={"protocol": 2})
    assert store.load("old.pkl") == [1]


def test_save_only_options_are_accepted_when_loading(store: FileDatasetStore) -> None:
    options = {"indent": 2}
    store.save("same.json", [1], options=options)
    assert store.load("same.json", options=options) == [1]


def test_unknown_option_names_the_format_and_its_options(store: FileDatasetStore) -> None:
    with pytest.raises(DatasetFormatError, match="format 'json' has no option 'delimiter'") as info:
        store.save("x.json", [1], options={"delimiter": ";"})
    assert "indent" in str(info.value)
    assert store.list() == []
    with pytest.raises(DatasetFormatError, match="format 'bytes' has no option 'trusted'"):
        store.load("x.bin", options={"trusted": True})


def test_options_through_save_dataset(root: Path) -> None:
    with session(dataset_store=root):
        save_dataset("o.json", {"z": 1}, options={"indent": 4})
        assert load_dataset("o.json") == {"z": 1}
    assert (root / "o.json").read_text() == '{\n    "z": 1\n}'


def test_return_type_is_checked(store: FileDatasetStore) -> None:
    store.save("l.json", [1, 2])
    assert store.load("l.json", list) == [1, 2]
    assert store.load("l.json", list[int]) == [1, 2]  # type: ignore[arg-type]
    assert store.load("l.json", list | None) == [1, 2]  # type: ignore[arg-type]
    with pytest.raises(DatasetLoadError, match="holds a list, not the requested return_type dict") as info:
        store.load("l.json", dict)
    assert info.value.key == "l.json"


def test_a_file_that_is_not_its_format_is_a_load_error(store: FileDatasetStore, root: Path) -> None:
    root.mkdir()
    (root / "bad.json").write_text("{not json")
    with pytest.raises(DatasetLoadError, match="Loading dataset 'bad.json' as 'json' failed") as info:
        store.load("bad.json")
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


# -- the registry hook ----------------------------------------------------------------


@attrs.frozen
class UpperFormat:
    """A test format: text, upper-cased on save."""

    name: str = "upper"
    extensions: tuple[str, ...] = (".up", ".csv.up")
    options = frozenset({"suffix"})

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        file.write((value.upper() + options.get("suffix", "")).encode())

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return file.read().decode()


class FormatPlugin:
    def __init__(self, *formats: Any) -> None:
        self.formats = list(formats)

    @hookimpl
    def provide_dataset_formats(self) -> list[Any]:
        return self.formats


def test_a_plugin_adds_a_format_through_the_hook(root: Path) -> None:
    store = FileDatasetStore(root)
    with pytest.raises(DatasetFormatError):
        store.resolve("x.up")
    with session(dataset_store=store, plugins=[FormatPlugin(UpperFormat())]):
        assert store.resolve("x.up") == ("x.up", "upper")
        assert "upper" in store.formats
        save_dataset("x.up", "shout", options={"suffix": "!"})
        assert load_dataset("x.up") == "SHOUT!"
        with pytest.raises(DatasetFormatError, match="format 'upper' has no option 'indent'"):
            save_dataset("y.up", "x", options={"indent": 1})
    assert (root / "x.up").read_text() == "SHOUT!"
    with pytest.raises(DatasetFormatError):  # the session's plugin is gone
        store.resolve("x.up")


def test_a_plugin_format_replaces_a_builtin_of_the_same_name(root: Path) -> None:
    replacement = UpperFormat(name="text", extensions=(".txt",))
    with session(dataset_store=root, plugins=[FormatPlugin(replacement)]):
        save_dataset("a.txt", "quiet")
        assert load_dataset("a.txt") == "QUIET"


def test_the_longest_extension_wins(store: FileDatasetStore) -> None:
    with session(plugins=[FormatPlugin(UpperFormat())]):
        assert store.resolve("t.csv.up")[1] == "upper"
        assert store.resolve("t.csv")[1] == "csv"


def test_a_provider_answering_a_non_format_is_named(store: FileDatasetStore) -> None:
    with session(plugins=[FormatPlugin("not a format")]), pytest.raises(TypeError, match="not a DatasetFormat"):
        store.resolve("x.json")


def test_builtins_come_through_the_hook(root: Path) -> None:
    import daglite_datasets.plugin as plugin
    from daglite_core import call_hook

    answered = [fmt.name for answer in call_hook("provide_dataset_formats") for fmt in answer]
    assert {"pickle", "json", "text", "bytes", "csv"} <= set(answered)
    assert [f.name for f in plugin.provide_dataset_formats()][:5] == ["pickle", "json", "text", "bytes", "csv"]


# -- optional formats ----------------------------------------------------------------------


def test_numpy_npy(store: FileDatasetStore, root: Path) -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert store.resolve("a.npy")[1] == "numpy"
    store.save("a.npy", array)
    loaded = store.load("a.npy", np.ndarray)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)
    assert (root / "a.npy").read_bytes().startswith(b"\x93NUMPY")
    with pytest.raises(DatasetSaveError, match="numpy"):
        store.save("o.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetSaveError, match="holds a numpy.ndarray, not list"):
        store.save("l.npy", [1, 2])


def test_pandas_csv_and_parquet(store: FileDatasetStore) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    store.save("f.csv", frame, format="pandas-csv")
    pd.testing.assert_frame_equal(store.load("f.csv", pd.DataFrame, format="pandas-csv"), frame)
    with pytest.raises(DatasetSaveError, match="pandas.DataFrame"):
        store.save("g.csv", [1], format="pandas-csv")
    pytest.importorskip("pyarrow")
    assert store.resolve("f.parquet")[1] == "pandas-parquet"
    store.save("f.parquet", frame)
    pd.testing.assert_frame_equal(store.load("f.parquet"), frame)


def test_optional_formats_are_absent_without_their_library(store: FileDatasetStore) -> None:
    import importlib.util

    if importlib.util.find_spec("numpy") is not None:
        pytest.skip("numpy is installed")
    assert "numpy" not in store.formats
    with pytest.raises(DatasetFormatError, match="'.npy' is not registered"):
        store.resolve("a.npy")
