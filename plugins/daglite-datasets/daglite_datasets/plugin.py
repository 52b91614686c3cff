"""The entry point (``daglite`` group, name ``datasets``): the file store and the built-in formats.

Both providers are ``trylast``:

* ``provide_dataset_store`` answers for ``None`` (the default store: the current
  directory, or ``DAGLITE_DATASET_STORE``, which the core passes as ``spec``)
  and for local paths (``str`` / ``os.PathLike``); anything else is left to
  other plugins (``None``). Being last, it only sees a ``scheme://`` string no
  other store plugin took, and refuses it instead of creating a local
  directory called ``s3:``.
* ``provide_dataset_formats`` supplies the built-ins, so that a plugin's format
  with the same name or extension wins over them.

Importing this module (every process that opens a session does) imports neither
the store nor the formats (pickle, csv, json, signing): each provider imports
what it returns when first called.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from daglite_core import hookimpl

if TYPE_CHECKING:
    from daglite_core import DagliteSettings, DatasetFormat

    from ._store import FileDatasetStore

__all__ = ["provide_dataset_formats", "provide_dataset_store"]

daglite_plugin_name = "daglite-datasets"

_URL = r"[A-Za-z][A-Za-z0-9+.\-]+://"  # compiled (and cached by re) when a path is first checked, not at load


@hookimpl(trylast=True)
def provide_dataset_store(spec: Any, settings: DagliteSettings) -> FileDatasetStore | None:
    """A :class:`FileDatasetStore` for ``None`` (current directory) or a local path."""
    from ._store import FileDatasetStore

    if spec is None:
        return FileDatasetStore()
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        return None
    if re.match(_URL, spec):
        msg = (
            f"Dataset store {spec!r} is a URL, but no installed plugin provides a store for it; "
            "daglite-datasets stores datasets in local directories only"
        )
        raise ValueError(msg)
    return FileDatasetStore(spec)


@hookimpl(trylast=True)
def provide_dataset_formats() -> list[DatasetFormat]:
    """pickle, json, text, bytes, csv; numpy and pandas formats when installed."""
    from ._formats import builtin_formats

    return list(builtin_formats())
