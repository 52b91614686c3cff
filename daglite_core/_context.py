"""The state a task call reads: the active session (or the process default) and the running task."""

from __future__ import annotations

import atexit
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

from ._errors import BackendError, MissingPluginError
from ._hooks import PluginSet, _registry
from ._lazy import on_first_use
from ._vars import FRAME as FRAME
from ._vars import SESSION as SESSION

if TYPE_CHECKING:
    import uuid

    from . import _records, _settings
    from ._metadata import TaskMetadata
    from ._protocols import Backend, CacheStore, DatasetStore
    from ._settings import DagliteSettings
    from ._task import BaseTask
else:
    # Not at import: ids need uuid, settings are an attrs class (~1 ms); the first
    # session or bare call loads them.
    _records = on_first_use(globals(), "_records")
    _settings = on_first_use(globals(), "_settings")

P = ParamSpec("P")
R = TypeVar("R")


class Frame(NamedTuple):
    """The task call whose body is running (read by nested calls and ``save_dataset``).

    ``map_id``/``parent_id`` are set only for a map item on the fast path (no
    ``metadata``): :func:`current_metadata` puts them in the record it builds.
    ``item_id`` (an int) is set for a process-map item whose metadata is built only
    on demand (the relay sent it compactly): the record then has that id.

    The hot paths build it with ``tuple.__new__(Frame, (...))`` (the NamedTuple
    constructor costs ~0.15 µs more): ``_fast.run_fast``, ``_lifecycle.call_plain``
    and the process worker's observed loop. A new field goes at the end, with a
    default, and into those tuples (``tests/test_records.py`` checks their arity).
    """

    task: BaseTask[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    metadata: TaskMetadata | None
    map_index: int | None
    backend: str
    map_id: Any = None
    parent_id: Any = None
    item_id: int | None = None




class _Reporter:
    """Reporter for hooks that run in the session's own process: calls ``on_report``."""

    __slots__ = ("state",)

    def __init__(self, state: SessionState) -> None:
        self.state = state

    def report(self, event: str, data: Any = None) -> None:
        frame = FRAME.get()
        self.state.plugins.notify("on_report", event, data, frame_metadata(frame))

    def __reduce__(self) -> tuple[Any, ...]:
        # Recorded in a worker's hook arguments, it travels as a reference: where
        # it is unpickled it is the reporter of the session current there.
        return (session_reporter, ())


def session_reporter() -> Any:
    """The reporter of the current session (of the process default outside any)."""
    return current_state().reporter


def _store_key(spec: Any) -> Any:
    if spec is None or isinstance(spec, (str, bytes)):
        return spec
    if isinstance(spec, os.PathLike):
        return os.fspath(spec)
    return id(spec)


class SessionState:
    """Everything one session owns: settings, compiled plugins, stores and backends.

    The process default (used by calls outside any session) is one of these too.
    Stores and backends are created on first use and shared by the session's
    threads; backends are closed by :meth:`close`.

    ``backend`` may be a backend *instance* (any object following
    :class:`~daglite_core.Backend`, e.g. ``DaskBackend(address=...)``): it answers
    to its ``name`` and ``aliases`` in this session (before any provided class of
    that name), is its default backend, and is closed with the session. Sessions
    nested in this one use it too without closing it (``given`` passes it on).
    """

    def __init__(
        self,
        session_id: uuid.UUID,
        settings: DagliteSettings,
        plugins: PluginSet,
        *,
        backend: str | Backend | None = None,
        cache_store: Any = None,
        dataset_store: Any = None,
        in_worker: bool = False,
        given: dict[str, Backend] | None = None,
    ) -> None:
        self.id = session_id
        self.settings = settings
        self.plugins = plugins
        self.observed = plugins.observes_nodes
        """Some plugin observes successful calls: no call takes the fast path."""
        self.items_observed = plugins.observes_items
        """Some plugin observes map items one by one: items leave the fast path (see
        ``daglite_map_progress`` on the ``map_progress`` hook)."""
        self.listening = plugins.observes_nodes or plugins.observes_failures
        """Some plugin implements a node hook: a call that failed on the fast path goes on
        in the full lifecycle (hooks, retry policies)."""
        self._backends: dict[str, Backend] = {}
        self._given: dict[str, Backend] = dict(given or {})
        if backend is not None and not isinstance(backend, str):
            backend = self._adopt(backend)
        self.backend: str = backend or settings.backend
        self.cache_spec = cache_store if cache_store is not None else settings.cache_store
        self.dataset_spec = dataset_store if dataset_store is not None else settings.dataset_store
        self.in_worker = in_worker
        self.source: PluginSet | None = None  # the registry set a default state was built from
        self.coordinator_plugins: PluginSet | None = None  # see _process._worker.coordinator_plugins
        self.reporter: Any = _Reporter(self)
        self._lock = threading.Lock()
        self._cache_stores: dict[Any, CacheStore] = {}
        self._dataset_stores: dict[Any, DatasetStore] = {}
        self._backend_classes: dict[str, type[Backend]] | None = None

    # -- stores -------------------------------------------------------------

    def cache_store(self, spec: Any, task_name: str) -> CacheStore:
        """The cache store for ``spec`` (``None``: the session's), created once."""
        what = f"Task {task_name!r} has cache=True but"
        return self._store(spec, self.cache_spec, self._cache_stores, "provide_cache_store", what, "cache", "daglite-diskcache")  # type: ignore[no-any-return]

    def dataset_store(self, spec: Any, what: str) -> DatasetStore:
        """The dataset store for ``spec`` (``None``: the session's), created once."""
        return self._store(spec, self.dataset_spec, self._dataset_stores, "provide_dataset_store", f"{what} needs a dataset store but", "dataset", "daglite-datasets")  # type: ignore[no-any-return]

    def _store(self, spec: Any, default: Any, made: dict[Any, Any], hook: str, what: str, kind: str, plugin: str) -> Any:
        """A store object given as such, or the one ``hook`` provides for a path (once per spec)."""
        if spec is None:
            spec = default
        if spec is not None and not isinstance(spec, (str, bytes, os.PathLike)):
            return spec
        key = _store_key(spec)
        store = made.get(key)
        if store is None:
            with self._lock:
                store = made.get(key)
                if store is None:
                    store = self.plugins.first(hook, spec=spec, settings=self.settings)
                    if store is None:
                        from ._hooks import missing_plugin_hint

                        msg = f"{what} no {kind} store plugin is enabled; {missing_plugin_hint(plugin, self.settings)}"
                        raise MissingPluginError(msg)
                    made[key] = store
        return store

    def resolved_stores(self) -> tuple[dict[Any, CacheStore], dict[Any, DatasetStore]]:
        """Copies of the cache and dataset stores made so far, by spec (sent to process workers)."""
        with self._lock:
            return dict(self._cache_stores), dict(self._dataset_stores)

    def adopt_stores(self, cache_stores: dict[Any, CacheStore], dataset_stores: dict[Any, DatasetStore]) -> None:
        """Use these stores for their specs unless this state already made one (a worker's
        state adopting the stores its session resolved)."""
        with self._lock:
            for key, cache in cache_stores.items():
                self._cache_stores.setdefault(key, cache)
            for key, dataset in dataset_stores.items():
                self._dataset_stores.setdefault(key, dataset)

    # -- backends -----------------------------------------------------------

    def backend_classes(self) -> dict[str, type[Backend]]:
        """Every backend name and alias known to this session's plugins."""
        classes = self._backend_classes
        if classes is None:
            classes = {}
            # Providers are listed first-called first; the first to claim a name wins.
            for provided in self.plugins.collect("provide_backends"):
                for cls in provided:
                    for name in (cls.name, *cls.aliases):
                        classes.setdefault(name, cls)
            self._backend_classes = classes
        return classes

    def _adopt(self, backend: Backend) -> str:
        """Take a backend instance given to the session (closed with it); return its name."""
        name = getattr(backend, "name", None)
        if not isinstance(name, str) or not callable(getattr(backend, "run", None)) or not callable(getattr(backend, "close", None)):
            msg = (
                f"session(backend=...) takes a backend name or a Backend instance (with a str "
                f"'name', 'run' and 'close'), got {backend!r}"
            )
            raise TypeError(msg)
        for alias in (name, *getattr(backend, "aliases", ())):
            self._given[alias] = backend
        self._backends[name] = backend
        return name

    def get_backend(self, name: str) -> Backend:
        """The session's instance of backend ``name`` (created on first use)."""
        given = self._given.get(name)
        if given is not None:
            return given
        classes = self.backend_classes()
        cls = classes.get(name)
        if cls is None:
            raise BackendError(name, classes)
        backend = self._backends.get(cls.name)
        if backend is None:
            with self._lock:
                backend = self._backends.get(cls.name)
                if backend is None:
                    backend = cls(self.settings)  # type: ignore[call-arg]
                    self._backends[cls.name] = backend
        return backend

    def close(self) -> None:
        """Close every backend this session created (waits for their workers)."""
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            backend.close()

    def __repr__(self) -> str:
        return f"<SessionState {self.id} backend={self.backend!r}>"


_default: SessionState | None = None
_default_lock = threading.Lock()


def default_state() -> SessionState:
    """The state used outside any session: global plugins, settings from the environment."""
    state = _default
    if state is not None and state.source is _registry._set:
        return state
    return _rebuild_default()


def _rebuild_default() -> SessionState:
    global _default
    with _default_lock:
        old = _default
        settings = old.settings if old is not None else _settings.DagliteSettings()
        base = _registry.plugin_set(settings.strict_hooks)
        if old is not None and old.source is base:
            return old
        plugins = base.without(settings.disable_plugins, settings.plugins_autoload)
        state = SessionState(old.id if old is not None else _records.new_id(), settings, plugins)
        state.source = base
        if old is not None:
            # Keep the stores and pools already made: only the plugins changed.
            state._cache_stores = old._cache_stores
            state._dataset_stores = old._dataset_stores
            state._backends = old._backends
        _default = state
        return state


def reset_default_state() -> None:
    """Close the default state's backends and forget it (settings re-read from env)."""
    global _default
    with _default_lock:
        old, _default = _default, None
    if old is not None:
        old.close()


def current_state() -> SessionState:
    """The active session's state, else the process default."""
    return SESSION.get() or default_state()


atexit.register(reset_default_state)


def current_metadata() -> TaskMetadata | None:
    """The :class:`TaskMetadata` of the task whose body is running, or ``None``.

    Built on demand for calls that ran without hooks (no metadata was needed then):
    such a record has a fresh ``id`` (nothing observed the call, so nothing links
    to it) and the session's ``session_id``; for a map item its ``map_id`` and
    ``parent_id`` are those of its fan-out (so a hook fired from inside the item,
    such as ``before_map`` of a nested map, can tell which map's item started it),
    for a direct call both are ``None``.
    """
    frame = FRAME.get()
    if frame is None:
        return None
    return frame.metadata or _build_metadata(frame)


def frame_metadata(frame: Frame | None) -> TaskMetadata | None:
    """The metadata hooks get for the call of ``frame``: its own, or, for an item whose
    metadata is built on demand (``item_id``), that record; ``None`` for a fast call."""
    if frame is None:
        return None
    if frame.metadata is not None or frame.item_id is None:
        return frame.metadata
    return _build_metadata(frame)


def frame_parent_id(frame: Frame | None) -> Any:
    """The ``parent_id`` of a call made inside ``frame``'s call.

    The running task's id; for a map item with no metadata, its id when it has one
    (``item_id``), else (the fast path, hence no id) its map's ``map_id``, so that a
    plugin that counts such items (``daglite_map_progress``) can still place what
    they start under their map; ``None`` at top level or in a direct call on the
    fast path.
    """
    if frame is None:
        return None
    metadata = frame.metadata
    if metadata is not None:
        return metadata.id
    if frame.item_id is not None:
        return _records.uuid_from_int(frame.item_id)
    return frame.map_id


def _build_metadata(frame: Frame) -> TaskMetadata:
    from ._metadata import make_metadata

    task = frame.task
    inputs = task.bind(frame.args, frame.kwargs)
    return make_metadata(
        _records.new_id() if frame.item_id is None else _records.uuid_from_int(frame.item_id),
        task.resolve_name(inputs, frame.map_index), frame.backend, inputs,
        task.description, frame.map_index, frame.parent_id, task.is_async, task.is_generator,
        frame.map_id, current_state().id,
    )


def bind_session(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` wrapped to run in the caller's session and running task, from any thread.

    Task calls in a thread that a task body starts itself (``threading.Thread``,
    an executor of its own) run *outside* the session: a new thread starts with
    an empty context. Wrap the target with this to keep the session's plugins,
    stores and backend, and to make the calls children of the running task::

        threading.Thread(target=bind_session(work), args=(x,)).start()
        pool.map(bind_session(score), rows)

    Each call runs in its own copy of the context captured here, so the wrapper
    may be called from several threads at once.
    """
    context = contextvars.copy_context()

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(func, *args, **kwargs)

    return bound


def call_hook(hook: str, **kwargs: Any) -> Any:
    """Call any hook by keyword on the active session's plugins (the global ones outside).

    As pluggy's ``pm.hook.<name>(**kwargs)``: arguments are checked against the
    spec (a missing or unknown one is a ``TypeError``; spec parameters with a
    default may be left out). Returns the first non-``None`` answer for a
    ``firstresult`` hook, else the list of non-``None`` answers. An observer
    hook's failing implementation is reported and the others still run; a
    provider hook's (``provide_*``) raises :class:`PluginError` naming the
    plugin, chained to the error.
    """
    return current_state().plugins.call(hook, **kwargs)
