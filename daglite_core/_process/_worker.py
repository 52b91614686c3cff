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
import os
import threading
import time
import types
from collections import deque
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import attrs

from .. import _lifecycle, _metadata, _records
from .._context import SESSION, Frame, SessionState
from .._execute import IN_MAP, execute, runs_fast
from .._fast import run_fast
from .._hooks import SPECS, PluginSet, _Entry, _Impl, _registry, parse_plugin
from .._metadata import TaskMetadata
from .._protocols import Outcome, Outcomes, RemoteBatch, WorkItem, WorkItems, new_item
from .._records import uuid_from_int
from .._settings import DagliteSettings
from ._wire import ITEM_DONE, ITEM_LOST, ITEM_STARTED

_LOCAL_ONLY = frozenset({"before_session_start", "after_session_end", "node_attempt"})  # node_attempt wraps, runs where the body runs
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
    relay: tuple[str, ...]
    """The hooks the worker records and relays: those some session-side plugin
    implements (``on_report`` when any plugin of the session does); empty: no relay."""
    count_items: bool
    """The session-side plugins that observe successful calls all count map items
    (``daglite_map_progress``): the relay does not watch items, so they keep the
    fast path, and their counts come from the batches' outcomes."""
    cache_spec: Any
    dataset_spec: Any
    cache_stores: dict[Any, Any]
    dataset_stores: dict[Any, Any]


class _Recorder:
    """The relay: records observer events for the session's own process.

    Events go to a deque (appends and pops are atomic), so a flusher thread can
    hand them on while the items run (see :class:`_Flusher`). Each batch binds its
    own deque in a context variable (``batch``): batches of one session that run
    at once in one process (threads of a Dask worker) keep their events apart.
    """

    def __init__(self) -> None:
        self.daglite_map_progress = False  # see WorkerConfig.count_items
        self.events: deque[tuple[str, tuple[Any, ...]]] = deque()
        self.batch: ContextVar[deque[tuple[str, tuple[Any, ...]]] | None] = ContextVar("daglite_relay_batch", default=None)

    def entry(self, hooks: Sequence[str]) -> _Entry:
        """The relay as a plugin implementing ``hooks`` (only those: a hook nobody in the
        session listens to is neither recorded nor sent, and a session whose plugins
        listen only to failures keeps the worker's successful items on the fast path)."""
        impls = []
        for hook in hooks:
            spec = SPECS[hook]
            impls.append(_Impl(hook, functools.partial(self._record, hook), spec.argnames, "daglite-relay", False, True))
        return _Entry("daglite-relay", self, impls, source="builtin")

    def _record(self, hook: str, *args: Any) -> None:
        # The worker's reporter is recorded as is: it pickles as "the reporter of
        # the session where it is unpickled" (see _context._Reporter.__reduce__).
        events = self.batch.get()
        (self.events if events is None else events).append((hook, args))


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
        found[0].adopt_stores(config.cache_stores, config.dataset_stores)
        return found
    recorder = _Recorder()
    recorder.daglite_map_progress = config.count_items
    settings = config.settings
    installed = _registry.plugin_set(settings.strict_hooks).without(settings.disable_plugins, settings.plugins_autoload)
    strict = settings.strict_hooks
    providers = [
        _Entry(e.name, e.plugin, [i for i in e.impls if i.hook.startswith("provide_")], e.distribution, e.source)
        for e in installed.entries
    ]
    shipped = [ref.load() for ref in config.plugins]
    # ``on_report`` is the session process's hook: a worker-side plugin gets the
    # reports in its session-side copy (see replay), never in the worker.
    entries = [
        *providers,
        *(
            _Entry(n, p, [i for i in parse_plugin(p, n) if i.hook != "on_report"])
            for p in shipped
            for n in [getattr(p, "__name__", type(p).__qualname__)]
        ),
    ]
    if config.relay:
        entries.append(recorder.entry(config.relay))
    state = SessionState(
        config.session_id, config.settings, PluginSet(entries, strict),
        cache_store=config.cache_spec, dataset_store=config.dataset_spec, in_worker=True,
    )
    state.adopt_stores(config.cache_stores, config.dataset_stores)
    _states[config.key] = (state, recorder)
    return state, recorder


