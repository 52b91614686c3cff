"""The task lifecycle, written once for the four task kinds.

:class:`Call` holds every step of one call: cache lookup, dataset-key check,
hooks, attempts with retries and timeout, cache write and dataset save. The
four drivers below only differ in how they run the body (call, await, iterate,
async-iterate); each is a few lines around the same :class:`Call` methods.
"""

from __future__ import annotations

import contextvars
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._context import FRAME, Frame, SessionState, frame_metadata, frame_parent_id
from ._datasets import save_resolved
from ._errors import TaskError, TaskTimeoutError
from ._hooks import run_wrapped, wrap_attempt
from ._metadata import TaskMetadata, make_metadata
from ._miss import CACHE_MISS
from ._records import new_id
from ._templates import fill_key

if TYPE_CHECKING:
    from ._task import BaseTask

_perf = time.perf_counter
new_tuple = tuple.__new__
_FROM_FRAME: Any = object()


class CacheWarning(UserWarning):
    """The cache could not be used for one call; the call ran (or returned) anyway."""


class AttemptTimeout(TimeoutError):
    """One attempt of a task ran longer than its ``timeout``."""


def _is_call_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the call itself (arguments not fitting), not the body."""
    return isinstance(exc, TypeError) and exc.__traceback__ is not None and exc.__traceback__.tb_next is None


def fast_error(task: BaseTask[..., Any], exc: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseException:
    """The error for a failed call on the fast path (no hooks, no options)."""
    if _is_call_error(exc):
        task.bind(args, kwargs)  # raises a TypeError naming the task
    return TaskError(task.name, exc)


def after_fast_failure(
    task: BaseTask[..., Any],
    state: SessionState,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: Exception,
    map_index: int | None = None,
    backend: str = "inline",
    parent_id: Any = None,
    map_id: Any = None,
) -> Any:
    """A call on the fast path raised: fail it, or go on in the full lifecycle.

    The fast path runs a plain sync body with no hook at all. When a plugin of the
    scope listens only to failures (``on_node_error``, retries, a retry policy),
    successful calls stay on it and a failed one continues here as a :class:`Call`
    whose first attempt failed: the failure hooks fire and a policy may retry it.
    Its metadata is made now (``parent_id`` is the caller's map parent, else
    ``None``: nothing observed the call's start). Returns the value of a
    successful retry; raises the final error.
    """
    if not state.listening or _is_call_error(error):
        raise fast_error(task, error, args, kwargs) from error
    call = Call(task, state, args, kwargs, map_index, backend, parent_id, map_id)
    call.started = _perf()
    return run_sync(call, error)


def build_metadata(
    task: BaseTask[..., Any],
    state: SessionState,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    map_index: int | None,
    backend: str,
    parent_id: Any,
    map_id: Any,
) -> TaskMetadata:
    """The call's :class:`TaskMetadata`: arguments bound, name resolved, a new id.

    ``parent_id=_FROM_FRAME`` takes the parent from the task whose body is running
    (see :func:`~daglite_core._context.frame_parent_id`).
    """
    inputs = task.bind(args, kwargs)
    if parent_id is _FROM_FRAME:
        parent_id = frame_parent_id(FRAME.get())
    name = task.name if map_index is None and not task._name_fields else task.resolve_name(inputs, map_index)
    return make_metadata(
        new_id(), name, backend, inputs, task.description, map_index, parent_id, task.is_async, task.is_generator,
        map_id, state.id,
    )


class Call:
    """One call of a task: every step of the lifecycle."""

    __slots__ = (
        "task", "state", "args", "kwargs", "metadata", "frame", "hooks", "attempt",
        "started", "cache_key", "cache_store", "dataset_key", "dataset_format",
        "dataset_store", "value", "probe",
    )

    def __init__(
        self,
        task: BaseTask[..., Any],
        state: SessionState,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        map_index: int | None = None,
        backend: str = "inline",
        parent_id: Any = _FROM_FRAME,
        map_id: Any = None,
    ) -> None:
        metadata = build_metadata(task, state, args, kwargs, map_index, backend, parent_id, map_id)
        frame = new_tuple(Frame, (task, args, kwargs, metadata, map_index, backend, None, None, None))  # Frame(...) minus 0.15 µs
        self._fill(task, state, args, kwargs, metadata, frame)

    @classmethod
    def of(
        cls,
        task: BaseTask[..., Any],
        state: SessionState,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        metadata: TaskMetadata,
        frame: Frame,
    ) -> Call:
        """The call whose metadata and frame were already built (see :func:`call_plain`)."""
        call = cls.__new__(cls)
        call._fill(task, state, args, kwargs, metadata, frame)
        return call

    def _fill(
        self,
        task: BaseTask[..., Any],
        state: SessionState,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        metadata: TaskMetadata,
        frame: Frame,
    ) -> None:
        self.task = task
        self.state = state
        self.args = args
        self.kwargs = kwargs
        self.metadata = metadata
        self.frame = frame
        self.hooks = state.plugins if state.listening else None
        self.attempt = 0
        self.cache_key: str | None = None
        self.dataset_key: str | None = None
        self.probe: tuple[Any, str | None, Any] | None = None

    # -- before the body ------------------------------------------------------

    def begin(self) -> bool:
        """Check the dataset key, look in the cache, fire ``before_node_execute``.

        Returns ``True`` when the value came from the cache (in ``self.value``).
        """
        task = self.task
        if task.dataset is not None:
            self._resolve_dataset()
        if task.cache and self.state.settings.cache_mode != "off" and self._lookup():
            return True
        self.started = _perf()
        if self.hooks is not None:
            self.hooks.notify("before_node_execute", self.metadata, self.state.reporter)
        return False

    def _resolve_dataset(self) -> None:
        task, md = self.task, self.metadata
        key = fill_key(task.dataset, md.inputs, md.map_index, f"Task {md.name!r} dataset")  # type: ignore[arg-type]
        self.dataset_store = store = self.state.dataset_store(task.dataset_store, f"Task {md.name!r}")
        self.dataset_key, self.dataset_format = store.resolve(key, task.dataset_format)

    def _lookup(self) -> bool:
        md = self.metadata
        probe = self.probe
        if probe is None:
            probe = cache_probe(self.task, self.state, md.name, md.inputs)
        self.cache_store, key, value = probe
        self.cache_key = key
        if value is CACHE_MISS:
            return False
        self.value = value
        if self.dataset_key is not None and not self.dataset_store.exists(self.dataset_key):
            self._save_dataset(value)
        if self.hooks is not None:
            self.hooks.notify("on_cache_hit", md, self.state.reporter, key, value)
        return True

    # -- the body ---------------------------------------------------------------

    def body(self) -> Any:
        """Run one attempt of a sync body (in a watched thread when timed)."""
        task = self.task
        timeout = task.timeout
        hooks = self.hooks
        func = task.func if hooks is None or not hooks.wraps_attempts else wrap_attempt(hooks, self, task.func)
        if timeout is None:
            return func(*self.args, **self.kwargs)
        watch = _attempt_watch
        if watch is not None:
            watch(timeout)
        try:
            return _run_with_timeout(func, self.args, self.kwargs, timeout, self.metadata.name)
        finally:
            if watch is not None:
                watch(None)

    async def abody(self) -> Any:
        """Run one attempt of an async body (cancelled when timed out).

        A body that blocks the event loop cannot be cancelled in time: if it ends
        after its ``timeout`` its result is discarded and the attempt timed out.
        """
        task = self.task
        timeout = task.timeout
        hooks = self.hooks
        func = task.func if hooks is None or not hooks.wraps_attempts else wrap_attempt(hooks, self, task.func)
        if timeout is None:
            return await func(*self.args, **self.kwargs)
        import asyncio  # not at module level: asyncio costs ~20 ms of `import daglite_core`

        watch = _attempt_watch
        if watch is not None:
            watch(timeout)
        started = _perf()
        try:
            async with asyncio.timeout(timeout) as scope:
                value = await func(*self.args, **self.kwargs)
        except TimeoutError as exc:
            if scope.expired():
                raise AttemptTimeout(f"attempt timed out after {timeout:g} s") from exc
            raise
        finally:
            if watch is not None:
                watch(None)
        _check_late(started, timeout)
        return value

    # -- after the body ---------------------------------------------------------

    def failed(self, error: BaseException) -> float:
        """After a failed attempt: return the seconds to wait before retrying it, or raise.

        Retried: ``Exception`` of a non-generator task, while ``attempt <= retries``,
        unless a ``provide_retry_delay`` implementation answers otherwise (the core
        only applies the answer; see that hook). The driver waits the delay.
        """
        hooks, md, reporter = self.hooks, self.metadata, self.state.reporter
        if self.attempt and hooks is not None:
            hooks.notify("after_node_retry", md, reporter, self.attempt, False)
        if isinstance(error, Exception) and not self.task.is_generator:
            attempt = self.attempt + 1
            delay = 0.0 if attempt <= self.task.retries else None
            if hooks is not None and hooks.hook.provide_retry_delay:
                delay = self._retry_delay(error, attempt, delay)
            if delay is not None:
                self.attempt = attempt
                if hooks is not None:
                    hooks.notify("before_node_retry", md, reporter, error, attempt)
                return delay
        self.fail(error)
        raise AssertionError("unreachable")  # pragma: no cover - fail() raises

    def _retry_delay(self, error: Exception, attempt: int, default: float | None) -> float | None:
        """Ask ``provide_retry_delay``: the delay before retry ``attempt``, or ``None`` to fail."""
        hooks = self.hooks
        args = (
            self.metadata, self.state.reporter, error, attempt, self.task.retries,
            isinstance(error, AttemptTimeout), _perf() - self.started,
        )
        for func, name in hooks.hook.provide_retry_delay:  # type: ignore[union-attr]
            try:
                answer = func(*args)
                if answer is None:
                    continue
                if answer is False:
                    return None
                if answer is True:
                    return 0.0
                if isinstance(answer, (int, float)) and answer >= 0 and answer != float("inf"):
                    return float(answer)
                msg = f"answered {answer!r}; expected None, False, True or a number of seconds >= 0"
                raise ValueError(msg)
            except Exception as exc:  # noqa: BLE001 - a broken policy never hides the task's error
                hooks.hook_failed(name, "provide_retry_delay", exc)  # type: ignore[union-attr]
        return default

    def fail(self, error: BaseException) -> None:
        """Fire ``on_node_error`` and raise the final error (wrapped unless a BaseException)."""
        if self.hooks is not None:
            self.hooks.notify("on_node_error", self.metadata, self.state.reporter, error, _perf() - self.started)
        if not isinstance(error, Exception):
            raise error
        raise self.task_error(error) from error

    def task_error(self, error: BaseException) -> TaskError:
        """The :class:`TaskError` for ``error`` as the final failure of this call."""
        cls = TaskTimeoutError if isinstance(error, AttemptTimeout) else TaskError
        return cls(self.metadata.name, error, self.attempt + 1)

    def succeeded(self, value: Any) -> Any:
        """After a successful attempt: cache, save the dataset, fire hooks; return ``value``."""
        hooks, md = self.hooks, self.metadata
        if self.attempt and hooks is not None:
            hooks.notify("after_node_retry", md, self.state.reporter, self.attempt, True)
        if self.cache_key is not None:
            try:
                self.cache_store.set(self.cache_key, value, ttl=self.task.cache_ttl)
            except Exception as exc:  # noqa: BLE001 - the result is returned anyway
                _warn(f"Task {md.name!r}: result not cached under {self.cache_key} ({type(exc).__name__}: {exc})")
        if self.dataset_key is not None:
            try:
                self._save_dataset(value)
            except Exception as exc:  # noqa: BLE001
                # The body is not re-run for a failed save: it is the final outcome.
                self.fail(exc)
        if hooks is not None:
            hooks.notify("after_node_execute", md, self.state.reporter, _perf() - self.started, value)
        return value

    def _save_dataset(self, value: Any) -> None:
        save_resolved(
            self.state, self.dataset_store, self.dataset_key, self.dataset_format,  # type: ignore[arg-type]
            value, {}, self.metadata,
        )

    def iteration(self, index: int) -> None:
        """A generator task yielded item ``index``."""
        if self.hooks is not None:
            self.hooks.notify("node_iteration", self.metadata, self.state.reporter, index)


_cache_hash: Any = None


def _load_cache_hash() -> Any:
    """``default_cache_hash``, imported on the first cached call (not at import)."""
    global _cache_hash
    from ._hashing import default_cache_hash

    _cache_hash = default_cache_hash
    return _cache_hash


def cache_probe(task: BaseTask[..., Any], state: SessionState, name: str, inputs: dict[str, Any]) -> tuple[Any, str | None, Any]:
    """The store, key and cached value of a call: ``(store, key, value)``.

    ``key`` is ``None`` when the arguments cannot be hashed (one warning: the call
    runs uncached); ``value`` is :data:`CACHE_MISS` on a miss, in ``refresh`` mode,
    or when the entry is unreadable (one warning naming task and key).
    """
    store = state.cache_store(task.cache_store, name)
    try:
        if task.cache_hash is not None:
            func = task.func
            key = f"{func.__module__}.{func.__qualname__}:{task.cache_hash(func, inputs)}"
        else:
            key = (_cache_hash or _load_cache_hash())(task.func, inputs)
    except Exception as exc:  # noqa: BLE001 - an unhashable call runs uncached
        _warn(f"Task {name!r}: arguments cannot be hashed for the cache ({exc}); running uncached")
        return store, None, CACHE_MISS
    if state.settings.cache_mode == "refresh":
        return store, key, CACHE_MISS
    try:
        return store, key, store.get(key)
    except Exception as exc:  # noqa: BLE001 - an unreadable entry is a miss
        _warn(f"Task {name!r}: cache entry {key} is unreadable and was dropped ({exc}); recomputing")
        return store, key, CACHE_MISS


def run_cached(task: BaseTask[..., Any], state: SessionState, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A sync call of a ``cache=True`` task (no dataset) where no node hook listens.

    A hit costs the key and the store's ``get``: no :class:`Call`, metadata or
    frame, since nothing would see them, and the name is only resolved when the
    task's name has placeholders. A miss runs :func:`run_sync` with the probe
    already done, so the key is computed and the store asked only once.
    """
    inputs = task.bind(args, kwargs)
    name = task.resolve_name(inputs, None) if task._name_fields else task.name
    probe = cache_probe(task, state, name, inputs)
    value = probe[2]
    if value is not CACHE_MISS:
        return value
    call = Call(task, state, args, kwargs)
    call.probe = probe
    return run_sync(call)


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=4)


