"""The light entry-point scan gives what ``importlib.metadata`` gives, and falls back to it."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest

from daglite_core._hooks import _entry_points
from daglite_core._hooks._entry_points import scan

GROUP = "daglite_test_group"


def _dist(site: Path, dirname: str, name: str, version: str, entry_points: str, meta: str = "METADATA") -> None:
    info = site / dirname
    info.mkdir(parents=True)
    (info / meta).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-a-header\n")
    (info / "entry_points.txt").write_text(entry_points)


def _facts(eps: list[object]) -> list[tuple[str, str, str, str]]:
    return sorted((e.name, e.value, e.dist.name, e.dist.version) for e in eps)  # type: ignore[attr-defined]


def _reference() -> list[tuple[str, str, str, str]]:
    return _facts(list(importlib.metadata.entry_points(group=GROUP)))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    monkeypatch.setattr(_entry_points, "_cache", {})
    return tmp_path


def test_the_scan_matches_importlib_metadata(site: Path) -> None:
    _dist(site / "first", "Alpha_Plugin-1.2.dist-info", "alpha-plugin", "1.2",
          f"[console_scripts]\nx = a:b\n\n[{GROUP}]\nalpha = alpha_mod.plugin\nalpha2 = alpha_mod:obj.attr [extra]\n")
    # The same distribution later on sys.path is shadowed (first found wins).
    _dist(site / "second", "alpha_plugin-0.9.dist-info", "alpha-plugin", "0.9", f"[{GROUP}]\nold = alpha_mod.old\n")
    _dist(site / "second", "beta-3.0-py3.11.egg-info", "beta", "3.0", f"# comment\n[{GROUP}]\nbeta = beta_mod\n", meta="PKG-INFO")
    _dist(site / "second", "gamma-1.0.dist-info", "gamma", "1.0", "[other]\ng = gamma\n")
    found = _facts(scan(GROUP))
    assert found == _reference()
    assert [f[0] for f in found] == ["alpha", "alpha2", "beta"]


def test_load_imports_the_named_object(site: Path) -> None:
    (site / "first" / "ep_target_mod.py").write_text("class obj:\n    attr = 42\n")
    _dist(site / "first", "target-1.0.dist-info", "target", "1.0", f"[{GROUP}]\nt = ep_target_mod:obj.attr\nm = ep_target_mod\n")
    loaded = {e.name: e.load() for e in scan(GROUP)}
    assert loaded["t"] == 42
    assert loaded["m"] is sys.modules["ep_target_mod"]


def test_the_scan_is_cached_until_a_directory_changes(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(site / "first", "one-1.0.dist-info", "one", "1.0", f"[{GROUP}]\none = m\n")
    assert [e.name for e in scan(GROUP)] == ["one"]
    calls = []
    real = _entry_points._scan_paths
    monkeypatch.setattr(_entry_points, "_scan_paths", lambda *a: calls.append(1) or real(*a))
    assert [e.name for e in scan(GROUP)] == ["one"]
    assert calls == []  # cached
    _dist(site / "second", "two-1.0.dist-info", "two", "1.0", f"[{GROUP}]\ntwo = m\n")
    assert sorted(e.name for e in scan(GROUP)) == ["one", "two"]
    assert calls == [1]


def test_a_zip_on_sys_path_falls_back_to_importlib_metadata(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = site / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", f"[{GROUP}]\nzipped = zipped_mod\n")
    monkeypatch.syspath_prepend(str(archive))
    found = scan(GROUP)
    assert [e.name for e in found] == ["zipped"]
    assert isinstance(found[0], importlib.metadata.EntryPoint)


def test_a_finder_with_its_own_distributions_falls_back(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Finder:
        @staticmethod
        def find_spec(*args: object) -> None:
            return None

        @staticmethod
        def find_distributions(*args: object, **kwargs: object) -> list[object]:
            return []

    _dist(site / "first", "one-1.0.dist-info", "one", "1.0", f"[{GROUP}]\none = m\n")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    found = scan(GROUP)
    assert [e.name for e in found] == ["one"]
    assert isinstance(found[0], importlib.metadata.EntryPoint)