class WorkerRunner:
    """Picklable: runs a batch of items in a worker process (see :class:`Backend`)."""

    def __init__(self, task: Any, config: WorkerConfig, backend: str, parent_id: Any, map_id: Any) -> None:
        self.task = task
        self.config = config
        self.backend = backend
        self.parent_id = parent_id
        self.map_id = map_id

    @classmethod
    def for_session(cls, runner: Any) -> WorkerRunner:
        state: SessionState = runner.state
        task = runner.task
        coordinator = coordinator_plugins(state)
        # Relay what a session-side plugin observes, and reports when any plugin (a
        # worker-side one too: its session copy) receives them.
        relay = tuple(
            hook for hook in RELAYED
            if getattr(coordinator.hook, hook) or (hook == "on_report" and state.plugins.hook.on_report)
        )
        # Resolve the stores the task needs here, so errors surface in the caller.
        if task.cache and state.settings.cache_mode != "off":  # "off" needs no cache store
            state.cache_store(task.cache_store, task.name)
        if task.dataset is not None:
            state.dataset_store(task.dataset_store, f"Task {task.name!r}")
        cache_stores, dataset_stores = state.resolved_stores()
        count_items = not coordinator.observes_items
        config = WorkerConfig(
            key=f"{state.id}:{id(state)}:{','.join(relay)}:{count_items}",
            session_id=state.id,
            settings=state.settings,
            plugins=tuple(_PluginRef.of(p) for p in state.plugins.plugins() if runs_in_workers(p)),
            relay=relay,
            count_items=count_items,
            cache_spec=state.cache_spec,
            dataset_spec=state.dataset_spec,
            cache_stores=cache_stores,
            dataset_stores=dataset_stores,
        )
        return cls(task, config, runner.backend, runner.parent_id, runner.map_id)

    def __call__(self, items: Sequence[WorkItem], emit: Callable[[list[Event]], None] | None = None) -> RemoteBatch:
        """Run ``items`` here; events go to ``emit`` while they run, else back with the batch.

        With ``emit``, a flusher thread hands the recorded events on in chunks (at
        most every :data:`FLUSH_INTERVAL` seconds) while the items run, and once
        more before this returns, so every event of the batch has been emitted,
        in order, before its outcomes are returned; ``RemoteBatch.events`` is then
        empty. ``emit`` is called from one thread at a time.

        The outcomes are an :class:`~daglite_core._protocols.Outcomes` (the values
        in a list, failures apart); a :class:`WorkItems` batch (what the process
        backend's workers receive) is read without building a record per item.
        """
        state, recorder = _worker_state(self.config)
        task = self.task
        if type(items) is WorkItems:
            indices, arglist = items.indices, items.args
        else:
            indices, arglist = [item.index for item in items], [item.args for item in items]
        events: deque[Event] = deque()
        bound = recorder.batch.set(events)
        flusher = _process_flusher() if emit is not None and self.config.relay else None
        relay = flusher.open(events, emit) if flusher is not None else None  # type: ignore[arg-type]
        out = Outcomes()
        session = SESSION.set(state)
        in_map = IN_MAP.set(True)
        where = (self.backend, self.parent_id, self.map_id)
        try:
            if runs_fast(task, state):
                _run_plain(task, state, indices, arglist, out, *where)
            elif _observed_plain(task):
                _run_observed(task, state, recorder, indices, arglist, out, *where)
            else:
                append = out.values.append
                for index, args in zip(indices, arglist, strict=True):
                    try:
                        append(execute(task, state, new_item(index, args), *where, False))
                    except Exception as exc:  # noqa: BLE001 - an item's failure is its outcome
                        out.add(Outcome(False, error=exc))
        finally:
            IN_MAP.reset(in_map)
            SESSION.reset(session)
            recorder.batch.reset(bound)
            if flusher is not None:
                flusher.close(relay)  # type: ignore[arg-type]
        retire = _lifecycle.abandoned_threads() > 0
        if flusher is not None or emit is not None:
            return RemoteBatch(out, [], retire)
        return RemoteBatch(out, list(events), retire)


