"""The ``daglite`` command line (core only, no plugin installed).

Tests call ``daglite_core.cli.main(argv)`` in this process (the ``daglite`` fixture:
working directory, environment and ``sys.path`` set for the call and restored after,
modules it imported from the test's files forgotten, plugins reset); a few smoke
tests run the console script and ``python -m daglite_core.cli`` in a subprocess.
Workflows live in small files written to ``tmp_path``; plugins that the CLI must
discover are fake distributions (a ``.dist-info`` directory with entry points) on
``PYTHONPATH`` (prepended to ``sys.path`` in process), so nothing is installed.
"""

from __future__ import annotations

# "pip install daglite-x" is the advice only when daglite-x is not installed (the core's
# own environment); with it installed the message says it is disabled instead.
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from daglite_core import cli
from daglite_core.cli._params import split_docstring
from daglite_core.pytest_plugin import _reset as reset_daglite

_NO_PLUGINS = pytest.mark.skipif(
    any(importlib.util.find_spec(m) for m in ("daglite_diskcache", "daglite_datasets")),
    reason="checks the advice given when the plugin is not installed",
)

WORKFLOWS = '''
from __future__ import annotations

import asyncio
import enum
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from daglite_core import map_tasks, save_dataset, task, workflow


if TYPE_CHECKING:
    from decimal import Decimal as OnlyForCheckers


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"


@task
def square(x: int) -> int:
    return x * x


@task
def which_thread(x: int) -> str:
    return "main" if threading.current_thread() is threading.main_thread() else "worker"


@task
def explode(x: int) -> int:
    raise ValueError(f"bad value {x}")


@workflow
def squares(n: int, scale: float = 1.0, verbose: bool = False, label: str = "sq",
            ids: list[int] | None = None, out: Path = Path("out"),
            mode: Literal["fast", "slow"] = "fast", color: Color = Color.RED,
            tags: tuple[str, ...] = ()) -> dict:
    """Square the numbers below n.

    The squares are scaled.

    :param n: how many numbers to square
    :param scale: factor for each square
    """
    return {
        "squares": [s * scale for s in map_tasks(square, range(n))],
        "verbose": verbose, "label": label, "ids": ids, "out": str(out),
        "mode": mode, "color": color.name, "tags": list(tags),
    }


@workflow
def backends(n: int = 2) -> list[str]:
    """Which thread ran each item of the map."""
    return map_tasks(which_thread, range(n))


@workflow
def failing(x: int = 3) -> int:
    """Fails inside a task."""
    return explode(x)


@workflow
def broken_body() -> int:
    """Fails in its own body."""
    return {}["missing"]


@workflow
async def async_squares(n: int = 3) -> list[int]:
    """An async workflow."""
    await asyncio.sleep(0)
    return [square(i) for i in range(n)]


@workflow
def nothing() -> None:
    """Returns None."""


@workflow
def saves() -> str:
    """Needs a dataset store."""
    return save_dataset("x.txt", "hello")


@workflow
def clash(backend: str = "x") -> str:
    """A parameter named like a run option."""
    return backend


@workflow
def opaque(conn: object) -> None:
    """A required parameter the command line cannot express."""


@workflow
def hidden(n: int = 1, conn: object = None) -> int:
    """An inexpressible parameter with a default stays out of the CLI."""
    return n


@workflow
def late_hint(n: int, amount: OnlyForCheckers | None = None) -> int:
    """An annotation that only exists for type checkers."""
    return n


def not_a_workflow() -> int:
    return 1
'''


def _env(**extra: str) -> dict[str, str]:
    """Environment variables set for one CLI call, on top of the test's environment."""
    return dict(extra)


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


