"""Settings, with environment-variable overrides."""

from __future__ import annotations

import os
from typing import Any

import attrs

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
CACHE_MODES = ("on", "off", "refresh")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"Environment variable {name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)"
    raise ValueError(msg)


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        msg = f"Environment variable {name}={raw!r} is not an integer"
        raise ValueError(msg) from None
    if value < 1:
        msg = f"Environment variable {name}={raw!r} must be at least 1"
        raise ValueError(msg)
    return value


def _env_str(name: str) -> str | None:
    raw = os.environ.get(name)
    return raw if raw else None


def _env_names(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _to_tuple(value: Any) -> tuple[str, ...]:
    # Not ``converter=tuple``: attrs reads a converter's signature, and for a builtin
    # that means parsing its text signature with tokenize (~8 ms of `import daglite_core`).
    return tuple(value)


def _cache_mode(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in CACHE_MODES:
        msg = f"DagliteSettings.cache_mode={value!r}: expected one of {', '.join(CACHE_MODES)}"
        raise ValueError(msg)


def _positive(instance: Any, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 1:
        msg = f"DagliteSettings.{attribute.name}={value!r} must be at least 1"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class DagliteSettings:
    """Settings of a session; each field's default comes from an environment variable.

    Fields are read from the environment when the object is created, so
    ``DagliteSettings()`` reflects the environment at that moment; an explicit
    argument always wins over the environment.

    ================== ============================ ==========================
    field              environment variable         default
    ================== ============================ ==========================
    backend            ``DAGLITE_BACKEND``          ``"inline"``
    cache_store        ``DAGLITE_CACHE_STORE``      ``None`` (provider default)
    dataset_store      ``DAGLITE_DATASET_STORE``    ``None`` (provider default)
    cache_mode         ``DAGLITE_CACHE_MODE``       ``"on"`` (``off``, ``refresh``)
    disable_plugins    ``DAGLITE_DISABLE_PLUGINS``  ``()`` (comma separated)
    plugins_autoload   ``DAGLITE_PLUGINS_AUTOLOAD`` ``True``
    strict_hooks       ``DAGLITE_STRICT_HOOKS``     ``False``
    max_workers        ``DAGLITE_MAX_WORKERS``      ``None`` (CPU count)
    mp_start_method    ``DAGLITE_MP_START_METHOD``  ``None`` (platform default)
    ================== ============================ ==========================

    ``cache_mode="refresh"`` runs every cached task and overwrites its entry;
    ``"off"`` neither reads nor writes the cache.

    daglite 0.9's pool sizes are accepted under their names:
    ``max_backend_threads`` (threads of the ``thread`` backend) and
    ``max_parallel_processes`` (workers of the ``process`` backend). Each
    overrides ``max_workers`` for its backend only; left ``None`` (the default)
    the backend uses ``max_workers`` (see :attr:`thread_workers` and
    :attr:`process_workers`). Unlike daglite, ``None`` is their default rather
    than a CPU-derived number, so one ``max_workers`` or ``DAGLITE_MAX_WORKERS``
    still sizes both pools.
    """

    backend: str = attrs.field(factory=lambda: _env_str("DAGLITE_BACKEND") or "inline")
    cache_store: Any = attrs.field(factory=lambda: _env_str("DAGLITE_CACHE_STORE"))
    dataset_store: Any = attrs.field(factory=lambda: _env_str("DAGLITE_DATASET_STORE"))
    cache_mode: str = attrs.field(
        factory=lambda: (_env_str("DAGLITE_CACHE_MODE") or "on").lower(), validator=_cache_mode
    )
    disable_plugins: tuple[str, ...] = attrs.field(
        factory=lambda: _env_names("DAGLITE_DISABLE_PLUGINS"), converter=_to_tuple
    )
    plugins_autoload: bool = attrs.field(
        factory=lambda: _env_bool("DAGLITE_PLUGINS_AUTOLOAD", True)
    )
    strict_hooks: bool = attrs.field(factory=lambda: _env_bool("DAGLITE_STRICT_HOOKS", False))
    max_workers: int | None = attrs.field(
        factory=lambda: _env_int("DAGLITE_MAX_WORKERS"), validator=_positive
    )
    mp_start_method: str | None = attrs.field(
        factory=lambda: _env_str("DAGLITE_MP_START_METHOD")
    )
    # daglite 0.9 names (compatibility): per-backend overrides of max_workers.
    max_backend_threads: int | None = attrs.field(default=None, validator=_positive)
    max_parallel_processes: int | None = attrs.field(default=None, validator=_positive)

    def evolve(self, **changes: Any) -> DagliteSettings:
        """A copy with ``changes`` applied."""
        return attrs.evolve(self, **changes)

    @property
    def workers(self) -> int:
        """``max_workers``, or the number of CPUs."""
        return self.max_workers or os.cpu_count() or 1

    @property
    def thread_workers(self) -> int:
        """Threads of the ``thread`` backend: ``max_backend_threads``, else :attr:`workers`."""
        return self.max_backend_threads or self.workers

    @property
    def process_workers(self) -> int:
        """Workers of the ``process`` backend: ``max_parallel_processes``, else :attr:`workers`."""
        return self.max_parallel_processes or self.workers
