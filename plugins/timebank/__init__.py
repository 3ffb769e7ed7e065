"""The time bank (时间银行): credits for taking part, kept as a double-entry ledger.

A built-in plugin, registered like any third party's. Grid members, residents and
organisations hold accounts; a community pool pays the rewards that the earning rules
(data, in `[timebank]`) grant: a report accepted as real, a ticket closed on time,
volunteer hours and patrols confirmed by an organiser. Credits are spent on the
catalogue's services and goods or passed within a family. See docs/timebank.md.

It meets the ticket plugin only through hooks: `gridhall_ticket_changed` as changes
are committed, and `gridhall_ticket_changes` to catch up on what it missed.
"""

from __future__ import annotations

from typing import Any

from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.store import Migration
from plugins.timebank import accounts, feed
from plugins.timebank.config import ORGANISER_ROLE, TimebankConfig
from plugins.timebank.tables import MIGRATIONS, NAME


@hookimpl
def gridhall_config_sections() -> dict[str, Any]:
    return {NAME: TimebankConfig}


@hookimpl
def gridhall_migrations() -> list[Migration]:
    return MIGRATIONS


@hookimpl
def gridhall_roles() -> dict[str, list[str]]:
    # Reads what a viewer reads; confirms awards, opens accounts, transfers, redeems.
    return {ORGANISER_ROLE: ["viewer"]}


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    from plugins.timebank.api import build_router

    return [build_router(host)]


@hookimpl
def gridhall_metrics(host: Host) -> list[Any]:
    from plugins.timebank.metrics import TimebankMetrics

    return [TimebankMetrics(host)]


@hookimpl
async def gridhall_startup(host: Host) -> None:
    config = feed.config_of(host)

    def open_fixed(conn: Any) -> None:
        # The pool and the catalogue's providers are paid without anyone opening them.
        now = feed.now(host)
        for ref in {config.pool_account, *(i.provider for i in config.catalogue if i.provider)}:
            accounts.open_account(conn, ref, by="timebank:config", at=now)

    await host.store.write(open_fixed)
    await feed.catch_up(host)


@hookimpl
def gridhall_shutdown(host: Host) -> None:
    feed.forget(host)


@hookimpl
async def gridhall_ticket_changed(change: dict[str, Any], host: Host) -> None:
    await feed.on_change(host, change)
