"""Cache keys: a stable digest of a function's identity and the values it is called with.

``default_cache_hash(func, inputs)`` returns ``"<module>.<qualname>:<32 hex digits>"``.
The readable prefix lets tools list or clear one function's entries; the digest
decides equality. Decisions:

**Equal values give equal keys, in any process.** Nothing depends on ``id()``,
``hash()`` (so ``PYTHONHASHSEED`` does not matter) or insertion order: dicts are
encoded as their ``(key, value)`` pairs and sets as their elements, each sorted by
the *encoded bytes*, so mixed-type keys (``{1, "a"}``, ``{None: 1, "b": 2}``)
sort without comparing Python objects. Types are part of the encoding: ``1``,
``1.0`` and ``True`` are different keys although they compare equal.

**Buffers by content, at memory speed.** ``bytes``, ``bytearray``, ``memoryview``
and numpy arrays (recognised by duck typing, numpy is never imported) are hashed
over their buffer, with dtype and shape for arrays; buffers of 4 KiB or more are
digested in place with xxh3_128 (no copy for contiguous data). Arrays of Python
objects (``dtype=object``) go through pickle, as their buffer holds pointers.

**Other objects** are pickled (protocol 5, without memo so that shared and
equal-but-distinct sub-objects encode alike), with dicts, sets, arrays and
functions found *inside* them encoded canonically as above. An object that cannot
be pickled, or a structure that refers to itself, raises
:class:`UnhashableInputError` (a ``TypeError``) naming the argument; the core then
warns once and runs the call uncached.

**The function's identity** is its module and qualname, its source text (from the
``def`` line, so decorator options such as ``retries`` do not change it; when the
source cannot be read, the code object's bytecode, names and constants, which
depend on the Python version), its defaults and the values of its closure cells.
Two closures from one factory with different captured values therefore never
share a key. Other callables (``functools.partial``, callable objects) are
identified by their name and their encoded (for objects: pickled) form. The
identity is computed once per function object (cached by ``id`` with a weak
reference, so the cache never keeps a function alive):
a closure cell re-bound later, helpers it calls, globals it reads and data files
it opens are **not** tracked; give such tasks ``cache_hash=``.

**Digest.** xxh3_128 when the ``xxhash`` package is importable (installed with
daglite-diskcache), else BLAKE2b-128 from the standard library; the core itself
depends on neither. The two give different keys (the digest carries a marker, so
they can never collide): a store written with one is a cold cache for the other.
"""

from __future__ import annotations

import functools
import importlib
import struct
import threading
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["UnhashableInputError", "default_cache_hash"]

_VERSION = b"daglite-key-1\0"
_INLINE_LIMIT = 4096
"""Buffers shorter than this are copied into the encoding; longer ones are digested in place."""

_ALGO = ""
"""``"x"`` (xxh3_128) or ``"b"`` (BLAKE2b), set when the first key is computed."""


def _load_digest() -> None:
    """Choose the digest on first use, so ``import daglite_core`` imports neither library."""
    global _hexdigest, _digest, _ALGO
    try:
        xxhash = importlib.import_module("xxhash")
    except ImportError:  # pragma: no cover - exercised where xxhash is absent
        import hashlib

        def blake_hex(data: Any) -> str:
            return hashlib.blake2b(data, digest_size=16).hexdigest()

        def blake_digest(data: Any) -> bytes:
            return hashlib.blake2b(data, digest_size=16).digest()

        _hexdigest, _digest, _ALGO = blake_hex, blake_digest, "b"
    else:
        _hexdigest, _digest, _ALGO = xxhash.xxh3_128_hexdigest, xxhash.xxh3_128_digest, "x"


def _first_hexdigest(data: Any) -> str:
    _load_digest()
    return _hexdigest(data)


def _first_digest(data: Any) -> bytes:
    _load_digest()
    return _digest(data)


_hexdigest: Callable[[Any], str] = _first_hexdigest
_digest: Callable[[Any], bytes] = _first_digest


class UnhashableInputError(TypeError):
    """An argument (or a closure value of the function) cannot be turned into a cache key."""


