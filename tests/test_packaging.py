"""One version source for every distribution, and plugins that require a bounded core.

``VERSION`` at the repository root is the only place the version is written: the
core's ``setup.cfg`` reads it (``version = file: VERSION``) and so does each plugin's,
through a ``VERSION`` symlink to the root file (setuptools reads only files inside a
project; an sdist carries the file's content).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import daglite_core

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "setup.cfg").is_file())


def _setup_cfg(project: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(project / "setup.cfg", encoding="utf-8")
    return config


def _version() -> str:
    return (ROOT / "VERSION").read_text(encoding="utf-8").strip()


def test_the_version_file_holds_one_valid_version() -> None:
    assert str(Version(_version())) == _version()


def test_the_core_reads_the_version_file() -> None:
    assert _setup_cfg(ROOT)["metadata"]["version"] == "file: VERSION"


def test_the_installed_core_reports_the_version_of_this_checkout() -> None:
    assert daglite_core.__version__ == _version()


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_each_plugin_reads_the_root_version_file(plugin: Path) -> None:
    assert _setup_cfg(plugin)["metadata"]["version"] == "file: VERSION"
    link = plugin / "VERSION"
    assert link.is_symlink() and link.resolve() == (ROOT / "VERSION").resolve()


@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_each_plugin_requires_a_bounded_core_range_holding_this_version(plugin: Path) -> None:
    lines = _setup_cfg(plugin)["options"]["install_requires"].splitlines()
    requirements = [Requirement(line) for line in (re.sub(r"#.*", "", x).strip() for x in lines) if line]
    core = [r for r in requirements if r.name == "daglite-core"]
    assert len(core) == 1, f"{plugin.name} must require daglite-core once"
    specifier = core[0].specifier
    assert any(s.operator == "<" for s in specifier), f"{plugin.name}: daglite-core needs an upper bound"
    assert any(s.operator == ">=" for s in specifier), f"{plugin.name}: daglite-core needs a lower bound"
    assert specifier.contains(_version(), prereleases=True)
    upper = next(Version(s.version) for s in specifier if s.operator == "<")
    assert upper.release[:2] > Version(_version()).release[:2]  # the bound lies above this release series
