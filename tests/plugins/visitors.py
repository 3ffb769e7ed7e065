"""A visitor log for the hall: who came in, who left, and no power-down while they are in.

It is written as a third party would write it, and it is the example in
docs/plugins.md. What the veto must know at once (who is in the hall) is kept on the
plugin object: `gridhall_check_action` runs in the path of every action, so it answers
from memory; the entry point names one instance, tests register a fresh one each.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from daemon.api.deps import Operator, Viewer
from daemon.errors import NotFound, Refused
from daemon.events import Event
from daemon.hookspecs import hookimpl
from daemon.host import Host
from daemon.kinds import Kind
from daemon.store import Migration

NAME = "visitors"  # the entry-point name: the config section, the URL, the event prefix


class VisitorsConfig(BaseModel):
    """The `[visitors]` section."""

    model_config = ConfigDict(extra="forbid")
    max_per_day: Annotated[int, Field(ge=1)] = 100


class Arrival(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]


MIGRATIONS = [
    Migration(
        NAME,
        1,
        """
        CREATE TABLE visitors (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            day TEXT NOT NULL,
            arrived_at REAL NOT NULL,
            left_at REAL,
            logged_by TEXT NOT NULL
        );
        CREATE INDEX visitors_day ON visitors(day);
        """,
        "the visitor log",
    ),
]


def today() -> str:
    return time.strftime("%Y-%m-%d")


def is_power(host: Host, device_id: str) -> bool:
    try:
        return host.devices.get(device_id).config.kind is Kind.POWER
    except NotFound:
        return False


class VisitorLog:
    """The plugin: register an instance (`visitors = "gridhall_visitors:plugin"`)."""

    def __init__(self) -> None:
        self.in_hall: dict[int, str] = {}  # visitor id -> name
        self.powered: dict[str, bool] = {}  # power device id -> any channel on

    @hookimpl
    def gridhall_config_sections(self) -> dict[str, Any]:
        return {NAME: VisitorsConfig}

    @hookimpl
    def gridhall_migrations(self) -> list[Migration]:
        return MIGRATIONS

    @hookimpl
    async def gridhall_startup(self, host: Host) -> None:
        # Whoever was in when the daemon stopped is still in: the veto holds across restarts.
        rows = await host.store.fetchall("SELECT id, name FROM visitors WHERE left_at IS NULL")
        self.in_hall = {row["id"]: row["name"] for row in rows}
        self.powered = {}

    @hookimpl
    def gridhall_event(self, event: Event, host: Host) -> None:
        if event.type == "state" and is_power(host, event.source):
            self.powered[event.source] = any(event.data.get("channels", {}).values())

    @hookimpl
    def gridhall_check_action(
        self, device_id: str, action: str, args: dict[str, Any], host: Host
    ) -> str | None:
        if action == "sequence_off" and self.in_hall and is_power(host, device_id):
            names = ", ".join(sorted(self.in_hall.values()))
            return f"{len(self.in_hall)} visitor(s) in the hall: {names}"
        return None

    @hookimpl
    def gridhall_api_routers(self, host: Host) -> list[APIRouter]:
        # Built once per daemon, so the routes may close over `host` and `config`.
        router = APIRouter(tags=[NAME])
        config: VisitorsConfig = host.config.sections.get(NAME, VisitorsConfig())

        @router.get("/")
        async def list_today(who: Viewer) -> dict[str, Any]:
            rows = await host.store.fetchall(
                "SELECT * FROM visitors WHERE day = ? ORDER BY id", (today(),)
            )
            return {
                "visitors": [dict(row) for row in rows],
                "in_hall": len(self.in_hall),
                "hall_powered": any(self.powered.values()),
            }

        @router.post("/", status_code=201)
        async def arrive(body: Arrival, who: Operator) -> dict[str, Any]:
            day, now = today(), time.time()

            def insert(conn: sqlite3.Connection) -> int | None:
                # Count and insert in one transaction, so two desks cannot both take
                # the last place of the day.
                sql = "SELECT count(*) FROM visitors WHERE day = ?"
                if conn.execute(sql, (day,)).fetchone()[0] >= config.max_per_day:
                    return None
                cur = conn.execute(
                    "INSERT INTO visitors (name, day, arrived_at, logged_by) VALUES (?, ?, ?, ?)",
                    (body.name, day, now, who.name),
                )
                return cur.lastrowid

            visitor_id = await host.store.write(insert)
            if visitor_id is None:
                raise Refused(f"the hall takes {config.max_per_day} visitors a day")
            self.in_hall[visitor_id] = body.name
            visitor = {"id": visitor_id, "name": body.name, "arrived_at": now, "by": who.name}
            host.publish(NAME, "arrived", visitor)
            return visitor

        @router.post("/{visitor_id}/leave")
        async def leave(visitor_id: Annotated[int, Path(ge=1)], who: Operator) -> dict[str, Any]:
            def update(conn: sqlite3.Connection) -> int:
                sql = "UPDATE visitors SET left_at = ? WHERE id = ? AND left_at IS NULL"
                return conn.execute(sql, (time.time(), visitor_id)).rowcount

            if not await host.store.write(update):
                raise NotFound(f"no visitor {visitor_id} in the hall")
            name = self.in_hall.pop(visitor_id, "")
            host.publish(NAME, "left", {"id": visitor_id, "name": name, "by": who.name})
            return {"id": visitor_id, "in_hall": len(self.in_hall)}

        return [router]


plugin = VisitorLog()