# ---------------------------------------------------------------------------
# Value encoding: a prefix-free byte string per value, written into ``out``.
#
# ``memo`` lives for one key computation: ``id(obj) -> (obj, encoding)`` for the
# containers and pickled objects encoded so far (all but the smallest). Holding
# ``obj`` keeps its id from being reused by a temporary during the computation. A
# structure that contains itself recurses until ``RecursionError``, reported as
# unhashable. A container whose
# encoding reaches ``_INLINE_LIMIT`` bytes is replaced by ``H`` + its digest, so
# every memoized encoding is short and a shared sub-object costs one lookup per
# reference: linear time in the number of objects and references, whatever they
# share. Both steps depend only on the value, never on what is shared, so equal
# values still give equal keys.
# ---------------------------------------------------------------------------

_Memo = dict[int, tuple[Any, bytes]]
_MEMO_MIN = 48
"""Container encodings shorter than this are not memoized (see ``_finish``)."""

_pack_d = struct.Struct("<d").pack
_pack_dd = struct.Struct("<dd").pack


def _len(n: int) -> bytes:
    return n.to_bytes(8, "little")


def _enc_none(x: Any, out: bytearray, memo: _Memo) -> None:
    out += b"N"


def _enc_bool(x: bool, out: bytearray, memo: _Memo) -> None:
    out += b"T" if x else b"F"