_abandoned: list[threading.Thread] = []
_attempt_watch: Any = None


def set_attempt_watch(watch: Any) -> None:
    """Have ``watch(timeout)`` called as each attempt of a timed task starts, ``watch(None)`` as it ends.

    Process workers set it so that the coordinator's backstop deadline follows
    the attempts only: time spent in hooks, the cache or between retries never
    counts against a task's ``timeout``. ``None`` removes it.
    """
    global _attempt_watch
    _attempt_watch = watch


def _check_late(started: float, timeout: float) -> None:
    """A result that came after the attempt's ``timeout`` is not a success."""
    elapsed = _perf() - started
    if elapsed > timeout:
        msg = f"attempt timed out after {timeout:g} s (it ended after {elapsed:.3g} s; its result was discarded)"
        raise AttemptTimeout(msg)


def abandoned_threads() -> int:
    """How many timed-out attempts' threads are still running in this process."""
    _abandoned[:] = [t for t in _abandoned if t.is_alive()]
    return len(_abandoned)


def _run_with_timeout(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float, name: str) -> Any:
    """Run ``func`` in a daemon thread and wait ``timeout`` seconds for it.

    On expiry the thread is abandoned (Python cannot stop it): it runs to its end
    in the background and its result is discarded. A result that arrives after
    ``timeout`` (a body that held the GIL past it) is a timeout too.
    """
    done = threading.Event()
    box: list[Any] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, context.run(func, *args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box.append((False, exc))
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"daglite-timeout-{name}", daemon=True)
    started = _perf()
    thread.start()
    if not done.wait(timeout):
        _abandoned.append(thread)
        raise AttemptTimeout(f"attempt timed out after {timeout:g} s")
    ok, result = box[0]
    if ok:
        # A body holding the GIL can finish late and still find the event set.
        _check_late(started, timeout)
        return result
    raise result


