"""Ticket handling: the closed loop from a report to a verified, evaluated close.

A built-in plugin, registered like any third party's. Intake from the API, Open311
GeoReport v2 and MQTT; categories as data; the workflow as a state machine
(`workflow`); deadlines in working days on the host's one calendar; routing to the
grid, its member on duty and the departments; reminders, overdue supervision and
whistles; the measures districts are judged by. See docs/tickets.md.

Other plugins meet it only through hooks: `gridhall_ticket_changed` after every
committed change, `gridhall_ticket_changes` to catch up, `gridhall_ticket_alert`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.store import Migration
from plugins.tickets import live, rollup
from plugins.tickets.config import TicketsConfig
from plugins.tickets.tables import MIGRATIONS, NAME

log = logging.getLogger(__name__)


@hookimpl
def gridhall_config_sections() -> dict[str, Any]:
    return {NAME: TicketsConfig}


@hookimpl
def gridhall_migrations() -> list[Migration]:
    return MIGRATIONS + rollup.MIGRATIONS


@hookimpl
def gridhall_roles() -> dict[str, list[str]]:
    # reporter: files reports (a grid member's app, the hotline's system); dispatcher:
    # the command center's desk (register, dispatch, verify, rework, evaluate, reopen,
    # merge, decline, invalidate); handler: a department or a grid member (accept,
    # report back). Both also report, and everyone reads.
    return {"reporter": ["viewer"], "dispatcher": ["reporter"], "handler": ["reporter"]}


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    from plugins.tickets import measures_api, open311, whistles_api
    from plugins.tickets.api import build_router

    return [
        build_router(host),
        measures_api.build_router(host),
        whistles_api.build_router(host),
        open311.mount(host),
    ]


@hookimpl
async def gridhall_startup(host: Host) -> None:
    from plugins.tickets.catalog import CatalogError, read_catalog, write_catalog
    from plugins.tickets.watcher import Watcher

    state = live.get(host)
    if state.config.categories is not None:
        # Checked when the config was loaded (check-config names each bad row); a file
        # broken since then keeps the store's categories and says why.
        path = host.config.resolve(state.config.categories)
        try:
            catalog = read_catalog(path, state.config)
        except CatalogError as exc:
            log.error("tickets: %s not imported; the stored categories stay:\n%s", path, exc)
        else:
            counts = await host.store.write(lambda conn: write_catalog(conn, catalog))
            log.info("tickets: categories from %s: %s", path, counts)
    state.watcher = Watcher(host, state)
    state.watcher.start()


@hookimpl
async def gridhall_shutdown(host: Host) -> None:
    state = live.get(host)
    if state.watcher is not None:
        await state.watcher.stop()
    if state.told is not None:
        await state.told.stop()
    live.drop(host)


@hookimpl
def gridhall_panel_views(host: Host) -> list[Any]:
    # The alert strip above every tab of the panel: present only where this plugin is.
    from daemon.panel.views import PanelView

    title = {"en": "Ticket alerts", "zh": "事件预警"}
    return [PanelView(NAME, Path(__file__).parent / "panel", "strip.js", title, slot="strip")]


@hookimpl
def gridhall_cli(subparsers: Any) -> None:
    from plugins.tickets.cli import add_commands

    add_commands(subparsers)


@hookimpl
def gridhall_mqtt_connected(mqtt: Any, host: Host) -> None:
    from plugins.tickets.mqtt_intake import subscribe

    subscribe(mqtt, host)


@hookimpl
def gridhall_metrics(host: Host) -> list[Any]:
    from plugins.tickets.metrics import TicketMetrics

    state = live.get(host)
    state.metrics = TicketMetrics(host)
    return [state.metrics]


@hookimpl
def gridhall_ticket_changed(change: dict[str, Any], host: Host) -> None:
    metrics = live.get(host).metrics
    if metrics is not None:
        metrics.changed(change)


@hookimpl
def gridhall_ticket_changes(after: int, limit: int, host: Host) -> list[dict[str, Any]]:
    # firstresult hooks stay synchronous: a read-only connection of its own (WAL lets it
    # read beside the daemon's writer) answers without the store's thread.
    from plugins.tickets.changes import changes_after

    conn = sqlite3.connect(f"{host.config.db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return changes_after(conn, after, limit)
    finally:
        conn.close()
