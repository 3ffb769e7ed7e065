"""The grid registry: a built-in plugin, registered like any third party's.

It keeps the district's tree of grids with their boundaries, the grid members and
their assignment history, and the places and people tied to each grid; serves them
under /api/v1/grid/; imports and exports them through `gridhall grid`; and answers
two hooks other plugins call: the grid for a point, and the member on duty for a
grid. See docs/grid.md.
"""

from __future__ import annotations

from typing import Any

from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.store import Migration
from plugins.grid import live
from plugins.grid.config import PRIVACY_ROLE, GridConfig
from plugins.grid.tables import MIGRATIONS, NAME


@hookimpl
def gridhall_config_sections() -> dict[str, Any]:
    return {NAME: GridConfig}


@hookimpl
def gridhall_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def gridhall_roles() -> dict[str, list[str]]:
    # Reads what a viewer reads, and may ask for ID numbers and phones unmasked.
    return {PRIVACY_ROLE: ["viewer"]}


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    from plugins.grid.api import build_router

    return [build_router(host)]


@hookimpl
async def gridhall_startup(host: Host) -> None:
    await live.reload(host)


@hookimpl
async def gridhall_shutdown(host: Host) -> None:
    live.drop(host)


@hookimpl
def gridhall_cli(subparsers: Any) -> None:
    from plugins.grid.cli import add_commands

    add_commands(subparsers)


@hookimpl
def gridhall_grid_for_point(lon: float, lat: float, host: Host) -> dict[str, Any] | None:
    return live.get(host).grid_for_point(lon, lat)


@hookimpl
def gridhall_grid_member_on_duty(grid: str, host: Host) -> dict[str, Any] | None:
    return live.get(host).on_duty.get(grid)
