"""Ticket rows as the real workflow leaves them, for tests, benchmarks and demos.

A `Fate` says how far a ticket got and when; `row()` fills every step's time in the
loop's order (created <= registered <= dispatched <= accepted <= reported <= closed <=
evaluated), `done_at` and `on_time` as the workflow would, so the measures read rows
that look like the ticket core's. `insert` writes many in one executemany.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from plugins.tickets.workflow import (
    CLOSED,
    COLLECTED,
    DISPATCHED,
    DONE,
    EVALUATED,
    HANDLING,
    REGISTERED,
    REPORTED,
)

# The states in loop order, and the step each one adds.
_LOOP = (COLLECTED, REGISTERED, DISPATCHED, HANDLING, REPORTED, CLOSED, EVALUATED)

COLUMNS = (
    "id",
    "channel",
    "category",
    "tier",
    "state",
    "lon",
    "lat",
    "grid",
    "street",
    "member",
    "department",
    "handler",
    "created_at",
    "registered_at",
    "dispatched_at",
    "accepted_at",
    "reported_at",
    "closed_at",
    "evaluated_at",
    "done_at",
    "due_at",
    "on_time",
    "satisfaction",
    "reworks",
    "reopens",
    "updated_at",
)


@dataclass
class Fate:
    id: int
    created_at: float
    due_at: float
    state: str = CLOSED
    category: str = "city.litter"
    tier: str = "simple"
    department: str | None = "urban-mgmt"
    street: str | None = None
    grid: str | None = None
    member: str | None = None
    lon: float | None = None
    lat: float | None = None
    response_s: float = 600.0  # dispatch to accept
    closed_at: float | None = None  # default: an hour after the accept
    satisfaction: str | None = None  # evaluated tickets only
    reworks: int = 0
    reopens: int = 0
    channel: str = "grid_app"
    registered: bool = True  # a void ticket (duplicate, not ours, invalid) may not be


def row(f: Fate) -> tuple[Any, ...]:
    """The ticket's row, in COLUMNS order. ValueError for a fate the loop cannot give."""
    reached = _LOOP.index(f.state) if f.state in _LOOP else -1
    void = reached < 0
    stamps: dict[str, float | None] = dict.fromkeys(
        ("registered_at", "dispatched_at", "accepted_at", "reported_at", "closed_at"), None
    )
    t = f.created_at
    if (void and f.registered) or reached >= 1:
        t = stamps["registered_at"] = t + 60
    if reached >= 2:
        t = stamps["dispatched_at"] = t + 60
    if reached >= 3:
        t = stamps["accepted_at"] = t + f.response_s
    if reached >= 5:
        closed = f.closed_at if f.closed_at is not None else t + 3600
        if closed < t + 60:
            raise ValueError(f"ticket {f.id}: closed at {closed} before it was handled")
        stamps["reported_at"], stamps["closed_at"] = closed - 60, closed
        t = closed
    elif reached == 4:
        t = stamps["reported_at"] = t + 1800
    evaluated_at = None
    if f.state == EVALUATED:
        if f.satisfaction is None:
            raise ValueError(f"ticket {f.id}: evaluated without a satisfaction")
        t = evaluated_at = t + 3600
    elif f.satisfaction is not None:
        raise ValueError(f"ticket {f.id}: a satisfaction before it was evaluated")
    if void:
        t += 120
    done_at = t if f.state in DONE else None
    closed_at = stamps["closed_at"]
    on_time = None if closed_at is None else int(closed_at <= f.due_at)
    handler = f.department if f.tier != "simple" else f.member
    return (
        f.id,
        f.channel,
        f.category,
        f.tier,
        f.state,
        f.lon,
        f.lat,
        f.grid,
        f.street,
        f.member,
        f.department,
        handler if reached >= 2 else None,
        f.created_at,
        stamps["registered_at"],
        stamps["dispatched_at"],
        stamps["accepted_at"],
        stamps["reported_at"],
        closed_at,
        evaluated_at,
        done_at,
        f.due_at,
        on_time,
        f.satisfaction,
        f.reworks,
        f.reopens,
        t,
    )


def insert(conn: sqlite3.Connection, fates: list[Fate]) -> None:
    marks = ", ".join("?" for _ in COLUMNS)
    conn.executemany(
        f"INSERT INTO tickets ({', '.join(COLUMNS)}) VALUES ({marks})", [row(f) for f in fates]
    )


def reference(
    conn: sqlite3.Connection,
    departments: dict[str, str],
    categories: dict[str, tuple[str, str | None]],
) -> None:
    """Departments `{id: name}` (district level) and categories `{code: (name,
    department)}`; the tickets' category must exist (a foreign key)."""
    conn.executemany(
        "INSERT INTO ticket_departments (id, name, level) VALUES (?, ?, 'district')",
        list(departments.items()),
    )
    conn.executemany(
        "INSERT INTO ticket_categories (code, name, tier, department, deadline) "
        "VALUES (?, ?, 'coordination', ?, '5wd')",
        [(code, name, dept) for code, (name, dept) in categories.items()],
    )
