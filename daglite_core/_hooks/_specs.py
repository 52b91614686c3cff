"""Hook specifications: every hook a daglite plugin can implement.

A plugin is any object (module, instance) whose methods are marked with
:data:`daglite_core.hookimpl` and named after one of the hooks below.

Hooks come in two kinds:

* **Observer hooks** (lifecycle, session, dataset, fan-out, report). Every
  implementation is called, in pluggy order (``tryfirst`` first, then the most
  recently registered, ``trylast`` last). Return values are ignored. An
  implementation that raises is reported once on the ``daglite`` logger (naming
  the plugin and the hook) and the other implementations still run; the task's
  result is never lost or changed. With ``DAGLITE_STRICT_HOOKS=1`` the error
  propagates instead, as :class:`daglite_core.PluginError`.
* **Provider hooks** (``provide_*``). They let plugins supply what the core only
  knows as a protocol: cache stores, dataset stores, dataset formats, backends
  and command-line commands. ``firstresult`` providers stop at the first
  implementation that returns something other than ``None``; the collecting
  ones return a list of every implementation's answer. Errors from providers
  propagate: they are configuration errors the user must see.

* **The wrapper hook** :func:`node_attempt` takes pluggy's new-style wrappers
  (``@hookimpl(wrapper=True)`` generators) around each attempt of a task's body.
  Wrappers on any other hook, and old-style ``hookwrapper=True``, are rejected
  when the plugin is registered (daglite dispatches observer hooks one
  implementation at a time to isolate failures).

Where hooks fire: the node hooks (``*_node_*``, ``node_iteration``,
``on_cache_hit``) fire in the thread that runs the task. For the ``process``
backend they fire in the worker process for plugins that declare
``daglite_in_workers = True`` (those are pickled and sent to the workers), and
are relayed live to the session's own process for every other plugin: a worker
hands its recorded events over every 20 ms while an item runs, so an item's
``before_node_execute`` arrives while its body still runs, ``node_iteration``
events as items are produced, and each item's events in order. Every other
hook fires in the session's own process.

Ids: every id a hook receives (``TaskMetadata.id``, ``parent_id``, ``map_id``,
``session_id``; the ``map_id`` and ``session_id`` arguments) is a
:class:`uuid.UUID`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    import uuid

    from .._metadata import TaskMetadata
    from .._protocols import Backend, CacheStore, DatasetFormat, DatasetStore, Reporter
    from .._settings import DagliteSettings

PROJECT_NAME = "daglite"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (``@hookspec``), for plugins that add hooks."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations (``@hookimpl``, ``@hookimpl(tryfirst=True)``)."""


# ---------------------------------------------------------------------------
# Task (node) lifecycle
# ---------------------------------------------------------------------------