def _enc_int(x: int, out: bytearray, memo: _Memo) -> None:
    if -0x80000000 <= x < 0x80000000:
        out += b"i"
        out += x.to_bytes(4, "little", signed=True)
    else:
        raw = x.to_bytes((x.bit_length() + 8) // 8, "little", signed=True)
        out += b"I"
        out += _len(len(raw))
        out += raw


def _enc_float(x: float, out: bytearray, memo: _Memo) -> None:
    out += b"f"
    out += _pack_d(x)


def _enc_complex(x: complex, out: bytearray, memo: _Memo) -> None:
    out += b"c"
    out += _pack_dd(x.real, x.imag)


def _enc_str(x: str, out: bytearray, memo: _Memo | None = None) -> None:
    raw = x.encode("utf-8", "surrogatepass")
    n = len(raw)
    if n < _INLINE_LIMIT:
        out += b"s"
        out += n.to_bytes(8, "little")
        out += raw
    else:
        out += b"S"
        out += _digest(raw)


def _enc_buffer(tag: bytes, data: Any, nbytes: int, out: bytearray) -> None:
    if nbytes < _INLINE_LIMIT:
        out += tag
        out += _len(nbytes)
        out += data
    else:
        out += tag.upper()
        out += _digest(data)


def _enc_bytes(x: bytes, out: bytearray, memo: _Memo | None = None) -> None:
    _enc_buffer(b"b", x, len(x), out)


def _enc_bytearray(x: bytearray, out: bytearray, memo: _Memo) -> None:
    _enc_buffer(b"y", x, len(x), out)


def _enc_memoryview(x: memoryview, out: bytearray, memo: _Memo) -> None:
    out += b"m"
    _enc_str(x.format, out)
    _enc_seq(b"(", x.shape or (), out, memo)
    if x.c_contiguous:
        _enc_buffer(b"b", x, x.nbytes, out)
    else:
        data = x.tobytes()
        _enc_buffer(b"b", data, len(data), out)


def _memoized(x: Any, out: bytearray, memo: _Memo) -> bool:
    """Write ``x``'s memoized encoding if there is one (and say so)."""
    entry = memo.get(id(x))
    if entry is None:
        return False
    out += entry[1]
    return True


def _finish(x: Any, out: bytearray, start: int, memo: _Memo, compress: bool = True) -> None:
    """Compress a long container encoding to its digest; memoize all but the smallest.

    Encodings under ``_MEMO_MIN`` bytes are cheaper to redo than to keep: a
    sub-structure that small is re-encoded per reference, at a cost bounded by its
    size, while everything above it is encoded once.
    """
    n = len(out) - start
    if n >= _INLINE_LIMIT and compress:
        digest = _digest(memoryview(out)[start:])
        del out[start:]
        out += b"H"
        out += digest
    elif n < _MEMO_MIN:
        return
    memo[id(x)] = (x, bytes(out[start:]))


def _enc_items(x: Any, out: bytearray, memo: _Memo) -> None:
    encoders = _ENCODERS
    for item in x:
        enc = encoders.get(type(item))
        if enc is None:
            _enc_other(item, out, memo)
        else:
            enc(item, out, memo)


def _enc_seq(tag: bytes, x: Any, out: bytearray, memo: _Memo) -> None:
    if len(x) < 2:  # too small to be worth a memo entry
        out += tag
        out += _len(len(x))
        _enc_items(x, out, memo)
        return
    if _memoized(x, out, memo):
        return
    start = len(out)
    out += tag
    out += _len(len(x))
    _enc_items(x, out, memo)
    _finish(x, out, start, memo)


def _enc_tuple(x: tuple[Any, ...], out: bytearray, memo: _Memo) -> None:
    _enc_seq(b"(", x, out, memo)


def _enc_list(x: list[Any], out: bytearray, memo: _Memo) -> None:
    _enc_seq(b"[", x, out, memo)


def _encoded(x: Any, memo: _Memo) -> bytes:
    buf = bytearray()
    enc = _ENCODERS.get(type(x))
    if enc is None:
        _enc_other(x, buf, memo)
    else:
        enc(x, buf, memo)
    return bytes(buf)


def _enc_dict(x: dict[Any, Any], out: bytearray, memo: _Memo) -> None:
    if _memoized(x, out, memo):
        return
    start = len(out)
    out += b"{"
    out += _len(len(x))
    for k, v in sorted((_encoded(k, memo), _encoded(v, memo)) for k, v in x.items()):
        out += k
        out += v
    _finish(x, out, start, memo)


def _enc_set(x: set[Any] | frozenset[Any], out: bytearray, memo: _Memo) -> None:
    if _memoized(x, out, memo):
        return
    start = len(out)
    out += b"<" if type(x) is set else b">"
    out += _len(len(x))
    for item in sorted(_encoded(item, memo) for item in x):
        out += item
    _finish(x, out, start, memo)


def _enc_type(x: type, out: bytearray, memo: _Memo) -> None:
    out += b"C"
    _enc_str(f"{_module_name(x.__module__)}.{x.__qualname__}", out)


def _enc_module(x: types.ModuleType, out: bytearray, memo: _Memo) -> None:
    out += b"M"
    _enc_str(x.__name__, out)


def _enc_function(x: types.FunctionType, out: bytearray, memo: _Memo) -> None:
    digest = _identity(x)[0]
    out += b"L"
    out += _len(len(digest))
    out += digest


def _is_array(x: Any) -> bool:
    """A numpy array or scalar, recognised without importing numpy."""
    return type(x).__module__ == "numpy" and hasattr(x, "__array_interface__") and hasattr(x, "dtype")


def _enc_array(x: Any, out: bytearray, memo: _Memo) -> None:
    dtype = x.dtype
    out += b"A"
    _enc_str(type(x).__qualname__, out)
    _enc_str(str(dtype.descr) if dtype.fields is not None else dtype.str, out)
    _enc_seq(b"(", tuple(x.shape), out, memo)
    if getattr(x, "flags", None) is not None and x.flags.c_contiguous and x.ndim:
        try:
            data: Any = memoryview(x)
        except (TypeError, ValueError):  # dtypes the buffer protocol refuses (datetime64, ...)
            data = x.tobytes()
    else:
        data = x.tobytes()
    _enc_buffer(b"b", data, x.nbytes, out)


def _enc_other(x: Any, out: bytearray, memo: _Memo) -> None:
    if _memoized(x, out, memo):
        return
    start = len(out)
    if _is_array(x) and not x.dtype.hasobject:
        _enc_array(x, out, memo)
    elif isinstance(x, functools.partial):
        out += b"P"
        _enc_seq(b"(", (x.func, x.args, x.keywords), out, memo)
    else:
        out += b"p"
        data = _pickle(x, memo)
        _enc_buffer(b"b", data, len(data), out)
    _finish(x, out, start, memo, compress=False)  # a long pickle is already digested


_pickler_class: Any = None


def _pickler() -> Any:
    """The pickler class (built on first use: ``pickle`` is not imported with the core)."""
    global _pickler_class
    if _pickler_class is None:
        import pickle

        class CanonicalPickler(pickle.Pickler):
            """Pickles without memo, routing dicts, sets, lists, arrays and functions to the canonical encoder.

            Lists go through the encoder (and its memo) so that lists shared inside an
            object cost one lookup per reference, not one copy per path to them.
            """

            key_memo: _Memo

            def persistent_id(self, obj: Any) -> Any:
                kind = type(obj)
                if kind is dict or kind is set or kind is frozenset or kind is list or kind is types.FunctionType:
                    return _encoded(obj, self.key_memo)
                if kind.__module__ == "numpy" and _is_array(obj) and not obj.dtype.hasobject:
                    return _encoded(obj, self.key_memo)
                return None

        _pickler_class = CanonicalPickler
    return _pickler_class


def _pickle(x: Any, memo: _Memo) -> bytes:
    import io

    buffer = io.BytesIO()
    pickler = _pickler()(buffer, protocol=5)
    pickler.fast = True  # no pickle memo: equal values encode alike whatever they share
    pickler.key_memo = memo
    pickler.dump(x)
    return buffer.getvalue()


_ENCODERS: dict[type, Callable[[Any, bytearray, _Memo], None]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    memoryview: _enc_memoryview,
    tuple: _enc_tuple,
    list: _enc_list,
    dict: _enc_dict,
    set: _enc_set,
    frozenset: _enc_set,
    type: _enc_type,
    types.ModuleType: _enc_module,
    types.FunctionType: _enc_function,
}


# ---------------------------------------------------------------------------
# Function identity, computed once per function object.
# ---------------------------------------------------------------------------

_identities: dict[int, tuple[weakref.ref[Any], bytes, str]] = {}
"""Top-level identities by ``id(func)``, with a weak reference that proves the id
still means the same object (and removes the entry when the function dies). A
plain ``WeakKeyDictionary`` would build a weak reference on every lookup."""
_in_progress = threading.local()
_store_lock = threading.Lock()


def _forget(ref: weakref.ref[Any], ident: int) -> None:
    entry = _identities.get(ident)
    if entry is not None and entry[0] is ref:
        del _identities[ident]


def _cached_identity(func: Any) -> tuple[bytes, str] | None:
    entry = _identities.get(id(func))
    if entry is not None and entry[0]() is func:
        return entry[1], entry[2]
    return None


def _module_name(name: str | None) -> str:
    # Spawned workers import the main script as __mp_main__: same code, same key.
    return "__main__" if name == "__mp_main__" else (name or "?")


def _source(func: types.FunctionType) -> str | None:
    """The function's source from its ``def`` line (decorators left out), or ``None``."""
    import inspect
    import textwrap

    try:
        text = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    if func.__name__ == "<lambda>":
        return text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("def ", "async def ")):
            return "\n".join(lines[i:])
    return text


