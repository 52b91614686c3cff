"""Running mapped items in other processes: the picklable runner and event relay.

In a worker process, items run through the same lifecycle as anywhere else, in a
worker-side session whose plugins are:

* the session's plugins that declare ``daglite_in_workers = True`` (pickled and
  sent; they run in the worker, once per worker process);
* a *relay* that records every node, fan-out, dataset and report event, which is
  sent back with the batch and replayed, in order, to every other plugin of the
  session in the session's own process (see :func:`replay`);
* the provider hooks of the plugins installed in the worker's environment, less
  those the session's settings disable (so a task body can reach stores the
  coordinator did not resolve); stores the coordinator resolved are sent, and win.
"""

from __future__ import annotations

import functools
import importlib
import types
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from . import _lifecycle
from ._context import FRAME, SESSION, Frame, SessionState
from ._map import IN_MAP, execute
from ._plugins import SPECS, PluginSet, _Entry, _Impl, _registry, parse_plugin
from ._protocols import Outcome, RemoteBatch, WorkItem
from ._settings import DagliteSettings

_LOCAL_ONLY = frozenset({"before_session_start", "after_session_end"})
Event = tuple[str, tuple[Any, ...]]
"""A recorded hook call: the hook's name and its positional arguments (reporter: ``None``)."""
RELAYED = tuple(h for h in SPECS if not h.startswith("provide_") and h not in _LOCAL_ONLY)


def runs_in_workers(plugin: object) -> bool:
    """Whether ``plugin`` asked to be sent to worker processes (``daglite_in_workers``)."""
    return bool(getattr(plugin, "daglite_in_workers", False))


def _module(name: str) -> types.ModuleType:
    return importlib.import_module(name)


@attrs.frozen
class _PluginRef:
    """A worker-side plugin as sent: modules by name, other objects by pickle."""

    module: str | None
    plugin: Any

    @classmethod
    def of(cls, plugin: object) -> _PluginRef:
        if isinstance(plugin, types.ModuleType):
            return cls(plugin.__name__, None)
        return cls(None, plugin)

    def load(self) -> object:
        return _module(self.module) if self.module is not None else self.plugin


@attrs.frozen
class WorkerConfig:
    """What a worker needs to rebuild the session: sent with every batch, built once."""

    key: str
    session_id: Any
    settings: DagliteSettings
    plugins: tuple[_PluginRef, ...]
    relay: bool
    cache_spec: Any
    dataset_spec: Any
    cache_stores: dict[Any, Any]
    dataset_stores: dict[Any, Any]


class _Recorder:
    """The relay: records observer events for the session's own process.

    Events go to a deque (appends and pops are atomic), so a flusher thread can
    hand them on while the items run (see :class:`_Flusher`).
    """

    def __init__(self) -> None:
        self.events: deque[tuple[str, tuple[Any, ...]]] = deque()

    def entry(self) -> _Entry:
        impls = []
        for hook in RELAYED:
            spec = SPECS[hook]
            position = _reporter_position(hook)
            impls.append(_Impl(hook, functools.partial(self._record, hook, position), spec.argnames, "daglite-relay", False, True))
        return _Entry("daglite-relay", self, impls, source="builtin")

    def _record(self, hook: str, position: int, *args: Any) -> None:
        self.events.append((hook, _swap_reporter(args, position, None)))


def _reporter_position(hook: str) -> int:
    """Where ``hook``'s ``reporter`` argument is, or -1: it is not sent between processes."""
    names = SPECS[hook].argnames
    return names.index("reporter") if "reporter" in names else -1


def _swap_reporter(args: tuple[Any, ...], position: int, reporter: Any) -> tuple[Any, ...]:
    return args if position < 0 else (*args[:position], reporter, *args[position + 1 :])


_states: dict[str, tuple[SessionState, _Recorder]] = {}


def _worker_state(config: WorkerConfig) -> tuple[SessionState, _Recorder]:
    found = _states.get(config.key)
    if found is not None:
        # A later map of the session may bring stores resolved since (another
        # task's cache_store): the session's choice wins over a worker-side provider.
        _merge(found[0]._cache_stores, config.cache_stores)
        _merge(found[0]._dataset_stores, config.dataset_stores)
        return found
    recorder = _Recorder()
    settings = config.settings
    installed = _registry.plugin_set(settings.strict_hooks).without(settings.disable_plugins, settings.plugins_autoload)
    strict = settings.strict_hooks
    providers = [
        _Entry(e.name, e.plugin, [i for i in e.impls if i.hook.startswith("provide_")], e.distribution, e.source)
        for e in installed.entries
    ]
    shipped = [ref.load() for ref in config.plugins]
    entries = [*providers, *(_Entry(n, p, parse_plugin(p, n)) for p in shipped for n in [getattr(p, "__name__", type(p).__qualname__)])]
    if config.relay:
        entries.append(recorder.entry())
    state = SessionState(
        config.session_id, config.settings, PluginSet(entries, strict),
        cache_store=config.cache_spec, dataset_store=config.dataset_spec, in_worker=True,
    )
    state._cache_stores.update(config.cache_stores)
    state._dataset_stores.update(config.dataset_stores)
    _states[config.key] = (state, recorder)
    return state, recorder


def _merge(made: dict[Any, Any], sent: dict[Any, Any]) -> None:
    for key, store in sent.items():
        if key not in made:
            made[key] = store


