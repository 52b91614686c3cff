"""The ``@task`` decorator and the four task kinds."""

from __future__ import annotations

import functools
import inspect
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from ._codegen import define
from ._context import SESSION, default_state
from ._fast import run_fast
from ._lazy import on_first_use
from ._templates import fill, template_fields

if TYPE_CHECKING:
    from . import _lifecycle
    from ._protocols import CacheStore
else:
    # The lifecycle (and TaskMetadata with it) is imported by the first call that leaves
    # the fast path: a plain call in an unobserved scope never needs it.
    _lifecycle = on_first_use(globals(), "_lifecycle")

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Y = TypeVar("Y")

_UNSET: Any = object()


class BaseTask(Generic[P, R]):
    """A decorated function and its options; calling it runs the function eagerly.

    Read-only attributes: ``func``, ``name`` (the template), ``description``,
    ``signature``, ``backend``, ``retries``, ``timeout``, ``cache``,
    ``cache_store``, ``cache_ttl``, ``cache_hash``, ``dataset``, ``dataset_store``,
    ``dataset_format``, ``is_async``, ``is_generator``. Use :meth:`with_options`
    for a copy with other options.
    """

    is_async = False
    is_generator = False

    def __init__(
        self,
        func: Callable[P, Any],
        *,
        name: str | None = None,
        description: str | None = None,
        backend: str | None = None,
        retries: int = 0,
        timeout: float | None = None,
        cache: bool | str | os.PathLike[str] | CacheStore = False,
        cache_store: Any = None,
        cache_ttl: float | None = None,
        cache_hash: Callable[[Callable[..., Any], dict[str, Any]], str] | None = None,
        dataset: str | None = None,
        dataset_store: Any = None,
        dataset_format: str | None = None,
    ) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]
        self.name = name if name is not None else getattr(func, "__name__", type(func).__name__)
        self.description = (
            description if description is not None else inspect.cleandoc(func.__doc__ or "")
        )
        self.signature = inspect.signature(func)
        if cache is not True and cache is not False:
            # Shorthand: cache="dir" or cache=SomeStore() means cache=True in that store.
            if cache_store is not None:
                msg = f"Task {self.name!r}: give the store either as cache= or as cache_store=, not both"
                raise ValueError(msg)
            cache_store, cache = cache, True
        self.backend = backend
        self.retries = retries
        self.timeout = timeout
        self.cache = cache
        self.cache_store = cache_store
        self.cache_ttl = cache_ttl
        self.cache_hash = cache_hash
        self.dataset = dataset
        self.dataset_store = dataset_store
        self.dataset_format = dataset_format
        self._options = {
            "name": name,
            "description": description,
            "backend": backend,
            "retries": retries,
            "timeout": timeout,
            "cache": cache,
            "cache_store": cache_store,
            "cache_ttl": cache_ttl,
            "cache_hash": cache_hash,
            "dataset": dataset,
            "dataset_store": dataset_store,
            "dataset_format": dataset_format,
        }
        self._validate()
        params = list(self.signature.parameters.values())
        simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self._simple_bind = simple
        self._names = tuple(p.name for p in params)
        self._nameset = frozenset(self._names)
        self._npos = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        # A name with {map_index} leaves the no-hook fast path, so that a call outside
        # any map fails (resolve_name) instead of running under a name with "None".
        self._plain = not (
            self.cache or self.dataset or self.retries or self.timeout is not None or "map_index" in self._name_fields
        )
        self._cache_only = bool(self.cache) and self.dataset is None
        self._binder = _compile_binder(params) if simple else None

    # -- validation ---------------------------------------------------------

    def _validate(self) -> None:
        where = f"Task {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            msg = f"{where}: name must be a non-empty string"
            raise ValueError(msg)
        if "." in self.name:
            msg = f"{where}: names cannot contain '.' (it separates module and name in the CLI)"
            raise ValueError(msg)
        params = set(self.signature.parameters)
        self._name_fields = template_fields(self.name, f"task {self.name!r} name", params)
        if self.backend is not None and not isinstance(self.backend, str):
            msg = f"{where}: backend must be a backend name (str), got {self.backend!r}"
            raise TypeError(msg)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            msg = f"{where}: retries must be an int, got {self.retries!r}"
            raise TypeError(msg)
        if self.retries < 0:
            msg = f"{where}: retries must be >= 0, got {self.retries}"
            raise ValueError(msg)
        for option in ("timeout", "cache_ttl"):
            value = getattr(self, option)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"{where}: {option} must be a number of seconds, got {value!r}"
                raise TypeError(msg)
            if value <= 0:
                msg = f"{where}: {option} must be > 0 seconds, got {value}"
                raise ValueError(msg)
        if self.cache_hash is not None and not callable(self.cache_hash):
            msg = f"{where}: cache_hash must be a callable (func, inputs) -> str"
            raise TypeError(msg)
        if self.dataset is not None:
            if not isinstance(self.dataset, str) or not self.dataset:
                msg = f"{where}: dataset must be a key template string, got {self.dataset!r}"
                raise TypeError(msg)
            template_fields(self.dataset, f"task {self.name!r} dataset", params)
        if self.is_generator:
            for option, bad in (
                ("cache", self.cache),
                ("retries", self.retries),
                ("timeout", self.timeout is not None),
                ("dataset", self.dataset is not None),
            ):
                if bad:
                    # daglite 0.9's sentence first ("Caching is not supported ..."): users match on it.
                    msg = (
                        f"{_GENERATOR_OPTION[option]} not supported for generator tasks: "
                        f"{where} sets {option}=; its items are streamed to the caller, "
                        "so they cannot be replayed, stored or time-limited"
                    )
                    raise ValueError(msg)

    # -- helpers used by the lifecycle ---------------------------------------

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults applied; ``TypeError`` if they do not fit."""
        if not kwargs and self._binder is not None:
            # Positional call: Python binds it (0.2 us, against 0.45 for dict(zip())).
            try:
                return self._binder(*args)
            except TypeError:
                return self._slow_bind(args, kwargs)
        if self._simple_bind and len(args) <= self._npos:
            inputs = dict(zip(self._names, args))  # noqa: B905 - fewer args than names: defaults fill the rest
            if kwargs:
                if not (kwargs.keys() <= self._nameset and kwargs.keys().isdisjoint(inputs)):
                    return self._slow_bind(args, kwargs)
                inputs.update(kwargs)
            if len(inputs) < len(self._names):
                for key, value in self._defaults.items():
                    inputs.setdefault(key, value)
                if len(inputs) < len(self._names):
                    return self._slow_bind(args, kwargs)
            return inputs
        return self._slow_bind(args, kwargs)

    def _slow_bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            msg = f"Task {self.name!r} called with arguments that do not fit {self.signature}: {exc}"
            raise TypeError(msg) from exc
        bound.apply_defaults()
        return dict(bound.arguments)

    def resolve_name(self, inputs: dict[str, Any], map_index: int | None) -> str:
        """The call's name: placeholders filled, ``[i]`` appended in a map."""
        if not self._name_fields and map_index is None:
            return self.name
        if map_index is None and "map_index" in self._name_fields:
            msg = (
                f"Task {self.name!r} uses {{map_index}} in its name, but this call is not an "
                "item of map_tasks (call it through map_tasks, or drop {map_index})"
            )
            raise ValueError(msg)
        name = fill(self.name, inputs, map_index) if self._name_fields else self.name
        if map_index is not None and "map_index" not in self._name_fields:
            name = f"{name}[{map_index}]"
        return name

    def with_options(self, **options: Any) -> BaseTask[P, R]:
        """A copy of this task with some options changed (same function)."""
        check_options(self.name, options)
        return type(self)(self.func, **{**self._options, **options})

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # @task on a method: bind like a function does.
        if obj is None:
            return self
        return functools.partial(cast(Any, self), obj)

    def __reduce__(self) -> Any:
        # By reference when importable (module-level functions), else by value.
        module = getattr(self.func, "__module__", None)
        qualname = getattr(self.func, "__qualname__", "")
        if module and "<" not in qualname:
            return (_import_task, (module, qualname, type(self), self._options))
        return (type(self)._rebuild, (self.func, self._options))

    @classmethod
    def _rebuild(cls, func: Callable[..., Any], options: dict[str, Any]) -> BaseTask[..., Any]:
        return cls(func, **options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} of {self.func!r}>"