@hookspec
def before_node_execute(metadata: TaskMetadata, reporter: Reporter) -> None:
    """Called once before a task's first attempt, after a cache miss.

    Not called when the result comes from the cache (see :func:`on_cache_hit`).
    For a generator task it fires when the consumer first asks for an item.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: sends an event to the session's own process
        (see :func:`on_report`); useful from a process worker.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def after_node_execute(
    metadata: TaskMetadata, reporter: Reporter, duration: float, result: Any
) -> None:
    """Called once after a task succeeded (after its last attempt).

    Fires after the result was cached and saved as a dataset. For a generator task
    it fires when the generator is exhausted, or when the consumer closes it early,
    with ``result=None``.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param duration: seconds from the first attempt's start to the end, retries
        included.
    :param result: the value the caller gets.

    Return value: ignored. Raising never changes the result the caller gets.

    .. versionadded:: 0.1
    """


@hookspec
def on_node_error(
    metadata: TaskMetadata, reporter: Reporter, error: BaseException, duration: float
) -> None:
    """Called once when a task failed for good (after its last attempt).

    Also called for ``KeyboardInterrupt``/``SystemExit`` raised by the body (never
    retried, never wrapped), so that what :func:`before_node_execute` opened can be
    closed.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param error: the last attempt's exception (not the :class:`TaskError`
        wrapping it); a ``TimeoutError`` when the timeout expired.
    :param duration: seconds from the first attempt's start to the failure.

    Return value: ignored. Raising never replaces the task's own error.

    .. versionadded:: 0.1
    """


@hookspec
def node_iteration(metadata: TaskMetadata, reporter: Reporter, index: int) -> None:
    """Called for each item a generator task yields, before the consumer gets it.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param index: the item's position, from 0.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def before_node_retry(
    metadata: TaskMetadata, reporter: Reporter, error: BaseException, attempt: int
) -> None:
    """Called before each retry of a failed attempt.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param error: the exception of the attempt that just failed.
    :param attempt: the retry's number, counting from 1 (so ``retries=2`` fires
        it with 1, then 2).

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def after_node_retry(
    metadata: TaskMetadata, reporter: Reporter, attempt: int, succeeded: bool
) -> None:
    """Called after each retry attempt finished.

    Order on a retry that succeeds: ``after_node_retry(succeeded=True)`` then
    :func:`after_node_execute`.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param attempt: the retry's number, as in :func:`before_node_retry`.
    :param succeeded: whether this retry's attempt returned normally.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def provide_retry_delay(
    metadata: TaskMetadata,
    reporter: Reporter,
    error: BaseException,
    attempt: int,
    retries: int,
    timed_out: bool,
    elapsed: float,
) -> float | bool | None:
    """Decide whether, and after how long, a failed attempt is retried.

    Called in the thread (and process) that runs the task, after an attempt raised
    an ``Exception``, before the core retries or gives up; so ``retries=N`` and the
    delay between attempts are *policy*, which this hook lets a plugin supply (see
    daglite-retry). Not called for ``KeyboardInterrupt``, ``SystemExit`` and other
    ``BaseException`` (never retried), nor for generator tasks (never retried: their
    items were already handed out). It is asked for every such failure, also of
    tasks declared with ``retries=0``, so a policy can retry those too.

    Unlike other providers, an implementation that raises or answers something
    invalid is reported like an observer hook's failure (naming plugin and hook,
    :class:`~daglite_core.PluginError` in strict mode) and counts as no answer: a
    broken policy never hides the task's own error.

    On a retry, the core then fires :func:`before_node_retry` and waits ``delay``
    seconds (``time.sleep`` for sync tasks, ``await asyncio.sleep`` for async ones,
    so the event loop goes on) before the next attempt. The wait counts in the
    call's ``duration``, never in its per-attempt ``timeout``.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute` (a policy running in a
        process worker reports its decision to the session's process with it).
    :param error: the exception of the attempt that just failed.
    :param attempt: the number the retry would have, counting from 1, as in
        :func:`before_node_retry` (so the failed attempt was attempt ``attempt``
        of the call, counting from 1).
    :param retries: the task's own ``retries=`` (its maximum when nobody answers).
    :param timed_out: whether the attempt failed because it ran out of its
        ``timeout`` (``error`` is then the core's ``TimeoutError`` for it); a
        ``TimeoutError`` the body raised itself gives ``False``.
    :param elapsed: seconds since the call's first attempt started, earlier waits
        included.

    Return value: the first non-``None`` answer wins:

    * ``None``: no opinion; the core's default applies: retry at once while
      ``attempt <= retries``, else fail.
    * ``False``: do not retry; the call fails now with ``error`` (as
      :class:`~daglite_core.TaskError`).
    * a number ``>= 0`` (``int`` or ``float``): retry after that many seconds, also
      beyond the task's ``retries`` (the answering policy owns the maximum);
      ``True`` means ``0``.

    .. versionadded:: 0.2
    """