class Daglite:
    """``daglite ARGS`` in ``cwd``: ``cli.main(argv)`` run in this process, output captured."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
        self.capsys, self.monkeypatch, self.base = capsys, monkeypatch, str(base)

    def __call__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
        self.capsys.readouterr()
        modules = set(sys.modules)
        path = list(sys.path)
        with self.monkeypatch.context() as patch:
            patch.chdir(cwd)
            patch.setenv("COLUMNS", "80")  # argparse wraps help as in a pipe
            for name, value in (env or {}).items():
                if name == "PYTHONPATH":
                    for entry in reversed(value.split(os.pathsep)):
                        patch.syspath_prepend(entry)
                else:
                    patch.setenv(name, value)
            try:
                code = cli.main(list(args))
            finally:
                sys.path[:] = path
                for name in set(sys.modules) - modules:  # the test's workflow and plugin modules
                    if (getattr(sys.modules[name], "__file__", None) or "").startswith(self.base):
                        del sys.modules[name]
                reset_daglite()  # plugins loaded for this call are forgotten, as by a new process
        out, err = self.capsys.readouterr()
        return Result(code, out, err)


@pytest.fixture
def daglite(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daglite]:
    yield Daglite(capsys, monkeypatch, tmp_path_factory.getbasetemp())


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def daglite_subprocess(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daglite_core.cli ARGS`` in ``cwd`` (smoke tests)."""
    return subprocess.run(
        [sys.executable, "-m", "daglite_core.cli", *args],
        cwd=cwd, capture_output=True, text=True, env=_subprocess_env(**(env or {})), timeout=120, check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(WORKFLOWS)
    return tmp_path


# -- run: options typed from the signature -------------------------------------


def test_run_file_target_converts_every_option_type(project: Path, daglite: Daglite) -> None:
    proc = daglite(
        project, "run", "flows.py:squares", "--n", "3", "--scale", "2", "--verbose",
        "--ids", "4", "5", "--out", "x/y", "--mode", "slow", "--color", "BLUE", "--tags", "a", "b",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr({
        "squares": [0.0, 2.0, 8.0], "verbose": True, "label": "sq", "ids": [4, 5],
        "out": "x/y", "mode": "slow", "color": "BLUE", "tags": ["a", "b"],
    })


def test_run_defaults_and_negative_flag_and_json(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:squares", "--n", "2", "--no-verbose", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "squares": [0.0, 1.0], "verbose": False, "label": "sq", "ids": None,
        "out": "out", "mode": "fast", "color": "RED", "tags": [],
    }


def test_run_module_colon_and_dotted_targets_from_the_working_directory(project: Path, daglite: Daglite) -> None:
    assert daglite(project, "run", "flows:squares", "--n", "2").returncode == 0
    dotted = daglite(project, "run", "flows.async_squares", "--n", "4")
    assert dotted.returncode == 0, dotted.stderr
    assert dotted.stdout.strip() == "[0, 1, 4, 9]"


def test_run_target_inside_a_package_uses_its_dotted_name(tmp_path: Path, daglite: Daglite) -> None:
    pkg = tmp_path / "src" / "mypkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "flows.py").write_text(
        "from daglite_core import workflow\n\n@workflow\ndef where() -> str:\n    return __name__\n"
    )
    proc = daglite(tmp_path, "run", "src/mypkg/flows.py:where")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "'mypkg.flows'"


def test_run_prints_nothing_for_none_but_null_as_json(project: Path, daglite: Daglite) -> None:
    plain = daglite(project, "run", "flows.py:nothing")
    assert (plain.returncode, plain.stdout) == (0, "")
    as_json = daglite(project, "run", "flows.py:nothing", "--json")
    assert (as_json.returncode, as_json.stdout.strip()) == (0, "null")


def test_run_help_shows_the_docstring_and_typed_parameters(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:squares", "--help")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Square the numbers below n." in out
    assert "The squares are scaled." in out
    assert ":param" not in out  # parameter docs move to their options
    assert "--n INT" in out and "how many numbers to square (required)" in out
    assert "factor for each square (default: 1.0)" in out
    assert "--verbose, --no-verbose" in out
    assert "--ids [INT ...]" in out
    assert "--mode {fast,slow}" in out and "--color {RED,BLUE}" in out
    assert "--backend NAME" in out and "--plugin NAME" in out


def test_run_without_target_help_lists_run_options(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "--help")
    assert proc.returncode == 0
    assert "--cache-store" in proc.stdout and "TARGET" in proc.stdout


def test_run_backend_flag_sets_the_session_backend(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:backends", "--backend", "thread", "--max-workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['worker', 'worker']"
    inline = daglite(project, "run", "flows.py:backends")
    assert inline.stdout.strip() == "['main', 'main']"


def test_run_parameter_with_inexpressible_type_and_default_is_left_out(project: Path, daglite: Daglite) -> None:
    helped = daglite(project, "run", "flows.py:hidden", "--help")
    assert "Not settable from the command line" in helped.stdout and "conn (object)" in helped.stdout
    ran = daglite(project, "run", "flows.py:hidden", "--n", "5")
    assert (ran.returncode, ran.stdout.strip()) == (0, "5")


def test_run_annotation_unresolvable_at_run_time_leaves_only_that_parameter_out(project: Path, daglite: Daglite) -> None:
    ran = daglite(project, "run", "flows.py:late_hint", "--n", "4")
    assert (ran.returncode, ran.stdout.strip()) == (0, "4")
    helped = " ".join(daglite(project, "run", "flows.py:late_hint", "--help").stdout.split())
    assert "amount ('OnlyForCheckers | None' (not resolvable at run time))" in helped


# -- run: failures and exit codes --------------------------------------------------


def test_task_failure_exits_1_with_one_line_naming_the_task(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:failing", "--x", "7")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Task 'explode' failed: ValueError: bad value 7" in lines[0]
    assert "--traceback" in lines[0]
    assert proc.stdout == ""


def test_traceback_flag_prints_the_traceback(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:failing", "--traceback")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "raise ValueError" in proc.stderr


def test_workflow_body_failure_exits_1_naming_the_workflow(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:broken_body")
    assert proc.returncode == 1
    assert "workflow 'broken_body' failed: KeyError: 'missing'" in proc.stderr


@_NO_PLUGINS
def test_missing_plugin_is_a_run_failure_that_says_what_to_install(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "run", "flows.py:saves", env=_env(DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert proc.returncode == 1
    assert "pip install daglite-datasets" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flows.py:squares"], "the following arguments are required: --n"),
        (["flows.py:squares", "--n", "many"], "argument --n: invalid int value: 'many'"),
        (["flows.py:squares", "--n", "1", "--mode", "medium"], "argument --mode: invalid choice value: 'medium'"),
        (["flows.py:squares", "--n", "1", "--bogus"], "unrecognized arguments: --bogus"),
        (["flows.py:nope"], "module 'flows' has no attribute 'nope' (workflows in it: async_squares, backends"),
        (["flows.py:not_a_workflow"], "is a function, not a @workflow"),
        (["flows.py"], "'flows.py' names a file; add the workflow"),
        (["flows"], "'flows' is a module; name a workflow in it"),
        (["missing.py:wf"], "no such file: 'missing.py'"),
        (["nosuchmodule:wf"], "no module named 'nosuchmodule'"),
        (["flows.py:backends", "--backend", "warp"], "Unknown backend 'warp'; known backends: inline"),
        (["flows.py:backends", "--plugin", "nosuchplugin"], "No daglite plugin named 'nosuchplugin'"),
        (["flows.py:clash"], "parameter 'backend' clashes with daglite run's own --backend option"),
        (["flows.py:opaque"], "parameter 'conn' has type object which cannot be given on the command line"),
        ([], "daglite run needs a TARGET"),
    ],
)
def test_usage_errors_exit_2_naming_the_culprit(project: Path, args: list[str], message: str, daglite: Daglite) -> None:
    proc = daglite(project, "run", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_command_and_option_exit_2(project: Path, daglite: Daglite) -> None:
    assert daglite(project, "frobnicate").returncode == 2
    assert daglite(project, "plugins", "--bogus").returncode == 2
    assert daglite(project).returncode == 2


def test_malformed_environment_variable_is_a_usage_error(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "plugins", env=_env(DAGLITE_MAX_WORKERS="lots"))
    assert proc.returncode == 2
    assert "DAGLITE_MAX_WORKERS='lots' is not an integer" in proc.stderr


def test_module_that_raises_on_import_shows_its_traceback(tmp_path: Path, daglite: Daglite) -> None:
    (tmp_path / "bad.py").write_text("import definitely_not_installed_xyz\n")
    proc = daglite(tmp_path, "run", "bad.py:wf")
    assert proc.returncode == 1
    assert "importing 'bad' failed: ModuleNotFoundError" in proc.stderr
    assert "Traceback" in proc.stderr


def test_package_that_raises_on_import_of_a_dotted_target_shows_its_traceback(tmp_path: Path, daglite: Daglite) -> None:
    (tmp_path / "badpkg").mkdir()
    (tmp_path / "badpkg" / "__init__.py").write_text("raise RuntimeError('broken package')\n")
    proc = daglite(tmp_path, "run", "badpkg.flows.wf")
    assert proc.returncode == 1
    assert "importing 'badpkg' failed: RuntimeError: broken package" in proc.stderr


def test_console_script_runs_a_workflow(project: Path) -> None:
    script = Path(sys.executable).with_name("daglite")
    proc = subprocess.run(
        [str(script), "run", "flows.py:squares", "--n", "2"],
        cwd=project, capture_output=True, text=True, env=_subprocess_env(), timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "'squares': [0.0, 1.0]" in proc.stdout


# -- list and describe -------------------------------------------------------------


def test_list_file_shows_each_workflow_with_its_summary(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "list", "flows.py")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "flows.py:async_squares", "flows.py:backends", "flows.py:broken_body", "flows.py:clash",
        "flows.py:failing", "flows.py:hidden", "flows.py:late_hint", "flows.py:nothing", "flows.py:opaque",
        "flows.py:saves", "flows.py:squares",
    ]
    assert "Square the numbers below n." in lines[-1]
    as_json = json.loads(daglite(project, "list", "flows", "--json").stdout)
    assert as_json[-1] == {
        "target": "flows:squares", "name": "squares",
        "description": next(d["description"] for d in as_json if d["name"] == "squares"),
    }


def test_list_package_does_not_import_its_submodules(tmp_path: Path, daglite: Daglite) -> None:
    pkg = tmp_path / "pipelines"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from daglite_core import workflow\n\n@workflow\ndef top() -> int:\n    '''Top level.'''\n    return 1\n"
    )
    (pkg / "heavy.py").write_text("raise RuntimeError('imported heavy')\n")
    proc = daglite(tmp_path, "list", "pipelines")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["pipelines:top", "Top", "level."]
    assert "imported heavy" not in proc.stderr
    assert "not searched (list one by name): pipelines.heavy" in proc.stderr


def test_list_directory_that_is_not_a_package_names_its_files(tmp_path: Path, daglite: Daglite) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.py").write_text("")
    proc = daglite(tmp_path, "list", "flows/")
    assert proc.returncode == 2
    assert "'flows/' is a directory, not a package (no __init__.py); name one of its files: flows/a.py" in proc.stderr


def test_list_module_without_workflows_says_so(tmp_path: Path, daglite: Daglite) -> None:
    (tmp_path / "empty.py").write_text("x = 1\n")
    proc = daglite(tmp_path, "list", "empty.py")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert "no workflows in empty.py" in proc.stderr


def test_describe_shows_name_description_and_parameters(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "describe", "flows.py:squares")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "workflow: squares" in out
    assert "Square the numbers below n." in out
    assert "--n" in out and "int" in out and "required" in out
    assert "--scale" in out and "float" in out and "default 1.0" in out
    assert "list[int] | None" not in out and "list[int]" in out
    data = json.loads(daglite(project, "describe", "flows:async_squares", "--json").stdout)
    assert data["is_async"] is True
    assert data["parameters"] == [{
        "name": "n", "option": "--n", "type": "int", "required": False, "default": "3",
        "help": "", "settable": True,
    }]


def test_describe_bad_target_exits_2(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "describe", "flows.py:nope")
    assert proc.returncode == 2
    assert "has no attribute 'nope'" in proc.stderr


# -- plugins, --version, plugin commands and run options ---------------------------


def _fake_distribution(site: Path, name: str, version: str, entry_points: str, modules: dict[str, str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


FAKE_PLUGIN = '''
import sys

from daglite_core import hookimpl


def _hello(args):
    print(f"hello {args.who}")
    return 3


class Shouter:
    @hookimpl
    def after_node_execute(self, metadata):
        print(f"SHOUT {metadata.name}", file=sys.stderr)


@hookimpl
def provide_cli_commands(subparsers):
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("who")
    parser.set_defaults(handler=_hello)


@hookimpl
def provide_run_options(parser):
    parser.add_argument("--shout", action="store_true", help="shout every finished task")


@hookimpl
def provide_run_plugins(args):
    if vars(args).get("param:n") == 13:
        raise LookupError("unlucky")
    return [Shouter()] if args.shout else None
'''

OBSERVER_PLUGIN = '''
import sys

from daglite_core import hookimpl


@hookimpl
def before_session_start(session_id):
    print("OBSERVER session started", file=sys.stderr)
'''

QUIET_PLUGIN = '''
from daglite_core import hookimpl


@hookimpl
def after_session_end(session_id):
    pass
'''

RAISING_COMMANDS = '''
from daglite_core import hookimpl


@hookimpl
def provide_cli_commands(subparsers):
    raise RuntimeError("cannot build my commands")
'''


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _fake_distribution(site, "fake_plugin", "1.2.0", "[daglite]\nfake = fake_plugin\n", {"fake_plugin": FAKE_PLUGIN})
    _fake_distribution(site, "broken_plugin", "0.3", "[daglite]\nbroken = broken_plugin\n", {"broken_plugin": "raise ImportError('no such backend library')\n"})
    _fake_distribution(site, "quiet_plugin", "2.0", "[daglite]\nquiet = quiet_plugin\n", {"quiet_plugin": QUIET_PLUGIN})
    _fake_distribution(site, "observer_plugin", "0.1", "[daglite]\nobserver = observer_plugin\n", {"observer_plugin": OBSERVER_PLUGIN})
    return site


def _plugin_env(site: Path, **extra: str) -> dict[str, str]:
    return _env(**{"PYTHONPATH": str(site), "DAGLITE_PLUGINS_AUTOLOAD": "1", **extra})


def test_plugins_lists_enabled_disabled_and_failed(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    proc = daglite(project, "plugins", "--json", env=_plugin_env(plugin_site, DAGLITE_DISABLE_PLUGINS="quiet"))
    assert proc.returncode == 1, proc.stderr  # the broken plugin failed to load
    by_name = {p["name"]: p for p in json.loads(proc.stdout)}
    assert by_name["fake"] == {
        "name": "fake", "distribution": "fake_plugin", "version": "1.2.0",
        "hooks": ["provide_cli_commands", "provide_run_options", "provide_run_plugins"],
        "status": "enabled", "reason": "", "source": "entry point",
    }
    assert by_name["quiet"]["status"] == "disabled"
    assert "DAGLITE_DISABLE_PLUGINS" in by_name["quiet"]["reason"]
    assert by_name["broken"]["status"] == "failed"
    assert by_name["broken"]["reason"] == "ImportError: no such backend library"
    assert by_name["daglite-core"]["source"] == "builtin"
    text = daglite(project, "plugins", env=_plugin_env(plugin_site, DAGLITE_DISABLE_PLUGINS="quiet")).stdout
    assert "fake  (fake_plugin 1.2.0)" in text
    assert "status: failed: ImportError: no such backend library" in text
    assert "hooks:  provide_cli_commands, provide_run_options, provide_run_plugins" in text


def test_plugins_all_disabled_when_autoload_is_off(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    proc = daglite(project, "plugins", "--json", env=_plugin_env(plugin_site, DAGLITE_PLUGINS_AUTOLOAD="0"))
    fake = next(p for p in json.loads(proc.stdout) if p["name"] == "fake")
    assert (fake["status"], fake["reason"]) == ("disabled", "DAGLITE_PLUGINS_AUTOLOAD=0")


def test_version_lists_the_core_and_each_enabled_plugin(project: Path, plugin_site: Path) -> None:
    # A smoke test in a new interpreter: entry points found on PYTHONPATH, python -m.
    from daglite_core import __version__

    proc = daglite_subprocess(project, "--version", env=_plugin_env(plugin_site))
    assert proc.returncode == 0, proc.stderr
    core, plugins = proc.stdout.splitlines()
    assert core == f"daglite-core {__version__}"
    assert plugins.startswith("plugins: ")
    listed = plugins.removeprefix("plugins: ").split(", ")
    assert listed == sorted(listed)
    # Enabled entry-point plugins only: not the failed one, not the builtin.
    assert {"fake_plugin-1.2.0", "observer_plugin-0.1", "quiet_plugin-2.0"} <= set(listed)
    assert not any(item.startswith(("broken_plugin", "daglite-core")) for item in listed)
    bare = daglite_subprocess(project, "--version", env=_env(DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert bare.stdout.splitlines()[1] == "plugins: none"


def test_version_in_process_matches_the_installed_distribution(project: Path, daglite: Daglite) -> None:
    from importlib.metadata import version

    proc = daglite(project, "--version", env=_env(DAGLITE_PLUGINS_AUTOLOAD="0"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"daglite-core {version('daglite-core')}", "plugins: none"]


def test_hook_provide_cli_commands_adds_a_subcommand_whose_exit_code_is_kept(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    proc = daglite(project, "hello", "world", env=_plugin_env(plugin_site))
    assert (proc.returncode, proc.stdout) == (3, "hello world\n")
    assert "hello" in daglite(project, "--help", env=_plugin_env(plugin_site)).stdout


def test_hook_provide_run_options_and_provide_run_plugins_add_a_session_plugin(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    env = _plugin_env(plugin_site)
    assert "--shout" in daglite(project, "run", "flows.py:squares", "--help", env=env).stdout
    quiet = daglite(project, "run", "flows.py:failing", "--help", env=env)
    assert quiet.returncode == 0
    shouted = daglite(project, "run", "flows.py:squares", "--n", "2", "--shout", env=env)
    assert shouted.returncode == 0, shouted.stderr
    assert shouted.stderr.count("SHOUT square[") == 2
    plain = daglite(project, "run", "flows.py:squares", "--n", "2", env=env)
    assert "SHOUT" not in plain.stderr
    raising = daglite(project, "run", "flows.py:squares", "--n", "13", env=env)
    assert raising.returncode == 1
    assert "Plugin 'fake' raised in provider hook 'provide_run_plugins': LookupError: unlucky" in raising.stderr


def test_plugin_flag_loads_a_disabled_plugin_for_the_run(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    env = _plugin_env(plugin_site, DAGLITE_PLUGINS_AUTOLOAD="0")
    without = daglite(project, "run", "flows.py:nothing", env=env)
    assert "OBSERVER" not in without.stderr
    with_flag = daglite(project, "run", "flows.py:nothing", "--plugin", "observer", env=env)
    assert with_flag.returncode == 0, with_flag.stderr
    assert "OBSERVER session started" in with_flag.stderr


def test_hook_provide_cli_commands_that_raises_does_not_break_the_cli(project: Path, plugin_site: Path, daglite: Daglite) -> None:
    _fake_distribution(plugin_site, "raising_plugin", "1.0", "[daglite]\nraising = raising_plugin\n", {"raising_plugin": RAISING_COMMANDS})
    proc = daglite(project, "plugins", env=_plugin_env(plugin_site))
    assert proc.returncode == 1  # the fixture's 'broken' plugin failed to load; the listing is whole
    assert "Plugin 'raising' raised in provider hook 'provide_cli_commands'" in proc.stderr
    assert "RuntimeError: cannot build my commands" in proc.stderr
    assert "raising  (raising_plugin 1.0)" in proc.stdout


# -- docstring parsing (unit) ------------------------------------------------------


def test_split_docstring_reads_sphinx_and_google_parameter_docs() -> None:
    text, params = split_docstring(
        "Summary line.\n\nMore text.\n\n:param a: first\n    continued\n:param int b: second\n:returns: x\n"
    )
    assert text == "Summary line.\n\nMore text."
    assert params == {"a": "first continued", "b": "second"}
    text, params = split_docstring(
        "Summary.\n\nArgs:\n    a (int): first\n        more\n    b: second\n\nReturns:\n    stuff\n"
    )
    assert params == {"a": "first more", "b": "second"}
    assert "Args:" not in text and "Returns:" in text


# -- commands of plugins that are not there; failed plugins ------------------------------


@_NO_PLUGINS
def test_cache_command_without_the_plugin_names_the_plugin_to_install(project: Path, daglite: Daglite) -> None:
    proc = daglite(project, "cache", "stats", env=_env(DAGLITE_PLUGINS_AUTOLOAD="1", PYTHONPATH=str(project / "empty")))
    assert proc.returncode == 2
    assert "'daglite cache' is added by the daglite-diskcache plugin" in proc.stderr
    assert "pip install daglite-diskcache" in proc.stderr


def test_cache_command_of_an_installed_but_disabled_plugin_says_it_is_disabled(project: Path, tmp_path: Path, daglite: Daglite) -> None:
    site = tmp_path / "cache_site"
    _fake_distribution(site, "daglite-diskcache", "9.9", "[daglite]\ndiskcache = fake_diskcache\n", {"fake_diskcache": QUIET_PLUGIN})
    env = _plugin_env(site, DAGLITE_DISABLE_PLUGINS="diskcache")
    proc = daglite(project, "cache", "stats", env=env)
    assert proc.returncode == 2
    assert "daglite-diskcache is installed but disabled by DAGLITE_DISABLE_PLUGINS" in proc.stderr
    assert "pip install" not in proc.stderr


def test_plugins_exits_non_zero_when_a_plugin_failed_to_load(project: Path, tmp_path: Path, daglite: Daglite) -> None:
    site = tmp_path / "ok_site"
    _fake_distribution(site, "quiet_plugin", "2.0", "[daglite]\nquiet = quiet_plugin\n", {"quiet_plugin": QUIET_PLUGIN})
    assert daglite(project, "plugins", env=_plugin_env(site)).returncode == 0
    _fake_distribution(site, "broken_plugin", "0.3", "[daglite]\nbroken = broken_plugin\n", {"broken_plugin": "raise ImportError('gone')\n"})
    proc = daglite(project, "plugins", env=_plugin_env(site))
    assert proc.returncode == 1
    assert "quiet  (quiet_plugin 2.0)" in proc.stdout  # the listing is still whole
    assert "1 plugin(s) failed to load: broken" in proc.stderr
