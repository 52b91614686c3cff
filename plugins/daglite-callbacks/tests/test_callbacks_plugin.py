"""The plugin is discoverable through the ``daglite`` entry-point group."""

from __future__ import annotations

import importlib.metadata

import pytest

from daglite_callbacks import sign
from daglite_core import list_plugins, session

from callbacks_helpers import cb_double


def test_entry_point_is_registered_under_the_daglite_group() -> None:
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="daglite")}
    assert eps["callbacks"].value == "daglite_callbacks.plugin"
    assert eps["callbacks"].dist is not None and eps["callbacks"].dist.name == "daglite-callbacks"


@pytest.mark.usefixtures("daglite_isolated")
def test_listed_as_an_enabled_plugin_with_no_node_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGLITE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("DAGLITE_PLUGINS_AUTOLOAD", raising=False)
    [info] = [p for p in list_plugins() if p.name == "callbacks"]
    assert info.status == "enabled"
    assert info.distribution == "daglite-callbacks"
    # Dispatch needs no node hook (the core's fast path stays on): only the CLI and
    # the opt-in resume at session start.
    assert set(info.hooks) == {"before_session_start", "provide_cli_commands"}


def test_session_can_name_the_plugin_and_signatures_work_in_it() -> None:
    with session(plugins=["callbacks"]):
        assert sign(cb_double, x=2)() == 4