def _compile_binder(params: list[inspect.Parameter]) -> Callable[..., dict[str, Any]]:
    """A function with the task's (simple) signature returning its arguments as a dict.

    Called with positional arguments only, it gives what ``Signature.bind`` plus
    ``apply_defaults`` gives, in signature order, and raises ``TypeError`` exactly
    when they would. Defaults are the original objects (passed by name, not repr).
    """
    namespace: dict[str, Any] = {}
    parts: list[str] = []
    for index, param in enumerate(params):
        if param.kind is param.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        if param.default is param.empty:
            parts.append(param.name)
        else:
            namespace[f"_d{index}"] = param.default
            parts.append(f"{param.name}=_d{index}")
    body = ", ".join(f"{param.name!r}: {param.name}" for param in params)
    source = f"def _bind({', '.join(parts)}):\n    return {{{body}}}\n"
    return define(source, "_bind", "argument binder", namespace)  # type: ignore[no-any-return]


def _import_task(
    module: str, qualname: str, cls: type[BaseTask[..., Any]], options: dict[str, Any]
) -> BaseTask[..., Any]:
    """Unpickle a task: the module's object, or a task made from the module's function."""
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, BaseTask):
        return obj if obj._options == options else cls(obj.func, **options)
    return cls(obj, **options)


