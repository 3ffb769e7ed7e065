"""Whistles (吹哨报到, seed 001): a level blows a whistle of a type, on a ticket or
alone; the departments it calls must report in (报到) before its deadline; a whistle
nobody answered goes up a level.

- **Blow** (`blow`): the level, the type (`ticket_whistle_types`, from the categories
  file), optionally a kind of it, the ticket, the departments (the type's default
  when none are named), a note. Its deadline is the type's (`"2h"`, `"1wd"`) from
  now, on the host's calendar; every call carries it (`due_at`).
- **Report in** (`report_in`): one department at a time, by a handler's token (the
  department is named in the body: a token does not record which department it
  speaks for). When every department called has reported in, the whistle is
  `answered`.
- **Escalation** (`escalate_due`, run by the deadline watcher): an `open` whistle past
  its `report_by` raises `whistle_unanswered` through the ticket alerts' path and
  goes a level up (community -> street -> district) as the type its type escalates
  to, with that type's deadline from now; the departments that type calls by default
  are called too, with the new deadline. At the district it cannot go higher: it is
  `escalated`, said once, and waits for its departments.
- **Close** (`close`): the one who blew it ends it (the problem is solved); calls not
  reported in stay so.

States: `open` (a deadline runs), `answered`, `escalated` (at the top, unanswered),
`closed`. One whistle, one assessment: each call's `due_at` and `reported_at` are the
departments' record (plugins/tickets/whistle_measures.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from daemon import bounds
from daemon.calendar import Calendar, CalendarUnknown
from daemon.errors import BadArguments, NotFound, Refused
from plugins.tickets import live
from plugins.tickets.config import Level
from plugins.tickets.deadlines import Deadline
from plugins.tickets.whistle_types import ID, escalates_to, next_level, type_row

if TYPE_CHECKING:
    from daemon.host import Host

log = logging.getLogger(__name__)

NAME = "tickets"
RETRY_S = 3600.0  # a whistle whose next deadline the calendar cannot place: again in an hour
Note = Annotated[str, Field(min_length=1, max_length=2000)]


class BlowArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Level
    type: ID
    kind: ID | None = None
    ticket: bounds.RowId | None = None
    departments: Annotated[list[ID], Field(max_length=50)] = []  # default: the type's
    note: Note | None = None


class CheckInArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: ID
    note: Note | None = None


class CloseArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def one(conn: sqlite3.Connection, whistle_id: int) -> dict[str, Any] | None:
    found = many(conn, "w.id = ?", [whistle_id], 1)
    return found[0] if found else None


_WHISTLE = (
    "SELECT w.id, w.ticket, w.level, w.type, wt.name AS type_name, w.kind, w.state, "
    "w.blown_by, w.blown_at, w.report_by, w.escalation, w.answered_at, w.note "
    "FROM ticket_whistles w LEFT JOIN ticket_whistle_types wt "
    "ON wt.level = w.level AND wt.code = w.type"
)


def many(
    conn: sqlite3.Connection, where: str, params: list[Any], limit: int
) -> list[dict[str, Any]]:
    """Whistles, newest first, each with its calls and whether each was on time."""
    whistles = _rows(
        conn.execute(f"{_WHISTLE} WHERE {where} ORDER BY w.id DESC LIMIT ?", [*params, limit])
    )
    if not whistles:
        return []
    ids = [w["id"] for w in whistles]
    calls = _rows(
        conn.execute(
            "SELECT c.whistle, c.department, d.name, c.called_at, c.due_at, c.reported_at, "
            "c.reported_by, c.note FROM ticket_whistle_calls c "
            "LEFT JOIN ticket_departments d ON d.id = c.department "
            f"WHERE c.whistle IN ({','.join('?' * len(ids))}) ORDER BY c.called_at, c.department",
            ids,
        )
    )
    by_whistle: dict[int, list[dict[str, Any]]] = {}
    for call in calls:
        reported, due = call["reported_at"], call["due_at"]
        call["on_time"] = None if reported is None else reported <= due
        by_whistle.setdefault(call.pop("whistle"), []).append(call)
    for w in whistles:
        w["calls"] = by_whistle.get(w["id"], [])
        w["waiting"] = [c["department"] for c in w["calls"] if c["reported_at"] is None]
    return whistles


async def blow(host: Host, args: BlowArgs, *, actor: str) -> dict[str, Any]:
    """Blow a whistle; the whistle with its calls once committed. 422 for an unknown
    type, kind, ticket or department; 503 when its deadline lies in a year no
    calendar knows."""
    now = host.clock.now()
    calendar = host.calendar

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        kind = type_row(conn, args.level, args.type)
        if kind is None:
            raise BadArguments(f"type: no active {args.level} whistle {args.type!r}")
        kinds = [k["code"] for k in json.loads(kind["kinds"] or "[]")]
        if args.kind is not None and args.kind not in kinds:
            listed = ", ".join(kinds) or "none"
            raise BadArguments(f"kind: {args.kind!r} is not a kind of {args.type} ({listed})")
        if args.ticket is not None:
            if (
                conn.execute("SELECT 1 FROM tickets WHERE id = ?", (args.ticket,)).fetchone()
                is None
            ):
                raise BadArguments(f"ticket: no ticket {args.ticket}")
        departments = list(dict.fromkeys(args.departments or json.loads(kind["departments"])))
        if not departments:
            raise BadArguments(
                f"departments: the {args.type} whistle calls none by default; name them"
            )
        _known(conn, departments)
        due = Deadline.parse(kind["deadline"]).after(now, calendar).timestamp()
        at = now.timestamp()
        whistle_id = conn.execute(
            "INSERT INTO ticket_whistles (ticket, level, type, kind, blown_by, blown_at, "
            "report_by, state, escalation, note, next_alert_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', 0, ?, ?)",
            (args.ticket, args.level, args.type, args.kind, actor, at, due, args.note, due),
        ).lastrowid
        assert whistle_id is not None
        _call(conn, whistle_id, departments, at, due)
        return _read_back(conn, whistle_id)

    whistle = await host.store.write(write)
    live.get(host).wake_for(whistle["report_by"])
    host.publish(NAME, "whistle", {"what": "blown", "whistle": whistle})
    return whistle


def _known(conn: sqlite3.Connection, departments: list[str]) -> None:
    marks = ",".join("?" * len(departments))
    found = {
        r[0]
        for r in conn.execute(
            f"SELECT id FROM ticket_departments WHERE id IN ({marks})", departments
        )
    }
    unknown = [d for d in departments if d not in found]
    if unknown:
        raise BadArguments(f"departments: no department {', '.join(map(repr, unknown))}")


def _call(
    conn: sqlite3.Connection, whistle: int, departments: list[str], at: float, due: float
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO ticket_whistle_calls (whistle, department, called_at, due_at) "
        "VALUES (?, ?, ?, ?)",
        [(whistle, d, at, due) for d in departments],
    )


async def report_in(
    host: Host, whistle_id: int, args: CheckInArgs, *, actor: str
) -> dict[str, Any]:
    """A department reports in; the whistle is answered once all have. 404, 409 for a
    closed whistle or a department that already reported in, 422 for one not called."""
    at = host.clock.now().timestamp()

    def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
        whistle = _open(conn, whistle_id)
        call = conn.execute(
            "SELECT reported_at FROM ticket_whistle_calls WHERE whistle = ? AND department = ?",
            (whistle_id, args.department),
        ).fetchone()
        if call is None:
            raise BadArguments(
                f"department: {args.department!r} was not called by whistle {whistle_id}"
            )
        if call[0] is not None:
            raise Refused(f"{args.department} reported in to whistle {whistle_id} already")
        conn.execute(
            "UPDATE ticket_whistle_calls SET reported_at = ?, reported_by = ?, note = ? "
            "WHERE whistle = ? AND department = ?",
            (at, actor, args.note, whistle_id, args.department),
        )
        waiting = conn.execute(
            "SELECT count(*) FROM ticket_whistle_calls WHERE whistle = ? AND reported_at IS NULL",
            (whistle_id,),
        ).fetchone()[0]
        answered = waiting == 0 and whistle["state"] != "answered"
        if answered:
            conn.execute(
                "UPDATE ticket_whistles SET state = 'answered', answered_at = ?, "
                "next_alert_at = NULL WHERE id = ?",
                (at, whistle_id),
            )
        return _read_back(conn, whistle_id), answered

    whistle, answered = await host.store.write(write)
    host.publish(
        NAME, "whistle", {"what": "reported_in", "department": args.department, "whistle": whistle}
    )
    if answered:
        host.publish(NAME, "whistle", {"what": "answered", "whistle": whistle})
    return whistle


async def close(host: Host, whistle_id: int, args: CloseArgs, *, actor: str) -> dict[str, Any]:
    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        _open(conn, whistle_id)
        note = f"closed by {actor}" + (f": {args.note}" if args.note else "")
        conn.execute(
            "UPDATE ticket_whistles SET state = 'closed', next_alert_at = NULL, "
            "note = coalesce(note || char(10), '') || ? WHERE id = ?",
            (note, whistle_id),
        )
        return _read_back(conn, whistle_id)

    whistle = await host.store.write(write)
    host.publish(NAME, "whistle", {"what": "closed", "whistle": whistle})
    return whistle


def _read_back(conn: sqlite3.Connection, whistle_id: int) -> dict[str, Any]:
    """The whistle as this transaction left it."""
    found = one(conn, whistle_id)
    assert found is not None
    return found


def _open(conn: sqlite3.Connection, whistle_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT state FROM ticket_whistles WHERE id = ?", (whistle_id,)).fetchone()
    if row is None:
        raise NotFound(f"no whistle {whistle_id}")
    if row[0] == "closed":
        raise Refused(f"whistle {whistle_id} is closed")
    return {"state": row[0]}


# -- the watcher's part ------------------------------------------------------------------
def next_alert(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT min(next_alert_at) FROM ticket_whistles INDEXED BY ticket_whistles_next_alert "
        "WHERE state = 'open' AND next_alert_at IS NOT NULL"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


_TICKET = "SELECT major, category, grid, street, department, handler FROM tickets WHERE id = ?"


def escalate_due(
    conn: sqlite3.Connection, now: float, calendar: Calendar, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Inside the watcher's transaction: every open whistle past its deadline goes a
    level up (or, at the top, stays escalated); the alerts to tell once committed, and
    how many whistles were taken."""
    due = _rows(
        conn.execute(
            "SELECT id, ticket, level, type, report_by, escalation FROM ticket_whistles "
            "INDEXED BY ticket_whistles_next_alert WHERE state = 'open' "
            "AND next_alert_at IS NOT NULL AND next_alert_at <= ? ORDER BY next_alert_at LIMIT ?",
            (now, limit),
        )
    )
    alerts = []
    start = dt.datetime.fromtimestamp(now, dt.UTC)
    for w in due:
        waiting = [
            r[0]
            for r in conn.execute(
                "SELECT department FROM ticket_whistle_calls WHERE whistle = ? "
                "AND reported_at IS NULL ORDER BY department",
                (w["id"],),
            )
        ]
        current = type_row(conn, w["level"], w["type"], retired=True)
        up = next_level(w["level"])
        target = escalates_to(conn, w["level"], w["type"]) if up is not None else None
        if up is not None and target is None:
            target = current  # the next level has no types: it takes this one up as it is
        if up is None or target is None:
            conn.execute(
                "UPDATE ticket_whistles SET state = 'escalated', escalation = escalation + 1, "
                "next_alert_at = NULL WHERE id = ?",
                (w["id"],),
            )
            alerts.append(_alert(conn, w, w["level"], None, None, waiting, now, calendar))
            continue
        try:
            report_by = Deadline.parse(target["deadline"]).after(start, calendar).timestamp()
        except CalendarUnknown as exc:
            log.error("tickets: whistle %s cannot escalate yet: %s", w["id"], exc.message)
            conn.execute(
                "UPDATE ticket_whistles SET next_alert_at = ? WHERE id = ?",
                (now + RETRY_S, w["id"]),
            )
            continue
        conn.execute(
            "UPDATE ticket_whistles SET level = ?, type = ?, kind = CASE WHEN type = ? THEN kind "
            "END, escalation = escalation + 1, report_by = ?, next_alert_at = ? WHERE id = ?",
            (up, target["code"], target["code"], report_by, report_by, w["id"]),
        )
        _call(conn, w["id"], json.loads(target["departments"] or "[]"), now, report_by)
        alerts.append(_alert(conn, w, up, target, report_by, waiting, now, calendar))
    return alerts, len(due)