def _code_bytes(code: types.CodeType, out: bytearray, memo: _Memo) -> None:
    """Bytecode, names and constants of ``code`` (nested code objects recursively)."""
    out += b"K"
    _enc_bytes(code.co_code, out)
    _enc_tuple(code.co_names, out, memo)
    _enc_tuple(code.co_varnames, out, memo)
    out += _len(len(code.co_consts))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_bytes(const, out, memo)
        else:
            out += _encoded(const, memo)


def _identity(func: Any) -> tuple[bytes, str]:
    """``(digest, "module.qualname")`` of ``func``, cached per function object."""
    stack: set[int] | None = getattr(_in_progress, "ids", None)
    if stack is None:
        stack = _in_progress.ids = set()
    if not stack:  # nested identities are always recomputed: see below
        cached = _cached_identity(func)
        if cached is not None:
            return cached
    name = f"{_module_name(getattr(func, '__module__', None))}.{getattr(func, '__qualname__', type(func).__qualname__)}"
    if id(func) in stack:  # a recursive closure refers to itself
        return b"R" + name.encode(), name
    nested = bool(stack)
    stack.add(id(func))
    try:
        out = bytearray(b"F")
        memo: _Memo = {}
        _enc_str(name, out)
        if isinstance(func, types.FunctionType):
            source = _source(func)
            if source is not None:
                _enc_str(source, out)
            else:
                _code_bytes(func.__code__, out, memo)
            _enc_seq(b"(", func.__defaults__ or (), out, memo)
            _enc_dict(func.__kwdefaults__ or {}, out, memo)
            cells = func.__closure__ or ()
            for var, cell in zip(func.__code__.co_freevars, cells):
                _enc_str(var, out)
                try:
                    value = cell.cell_contents
                except ValueError:  # an empty cell (variable not assigned yet)
                    out += b"E"
                    continue
                try:
                    out += _encoded(value, memo)
                except RecursionError as exc:
                    msg = f"closure variable {var!r} of {name} refers to itself"
                    raise UnhashableInputError(msg) from exc
                except UnhashableInputError:
                    raise
                except Exception as exc:
                    msg = f"closure variable {var!r} of {name} cannot be hashed ({type(exc).__name__}: {exc})"
                    raise UnhashableInputError(msg) from exc
        else:
            out += _encoded(func, memo)
        result = (_digest(bytes(out)), name)
    finally:
        stack.discard(id(func))
    if nested:
        # Computed inside another function's identity, possibly with a marker for a
        # cycle back to it: caching (or reusing) it would make keys depend on which
        # function was hashed first. Only top-level results are kept and reused.
        return result
    ident = id(func)
    try:
        ref = weakref.ref(func, lambda r: _forget(r, ident))
    except TypeError:  # not weak-referenceable: recomputed each time
        return result
    with _store_lock:
        # Threads that computed it at the same time all use the first stored
        # identity, so a closure mutated meanwhile cannot give one call two keys.
        stored = _cached_identity(func)
        if stored is not None:
            return stored
        _identities[ident] = (ref, *result)
    return result