FLUSH_INTERVAL = 0.02
"""Seconds between two hand-overs of a running batch's events (see :class:`_Flusher`)."""


class _Relay:
    """One running batch's recorded events and where they go (see :class:`_Flusher`)."""

    __slots__ = ("emit", "events", "live", "lock")

    def __init__(self, events: deque[Event], emit: Callable[[list[Event]], None]) -> None:
        self.events = events
        self.emit = emit
        self.lock = threading.Lock()
        self.live = True
        """False once the batch ended, or ``emit`` raised in the flusher's thread (the rest
        then waits for the batch's end): the flusher's thread hands nothing more on."""

    def flush(self) -> None:
        """In the flusher's thread: hand on what was recorded, unless the batch ended."""
        with self.lock:
            if self.live:
                try:
                    self._hand_on()
                except Exception:  # noqa: BLE001 - close() hands the rest on and raises
                    self.live = False

    def close(self) -> None:
        """In the batch's thread, as it ends: hand on the rest; nothing is handed on after.

        An abandoned timed-out attempt may still record into ``events``: never sent,
        as the session's process has taken the batch's reply by then.
        """
        with self.lock:
            self.live = False
            self._hand_on()

    def _hand_on(self) -> None:
        events, chunk = self.events, []
        pop = events.popleft
        while events:
            chunk.append(pop())
        if chunk:
            self.emit(chunk)


class _Flusher:
    """Hands running batches' recorded events to their ``emit`` every :data:`FLUSH_INTERVAL`.

    A thread, so that an item's ``before_node_execute`` reaches the session while
    its body runs (the body's thread cannot be asked to send). One thread per
    process, started with the first batch that relays events and shared by every
    batch running at once (threads of a Dask worker): a batch registers with
    :meth:`open` and ends with :meth:`close`, a few lock operations. A thread per
    batch cost a start and a join, two thread switches per batch that a loaded
    machine stretches to milliseconds (most of a 512-item batch's time). The
    thread sleeps on an event while no batch runs.

    The last events of a batch are handed on by :meth:`close`, in the batch's own
    thread, before the outcomes go back. An ``emit`` that raises stops the live
    relay for its batch; what was not handed on is emitted by :meth:`close`
    (which then raises).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.running: dict[int, _Relay] = {}
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="daglite-event-flusher", daemon=True)
        self.thread.start()

    def open(self, events: deque[Event], emit: Callable[[list[Event]], None]) -> _Relay:
        relay = _Relay(events, emit)
        with self.lock:
            self.running[id(relay)] = relay
        if not self.wake.is_set():
            self.wake.set()
        return relay

    def close(self, relay: _Relay) -> None:
        with self.lock:
            del self.running[id(relay)]
        relay.close()

    def _loop(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(FLUSH_INTERVAL)
            with self.lock:
                relays = list(self.running.values())
                if not relays:
                    self.wake.clear()
            for relay in relays:
                relay.flush()


_flusher: _Flusher | None = None
_flusher_lock = threading.Lock()


def _process_flusher() -> _Flusher:
    """This process's :class:`_Flusher`, started on first use (a forked child starts its own)."""
    global _flusher
    flusher = _flusher
    if flusher is None or flusher.pid != os.getpid():
        with _flusher_lock:
            flusher = _flusher
            if flusher is None or flusher.pid != os.getpid():
                flusher = _flusher = _Flusher()
    return flusher