def _alert(
    conn: sqlite3.Connection,
    w: dict[str, Any],
    level: str,
    target: sqlite3.Row | None,
    report_by: float | None,
    waiting: list[str],
    now: float,
    calendar: Calendar,
) -> dict[str, Any]:
    """`whistle_unanswered` in the ticket alerts' shape, the ticket's fields when the
    whistle was blown on one."""
    ticket = None
    if w["ticket"] is not None:
        cur = conn.execute(_TICKET, (w["ticket"],))
        found = _rows(cur)
        ticket = found[0] if found else None

    def local(at: float) -> str:
        return dt.datetime.fromtimestamp(at, calendar.tz).isoformat(timespec="minutes")

    who = ", ".join(waiting) or "nobody"
    since = local(w["report_by"])
    head = f"whistle {w['id']} ({w['level']} {w['type']}) unanswered by {who} since {since}"
    if target is None:
        message = f"{head}; at the top level ({level}) it stays escalated"
    else:
        message = (
            f"{head}; escalated to the {level} ({target['code']} {target['name']}), "
            f"report in by {local(report_by or now)}"
        )
    return {
        "kind": "whistle_unanswered",
        "level": level,
        "ticket": w["ticket"],
        "whistle": w["id"],
        "message": message,
        "at": now,
        "major": bool(ticket["major"]) if ticket else False,
        "category": ticket["category"] if ticket else None,
        "due_at": w["report_by"],
        "grid": ticket["grid"] if ticket else None,
        "street": ticket["street"] if ticket else None,
        "department": ticket["department"] if ticket else None,
        "handler": ticket["handler"] if ticket else None,
        "type": target["code"] if target is not None else w["type"],
        "waiting": waiting,
        "report_by": report_by,
        "top": target is None,
    }