class RemoteRunner:
    """Picklable: runs a batch of items in a worker process (see :class:`Backend`)."""

    def __init__(self, task: Any, config: WorkerConfig, backend: str, parent_id: Any, map_id: Any) -> None:
        self.task = task
        self.config = config
        self.backend = backend
        self.parent_id = parent_id
        self.map_id = map_id

    @classmethod
    def for_session(cls, runner: Any) -> RemoteRunner:
        state: SessionState = runner.state
        task = runner.task
        coordinator = coordinator_plugins(state)
        relay = any(getattr(coordinator, hook) for hook in RELAYED)
        # Resolve the stores the task needs here, so errors surface in the caller.
        if task.cache:
            state.cache_store(task.cache_store, task.name)
        if task.dataset is not None:
            state.dataset_store(task.dataset_store, f"Task {task.name!r}")
        config = WorkerConfig(
            key=f"{state.id}:{id(state)}:{relay}",
            session_id=state.id,
            settings=state.settings,
            plugins=tuple(_PluginRef.of(p) for p in state.plugins.plugins() if runs_in_workers(p)),
            relay=relay,
            cache_spec=state.cache_spec,
            dataset_spec=state.dataset_spec,
            cache_stores=dict(state._cache_stores),
            dataset_stores=dict(state._dataset_stores),
        )
        return cls(task, config, runner.backend, runner.parent_id, runner.map_id)

    def __call__(self, items: Sequence[WorkItem], emit: Callable[[list[Event]], None] | None = None) -> RemoteBatch:
        """Run ``items`` here; events go to ``emit`` while they run, else back with the batch.

        With ``emit``, a flusher thread hands the recorded events on in chunks (at
        most every :data:`FLUSH_INTERVAL` seconds) while the items run, and once
        more before this returns, so every event of the batch has been emitted,
        in order, before its outcomes are returned; ``RemoteBatch.events`` is then
        empty. ``emit`` is called from one thread at a time.
        """
        state, recorder = _worker_state(self.config)
        task = self.task
        fast = task._plain and not state.observed and not task.is_async and not task.is_generator
        events = recorder.events = deque()
        flusher = _Flusher(events, emit) if emit is not None and self.config.relay else None
        outcomes: list[Outcome] = []
        session = SESSION.set(state)
        in_map = IN_MAP.set(True)
        try:
            if fast:
                _run_plain(task, items, outcomes, self.backend)
            else:
                backend, parent_id, map_id = self.backend, self.parent_id, self.map_id
                for item in items:
                    try:
                        outcomes.append(Outcome(True, execute(task, state, item, backend, parent_id, map_id, fast)))
                    except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
                        outcomes.append(Outcome(False, error=exc))
        finally:
            IN_MAP.reset(in_map)
            SESSION.reset(session)
            if flusher is not None:
                flusher.close()
        retire = _lifecycle.abandoned_threads() > 0
        if flusher is not None or emit is not None:
            return RemoteBatch(outcomes, [], retire)
        return RemoteBatch(outcomes, list(events), retire)


FLUSH_INTERVAL = 0.02
"""Seconds between two hand-overs of a running batch's events (see :class:`_Flusher`)."""


class _Flusher:
    """Hands a running batch's recorded events to ``emit`` every :data:`FLUSH_INTERVAL`.

    A thread per batch, so that an item's ``before_node_execute`` reaches the
    session while its body runs (the body's thread cannot be asked to send). The
    last events are handed on by :meth:`close`, in the batch's own thread, before
    the outcomes go back. An ``emit`` that raises stops the live relay for the
    batch; what was not handed on is emitted by :meth:`close` (which then raises).
    """

    def __init__(self, events: deque[Event], emit: Callable[[list[Event]], None]) -> None:
        self.events = events
        self.emit = emit
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="daglite-event-flusher", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - close() flushes again and raises
                return

    def flush(self) -> None:
        events = self.events
        with self.lock:
            chunk = []
            pop = events.popleft
            while events:
                chunk.append(pop())
            if chunk:
                self.emit(chunk)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.flush()


def _run_plain(task: Any, items: Sequence[WorkItem], outcomes: list[Outcome], backend: str) -> None:
    """:func:`execute`'s fast path (no hooks, no options) as one loop over a batch.

    The per-item call of ``execute`` is a third of a trivial item's cost in a
    worker; the frame and the error are exactly those ``execute`` makes.
    """
    func = task.func
    set_frame, reset_frame = FRAME.set, FRAME.reset
    for item in items:
        args = item.args
        token = set_frame(Frame(task, args, {}, None, item.index, backend))
        try:
            outcomes.append(Outcome(True, func(*args)))
        except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
            outcomes.append(Outcome(False, error=_plain_error(task, exc, args)))
        finally:
            reset_frame(token)


def _plain_error(task: Any, exc: Exception, args: tuple[Any, ...]) -> Exception:
    try:
        raise _lifecycle.fast_error(task, exc, args, {}) from exc
    except Exception as error:  # noqa: BLE001 - the TaskError (or the binding TypeError)
        return error


def coordinator_plugins(state: SessionState) -> PluginSet:
    """The session's plugins that do not run in workers (they get replayed events)."""
    cached = state.coordinator_plugins
    if cached is None:
        plugins = state.plugins
        kept = [e for e in plugins.entries if not runs_in_workers(e.plugin)]
        cached = plugins if len(kept) == len(plugins.entries) else PluginSet(kept, plugins.strict)
        state.coordinator_plugins = cached
    return cached


def replay(state: SessionState, events: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
    """Fire relayed worker events on the session's non-worker plugins, in order."""
    plugins = coordinator_plugins(state)
    reporter = state.reporter
    positions: dict[str, int] = {}
    for hook, args in events:
        position = positions.get(hook)
        if position is None:
            position = positions[hook] = _reporter_position(hook)
        plugins.notify(hook, *_swap_reporter(args, position, reporter))
