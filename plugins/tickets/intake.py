"""Intake: a report becomes a ticket (采集), whatever door it came through.

The API, MQTT and Open311 all call `create(host, report, actor=..., channel=...)`.
A report with an `idem_key` (a camera's event id, a hotline's case number) makes one
ticket however often it arrives: a repeat answers the first ticket, `created` False.

The grid and its member on duty are found on the event loop (the grid plugin answers
from memory); the category, its department and its deadline are read and computed
in the write itself, so a category imported a moment ago by the CLI is the one used.
The write goes through the store's group commit: durable before the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.errors import BadArguments
from plugins.tickets import changes, live, workflow
from plugins.tickets.config import Channel
from plugins.tickets.deadlines import Deadline
from plugins.tickets.routing import place_of

if TYPE_CHECKING:
    from daemon.host import Host

Short = Annotated[str, Field(min_length=1, max_length=200)]


class ReportIn(BaseModel):
    """A report, as any intake door hands it over."""

    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(max_length=4000)] | None = None
    address: Short | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    grid: Annotated[str, Field(pattern=r"^\d{14,24}$")] | None = None  # when there is no point
    reporter: Short | None = None  # a grid person id, when a grid member reports
    reporter_name: Short | None = None
    reporter_contact: Short | None = None
    media_url: Annotated[str, Field(max_length=2000)] | None = None
    attributes: dict[str, Any] | None = None
    idem_key: Short | None = None  # the source's own id: a repeat makes no second ticket
    channel: Channel | None = None
    major: bool | None = None  # the category's when absent

    @model_validator(mode="after")
    def _point(self) -> ReportIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither")
        return self


@dataclass(frozen=True)
class Created:
    ticket: dict[str, Any]  # the whole row, as the API shows it
    created: bool  # False: the idem_key was known; `ticket` is the first one
    change: dict[str, Any] | None  # the `collect` change, when created


# Columns of a new ticket, in the order of the INSERT.
_COLUMNS = (
    "idem_key",
    "channel",
    "category",
    "tier",
    "major",
    "state",
    "description",
    "address",
    "lon",
    "lat",
    "grid",
    "community",
    "street",
    "member",
    "department",
    "competent",
    "reporter",
    "reporter_name",
    "reporter_contact",
    "media_url",
    "attributes",
    "created_at",
    "due_at",
    "next_alert_at",
    "updated_at",
)
_INSERT = f"INSERT INTO tickets ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def category_row(conn: sqlite3.Connection, code: str, *, retired: bool = False) -> sqlite3.Row:
    """A category new work may use (a retired one too, with `retired`, for a ticket
    that already has it); 422 naming it otherwise."""
    cur = conn.execute(
        "SELECT code, tier, department, competent, deadline, major, active "
        "FROM ticket_categories WHERE code = ?",
        (code,),
    )
    cur.row_factory = sqlite3.Row
    row: sqlite3.Row | None = cur.fetchone()
    if row is None or not (row["active"] or retired):
        raise BadArguments(f"category: unknown or retired category {code!r}")
    return row


def ticket_row(conn: sqlite3.Connection, ticket_id: int) -> dict[str, Any] | None:
    cur = conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return None if row is None else dict(zip(names, row, strict=True))


async def create(host: Host, report: ReportIn, *, actor: str, channel: str) -> Created:
    """File a report as a ticket (state `collected`), routed and with its deadline.

    BadArguments (422) for an unknown category; CalendarUnknown (503) when its
    deadline falls in a year no calendar source knows: never a guessed deadline."""
    state = live.get(host)
    place = place_of(host, report.lon, report.lat, report.grid)
    now_dt = host.clock.now()
    now = now_dt.timestamp()
    calendar, ladder = host.calendar, state.ladder

    def write(conn: sqlite3.Connection) -> Created:
        if report.idem_key is not None:
            known = conn.execute(
                "SELECT id FROM tickets WHERE idem_key = ?", (report.idem_key,)
            ).fetchone()
            if known is not None:
                row = ticket_row(conn, known[0])
                assert row is not None
                return Created(row, False, None)
        cat = category_row(conn, report.category)
        tier = cat["tier"]
        due = Deadline.parse(cat["deadline"]).after(now_dt, calendar)
        due_at = due.timestamp()
        values = (
            report.idem_key,
            report.channel or channel,
            cat["code"],
            tier,
            int(report.major if report.major is not None else cat["major"]),
            workflow.COLLECTED,
            report.description,
            report.address,
            report.lon,
            report.lat,
            place.grid,
            place.community,
            place.street,
            place.member,
            cat["department"],
            cat["competent"] if tier == "coordination" else None,
            report.reporter,
            report.reporter_name,
            report.reporter_contact,
            report.media_url,
            json.dumps(report.attributes, ensure_ascii=False) if report.attributes else None,
            now,
            due_at,
            ladder.first_alert(now, due_at),
            now,
        )
        ticket_id = conn.execute(_INSERT, values).lastrowid
        assert ticket_id is not None
        change = changes.record(
            conn,
            ticket_id,
            at=now,
            actor=actor,
            transition="collect",
            from_state=None,
            to_state=workflow.COLLECTED,
            note=None,
            data={"channel": report.channel or channel},
        )
        row = ticket_row(conn, ticket_id)
        assert row is not None
        return Created(row, True, change)

    done = await host.store.write_grouped(write)
    if done.change is not None:
        state.wake_for(done.ticket["next_alert_at"])
        await changes.announce(host, done.change)
    return done


def local_time(host: Host, epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 in the calendar's zone (Open311's format, too)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, host.calendar.tz).isoformat()