# -- the four drivers --------------------------------------------------------------


def run_sync(call: Call, error: BaseException | None = None) -> Any:
    """Drive a sync call: attempts until success or the final error.

    ``error``: the first attempt's, when the caller already began the call and ran
    that attempt (:func:`call_plain`); retries then go on from here.
    """
    token = FRAME.set(call.frame)
    try:
        if error is None and call.begin():
            return call.value
        while True:
            if error is not None:
                delay = call.failed(error)  # raises when it is not retried
                if delay:
                    try:
                        time.sleep(delay)
                    except BaseException as stop:  # noqa: BLE001 - interrupted wait: the call ends here
                        call.fail(stop)
            try:
                value = call.body()
            except BaseException as exc:  # noqa: BLE001 - Call.failed decides
                error = exc
            else:
                return call.succeeded(value)
    finally:
        FRAME.reset(token)


HookTable = Sequence[tuple[Callable[..., Any], str]]
"""A hook's implementations as ``PluginSet.hook.<name>`` lists them: ``(function, plugin name)``."""


def call_plain(
    task: BaseTask[..., Any],
    state: SessionState,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    map_index: int | None = None,
    backend: str = "inline",
    parent_id: Any = _FROM_FRAME,
    map_id: Any = None,
    metadata: TaskMetadata | None = None,
    frame: Frame | None = None,
    before: HookTable | None = None,
    after: HookTable | None = None,
) -> Any:
    """Call a sync task without cache, dataset, retries or timeout, in an observed state:
    the rules of every observed plain call, direct or mapped, written here only.

    The lifecycle of :func:`run_sync` with what cannot apply to such a task left
    out: the call's ``frame`` is the running call while the hooks and the body run;
    each of ``before`` is called with ``(metadata, reporter)``, then the body once
    (through the ``node_attempt`` wrappers, when a plugin has one), then each of
    ``after`` with ``(metadata, reporter, duration, value)`` (a hook that raises is
    reported with ``hook_failed`` and the others still run: ``PluginSet.notify``,
    inlined, ~0.2 µs per hook). A :class:`Call` is only built when the body fails:
    :func:`run_sync` goes on from that attempt (a ``provide_retry_delay`` plugin
    may retry it; else :meth:`Call.failed` fires ``on_node_error`` and raises).
    ``state.observed`` must be true.

    A direct call passes the arguments only: the metadata and frame are built
    here, ``before``/``after`` are the scope's ``before_node_execute`` and
    ``after_node_execute`` tables. A process worker's batch loop
    (``_process._worker._run_observed``) passes the ``metadata`` and ``frame`` it
    built with its lookups hoisted, and the tables once per batch: its relay's
    compact recorders when the relay alone listens; then ``metadata`` is ``None``
    and ``frame`` builds it on demand (its ``item_id``), as it is here if the body
    fails. One function rather than a helper under it: a direct call pays no
    extra Python call (measured: ~0.1 µs of a ~2.5 µs observed call).
    """
    hooks, reporter = state.plugins, state.reporter
    if frame is None:
        metadata = build_metadata(task, state, args, kwargs, map_index, backend, parent_id, map_id)
        frame = new_tuple(Frame, (task, args, kwargs, metadata, map_index, backend, None, None, None))
    if before is None or after is None:
        hook = hooks.hook
        before, after = hook.before_node_execute, hook.after_node_execute
    token = FRAME.set(frame)
    try:
        started = _perf()
        for func, name in before:
            try:
                func(metadata, reporter)
            except Exception as exc:  # noqa: BLE001 - isolated as in PluginSet.notify
                hooks.hook_failed(name, "before_node_execute", exc)
        try:
            if hooks.wraps_attempts:  # node_attempt wrappers (issue 19.2)
                value = run_wrapped(hooks, hooks.hook.node_attempt, (metadata, reporter, 0), task.func, *args, **kwargs)
            else:
                value = task.func(*args, **kwargs) if kwargs else task.func(*args)
        except BaseException as exc:  # noqa: BLE001 - run_sync retries or raises, below
            error: BaseException | None = exc
        else:
            error = None
        if error is not None:
            if metadata is None:  # built on demand: every failure reaches a hook or a TaskError
                metadata = frame_metadata(frame)
                frame = new_tuple(Frame, (task, args, kwargs, metadata, frame.map_index, frame.backend, None, None, None))
            call = Call.of(task, state, args, kwargs, metadata, frame)  # type: ignore[arg-type]
            call.started = started
            return run_sync(call, error)
        duration = _perf() - started
        for func, name in after:
            try:
                func(metadata, reporter, duration, value)
            except Exception as exc:  # noqa: BLE001 - isolated as in PluginSet.notify
                hooks.hook_failed(name, "after_node_execute", exc)
        return value
    finally:
        FRAME.reset(token)