class SyncTask(BaseTask[P, R]):
    """A task of a plain function: calling it returns the result."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        state = SESSION.get() or default_state()
        if self._plain:
            if not state.observed:
                return run_fast(self, state, args, kwargs)  # type: ignore[no-any-return]
            return _lifecycle.call_plain(self, state, args, kwargs)  # type: ignore[no-any-return]
        if self._cache_only and not state.observed and state.settings.cache_mode == "on":
            return _lifecycle.run_cached(self, state, args, kwargs)  # type: ignore[no-any-return]
        return _lifecycle.run_sync(_lifecycle.Call(self, state, args, kwargs))  # type: ignore[no-any-return]


class AsyncTask(BaseTask[P, R]):
    """A task of a coroutine function: calling it returns an awaitable of the result."""

    is_async = True

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        state = SESSION.get() or default_state()
        return _lifecycle.run_async(_lifecycle.Call(self, state, args, kwargs))


class SyncTaskStream(BaseTask[P, Y]):
    """A task of a generator function: calling it returns an iterator of its items."""

    is_generator = True

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Iterator[Y]:
        state = SESSION.get() or default_state()
        return _lifecycle.run_stream(_lifecycle.Call(self, state, args, kwargs))


class AsyncTaskStream(BaseTask[P, Y]):
    """A task of an async generator function: calling it returns an async iterator."""

    is_async = True
    is_generator = True

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Y]:
        state = SESSION.get() or default_state()
        return _lifecycle.run_astream(_lifecycle.Call(self, state, args, kwargs))


def task_class(func: Callable[..., Any]) -> type[BaseTask[..., Any]]:
    """The task kind for ``func``."""
    target = inspect.unwrap(func)
    if inspect.isasyncgenfunction(target):
        return AsyncTaskStream
    if inspect.iscoroutinefunction(target):
        return AsyncTask
    if inspect.isgeneratorfunction(target):
        return SyncTaskStream
    return SyncTask


_GENERATOR_OPTION = {"cache": "Caching is", "retries": "Retries are", "timeout": "Timeouts are", "dataset": "Datasets are"}
"""daglite 0.9's subject for each option a generator task rejects (messages keep its wording)."""

_by_name: weakref.WeakValueDictionary[str, BaseTask[..., Any]] = weakref.WeakValueDictionary()


_OPTION_NAMES = (
    "name", "description", "backend", "retries", "timeout", "cache", "cache_store",
    "cache_ttl", "cache_hash", "dataset", "dataset_store", "dataset_format",
)