def _run_plain(
    task: Any,
    state: SessionState,
    indices: Sequence[int],
    arglist: Sequence[tuple[Any, ...]],
    out: Outcomes,
    backend: str,
    parent_id: Any,
    map_id: Any,
) -> None:
    """:func:`~daglite_core._fast.run_fast` for every item of a batch.

    An item's final error (after the failure hooks and any retry) is its outcome.
    """
    run = run_fast
    append, add = out.values.append, out.add
    for index, args in zip(indices, arglist, strict=True):
        try:
            append(run(task, state, args, {}, index, backend, parent_id, map_id))
        except Exception as error:  # noqa: BLE001 - the TaskError (or the binding TypeError) is the item's outcome
            add(Outcome(False, error=error))


def _relay_only(table: Sequence[tuple[Any, str]]) -> bool:
    return all(plugin == "daglite-relay" for _, plugin in table)


def _observed_plain(task: Any) -> bool:
    """Whether :func:`_run_observed` applies: a plain sync task with a fixed name."""
    return bool(task._plain and not task.is_async and not task.is_generator and not task._name_fields)


def _run_observed(
    task: Any,
    state: SessionState,
    recorder: _Recorder,
    indices: Sequence[int],
    arglist: Sequence[tuple[Any, ...]],
    out: Outcomes,
    backend: str,
    parent_id: Any,
    map_id: Any,
) -> None:
    """:func:`~daglite_core._lifecycle.call_plain` for every item of a batch.

    The observed path of a worker (the relay, or worker-side plugins, listen to
    successful calls). Each item runs through
    :func:`~daglite_core._lifecycle.call_plain`, the one place of an observed
    call's hook and frame rules; what this loop adds is the metadata made as
    ``build_metadata`` makes it for a map item (with the per-batch lookups
    hoisted), and, when the relay alone observes the node hooks, compact records
    in place of the relay's hook calls (below).

    Decision (issue 18.1): this loop used to repeat ``call_plain``'s rules inline.
    Calling ``call_plain`` per item costs ~0.35 µs more per relayed item in the
    worker (1.00 → 1.35 µs for a trivial body, measured in-process on 512-item
    batches); the "1 observer plugin" process-map row did not move beyond its
    noise, as it is bound by the session process replaying the events.
    """
    hook = state.plugins.hook
    before, after = hook.before_node_execute, hook.after_node_execute
    bind, new_frame, run = task.bind, _lifecycle.new_tuple, _lifecycle.call_plain
    prefix, counter = _records.id_state()
    make = item_metadata(task, backend, parent_id, map_id, state.id)
    # When the relay alone observes these hooks, items are recorded compactly (the
    # session's process rebuilds their metadata from the map's): no metadata is
    # built (unless the body asks for it, or fails: see _context.frame_metadata) or
    # pickled. The start record is appended here (a call per item less); the end
    # record is the relay's only after-hook, as only call_plain knows the
    # duration and that the first attempt succeeded (a retried success goes
    # through Call.succeeded: a full after_node_execute event).
    events = recorder.batch.get()
    compact = bool(
        before and after and _relay_only(before) and _relay_only(after) and events is not None
        and not state.plugins.wraps_attempts
    )
    running: list[Any] = [None, None]  # id and index of the item running, for its compact end record
    if compact:
        record = events.append  # type: ignore[union-attr]

        def done(metadata: None, reporter: Any, duration: float, value: Any) -> None:
            record((ITEM_DONE, (running[0], running[1], duration, value)))

        before, after = (), ((done, "daglite-relay"),)
    append = out.values.append
    for index, args in zip(indices, arglist, strict=True):
        try:
            inputs = bind(args, {})
        except Exception as exc:  # noqa: BLE001 - the binding TypeError is the item's outcome
            out.add(Outcome(False, error=exc))
            continue
        id_int = prefix | next(counter)
        if compact:
            metadata = None
            running[0], running[1] = id_int, index
            record((ITEM_STARTED, (id_int, index, inputs)))  # call_plain then fires no before hook
            frame = new_frame(Frame, (task, args, {}, None, index, backend, map_id, parent_id, id_int))
        else:
            metadata = make(id_int, index, inputs)
            frame = new_frame(Frame, (task, args, {}, metadata, index, backend, None, None, None))
        try:
            append(run(task, state, args, {}, index, backend, parent_id, map_id, metadata, frame, before, after))
        except Exception as error:  # noqa: BLE001 - the TaskError is the item's outcome
            out.add(Outcome(False, error=error))


