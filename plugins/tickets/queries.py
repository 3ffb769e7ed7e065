"""Reading tickets: a list with filters and keyset paging, one ticket with its
history, and the overdue board.

The board must answer in under 50 ms with a million tickets in the store, so it reads
only the partial index of open tickets by deadline (`tickets_open_board`): a range scan
from the oldest deadline up to `now + within`, in deadline order, which is "most
overdue first". The index also holds the columns the board filters on, so its counts
come from the index alone, filtered or not; a department told as a party is looked up
per open ticket in range (`ticket_parties`' primary key), never as the list of every
ticket the department was ever told of, which grows with the years.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugins.grid.formats import mask_phone
from plugins.tickets import workflow

PERSONAL = ("reporter_name", "reporter_contact")


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    category: str | None = None
    grid: str | None = None
    street: str | None = None
    department: str | None = None  # the responsible department, or any party told
    overdue: bool | None = None

    def where(self, now: float, *, per_row: bool = False) -> tuple[list[str], list[Any]]:
        """SQL terms over `tickets`. `per_row`: a department told as a party is looked up
        for each row the query reads (a scan bounded by another term), not read as the
        department's whole list first (a scan of every ticket, newest first)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("state", "category", "grid", "street"):
            if (value := getattr(self, column)) is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.department is not None:
            told = (
                "EXISTS (SELECT 1 FROM ticket_parties p WHERE p.ticket = tickets.id "
                "AND p.party = ?)"
                if per_row
                else "id IN (SELECT ticket FROM ticket_parties WHERE party = ?)"
            )
            clauses.append(f"(department = ? OR {told})")
            params += [self.department, self.department]
        if self.overdue is True:
            clauses.append("done_at IS NULL AND due_at < ?")
            params.append(now)
        elif self.overdue is False:
            clauses.append("NOT (done_at IS NULL AND due_at < ?)")
            params.append(now)
        return clauses, params


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def view(
    row: dict[str, Any], level: Callable[[int], str | None], *, reveal: bool
) -> dict[str, Any]:
    """A row as the API shows it: flags as booleans, JSON decoded, the supervision
    level by name, the reporter's name and contact masked unless `reveal`."""
    out = dict(row)
    out.pop("next_alert_at", None)
    for flag in ("major", "on_time"):
        if out.get(flag) is not None:
            out[flag] = bool(out[flag])
    if out.get("attributes"):
        out["attributes"] = json.loads(out["attributes"])
    out["level"] = level(out.get("escalation") or 0)
    if not reveal:
        out.pop("token", None)  # the reporter's Open311 token: theirs to look it up with
        if out.get("reporter_contact"):
            out["reporter_contact"] = mask_phone(out["reporter_contact"])
        if out.get("reporter_name"):
            name = out["reporter_name"]
            out["reporter_name"] = name[0] + "*" * (len(name) - 1)
    return out


def list_tickets(
    conn: sqlite3.Connection, filters: Filters, now: float, limit: int, before: int | None
) -> list[dict[str, Any]]:
    """Newest first; `before` (an id) continues a page."""
    clauses, params = filters.where(now)
    if before is not None:
        clauses.append("id < ?")
        params.append(before)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT * FROM tickets {where} ORDER BY id DESC LIMIT ?"
    return _rows(conn.execute(sql, (*params, limit)))


def one(conn: sqlite3.Connection, ticket_id: int) -> dict[str, Any] | None:
    found = _rows(conn.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)))
    if not found:
        return None
    ticket = found[0]
    history = _rows(
        conn.execute(
            "SELECT id AS seq, at, actor, transition, from_state AS 'from', to_state AS 'to', "
            "note, data FROM ticket_events WHERE ticket = ? ORDER BY id",
            (ticket_id,),
        )
    )
    for event in history:
        event["data"] = json.loads(event["data"]) if event["data"] else {}
    ticket["history"] = history
    ticket["parties"] = _rows(
        conn.execute(
            "SELECT party, role, at FROM ticket_parties WHERE ticket = ? ORDER BY at, role, party",
            (ticket_id,),
        )
    )
    ticket["next"] = workflow.legal_transitions(ticket["state"])
    return ticket


BOARD_COLUMNS = (
    "id, category, tier, major, state, grid, street, department, handler, member, "
    "due_at, reminded_at, escalation, created_at"
)


def board(
    conn: sqlite3.Connection, now: float, within_s: float, limit: int, filters: Filters
) -> dict[str, Any]:
    """Open tickets past their deadline or due within `within_s`, most overdue first
    (the first reported first, of those due at the same time)."""
    clauses, params = filters.where(now, per_row=True)
    extra = "".join(f" AND {c}" for c in clauses)
    horizon = now + within_s
    rows = _rows(
        conn.execute(
            f"SELECT {BOARD_COLUMNS} FROM tickets INDEXED BY tickets_open_board "
            f"WHERE done_at IS NULL AND due_at <= ?{extra} ORDER BY due_at, id LIMIT ?",
            (horizon, *params, limit),
        )
    )
    counts = conn.execute(
        f"SELECT count(*) FILTER (WHERE due_at < ?), count(*) FROM tickets "
        f"INDEXED BY tickets_open_board WHERE done_at IS NULL AND due_at <= ?{extra}",
        (now, horizon, *params),
    ).fetchone()
    for row in rows:
        row["overdue_s"] = round(now - row["due_at"], 1)
    return {
        "now": now,
        "within_s": within_s,
        "overdue": counts[0],
        "near": counts[1] - counts[0],
        "tickets": rows,
    }