def check_options(task_name: str, options: dict[str, Any]) -> None:
    """``TypeError`` naming the task for unknown options, ``BackendError`` for an unknown backend.

    Decision (backend names at decoration time): a built-in name passes at once;
    any other name is checked against every backend the process's plugins
    provide -- registered ones, and installed entry-point plugins, enabled or not
    (see :meth:`_Registry.backend_names`): a backend supplied only by a plugin
    object given to ``session(plugins=[...])`` cannot be known when the task is
    decorated, so such a plugin must be installed (entry point) or registered with
    ``register_plugins`` before the task is decorated.
    """
    unknown = [o for o in options if o not in _OPTION_NAMES]
    if unknown:
        import difflib

        parts = []
        for option in unknown:
            close = difflib.get_close_matches(option, _OPTION_NAMES, n=1)
            parts.append(f"unknown option {option!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        msg = f"Task {task_name!r}: {'; '.join(parts)}; known options: {', '.join(_OPTION_NAMES)}"
        raise TypeError(msg)
    backend = options.get("backend")
    if isinstance(backend, str):
        from ._hooks import BUILTIN_BACKENDS, _registry

        if backend not in BUILTIN_BACKENDS:
            known = _registry.backend_names() | BUILTIN_BACKENDS
            if backend not in known:
                from ._errors import BackendError

                raise BackendError(backend, known, f"Task {task_name!r}")


def make_task(func: Any, **options: Any) -> BaseTask[..., Any]:
    """Wrap ``func`` in the right task kind; ``TypeError`` for classes and non-callables.

    Options are checked first (see :func:`check_options`), naming the task.
    """
    if isinstance(func, BaseTask):
        return func.with_options(**options) if options else func
    if isinstance(func, type):
        msg = (
            f"@task can only be applied to callable functions, not the class {func.__qualname__!r}; "
            "decorate a function or method"
        )
        raise TypeError(msg)
    if not callable(func):
        msg = (
            "@task can only be applied to callable functions (and map_tasks/gather_tasks each "
            f"expects a callable or @task-decorated function); got {type(func).__name__} {func!r}"
        )
        raise TypeError(msg)
    if options:
        name = options.get("name")
        check_options(name if isinstance(name, str) else getattr(func, "__name__", type(func).__name__), options)
    made = task_class(func)(func, **options)
    module = getattr(func, "__module__", None) or "?"
    _by_name[f"{module}.{getattr(func, '__qualname__', made.name)}"] = made
    _by_name[f"{module}:{made.name}"] = made
    return made


def find_task(name: str) -> BaseTask[..., Any]:
    """The live task registered under ``name``.

    ``name`` is a task's name (``"load"``), or qualified by its module
    (``"pkg.mod:load"`` or ``"pkg.mod.load"``). A short name shared by tasks of
    several modules is ambiguous. Raises ``LookupError`` naming the candidates.
    """
    found = _by_name.get(name)
    if found is not None:
        return found
    matches = {id(t): t for key, t in list(_by_name.items()) if key.rsplit(":", 1)[-1] == name}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        where = sorted(f"{t.func.__module__}:{t.name}" for t in matches.values())
        msg = f"Task name {name!r} is ambiguous; qualify it with its module: {', '.join(where)}"
        raise LookupError(msg)
    known = sorted({key.rsplit(":", 1)[-1] for key in list(_by_name) if ":" in key})
    msg = f"No task named {name!r} is defined (import its module first); known tasks: {', '.join(known) or 'none'}"
    raise LookupError(msg)


if TYPE_CHECKING:  # the return type of @task(...) with options: for type checkers only

    class _TaskDecorator(Protocol):
        @overload
        def __call__(self, func: Callable[P, AsyncGenerator[Y, Any]]) -> AsyncTaskStream[P, Y]: ...  # type: ignore[overload-overlap]
        @overload
        def __call__(self, func: Callable[P, Coroutine[Any, Any, R]]) -> AsyncTask[P, R]: ...  # type: ignore[overload-overlap]
        @overload
        def __call__(self, func: Callable[P, Generator[Y, Any, Any]]) -> SyncTaskStream[P, Y]: ...  # type: ignore[overload-overlap]
        @overload
        def __call__(self, func: Callable[P, R]) -> SyncTask[P, R]: ...


@overload
def task(func: Callable[P, AsyncGenerator[Y, Any]], /) -> AsyncTaskStream[P, Y]: ...  # type: ignore[overload-overlap]
@overload
def task(func: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...  # type: ignore[overload-overlap]
@overload
def task(func: Callable[P, Generator[Y, Any, Any]], /) -> SyncTaskStream[P, Y]: ...  # type: ignore[overload-overlap]
@overload
def task(func: Callable[P, R], /) -> SyncTask[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    backend: str | None = None,
    retries: int = 0,
    timeout: float | None = None,
    cache: bool | str | os.PathLike[str] | CacheStore = False,
    cache_store: Any = None,
    cache_ttl: float | None = None,
    cache_hash: Callable[[Callable[..., Any], dict[str, Any]], str] | None = None,
    dataset: str | None = None,
    dataset_store: Any = None,
    dataset_format: str | None = None,
) -> _TaskDecorator: ...


def task(func: Any = _UNSET, /, **options: Any) -> Any:
    """Make ``func`` a task: bare ``@task`` or ``@task(**options)``.

    Calling the task runs ``func`` immediately and returns its result (for a
    coroutine function, an awaitable; for a generator function, an iterator),
    firing the lifecycle hooks, using the cache and saving the dataset as
    configured. Options:

    - ``name``: the task's name (default: the function's); may hold ``{param}``
      and ``{map_index}`` placeholders; may not contain ``.``.
    - ``description``: default: the docstring.
    - ``backend``: the default backend when the task is mapped.
    - ``retries``: retry a failing call up to this many times (``retries + 1``
      attempts); ``KeyboardInterrupt``/``SystemExit`` and a call whose arguments do
      not fit the signature are never retried.
    - ``timeout``: seconds per attempt, enforced: ``TaskTimeoutError`` (after the
      last attempt). A sync body keeps running in an abandoned daemon thread (Python
      cannot stop a thread); an async body is cancelled.
    - ``cache``: ``True`` to reuse results for equal arguments (a path or a store
      is shorthand for ``cache=True, cache_store=...``); ``cache_store``,
      ``cache_ttl`` (seconds), ``cache_hash`` (``(func, inputs) -> str``).
    - ``dataset``: a key template (``"out/{region}.csv"``): the result is saved
      there after success; ``dataset_store``, ``dataset_format``.

    Generator tasks reject ``cache``, ``retries``, ``timeout`` and ``dataset``.
    """
    if func is _UNSET:
        return functools.partial(make_task, **options)
    if options:  # pragma: no cover - positional func with options is not a valid call
        msg = "task() takes either a function or keyword options"
        raise TypeError(msg)
    return make_task(func)
