"""``lazy_exports``: a package's names load on first use, once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def test_lazy_exports_load_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from daglite_core import lazy_exports\n"
        "__all__ = ['Thing']\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'Thing': '._heavy'})\n"
    )
    (package / "_heavy.py").write_text("LOADS = []\nclass Thing:\n    pass\nLOADS.append(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import lazypkg

        assert "lazypkg._heavy" not in sys.modules
        assert "Thing" in dir(lazypkg)
        thing = lazypkg.Thing
        assert thing is sys.modules["lazypkg._heavy"].Thing
        assert lazypkg.Thing is thing and vars(lazypkg)["Thing"] is thing  # kept in the namespace
        assert sys.modules["lazypkg._heavy"].LOADS == [1]
        with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'Nope'"):
            lazypkg.Nope  # noqa: B018 - the lookup is the test
    finally:
        for name in ("lazypkg", "lazypkg._heavy"):
            sys.modules.pop(name, None)