def coordinator_plugins(state: SessionState) -> PluginSet:
    """The session's plugins that do not run in workers (they get replayed events)."""
    cached = state.coordinator_plugins
    if cached is None:
        plugins = state.plugins
        kept = [e for e in plugins.entries if not runs_in_workers(e.plugin)]
        cached = plugins.subset(kept)
        state.coordinator_plugins = cached
    return cached


def replay(runner: Any, events: Sequence[tuple[str, tuple[Any, ...]]], *, swap: bool = True) -> None:
    """Fire relayed worker events of ``runner``'s map on the session's non-worker plugins, in order.

    ``on_report`` goes to every plugin of the session, worker-side ones included
    (their copy in the session's process), so one plugin can both report from its
    worker copy and receive the reports. Compact item events (:data:`ITEM_STARTED`,
    :data:`ITEM_DONE`, :data:`ITEM_LOST`) become the item's ``before_node_execute``,
    ``after_node_execute`` or ``on_node_error`` with metadata rebuilt here from
    what ``runner`` knows of the map (the same fields the worker's had).

    ``swap`` puts the session's reporter in each event's reporter argument: events
    may come unpickled anywhere (a Dask client's thread). The process backend
    unpickles them in the session's own context, where the recorded reporter
    already became the session's, and passes ``swap=False``.
    """
    state = runner.state
    notify = coordinator_plugins(state).notify
    everyone = state.plugins.notify  # on_report: also the session-side copies of worker plugins
    reporter = state.reporter
    positions: dict[str, int] = {}
    started = runner.relayed_items
    made = None
    for hook, args in events:
        if hook[0] == "~":
            if hook == ITEM_STARTED:
                if made is None:
                    made = item_metadata(runner.task, runner.backend, runner.parent_id, runner.map_id, state.id)
                metadata = started[args[0]] = made(*args)
                notify("before_node_execute", metadata, reporter)
            elif hook == ITEM_DONE:
                notify("after_node_execute", started.pop(args[0]), reporter, args[2], args[3])
            elif hook == ITEM_LOST:
                notify("on_node_error", started.pop(args[0]), reporter, args[1], args[2])
            continue
        if swap:
            position = positions.get(hook)
            if position is None:
                position = positions[hook] = _reporter_position(hook)
            args = _swap_reporter(args, position, reporter)
        (everyone if hook == "on_report" else notify)(hook, *args)


def item_metadata(task: Any, backend: str, parent_id: Any, map_id: Any, session_id: Any) -> Callable[[int, int, dict[str, Any]], TaskMetadata]:
    """How the metadata of an item of a map of ``task`` is made, from its id (an int), index and inputs.

    What :func:`~daglite_core._lifecycle.build_metadata` makes for a map item of a
    task with a fixed name, with the map's fields looked up once: the worker's
    observed loop (:func:`_run_observed`) and :func:`replay`, which rebuilds the
    metadata of items a worker relayed compactly, make the same record.
    """
    make, name, description = _metadata.make_metadata, task.name, task.description

    def made(id_int: int, index: int, inputs: dict[str, Any]) -> TaskMetadata:
        return make(
            uuid_from_int(id_int), f"{name}[{index}]", backend, inputs, description, index, parent_id,
            False, False, map_id, session_id,
        )

    return made
