"""The format registry: every format the ``provide_dataset_formats`` hook supplies.

Decisions:

* **One path in.** The registry is built from the answers of
  ``daglite_core.call_hook("provide_dataset_formats")``; this plugin's own
  built-ins arrive through that same hook (``trylast``), so a plugin format is
  registered exactly like a built-in one.
* **First claim wins.** Answers come in hook order (``tryfirst``, then the most
  recently registered plugin, ``trylast`` last); the first format to use a name
  or an extension keeps it. A plugin can therefore replace a built-in (say
  ``csv``) just by supplying a format with that name.
* **No fallback.** A name nobody registered, or a key whose extension nobody
  claimed (with no ``format=``), is a :class:`DatasetFormatError` listing what is
  known; daglite 0.9 silently pickled such values.
* **Extensions match case-insensitively and the longest wins**, so a plugin can
  register ``.csv.gz`` next to the built-in ``.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from daglite_core import DatasetFormat

from ._errors import DatasetFormatError

__all__ = ["FormatRegistry"]

TRUSTED_OPTION = "trusted"
"""The load option of signed formats that skips verification (handled by the store)."""


def _check_format(fmt: Any) -> None:
    name = getattr(fmt, "name", None)
    extensions = getattr(fmt, "extensions", None)
    problems = []
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty str")
    if not isinstance(extensions, (tuple, list)) or not all(
        isinstance(e, str) and len(e) > 1 and e.startswith(".") for e in extensions
    ):
        problems.append("'extensions' must be a tuple of str starting with '.'")
    for method in ("save", "load"):
        if not callable(getattr(fmt, method, None)):
            problems.append(f"'{method}' must be a method")
    if problems:
        msg = (
            f"provide_dataset_formats answered {fmt!r} ({type(fmt).__module__}."
            f"{type(fmt).__qualname__}), which is not a DatasetFormat: {'; '.join(problems)}"
        )
        raise TypeError(msg)


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "(none)"


@attrs.frozen
class FormatRegistry:
    """Formats by name and by extension (a snapshot; build a new one to change it).

    :ivar formats: format name to format object.
    :ivar extensions: lower-case extension (with the dot) to format name.
    :ivar provided: every object it was built from, in order (duplicates
        included), so a store can tell by identity whether the answer changed.
    """

    formats: Mapping[str, DatasetFormat]
    extensions: Mapping[str, str]
    provided: tuple[DatasetFormat, ...] = ()

    @classmethod
    def build(cls, answers: Iterable[Iterable[DatasetFormat]]) -> FormatRegistry:
        """Build from the hook's answers (a list of lists of formats), first claim wins."""
        formats: dict[str, DatasetFormat] = {}
        extensions: dict[str, str] = {}
        provided = []
        for answer in answers:
            for fmt in answer:
                _check_format(fmt)
                provided.append(fmt)
                if fmt.name in formats:
                    continue
                formats[fmt.name] = fmt
                for extension in fmt.extensions:
                    extensions.setdefault(extension.lower(), fmt.name)
        return cls(formats, extensions, tuple(provided))

    def get(self, name: str, key: str) -> DatasetFormat:
        """The format called ``name``; :class:`DatasetFormatError` naming the known ones."""
        fmt = self.formats.get(name)
        if fmt is None:
            msg = f"Dataset key {key!r}: unknown format {name!r}; known formats: {_known(self.formats)}"
            raise DatasetFormatError(msg, key=key, format=name)
        return fmt

    def name_for(self, key: str, format: str | None) -> str:
        """The format name for ``key``: ``format`` if given, else the one its extension selects."""
        if format is not None:
            return self.get(format, key).name
        filename = key.rsplit("/", 1)[-1].lower()
        best = ""
        for extension in self.extensions:
            if len(extension) > len(best) and len(filename) > len(extension) and filename.endswith(extension):
                best = extension
        if not best:
            dot = filename.rfind(".")
            shown = f"its extension {filename[dot:]!r} is" if dot > 0 else "it has no extension, which is"
            msg = (
                f"Dataset key {key!r}: no format= was given and {shown} not registered; "
                f"pass format= or use a known extension: {_known(self.extensions)} "
                f"(known formats: {_known(self.formats)})"
            )
            raise DatasetFormatError(msg, key=key)
        return self.extensions[best]

    def check_options(self, fmt: DatasetFormat, key: str, options: Mapping[str, Any]) -> None:
        """Reject options the format does not declare (its ``options`` attribute).

        Formats from other plugins that declare no ``options`` attribute check
        their own options.
        """
        known = getattr(fmt, "options", None)
        if known is None:
            return
        allowed = set(known)
        if getattr(fmt, "signed", False):
            allowed.add(TRUSTED_OPTION)
        unknown = sorted(set(options) - allowed)
        if unknown:
            msg = (
                f"Dataset key {key!r}: format {fmt.name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options: {_known(allowed)}"
            )
            raise DatasetFormatError(msg, key=key, format=fmt.name)
