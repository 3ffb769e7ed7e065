"""Ticket handling: the closed loop from a report to a verified, evaluated close.

A built-in plugin, registered like any third party's. Intake from the API, Open311
GeoReport v2 and MQTT; categories as data; the workflow as a state machine
(`workflow`); deadlines in working days on the host's one calendar; routing to the
grid, its member on duty and the departments; reminders, overdue supervision and
whistles; the measures districts are judged by.

Other plugins meet it only through hooks: `gridhall_ticket_changed` after every
committed change, `gridhall_ticket_changes` to catch up, `gridhall_ticket_alert`.
"""

from __future__ import annotations

from typing import Any

from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.store import Migration
from plugins.tickets import rollup
from plugins.tickets.measures_config import TicketsSection
from plugins.tickets.tables import MIGRATIONS, NAME


@hookimpl
def gridhall_config_sections() -> dict[str, Any]:
    return {NAME: TicketsSection}


@hookimpl
def gridhall_migrations() -> list[Migration]:
    return MIGRATIONS + rollup.MIGRATIONS


@hookimpl
def gridhall_api_routers(host: Host) -> list[Any]:
    from plugins.tickets import measures_api

    return [measures_api.build_router(host)]
