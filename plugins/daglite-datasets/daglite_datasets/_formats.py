"""The built-in dataset formats, supplied through ``provide_dataset_formats`` like any other.

Each format is a small stateless class (its attributes are class-level
defaults, so it satisfies the protocol's settable ``name``/``extensions``) that
follows the core's :class:`~daglite_core.DatasetFormat` protocol
(``name``, ``extensions``, ``save(value, file, options)``, ``load(file,
return_type, options)``) and adds two optional attributes the store reads:

* ``options``: the option names it understands. Any other option is a
  :class:`DatasetFormatError` naming the format and listing these. An option
  that only matters in one direction (``indent`` when loading) is accepted and
  ignored in the other, so one ``options`` dict serves both.
* ``signed``: loading it can run code (pickle), so the store signs what it
  writes and verifies before handing the bytes to ``load`` (see
  :mod:`daglite_datasets._integrity`).

Decisions:

* **No silent conversion.** A value the format cannot hold is an error
  (``TypeError``/``ValueError``; the store wraps it naming key and format): a
  ``set`` or ``NaN`` to json (strict JSON, ``allow_nan=False`` by default), a
  ``str`` to bytes, ``bytes`` to text, anything but a list of mappings to csv.
  daglite 0.9 pickled whatever it did not know.
* **csv round-trips strings.** The csv format writes ``str(value)`` per cell and
  reads every cell back as a ``str`` (use ``pandas-csv`` for typed columns).
* **numpy never unpickles**: ``.npy`` is saved and loaded with
  ``allow_pickle=False``, so object arrays are refused instead of becoming an
  unsigned pickle.
* **Optional formats are registered when their library is installed**
  (``importlib.util.find_spec``), and the library is imported on first use,
  so building the registry never pays for importing pandas.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
import pickle
from collections.abc import Mapping, Sequence
from typing import IO, Any

from daglite_core import DatasetFormat

__all__ = [
    "BytesFormat",
    "CsvFormat",
    "JsonFormat",
    "NumpyFormat",
    "PandasCsvFormat",
    "PandasParquetFormat",
    "PickleFormat",
    "TextFormat",
    "builtin_formats",
]

PICKLE_PROTOCOL = 5
"""Pinned (not ``HIGHEST_PROTOCOL``) so files stay readable by every Python >= 3.8."""


def _text_in(file: IO[bytes], encoding: str, newline: str | None = "") -> io.TextIOWrapper:
    return io.TextIOWrapper(file, encoding=encoding, newline=newline)


def _finish(wrapper: io.TextIOWrapper) -> None:
    """Flush a text wrapper and let go of the binary file (the store closes it)."""
    wrapper.flush()
    wrapper.detach()


class PickleFormat:
    """Any picklable object; signed (see the store). Options: ``protocol`` (save, default 5)."""

    name: str = "pickle"
    extensions: tuple[str, ...] = (".pkl", ".pickle")
    options: frozenset[str] = frozenset({"protocol"})
    signed: bool = True

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        pickle.dump(value, file, protocol=options.get("protocol", PICKLE_PROTOCOL))

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return pickle.load(file)  # noqa: S301 - verified against its signature first (trusted=True: the user's call)


class JsonFormat:
    """Strict JSON, UTF-8. Options (save): ``indent``, ``sort_keys``, ``ensure_ascii``, ``allow_nan``."""

    name: str = "json"
    extensions: tuple[str, ...] = (".json",)
    options: frozenset[str] = frozenset({"indent", "sort_keys", "ensure_ascii", "allow_nan"})
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        text = json.dumps(
            value,
            indent=options.get("indent"),
            sort_keys=options.get("sort_keys", False),
            ensure_ascii=options.get("ensure_ascii", False),
            allow_nan=options.get("allow_nan", False),
        )
        file.write(text.encode("utf-8"))

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return json.loads(file.read().decode("utf-8"))


class TextFormat:
    """A ``str``, written exactly (no newline translation). Options: ``encoding`` (utf-8)."""

    name: str = "text"
    extensions: tuple[str, ...] = (".txt",)
    options: frozenset[str] = frozenset({"encoding"})
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        if not isinstance(value, str):
            msg = f"the text format holds a str, not {type(value).__name__} (use bytes or pickle)"
            raise TypeError(msg)
        file.write(value.encode(options.get("encoding", "utf-8")))

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return file.read().decode(options.get("encoding", "utf-8"))


class BytesFormat:
    """``bytes``/``bytearray``/``memoryview``, written as is; loads as ``bytes``. No options."""

    name: str = "bytes"
    extensions: tuple[str, ...] = (".bin",)
    options: frozenset[str] = frozenset()
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            msg = f"the bytes format holds bytes, not {type(value).__name__} (use text for a str)"
            raise TypeError(msg)
        file.write(value)

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        return file.read()


class CsvFormat:
    """A list of dicts (one per row; columns in first-seen order); cells load as ``str``.

    Options: ``delimiter`` (``,``), ``quotechar`` (``"``), ``encoding`` (utf-8),
    ``fieldnames`` (save: the columns and their order; a row with another key is
    an error).
    """

    name: str = "csv"
    extensions: tuple[str, ...] = (".csv",)
    options: frozenset[str] = frozenset({"delimiter", "quotechar", "encoding", "fieldnames"})
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            msg = f"the csv format holds a list of dicts, not {type(value).__name__}"
            raise TypeError(msg)
        for index, row in enumerate(value):
            if not isinstance(row, Mapping):
                msg = f"the csv format holds a list of dicts; row {index} is a {type(row).__name__}"
                raise TypeError(msg)
        fieldnames = options.get("fieldnames")
        if fieldnames is None:
            fieldnames = list(dict.fromkeys(column for row in value for column in row))
        text = _text_in(file, options.get("encoding", "utf-8"))
        try:
            writer = csv.DictWriter(
                text, fieldnames=list(fieldnames), delimiter=options.get("delimiter", ","),
                quotechar=options.get("quotechar", '"'), extrasaction="raise",
            )
            writer.writeheader()
            writer.writerows(value)
        finally:
            _finish(text)

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        text = _text_in(file, options.get("encoding", "utf-8"))
        try:
            reader = csv.DictReader(
                text, delimiter=options.get("delimiter", ","), quotechar=options.get("quotechar", '"')
            )
            return [dict(row) for row in reader]
        finally:
            text.detach()


class NumpyFormat:
    """A ``numpy.ndarray`` as ``.npy`` (``allow_pickle=False`` both ways). No options."""

    name: str = "numpy"
    extensions: tuple[str, ...] = (".npy",)
    options: frozenset[str] = frozenset()
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        import numpy as np

        if not isinstance(value, np.ndarray):
            msg = f"the numpy format holds a numpy.ndarray, not {type(value).__name__}"
            raise TypeError(msg)
        np.save(file, value, allow_pickle=False)

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        import numpy as np

        return np.load(file, allow_pickle=False)


def _dataframe(value: Any, name: str) -> Any:
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        msg = f"the {name} format holds a pandas.DataFrame, not {type(value).__name__}"
        raise TypeError(msg)
    return value


class PandasCsvFormat:
    """A ``pandas.DataFrame`` as csv (no extension: ask with ``format="pandas-csv"``).

    Options: ``index`` (save, default ``False``), ``sep`` (``,``), ``encoding`` (utf-8).
    """

    name: str = "pandas-csv"
    extensions: tuple[str, ...] = ()
    options: frozenset[str] = frozenset({"index", "sep", "encoding"})
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        frame = _dataframe(value, self.name)
        text = _text_in(file, options.get("encoding", "utf-8"))
        try:
            frame.to_csv(text, index=options.get("index", False), sep=options.get("sep", ","))
        finally:
            _finish(text)

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        import pandas as pd

        return pd.read_csv(file, sep=options.get("sep", ","), encoding=options.get("encoding", "utf-8"))


class PandasParquetFormat:
    """A ``pandas.DataFrame`` as Parquet (pyarrow). Options: ``compression`` (save, ``snappy``), ``index``."""

    name: str = "pandas-parquet"
    extensions: tuple[str, ...] = (".parquet", ".pq")
    options: frozenset[str] = frozenset({"compression", "index"})
    signed: bool = False

    def save(self, value: Any, file: IO[bytes], options: Mapping[str, Any]) -> None:
        frame = _dataframe(value, self.name)
        frame.to_parquet(
            file, engine="pyarrow", compression=options.get("compression", "snappy"), index=options.get("index")
        )

    def load(self, file: IO[bytes], return_type: type | None, options: Mapping[str, Any]) -> Any:
        import pandas as pd

        return pd.read_parquet(file, engine="pyarrow")


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


_CORE: tuple[DatasetFormat, ...] = (PickleFormat(), JsonFormat(), TextFormat(), BytesFormat(), CsvFormat())


@functools.cache
def builtin_formats() -> tuple[DatasetFormat, ...]:
    """The formats this plugin supplies: the five core ones, plus numpy/pandas when installed.

    Made once per process, so that the store's registry (rebuilt only when the
    set of provided format objects changes) is built once.
    """
    formats = list(_CORE)
    if _installed("numpy"):
        formats.append(NumpyFormat())
    if _installed("pandas"):
        formats.append(PandasCsvFormat())
        if _installed("pyarrow"):
            formats.append(PandasParquetFormat())
    return tuple(formats)
