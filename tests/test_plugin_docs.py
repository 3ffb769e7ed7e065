"""Plugin authors read docs/plugins.md, not the source: every hook must be there, and
the example plugin shown there must be the one tests/test_plugins.py runs
(after datasette's `test_plugin_hooks_are_documented`)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from daemon import hookspecs
from tests.support import ROOT

DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "tests" / "plugins" / "visitors.py"


def hooks() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("gridhall_")
    }


def test_hooks_are_found() -> None:
    """Guards the tests below against passing on an empty list."""
    assert {"gridhall_config_sections", "gridhall_check_action"} <= set(hooks())


@pytest.mark.parametrize("name", sorted(hooks()))
def test_hook_is_documented(name: str) -> None:
    assert f"### `{name}`" in DOC.splitlines(), f"docs/plugins.md needs a ### `{name}` section"


@pytest.mark.parametrize("name", sorted(hooks()))
def test_hookspec_says_since_when(name: str) -> None:
    """Hooks only grow: each says the version it appeared in."""
    assert "Since" in (inspect.getdoc(hooks()[name]) or "")


def test_every_documented_hook_exists() -> None:
    """A renamed hook must not leave its old section behind."""
    documented = set(re.findall(r"^### `(gridhall_\w+)`$", DOC, re.MULTILINE))
    assert documented == set(hooks())


def test_the_example_is_the_tested_plugin() -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    assert f"```python\n{source}```\n" in DOC, "paste tests/plugins/visitors.py into the doc"


def test_the_ticket_hooks_vocabulary_is_the_ticket_plugins() -> None:
    """`TICKET_TRANSITIONS` and `TICKET_FIELDS` are what other plugins check their
    config against (the time bank's rules) without importing the ticket plugin: they
    must be exactly what the ticket plugin makes (its change records' keys are checked
    in tests/test_timebank_tickets.py), and what the guide lists."""
    from plugins.tickets.workflow import TRANSITIONS

    assert hookspecs.TICKET_TRANSITIONS == ("collect", *TRANSITIONS)
    section = DOC[DOC.index("### `gridhall_ticket_changed`") :]
    section = " ".join(section[: section.index("```")].split())
    listed = re.search(r"`collect`\) and every workflow transition \(([^)]*)\)", section)
    assert listed is not None
    assert ["collect", *re.findall(r"`(\w+)`", listed.group(1))] == list(
        hookspecs.TICKET_TRANSITIONS
    )
    fields = re.search(r"`ticket` is the ticket after the change \(([^)]*)\)", section)
    assert fields is not None
    assert re.findall(r"`(\w+)`", fields.group(1)) == list(hookspecs.TICKET_FIELDS)
