"""One registry per running daemon.

Built-in plugins are registered as modules, so the plugin is not an object that could
carry state; several daemons run in one test process. The registry is therefore kept
per host, made at start and dropped at stop.
"""

from __future__ import annotations

from plugins.grid import registry
from plugins.grid.registry import Registry

_live: dict[int, Registry] = {}


def get(host: object) -> Registry:
    """The host's registry; an empty one before start (a hook called too early)."""
    return _live.get(id(host), Registry())


async def reload(host: object) -> Registry:
    from daemon.host import Host

    assert isinstance(host, Host)
    reg = await host.store.read(registry.load)
    _live[id(host)] = reg
    return reg


def drop(host: object) -> None:
    _live.pop(id(host), None)
