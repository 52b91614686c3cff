"""daglite-datasets: a file dataset store for daglite, with a format registry.

Install it and ``save_dataset`` / ``load_dataset`` / ``@task(dataset=...)`` use a
:class:`FileDatasetStore` rooted at the current directory (or
``DAGLITE_DATASET_STORE``, or ``session(dataset_store="dir")``). Keys are checked
so they cannot leave the root, writes are atomic, pickles are signed, and other
plugins add formats through the ``provide_dataset_formats`` hook.
"""

from __future__ import annotations

from ._errors import (
    DatasetError,
    DatasetFormatError,
    DatasetIntegrityError,
    DatasetKeyError,
    DatasetLoadError,
    DatasetNotFoundError,
    DatasetSaveError,
    DatasetStoreWarning,
)
from ._formats import (
    BytesFormat,
    CsvFormat,
    JsonFormat,
    NumpyFormat,
    PandasCsvFormat,
    PandasParquetFormat,
    PickleFormat,
    TextFormat,
)
from ._keys import check_key
from ._registry import FormatRegistry
from ._store import FileDatasetStore

__all__ = [
    "BytesFormat",
    "CsvFormat",
    "DatasetError",
    "DatasetFormatError",
    "DatasetIntegrityError",
    "DatasetKeyError",
    "DatasetLoadError",
    "DatasetNotFoundError",
    "DatasetSaveError",
    "DatasetStoreWarning",
    "FileDatasetStore",
    "FormatRegistry",
    "JsonFormat",
    "NumpyFormat",
    "PandasCsvFormat",
    "PandasParquetFormat",
    "PickleFormat",
    "TextFormat",
    "check_key",
]