@hookspec
def on_cache_hit(metadata: TaskMetadata, reporter: Reporter, key: str, value: Any) -> None:
    """Called when a ``cache=True`` task's result was found in its cache store.

    The body does not run, neither :func:`before_node_execute` nor
    :func:`after_node_execute` fires, and the dataset is not saved again.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param key: the cache key.
    :param value: the cached value the caller gets.

    Return value: ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------


@hookspec
def before_session_start(session_id: uuid.UUID) -> None:
    """Called when a :func:`~daglite_core.session` (or workflow) is entered.

    :param session_id: the session's unique id (every call's
        ``TaskMetadata.session_id`` in the session).

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def after_session_end(session_id: uuid.UUID, duration: float) -> None:
    """Called when a session is left, also when its body raised.

    Fires after the session's worker pools were shut down, so every node event of
    the session was delivered before it.

    :param session_id: the session's id, as in :func:`before_session_start`.
    :param duration: seconds the session was open.

    Return value: ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------
# Fan-out
# ---------------------------------------------------------------------------


@hookspec
def before_map(
    map_id: uuid.UUID, task_name: str, total: int, backend: str, parent_id: uuid.UUID | None, name_template: str
) -> None:
    """Called by :func:`~daglite_core.map_tasks`, ``iter_tasks`` and ``gather_tasks``
    in the caller's thread, before any item runs (for ``iter_tasks``: at the first
    ``next()``).

    :param map_id: the fan-out's id; every item's ``TaskMetadata.map_id`` is this id.
    :param task_name: the mapped task's base name: its name, or its function's
        ``__name__`` when the name is a template with placeholders.
    :param total: the number of items, so progress can be drawn with a total.
    :param backend: the backend's name that runs the items.
    :param parent_id: the id of the task whose body called ``map_tasks`` (the
        items' ``parent_id``), or ``None`` at top level; the ``map_id`` of the
        enclosing map when its item ran on the fast path (see
        :class:`~daglite_core.TaskMetadata`).
    :param name_template: the task's ``name`` as declared, placeholders unfilled.

    Return value: ignored.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 ``map_id`` is a :class:`uuid.UUID`; ``parent_id`` and
       ``name_template`` added, ``task_name`` is the base name.
    """


@hookspec
def after_map(
    map_id: uuid.UUID,
    task_name: str,
    total: int,
    backend: str,
    failed: int,
    duration: float,
    parent_id: uuid.UUID | None,
    name_template: str,
) -> None:
    """Called once every item of a fan-out finished (or the caller stopped
    iterating it), before results or errors return, in the caller's thread.

    :param map_id: as in :func:`before_map`.
    :param task_name: as in :func:`before_map`.
    :param total: as in :func:`before_map`.
    :param backend: as in :func:`before_map`.
    :param failed: how many items failed.
    :param duration: seconds the whole fan-out took.
    :param parent_id: as in :func:`before_map`.
    :param name_template: as in :func:`before_map`.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def map_progress(map_id: uuid.UUID, started: int, done: int, failed: int, per_item: bool) -> None:
    """Counts of a fan-out's items while they run, for progress displays.

    Fires only when some plugin implements it: about every 0.1 s while items
    finish (from the thread that finished one, so implementations must be
    thread-safe; on the process backend from the session's thread as batches
    come back), and once more with the final counts right before
    :func:`after_map`.

    A plugin with the attribute ``daglite_map_progress = True`` is not called
    per item for the success hooks (``before_node_execute``,
    ``after_node_execute``, ``node_iteration``, ``on_cache_hit``) of map items
    that run on the fast path (plain sync tasks that no other plugin observes
    item by item), so those items keep it; it counts them through this hook.
    Failure hooks still reach it per item, and every other call (direct calls,
    calls inside items, items of other tasks) as usual; a call made inside such
    an item has ``parent_id=None`` (the item had no metadata).

    :param map_id: the fan-out's id (as in :func:`before_map`).
    :param started: items started so far (on the process backend: finished).
    :param done: items finished so far, failed ones included.
    :param failed: items failed so far.
    :param per_item: ``False`` when the items ran on the fast path, so that
        plugins with ``daglite_map_progress`` got no per-item success events for
        them (drive a display from these counts); ``True`` when every item's
        hooks reached every plugin (the counts are informational: do not count
        twice).

    Return value: ignored.

    .. versionadded:: 0.2
    """


@hookspec
def on_report(event: str, data: Any, metadata: TaskMetadata | None) -> None:
    """Called in the session's own process for each ``reporter.report(event, data)``.

    This is how a hook implementation running in a worker (thread, process, dask)
    talks to the process that opened the session.

    :param event: the event's name, chosen by the reporting plugin.
    :param data: the event's payload (must pickle for the process backend).
    :param metadata: the metadata of the task whose hook reported, or ``None``.

    Return value: ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------


@hookspec
def before_dataset_save(
    key: str, value: Any, format: str, options: dict[str, Any], metadata: TaskMetadata | None
) -> None:
    """Called before a dataset is written.

    :param key: the resolved, validated key.
    :param value: the value to save.
    :param format: the format's name chosen for it.
    :param options: options passed to the format.
    :param metadata: the running task's metadata, or ``None`` outside a task.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def after_dataset_save(
    key: str, value: Any, format: str, options: dict[str, Any], metadata: TaskMetadata | None
) -> None:
    """Called after a dataset was written (the file is complete and in place).

    Arguments as in :func:`before_dataset_save`. Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def before_dataset_load(
    key: str,
    return_type: type | None,
    format: str,
    options: dict[str, Any],
    metadata: TaskMetadata | None,
) -> None:
    """Called before a dataset is read.

    :param key: the resolved, validated key.
    :param return_type: the type the caller asked for, or ``None``.
    :param format: the format's name chosen for it.
    :param options: options passed to the format.
    :param metadata: the running task's metadata, or ``None`` outside a task.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def after_dataset_load(
    key: str,
    return_type: type | None,
    format: str,
    options: dict[str, Any],
    result: Any,
    duration: float,
    metadata: TaskMetadata | None,
) -> None:
    """Called after a dataset was read.

    Arguments as in :func:`before_dataset_load`, plus:

    :param result: the loaded value.
    :param duration: seconds the load took.

    Return value: ignored.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def provide_cache_store(spec: Any, settings: DagliteSettings) -> CacheStore | None:
    """Return a cache store for ``spec``, or ``None`` to let another plugin answer.

    Called when a ``cache=True`` task first needs its store, once per distinct spec
    per session (the answer is kept for the session).

    :param spec: what the user asked for: ``None`` (the default store), a path
        (``str`` or ``os.PathLike``) or another object a plugin understands.
    :param settings: the session's settings.

    Return value: an object following :class:`~daglite_core.CacheStore`; the first
    non-``None`` answer wins.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def provide_dataset_store(spec: Any, settings: DagliteSettings) -> DatasetStore | None:
    """Return a dataset store for ``spec``, or ``None`` to let another plugin answer.

    :param spec: ``None`` (the default store), a path, or another object a plugin
        understands.
    :param settings: the session's settings.

    Return value: an object following :class:`~daglite_core.DatasetStore`; the
    first non-``None`` answer wins.

    .. versionadded:: 0.1
    """


