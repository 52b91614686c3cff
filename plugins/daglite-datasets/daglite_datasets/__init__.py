"""daglite-datasets: a file dataset store for daglite, with a format registry.

Install it and ``save_dataset`` / ``load_dataset`` / ``@task(dataset=...)`` use a
:class:`FileDatasetStore` rooted at the current directory (or
``DAGLITE_DATASET_STORE``, or ``session(dataset_store="dir")``). Keys are checked
so they cannot leave the root, writes are atomic, pickles are signed, and other
plugins add formats through the ``provide_dataset_formats`` hook.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
