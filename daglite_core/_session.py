"""Sessions and workflows."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._context import SESSION, SessionState, current_state
from ._errors import BackendError
from ._metadata import new_id
from ._plugins import _registry, session_entries
from ._settings import DagliteSettings

P = ParamSpec("P")
R = TypeVar("R")


def _open(
    backend: str | None,
    cache_store: Any,
    dataset_store: Any,
    plugins: Iterable[object] | None,
    settings: DagliteSettings | None,
) -> SessionState:
    outer = SESSION.get()
    if settings is None:
        settings = outer.settings if outer is not None else DagliteSettings()
    base = outer.plugins if outer is not None else _registry.plugin_set(settings.strict_hooks)
    compiled = base.without(settings.disable_plugins, settings.plugins_autoload).plus(
        session_entries(plugins or ()), settings.strict_hooks
    )
    if outer is not None:
        backend = backend or outer.backend
        cache_store = cache_store if cache_store is not None else outer.cache_spec
        dataset_store = dataset_store if dataset_store is not None else outer.dataset_spec
    state = SessionState(
        new_id(), settings, compiled,
        backend=backend, cache_store=cache_store, dataset_store=dataset_store,
    )
    if state.backend not in state.backend_classes():
        raise BackendError(state.backend, state.backend_classes())
    return state


def _start(state: SessionState) -> Any:
    token = SESSION.set(state)
    try:
        state.plugins.notify("before_session_start", state.id)
    except BaseException:
        SESSION.reset(token)
        state.close()
        raise
    return token


def _end(state: SessionState, token: Any, started: float) -> None:
    SESSION.reset(token)
    try:
        state.close()
    finally:
        state.plugins.notify("after_session_end", state.id, time.perf_counter() - started)


@contextmanager
def session(
    *,
    backend: str | None = None,
    cache_store: Any = None,
    dataset_store: Any = None,
    plugins: Iterable[object] | None = None,
    settings: DagliteSettings | None = None,
) -> Iterator[SessionState]:
    """Open a session: the plugins, stores and backend that task calls inside use.

    :param backend: default backend of ``map_tasks`` (``settings.backend`` if
        ``None``); an unknown name is a :class:`BackendError` listing the known ones.
    :param cache_store: the cache store for ``cache=True`` tasks: a path or a store.
    :param dataset_store: the dataset store: a path or a store.
    :param plugins: plugins for this session only: objects, or names of installed
        entry-point plugins (loaded even when autoload is off).
    :param settings: :class:`DagliteSettings` (default: from the environment).

    A session opened inside another extends it: it sees the outer session's
    plugins, and takes its backend, stores and settings unless given. Opening and
    closing a session starts no thread; pools a backend started are shut down
    (waiting for their workers) when it closes, before ``after_session_end``.
    """
    state = _open(backend, cache_store, dataset_store, plugins, settings)
    started = time.perf_counter()
    token = _start(state)
    try:
        yield state
    finally:
        _end(state, token, started)


@asynccontextmanager
async def async_session(
    *,
    backend: str | None = None,
    cache_store: Any = None,
    dataset_store: Any = None,
    plugins: Iterable[object] | None = None,
    settings: DagliteSettings | None = None,
) -> AsyncIterator[SessionState]:
    """:func:`session` for ``async with``; same parameters and semantics."""
    with session(
        backend=backend, cache_store=cache_store, dataset_store=dataset_store,
        plugins=plugins, settings=settings,
    ) as state:
        yield state


class Workflow(Generic[P, R]):
    """A named entry point: calling it runs the function inside a session.

    Called inside an open session, it joins that session (its plugins see every
    task) unless the workflow was given session options, in which case it opens a
    session nested in (and extending) the outer one.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        **session_options: Any,
    ) -> None:
        if isinstance(func, type) or not callable(func):
            msg = f"@workflow needs a function, got {func!r}"
            raise TypeError(msg)
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            msg = f"@workflow cannot decorate the generator function {func.__qualname__!r}"
            raise TypeError(msg)
        unknown = set(session_options) - {"backend", "cache_store", "dataset_store", "plugins", "settings"}
        if unknown:
            msg = f"Workflow {func.__name__!r}: unknown option(s) {sorted(unknown)}"
            raise TypeError(msg)
        functools.update_wrapper(self, func)
        self.func = func
        self.name = name or func.__name__
        self.description = description if description is not None else inspect.cleandoc(func.__doc__ or "")
        self.signature = inspect.signature(func)
        self.is_async = inspect.iscoroutinefunction(func)
        self.session_options = session_options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_async:
            return self._acall(*args, **kwargs)  # type: ignore[return-value]
        if SESSION.get() is not None and not self.session_options:
            return self.func(*args, **kwargs)
        with session(**self.session_options):
            return self.func(*args, **kwargs)

    async def _acall(self, *args: Any, **kwargs: Any) -> Any:
        if SESSION.get() is not None and not self.session_options:
            return await self.func(*args, **kwargs)  # type: ignore[misc]
        async with async_session(**self.session_options):
            return await self.func(*args, **kwargs)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} of {self.func!r}>"


@overload
def workflow(func: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    description: str | None = None,
    backend: str | None = None,
    cache_store: Any = None,
    dataset_store: Any = None,
    plugins: Iterable[object] | None = None,
    settings: DagliteSettings | None = None,
) -> Callable[[Callable[P, R]], Workflow[P, R]]: ...


def workflow(func: Any = None, /, **options: Any) -> Any:
    """Make ``func`` a :class:`Workflow`: bare ``@workflow`` or ``@workflow(**options)``.

    Options: ``name``, ``description`` and the :func:`session` options (``backend``,
    ``cache_store``, ``dataset_store``, ``plugins``, ``settings``).
    """
    if func is None:
        return functools.partial(Workflow, **options)
    return Workflow(func, **options)


def active_session() -> SessionState:
    """The active session's state (the process default outside any session)."""
    return current_state()

