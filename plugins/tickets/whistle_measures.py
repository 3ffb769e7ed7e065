"""One whistle, one assessment (一哨一考核, seed 001): how each department answered the
whistles that called it.

The cohort is like the tickets' "due to close": the calls whose report-in deadline
(`due_at`) falls in the period, counted as they stand when asked. A department called
at the start of a whistle keeps that first deadline even when the whistle goes a
level up (it was late); one called at an escalation has the new level's.

| count | of the calls due in the period |
|---|---|
| called | all of them |
| reported | the department reported in, whenever |
| on_time | it reported in by the call's deadline |

Rates: reported / called (报到率) and on_time / called (按时报到率). Whistles are few
(dozens a month, not thousands), so this is one grouped query over the calls' index
on `due_at`, no rollup.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from plugins.tickets.measures import rate

COUNTS = ("called", "reported", "on_time")
_SQL = (
    "SELECT c.department, d.name, count(*), count(c.reported_at), "
    "count(*) FILTER (WHERE c.reported_at <= c.due_at) "
    "FROM ticket_whistle_calls c LEFT JOIN ticket_departments d ON d.id = c.department "
    "WHERE c.due_at >= ? AND c.due_at < ? GROUP BY c.department ORDER BY c.department"
)


def unit(key: str | None, name: str | None, counts: dict[str, int]) -> dict[str, Any]:
    called = counts["called"]
    return {
        "key": key,
        "name": name,
        "counts": counts,
        "rates": {
            "reported": rate(counts["reported"], called, "called"),
            "on_time": rate(counts["on_time"], called, "called"),
        },
    }


def assess(conn: sqlite3.Connection, bounds: tuple[float, float]) -> dict[str, Any]:
    """`{"district": unit, "department": [unit, ...]}` over [start, end)."""
    departments = []
    total = dict.fromkeys(COUNTS, 0)
    for key, name, *values in conn.execute(_SQL, bounds):
        counts = dict(zip(COUNTS, values, strict=True))
        for k in COUNTS:
            total[k] += counts[k]
        departments.append(unit(key, name or key, counts))
    return {"district": unit(None, None, total), "department": departments}