async def run_async(call: Call) -> Any:
    """Drive an async call: as :func:`run_sync`, awaiting the body."""
    token = FRAME.set(call.frame)
    try:
        if call.begin():
            return call.value
        error: BaseException | None = None
        while True:
            if error is not None:
                delay = call.failed(error)  # raises when it is not retried
                if delay:
                    import asyncio  # loaded already: a coroutine is running

                    try:
                        await asyncio.sleep(delay)
                    except BaseException as stop:  # noqa: BLE001 - cancelled wait: the call ends here
                        call.fail(stop)
            try:
                value = await call.abody()
            except BaseException as exc:  # noqa: BLE001 - Call.failed decides
                error = exc
            else:
                return call.succeeded(value)
    finally:
        FRAME.reset(token)


def run_stream(call: Call) -> Iterator[Any]:
    """Drive a generator task: ``node_iteration`` per item; early close is success."""
    token = FRAME.set(call.frame)
    try:
        call.begin()
        items = call.task.func(*call.args, **call.kwargs)
    finally:
        FRAME.reset(token)
    index = 0
    try:
        while True:
            token = FRAME.set(call.frame)
            try:
                item = next(items)
            except StopIteration:
                break
            finally:
                FRAME.reset(token)
            call.iteration(index)
            index += 1
            yield item
    except GeneratorExit:
        items.close()
        call.succeeded(None)
        raise
    except BaseException as error:  # noqa: BLE001 - Call.failed raises
        call.failed(error)
    call.succeeded(None)


async def run_astream(call: Call) -> AsyncIterator[Any]:
    """Drive an async generator task: as :func:`run_stream`."""
    token = FRAME.set(call.frame)
    try:
        call.begin()
        items = call.task.func(*call.args, **call.kwargs)
    finally:
        FRAME.reset(token)
    index = 0
    try:
        while True:
            token = FRAME.set(call.frame)
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                break
            finally:
                FRAME.reset(token)
            call.iteration(index)
            index += 1
            yield item
    except GeneratorExit:
        await items.aclose()
        call.succeeded(None)
        raise
    except BaseException as error:  # noqa: BLE001 - Call.failed raises
        call.failed(error)
    call.succeeded(None)