@hookspec
def provide_dataset_formats() -> list[DatasetFormat] | None:
    """Return dataset formats to add to the format registry.

    Collected from every plugin when a dataset store builds its registry.

    Return value: a list of objects following :class:`~daglite_core.DatasetFormat`.

    .. versionadded:: 0.1
    """


@hookspec
def provide_backends() -> list[type[Backend]] | None:
    """Return backend classes that :func:`~daglite_core.map_tasks` can run on.

    Each class has a ``name`` and ``aliases``; it is instantiated once per session
    the first time it is used, and closed when the session ends. The core's own
    ``inline``, ``thread`` and ``process`` backends are supplied through this hook
    too (``trylast``), so a plugin may replace one by using its name.

    Return value: a list of classes following :class:`~daglite_core.Backend`.

    .. versionadded:: 0.1
    """


@hookspec
def provide_cli_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add subcommands to the ``daglite`` command line.

    Add a parser with ``subparsers.add_parser(name, help=...)`` and give it a
    handler with ``parser.set_defaults(handler=fn)``, where ``fn(args) -> int`` is
    the exit code.

    :param subparsers: the ``daglite`` parser's subparsers action.

    Return value: ignored.

    .. versionadded:: 0.1
    """


@hookspec
def provide_run_options(parser: argparse.ArgumentParser) -> None:
    """Add options to ``daglite run`` (e.g. ``--progress``).

    :param parser: the ``run`` command's parser.

    Return value: ignored. See :func:`provide_run_plugins` to act on them.

    .. versionadded:: 0.1
    """


@hookspec
def provide_run_plugins(args: Any) -> list[object] | None:
    """Return plugins to register in the session ``daglite run`` opens.

    :param args: the parsed ``argparse.Namespace`` (with the options added by
        :func:`provide_run_options`).

    Return value: a list of plugin objects, or ``None``.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------
# Wrapping each attempt of a task's body
# ---------------------------------------------------------------------------


@hookspec
def node_attempt(metadata: TaskMetadata, reporter: Reporter, attempt: int) -> Any:
    """Wraps each attempt of a task's body: implement it as a new-style wrapper.

    Only ``@hookimpl(wrapper=True)`` generator implementations are accepted; each
    yields exactly once::

        @hookimpl(wrapper=True)
        def node_attempt(self, metadata):
            token = request_id.set(metadata.id)   # before the attempt
            try:
                return (yield)                    # the attempt runs here
            finally:
                request_id.reset(token)           # after it, even when it raised

    The code around ``yield`` runs in the thread that runs the body (the watched
    thread of a timed sync attempt; the worker process on the ``process``
    backend, for plugins that declare ``daglite_in_workers = True``; the event
    loop's task for an async body), so context variables, tracing spans and
    resource limits set there apply to the body. Wrappers nest in the hook call
    order (``tryfirst`` outermost). Generator tasks are not wrapped (their body
    runs interleaved with the consumer's code). Not relayed between processes.

    :param metadata: the call's :class:`~daglite_core.TaskMetadata`.
    :param reporter: see :func:`before_node_execute`.
    :param attempt: 0 for the first attempt, then the retry number (as
        :func:`before_node_retry` counts it).

    Return value: ``yield`` gives back the attempt's result (or raises its
    exception); what the wrapper returns is ignored, and it can never change the
    task's outcome: a wrapper that raises before its ``yield`` is reported and
    left out of that attempt, one that raises after it is reported and the
    attempt's own result or error stands. In strict mode the ``PluginError``
    fails the attempt instead.

    .. versionadded:: 0.2
    """
