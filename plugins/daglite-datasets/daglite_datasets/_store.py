"""``FileDatasetStore``: datasets as files below a root directory.

Decisions (each answers a weakness of daglite 0.9's dataset layer):

* **Keys are checked, then contained.** Every method taking a key runs the text
  rules and the realpath/commonpath containment of :mod:`daglite_datasets._keys`
  (not only :meth:`resolve`, so a store used directly is just as safe). daglite
  0.9 wrote ``../../escaped.txt`` outside its base.
* **The format is explicit or comes from the extension; never a guess.** See
  :mod:`daglite_datasets._registry`.
* **Writes are atomic and durable** (:mod:`daglite_datasets._atomic`, :mod:`daglite_datasets._dirfd`) and
  synchronous: when :meth:`save` returns the file is in place, and a failing
  save raises :class:`DatasetSaveError` (the task fails) instead of being
  logged. The previous version stays loadable whatever happens mid-write.
* **Pickles are signed** (:mod:`daglite_datasets._integrity`), and a signed file
  of :data:`~daglite_datasets._integrity.STAMP_MIN` bytes or more is stamped once
  saved (or once verified in full), so later loads of that very file skip the
  hashing pass; see ``_integrity`` for the rules and the ``DAGLITE_VERIFY`` opt-out.
* **Nothing is created before the first write**: constructing a store, resolving,
  loading, listing or checking keys never creates the root.
* **The root is made absolute when the store is made** (``None`` means the
  current directory at that moment), so a later ``chdir`` does not move it and
  process workers get the same directory. The store pickles as its root and
  ``stale_after`` only; the format registry is rebuilt where it is used.
* **The checked path is not trusted afterwards.** Saves and loads walk from a
  descriptor of the real root, one ``O_NOFOLLOW`` directory at a time
  (:mod:`daglite_datasets._dirfd`), so a symlink swapped in after the check cannot
  redirect a write (or a read) outside the root; only regular files are loaded (a
  FIFO under a dataset name is refused, not opened). A root writable by other
  users is warned about once per process (:mod:`daglite_datasets._root`).
* **A failed save leaves nothing behind**: neither its temporary file nor the
  directories (nor the root) it created for the dataset.
* **Stale temporary files** (left by a killed writer) are ignored by
  :meth:`load`, :meth:`exists` and :meth:`list`; :meth:`save` sweeps those older
  than ``stale_after`` seconds from the directory it writes into (once per
  directory per store object, so a directory of many datasets is not rescanned
  on every save), and :meth:`sweep` sweeps the whole store on demand.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections.abc import Mapping
from typing import IO, Any

from daglite_core import DatasetFormat, call_hook, signing

from ._atomic import sweep_directory
from ._dirfd import Parent, UnsafePathError, open_in, open_parent, read_stamp, sweep_parent, write_atomic, write_stamp
from ._errors import (
    DatasetError,
    DatasetIntegrityError,
    DatasetKeyError,
    DatasetLoadError,
    DatasetNotFoundError,
    DatasetSaveError,
)
from ._formats import builtin_formats
from ._integrity import (
    STAMP_MIN,
    check_header,
    open_envelope,
    private_file,
    stamp_context,
    verify_stream,
    write_signed,
)
from ._keys import check_key, contained_path, is_temp_name, stamp_name
from ._registry import TRUSTED_OPTION, FormatRegistry
from ._root import check_root

__all__ = ["FileDatasetStore"]

STALE_AFTER = 3600.0


def _restore(root: str, stale_after: float) -> FileDatasetStore:
    return FileDatasetStore(root, stale_after=stale_after)


def _matches(value: Any, return_type: Any) -> bool:
    """Whether ``value`` fits ``return_type`` (a class, a union, or a generic's origin).

    Types ``isinstance`` cannot check (``Any``, ``Literal[...]``) are accepted.
    """
    try:
        return isinstance(value, return_type)
    except TypeError:
        pass
    origin = getattr(return_type, "__origin__", None)
    if isinstance(origin, type):
        return isinstance(value, origin)
    return True


class FileDatasetStore:
    """A dataset store keeping each dataset as one file below ``root``.

    :param root: the directory; ``None`` means the current directory (made
        absolute now). It is created (``0o700``, with its sub-directories) by
        the first save.
    :param stale_after: age in seconds after which a leftover temporary file
        is considered abandoned and swept.

    Follows the core's :class:`~daglite_core.DatasetStore` protocol. Safe to
    share between threads, and between processes on one local filesystem: two
    writers of one key each write their own temporary file and the last
    ``os.replace`` wins; a reader sees one complete version or the other.
    Local disks only: network filesystems may not make ``os.replace`` atomic.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, stale_after: float = STALE_AFTER) -> None:
        if root is not None and not isinstance(root, (str, os.PathLike)):
            msg = f"FileDatasetStore root must be a path (str or os.PathLike), not {type(root).__name__}"
            raise TypeError(msg)
        path = os.fspath(root) if root is not None else os.curdir
        if not isinstance(path, str) or not path:
            msg = f"FileDatasetStore root {root!r} must be a non-empty str path"
            raise TypeError(msg)
        if stale_after < 0:
            msg = f"FileDatasetStore stale_after={stale_after!r} must be >= 0 seconds"
            raise ValueError(msg)
        self.root = os.path.abspath(os.path.expanduser(path))
        self.stale_after = float(stale_after)
        self._registry: FormatRegistry | None = None
        self._swept: set[str] = set()

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (self.root, self.stale_after)

    def __repr__(self) -> str:
        return f"FileDatasetStore({self.root!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileDatasetStore):
            return NotImplemented
        return (self.root, self.stale_after) == (other.root, other.stale_after)

    def __hash__(self) -> int:
        return hash((FileDatasetStore, self.root, self.stale_after))

    # -- formats --------------------------------------------------------------

    def registry(self) -> FormatRegistry:
        """The formats known here: every ``provide_dataset_formats`` answer, then the built-ins.

        The hook is asked on every call (through ``daglite_core.call_hook``, so a
        session's own plugins count); the registry is rebuilt only when the
        answer holds other objects than last time. The built-ins are appended
        last, so a store used while this plugin's entry point is disabled still
        knows them, and any plugin's format of the same name takes precedence.
        """
        answers = [*call_hook("provide_dataset_formats"), builtin_formats()]
        provided = tuple(fmt for answer in answers for fmt in answer)
        registry = self._registry
        if registry is not None and len(registry.provided) == len(provided) and all(
            a is b for a, b in zip(registry.provided, provided, strict=True)
        ):
            return registry
        registry = FormatRegistry.build(answers)
        self._registry = registry
        return registry

    @property
    def formats(self) -> Mapping[str, DatasetFormat]:
        """Format name to format object, as :meth:`resolve` sees them now."""
        return self.registry().formats

    # -- keys -------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The real filesystem path of ``key`` (checked; nothing is created)."""
        return contained_path(self.root, key, check_key(key))

    def resolve(self, key: str, format: str | None = None) -> tuple[str, str]:
        """Check ``key`` and choose its format: ``(key, format_name)``.

        :raises DatasetKeyError: (``ValueError``) the key is unsafe, naming the rule.
        :raises DatasetFormatError: (``ValueError``) the format is unknown, or
            none was given and the extension selects none; lists the known ones.
        """
        self.path(key)
        return key, self.registry().name_for(key, format)

    def _prepare(self, key: str, format: str | None, options: Mapping[str, Any] | None) -> tuple[str, DatasetFormat, dict[str, Any]]:
        path = self.path(key)
        registry = self.registry()
        fmt = registry.get(registry.name_for(key, format), key)
        opts = dict(options or {})
        registry.check_options(fmt, key, opts)
        return path, fmt, opts

    # -- save / load ----------------------------------------------------------------

    def save(self, key: str, value: Any, *, format: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        """Write ``value`` under ``key`` atomically (see the module's decisions).

        :raises DatasetSaveError: the format cannot hold ``value`` or the write
            failed; names key and format; the previous version is intact.
        """
        path, fmt, opts = self._prepare(key, format, options)
        signed = bool(getattr(fmt, "signed", False))
        if signed:
            opts.pop(TRUSTED_OPTION, None)  # a load option; accepted and ignored here
        tags: list[bytes] = []
        try:
            if signed:

                def write(file: IO[bytes]) -> None:
                    tags.append(write_signed(key, file, lambda out: fmt.save(value, out, opts)))

            else:

                def write(file: IO[bytes]) -> None:
                    fmt.save(value, file, opts)

            real_root, parts = self._parts(path)
            with open_parent(real_root, parts[:-1], create=True) as parent:
                try:
                    check_root(real_root)
                    directory = os.path.dirname(path)
                    if directory not in self._swept:
                        sweep_parent(parent, self.stale_after)
                        self._swept.add(directory)
                    info = write_atomic(parent, parts[-1], write)
                except BaseException:
                    parent.remove_created()
                    raise
                if tags:
                    self._stamp(parent, parts[-1], info, key, tags[0])
        except DatasetError:
            raise
        except Exception as exc:
            msg = f"Saving dataset {key!r} as {fmt.name!r} failed: {type(exc).__name__}: {exc}"
            raise DatasetSaveError(msg, key=key, format=fmt.name) from exc

    def load(
        self,
        key: str,
        return_type: type | None = None,
        *,
        format: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the dataset under ``key``.

        :raises DatasetNotFoundError: nothing is stored under ``key``.
        :raises DatasetIntegrityError: a signed format's file does not verify.
        :raises DatasetLoadError: the file cannot be read as the format, or the
            value is not a ``return_type``.
        """
        path, fmt, opts = self._prepare(key, format, options)
        signed = bool(getattr(fmt, "signed", False))
        trusted = bool(opts.pop(TRUSTED_OPTION, False)) if signed else False
        real_root, parts = self._parts(path)
        with contextlib.ExitStack() as stack:
            try:
                parent = stack.enter_context(open_parent(real_root, parts[:-1], create=False))
                file = stack.enter_context(open_in(parent, parts[-1]))
            except UnsafePathError as exc:
                msg = f"Dataset {key!r} ({fmt.name!r}) was not loaded: {exc.strerror}"
                raise DatasetLoadError(msg, key=key, format=fmt.name) from exc
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                msg = f"No dataset is stored under key {key!r} (format {fmt.name!r}) in {self.root!r}"
                raise DatasetNotFoundError(msg, key=key, format=fmt.name) from exc
            check_root(real_root)
            stream: IO[bytes] = file
            if signed:
                stream = self._verified_stream(key, fmt.name, file, trusted, parent, parts[-1])
            try:
                value = fmt.load(stream, return_type, opts)
            except Exception as exc:
                msg = f"Loading dataset {key!r} as {fmt.name!r} failed: {type(exc).__name__}: {exc}"
                raise DatasetLoadError(msg, key=key, format=fmt.name) from exc
        if return_type is not None and not _matches(value, return_type):
            shown = getattr(return_type, "__name__", repr(return_type))
            msg = f"Dataset {key!r} ({fmt.name!r}) holds a {type(value).__name__}, not the requested return_type {shown}"
            raise DatasetLoadError(msg, key=key, format=fmt.name)
        return value

    def _parts(self, path: str) -> tuple[str, list[str]]:
        """The real root and the components of the checked (resolved) ``path`` below it."""
        real_root = os.path.realpath(self.root)
        return real_root, os.path.relpath(path, real_root).split(os.sep)

    def _verified_stream(
        self, key: str, format: str, file: IO[bytes], trusted: bool, parent: Parent, name: str
    ) -> IO[bytes]:
        """``file`` verified (or trusted by its stamp) and positioned after its header, or a verified copy.

        Only the file's owner can write into it: checked by its stamp (the header
        only) or in a streaming pass before the format reads the same descriptor,
        then stamped (see ``_integrity``). Otherwise it is read once and that copy
        verified.
        """
        if not private_file(file):
            return io.BytesIO(self._verified(key, format, file.read(), trusted))
        signing.signing_key()  # a broken key configuration is not the file's fault
        info = os.fstat(file.fileno())  # before reading: a change while verifying is never stamped
        tag = file.read(signing.SIGNATURE_SIZE)
        try:
            if signing.stamp_matches(info, read_stamp(parent, name), *stamp_context(key, tag)):
                check_header(key, file)
                return file
            verify_stream(key, file)
        except ValueError as exc:
            if trusted:
                file.seek(0)
                return file
            raise self._integrity_error(key, format, exc) from exc
        if not signing.verify_always():
            self._stamp(parent, name, info, key, tag)
        return file

    @staticmethod
    def _stamp(parent: Parent, name: str, info: os.stat_result, key: str, tag: bytes) -> None:
        """Keep the stamp of a signed file just written or verified, if it is worth one (see ``_integrity``)."""
        if info.st_size < STAMP_MIN:
            return
        stamp = signing.file_stamp(info, *stamp_context(key, tag))
        if stamp is not None:
            write_stamp(parent, name, stamp)

    @classmethod
    def _verified(cls, key: str, format: str, blob: bytes, trusted: bool) -> bytes:
        signing.signing_key()  # a broken key configuration is not the file's fault
        try:
            return open_envelope(key, blob)
        except ValueError as exc:
            if trusted:
                return blob
            raise cls._integrity_error(key, format, exc) from exc

    @staticmethod
    def _integrity_error(key: str, format: str, exc: ValueError) -> DatasetIntegrityError:
        msg = (
            f"Dataset {key!r} ({format!r}) failed verification and was not loaded: {exc}. "
            f"Files of the {format!r} format are signed by daglite and checked before loading, "
            "because loading them can run code. If the file is a plain file written by another "
            "tool and you trust it, load it with options={'trusted': True}."
        )
        return DatasetIntegrityError(msg, key=key, format=format)

    # -- the rest of the protocol -----------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether a dataset file is stored under ``key`` (an unsafe key raises)."""
        return os.path.isfile(self.path(key))

    def delete(self, key: str) -> None:
        """Remove the dataset under ``key``; nothing happens when there is none.

        Directories are left in place (another writer may be about to use them).
        """
        path = self.path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError as exc:
            raise DatasetKeyError(key, "it names a directory, not a dataset") from exc
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(os.path.dirname(path), stamp_name(os.path.basename(path))))

    def _prefix_directory(self, prefix: str) -> str | None:
        """The real directory to walk for ``prefix`` (checked like a key), or None if absent."""
        if not isinstance(prefix, str):
            msg = f"Dataset prefix {prefix!r} must be a str, not {type(prefix).__name__}"
            raise TypeError(msg)
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if not base:
            directory = os.path.realpath(self.root)
        else:
            try:
                directory = contained_path(self.root, base, check_key(base))
            except DatasetKeyError as exc:
                raise DatasetKeyError(prefix, f"as a prefix, {exc.rule}") from exc
        return directory if os.path.isdir(directory) else None

    def _keys_below(self, directory: str, real_root: str) -> builtins.list[str]:
        keys = []
        for current, _dirs, files in os.walk(directory):  # symlinked directories are not followed
            for name in files:
                if is_temp_name(name):
                    continue
                full = os.path.join(current, name)
                key = os.path.relpath(full, real_root).replace(os.sep, "/")
                try:
                    check_key(key)
                except ValueError:
                    continue  # a file no key can name (placed there by something else)
                if os.path.islink(full) and not self._inside(full, real_root):
                    continue
                keys.append(key)
        return keys

    @staticmethod
    def _inside(path: str, real_root: str) -> bool:
        real = os.path.realpath(path)
        return os.path.commonpath([real_root, real]) == real_root

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Keys starting with ``prefix`` (a plain string prefix, e.g. ``"results/"``), sorted.

        Temporary files, files whose names are not valid keys, and symlinks
        pointing outside the root are left out; symlinked directories are not
        followed. Nothing is created or removed.
        """
        directory = self._prefix_directory(prefix)
        if directory is None:
            return []
        real_root = os.path.realpath(self.root)
        return sorted(k for k in self._keys_below(directory, real_root) if k.startswith(prefix))

    def sweep(self, older_than: float | None = None) -> builtins.list[str]:
        """Remove abandoned temporary files from the whole store; return their relative paths.

        :param older_than: age in seconds (default: the store's ``stale_after``).
            ``0`` removes every temporary file, including one a concurrent writer
            is still writing (its save then fails): only use it when no one writes.
        """
        real_root = os.path.realpath(self.root)
        if not os.path.isdir(real_root):
            return []
        age = self.stale_after if older_than is None else older_than
        removed = []
        for current, _dirs, _files in os.walk(real_root):  # symlinked directories are not followed
            removed.extend(sweep_directory(current, age))
        return sorted(os.path.relpath(p, real_root).replace(os.sep, "/") for p in removed)
