"""daglite-datasets: a file dataset store for daglite, with a format registry.

Install it and ``save_dataset`` / ``load_dataset`` / ``@task(dataset=...)`` use a
:class:`FileDatasetStore` rooted at the current directory (or
``DAGLITE_DATASET_STORE``, or ``session(dataset_store="dir")``). Keys are checked
so they cannot leave the root, writes are atomic, pickles are signed, and other
plugins add formats through the ``provide_dataset_formats`` hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglite_core import lazy_exports

if TYPE_CHECKING:
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

# Names are imported on first use (PEP 562): the entry point imports only ``plugin``,
# which every process that opens a session loads; the rest waits for its first use.
_LAZY = {
    "BytesFormat": "._formats",
    "CsvFormat": "._formats",
    "DatasetError": "._errors",
    "DatasetFormatError": "._errors",
    "DatasetIntegrityError": "._errors",
    "DatasetKeyError": "._errors",
    "DatasetLoadError": "._errors",
    "DatasetNotFoundError": "._errors",
    "DatasetSaveError": "._errors",
    "DatasetStoreWarning": "._errors",
    "FileDatasetStore": "._store",
    "FormatRegistry": "._registry",
    "JsonFormat": "._formats",
    "NumpyFormat": "._formats",
    "PandasCsvFormat": "._formats",
    "PandasParquetFormat": "._formats",
    "PickleFormat": "._formats",
    "TextFormat": "._formats",
    "check_key": "._keys",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
