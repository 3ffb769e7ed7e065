"""One registry per running daemon.

Built-in plugins are registered as modules, so the plugin is not an object that could
carry state; several daemons run in one test process. The registry is therefore kept
in the host's `plugin_data`, made at start and dropped at stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.grid import registry
from plugins.grid.registry import Registry

if TYPE_CHECKING:
    from daemon.host import Host

NAME = "grid"


def get(host: Host) -> Registry:
    """The host's registry; an empty one before start (a hook called too early)."""
    found: Registry | None = host.plugin_data.get(NAME)
    return Registry() if found is None else found


async def reload(host: Host) -> Registry:
    reg = await host.store.read(registry.load)
    host.plugin_data[NAME] = reg
    return reg


def drop(host: Host) -> None:
    host.plugin_data.pop(NAME, None)