# ---------------------------------------------------------------------------


_NAMES: dict[str, bytes] = {}
"""Encoded argument names (parameter names: a small, fixed set per program)."""


def default_cache_hash(func: Callable[..., Any], inputs: Mapping[str, Any]) -> str:
    """Return the cache key of calling ``func`` with ``inputs`` (arguments by name).

    ``"<module>.<qualname>:<algorithm><32 hex digits>"``; see the module docstring for
    what the key does and does not track. Raises :class:`UnhashableInputError` naming
    the argument when one cannot be hashed.
    """
    identity = _cached_identity(func) or _identity(func)
    name = identity[1]
    out = bytearray(_VERSION)
    out += identity[0]
    encoders = _ENCODERS
    names = _NAMES
    memo: _Memo = {}
    for arg in sorted(inputs) if len(inputs) > 1 else inputs:
        value = inputs[arg]
        encoded_name = names.get(arg)
        if encoded_name is None:
            buf = bytearray()
            _enc_str(arg, buf)
            encoded_name = bytes(buf)
            if len(names) < 10_000:  # bounded, whatever callers pass
                names[arg] = encoded_name
        out += encoded_name
        kind = type(value)
        # Inline fast paths for the commonest small arguments (same bytes as _enc_int/_enc_str).
        if kind is int and -0x80000000 <= value < 0x80000000:
            out += b"i"
            out += value.to_bytes(4, "little", signed=True)
            continue
        if kind is str and len(value) < 1024:
            _enc_str(value, out)
            continue
        enc = encoders.get(kind)
        try:
            if enc is None:
                _enc_other(value, out, memo)
            else:
                enc(value, out, memo)
        except UnhashableInputError:
            raise
        except RecursionError as exc:
            msg = f"argument {arg!r} of {name} refers to itself and cannot be hashed"
            raise UnhashableInputError(msg) from exc
        except Exception as exc:
            msg = f"argument {arg!r} of {name} cannot be hashed ({type(exc).__name__}: {exc})"
            raise UnhashableInputError(msg) from exc
    digest = _hexdigest(out)  # first: it may load the digest and set _ALGO
    return f"{name}:{_ALGO}{digest}"
