"""Sessions and workflows."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from ._context import SESSION, SessionState, current_state
from ._errors import BackendError
from ._hooks import _registry, session_entries
from ._lazy import on_first_use

if TYPE_CHECKING:
    from . import _records, _settings
    from ._protocols import Backend
    from ._settings import DagliteSettings
else:
    # Not at import: ids need uuid, settings are an attrs class (~1 ms): the first session.
    _records = on_first_use(globals(), "_records")
    _settings = on_first_use(globals(), "_settings")

P = ParamSpec("P")
R = TypeVar("R")


def _open(
    backend: str | Backend | None,
    cache_store: Any,
    dataset_store: Any,
    plugins: Iterable[object] | None,
    settings: DagliteSettings | None,
) -> SessionState:
    outer = SESSION.get()
    if settings is None:
        settings = outer.settings if outer is not None else _settings.DagliteSettings()
    base = outer.plugins if outer is not None else _registry.plugin_set(settings.strict_hooks)
    if settings.disable_plugins:
        _registry.check_disabled(settings.disable_plugins)
    kept = base.without(settings.disable_plugins, settings.plugins_autoload)
    compiled = kept.plus(session_entries(plugins, kept), settings.strict_hooks)
    given = None
    if outer is not None:
        backend = backend or outer.backend
        given = outer._given  # an outer session's backend instance, used (not closed) here
        cache_store = cache_store if cache_store is not None else outer.cache_spec
        dataset_store = dataset_store if dataset_store is not None else outer.dataset_spec
    state = SessionState(
        _records.new_id(), settings, compiled,
        backend=backend, cache_store=cache_store, dataset_store=dataset_store, given=given,
    )
    if state.backend not in state._given and state.backend not in state.backend_classes():
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
        try:
            state.plugins.notify("after_session_end", state.id, time.perf_counter() - started)
        finally:
            state.plugins.report_failures(state.id)


@contextmanager
def session(
    *,
    backend: str | Backend | None = None,
    cache_store: Any = None,
    dataset_store: Any = None,
    plugins: Iterable[object] | None = None,
    settings: DagliteSettings | None = None,
) -> Iterator[SessionState]:
    """Open a session: the plugins, stores and backend that task calls inside use.

    :param backend: default backend of ``map_tasks`` (``settings.backend`` if
        ``None``); an unknown name is a :class:`BackendError` listing the known ones.
        A :class:`~daglite_core.Backend` *instance* (e.g.
        ``daglite_dask.DaskBackend(address=...)``) is used as given: it answers to
        its name and aliases in this session and nested ones, and is closed when
        this session ends.
    :param cache_store: the cache store for ``cache=True`` tasks: a path or a store.
    :param dataset_store: the dataset store: a path or a store.
    :param plugins: plugins for this session only: objects, or names of installed
        entry-point plugins (loaded even when autoload is off); one name or one
        module may be given alone. An object that is already registered (globally,
        in an enclosing session, or twice here) is a :class:`PluginError`.
    :param settings: :class:`DagliteSettings` (default: from the environment).

    A session opened inside another extends it: it sees the outer session's
    plugins, and takes its backend, stores and settings unless given. Opening and
    closing a session starts no thread; pools a backend started are shut down
    (waiting for their workers) when it closes, before ``after_session_end``.

    A hook implementation that raises is reported once per (plugin, hook) in the
    session, with its traceback; when the session ends, one more line per pair
    says how many further failures there were.
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
    backend: str | Backend | None = None,
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
            msg = f"@workflow can only be applied to callable functions; got {func!r}"
            raise TypeError(msg)
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            msg = (
                f"@workflow cannot wrap generator functions ({func.__qualname__!r} is one): use "
                "@task for a generator function, or collect its items inside the workflow"
            )
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

    def get_typed_params(self) -> dict[str, Any]:
        """Each parameter's name mapped to its type annotation (``None`` if it has none).

        As in daglite 0.9: annotations are resolved with :func:`typing.get_type_hints`
        (so ``from __future__ import annotations`` strings become types, and
        ``Annotated`` extras are stripped); if they cannot be resolved (e.g. a
        forward reference to an undefined name), every value is ``None``.
        Parameters keep the signature's order, ``*args``/``**kwargs`` included.
        """
        import typing

        try:
            hints = typing.get_type_hints(self.func)
        except Exception:  # noqa: BLE001 - daglite 0.9 treats unresolvable hints as absent
            hints = {}
        return {name: hints.get(name) for name in self.signature.parameters}

    def has_typed_params(self) -> bool:
        """Whether every parameter has a (resolvable) type annotation; ``True`` with none."""
        return all(hint is not None for hint in self.get_typed_params().values())

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} of {self.func!r}>"


@overload
def workflow(func: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    description: str | None = None,
    backend: str | Backend | None = None,
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

