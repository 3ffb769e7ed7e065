"""Intake: a report becomes a ticket (采集), whatever door it came through.

The API, MQTT and Open311 all call `create(host, report, actor=..., channel=...)`.
A report with an `idem_key` (a camera's event id, a hotline's case number) makes one
ticket however often it arrives: a repeat answers the first ticket, `created` False.

The grid and its member on duty are found on the event loop (the grid plugin answers
from memory); the category, its department and its deadline are read and computed
in the write itself, so a category imported a moment ago by the CLI is the one used.
The write goes through the store's group commit as a `write_many` kind: the reports
that arrive while a commit is on the disk are filed together by `_file`, a few
statements for all of them, and each is answered once they are durable.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.bounds import LIST, SHORT
from daemon.calendar import Calendar
from daemon.errors import BadArguments, GridhallError
from plugins.tickets import changes, live, workflow
from plugins.tickets.alerts import Ladder
from plugins.tickets.config import Channel
from plugins.tickets.deadlines import Deadline
from plugins.tickets.routing import Place, place_of

if TYPE_CHECKING:
    from daemon.host import Host

Short = Annotated[str, Field(min_length=1, max_length=200)]
# Answers to the category's Open311 attributes: a code (or several) or a value each.
Answer = Short | int | float | bool | None | Annotated[list[Short], Field(max_length=LIST)]
GridCode = Annotated[str, Field(pattern=r"^\d{14,24}$", max_length=24)]
Attributes = Annotated[
    dict[Annotated[str, Field(max_length=SHORT)], Answer], Field(max_length=LIST)
]


class ReportIn(BaseModel):
    """A report, as any intake door hands it over."""

    model_config = ConfigDict(extra="forbid")

    category: Annotated[str, Field(min_length=1, max_length=64)]
    description: Annotated[str, Field(max_length=4000)] | None = None
    address: Short | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    grid: GridCode | None = None  # when there is no point
    reporter: Short | None = None  # a grid person id, when a grid member reports
    reporter_name: Short | None = None
    reporter_contact: Short | None = None
    media_url: Annotated[str, Field(max_length=2000)] | None = None
    attributes: Attributes | None = None
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
    "id",
    "idem_key",
    "token",
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
_CATEGORY = (
    "SELECT code, tier, department, competent, deadline, major, active FROM ticket_categories"
)


def _usable(row: sqlite3.Row | None, code: str, retired: bool) -> sqlite3.Row:
    if row is None or not (row["active"] or retired):
        raise BadArguments(f"category: unknown or retired category {code!r}")
    return row


def category_row(conn: sqlite3.Connection, code: str, *, retired: bool = False) -> sqlite3.Row:
    """A category new work may use (a retired one too, with `retired`, for a ticket
    that already has it); 422 naming it otherwise."""
    cur = conn.execute(f"{_CATEGORY} WHERE code = ?", (code,))
    cur.row_factory = sqlite3.Row
    return _usable(cur.fetchone(), code, retired)


def ticket_row(conn: sqlite3.Connection, ticket_id: int) -> dict[str, Any] | None:
    found = _ticket_rows(conn, [ticket_id])
    return found.get(ticket_id)


def _ticket_rows(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    cur = conn.execute(f"SELECT * FROM tickets WHERE id IN ({','.join('?' * len(ids))})", ids)
    names = [d[0] for d in cur.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


@dataclass(frozen=True)
class _Pending:
    """A report on its way into the store, with what its write needs."""

    report: ReportIn
    actor: str
    channel: str
    place: Place
    now: dt.datetime
    calendar: Calendar
    ladder: Ladder
    token: str | None = None


async def create(
    host: Host, report: ReportIn, *, actor: str, channel: str, token: str | None = None
) -> Created:
    """File a report as a ticket (state `collected`), routed and with its deadline.
    `token`: the Open311 token the reporter was given, kept in the same row.

    BadArguments (422) for an unknown category; CalendarUnknown (503) when its
    deadline falls in a year no calendar source knows: never a guessed deadline."""
    state = live.get(host)
    place = place_of(host, report.lon, report.lat, report.grid)
    now = host.clock.now()
    pending = _Pending(report, actor, channel, place, now, host.calendar, state.ladder, token)
    done = await host.store.write_many(_file, pending)
    if done.change is not None:
        state.wake_for(done.ticket["next_alert_at"])
        await changes.announce(host, done.change)
    return done


def _file(conn: sqlite3.Connection, batch: list[_Pending]) -> list[Created | Exception]:
    """The reports queued together, in one go: a known `idem_key` (in the store, or
    earlier in the batch) answers its ticket; the others are checked, then written
    with one executemany each for tickets and history, numbered here (the write lock
    is ours). A report that fails its checks fails alone and writes nothing."""
    keys = [p.report.idem_key for p in batch if p.report.idem_key is not None]
    known: dict[str, int] = {}
    if keys:
        cur = conn.execute(
            f"SELECT idem_key, id FROM tickets WHERE idem_key IN ({','.join('?' * len(keys))})",
            keys,
        )
        known = dict(cur.fetchall())
    codes = sorted({p.report.category for p in batch})
    cur = conn.execute(f"{_CATEGORY} WHERE code IN ({','.join('?' * len(codes))})", codes)
    cur.row_factory = sqlite3.Row
    categories = {row["code"]: row for row in cur.fetchall()}
    next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM tickets").fetchone()[0]
    next_seq = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM ticket_events").fetchone()[0]
    outcomes: list[int | Exception] = []
    fresh: dict[int, tuple[Any, ...]] = {}  # ticket id -> its `collect` history values
    tickets: list[tuple[Any, ...]] = []
    for p in batch:
        key = p.report.idem_key
        if key is not None and key in known:
            outcomes.append(known[key])
            continue
        try:
            values = _values(next_id, p, categories.get(p.report.category))
        except GridhallError as exc:  # an unknown category, a year nobody knows
            outcomes.append(exc)
            continue
        tickets.append(values)
        fresh[next_id] = changes.event_values(
            next_seq,
            next_id,
            at=p.now.timestamp(),
            actor=p.actor,
            transition="collect",
            from_state=None,
            to_state=workflow.COLLECTED,
            note=None,
            data={"channel": values[3]},
        )
        if key is not None:
            known[key] = next_id
        outcomes.append(next_id)
        next_id, next_seq = next_id + 1, next_seq + 1
    insert_rows(conn, _INSERT, tickets)
    insert_rows(conn, changes.INSERT_EVENT, list(fresh.values()))
    ids = sorted({o for o in outcomes if isinstance(o, int)})
    rows = _ticket_rows(conn, ids) if ids else {}
    results: list[Created | Exception] = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            results.append(outcome)
        elif (event := fresh.pop(outcome, None)) is not None:  # the report that made it
            row = rows[outcome]
            results.append(Created(row, True, changes.made(event, event[0], row)))
        else:
            results.append(Created(rows[outcome], False, None))
    return results


def insert_rows(conn: sqlite3.Connection, insert: str, rows: list[tuple[Any, ...]]) -> None:
    """`insert` (one row's `VALUES (?, ...)`) for many rows as multi-row statements.
    Not executemany: sqlite3 hands the GIL back and forth for each row it steps, and
    with the event loop busy each hand-over waits; one statement is one hand-over."""
    if not rows:
        return
    head, _, one = insert.rpartition("VALUES")
    per = max(1, 30_000 // len(rows[0]))  # under SQLite's 32,766 bound variables
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        params = [v for row in chunk for v in row]
        conn.execute(f"{head}VALUES {', '.join([one.strip()] * len(chunk))}", params)


def _values(ticket_id: int, p: _Pending, cat: sqlite3.Row | None) -> tuple[Any, ...]:
    report = p.report
    cat = _usable(cat, report.category, retired=False)
    tier = cat["tier"]
    now = p.now.timestamp()
    due_at = Deadline.parse(cat["deadline"]).after(p.now, p.calendar).timestamp()
    return (
        ticket_id,
        report.idem_key,
        p.token,
        report.channel or p.channel,
        cat["code"],
        tier,
        int(report.major if report.major is not None else cat["major"]),
        workflow.COLLECTED,
        report.description,
        report.address,
        report.lon,
        report.lat,
        p.place.grid,
        p.place.community,
        p.place.street,
        p.place.member,
        cat["department"],
        cat["competent"] if tier == "coordination" else None,
        report.reporter,
        report.reporter_name,
        report.reporter_contact,
        report.media_url,
        json.dumps(report.attributes, ensure_ascii=False) if report.attributes else None,
        now,
        due_at,
        p.ladder.first_alert(now, due_at),
        now,
    )
