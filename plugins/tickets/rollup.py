"""The rollups behind a month's measures in milliseconds.

`ticket_measure_days` and `ticket_measure_months` hold, per local day and per local
month, and per unit (the district, each department, street and grid member), the
counters of plugins/tickets/measures.py: a period is its whole months from the one and
the days around them from the other, so a month is read from about a thousand rows,
not thirty thousand.
SQL triggers on `tickets` keep it in the same transaction as every write to a ticket,
whoever writes (the ticket core, an import, a hand-made UPDATE), so a committed ticket
is always counted and a rolled-back one never is; they are made from the same
expressions as the direct query.

Days are cut with the zone's UTC offset kept in `ticket_measure_settings` (Shanghai:
+8 h, no daylight saving). `ensure` installs the triggers and rebuilds the table in
one transaction whenever the offset, the response limit or the definitions changed;
a period the stored offset cannot cut (a zone whose offset moves inside it) is
measured by the direct query instead (`fits`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from zoneinfo import ZoneInfo

from daemon.store import Migration
from plugins.tickets.measures import (
    COUNTERS,
    DUE_COUNTERS,
    DUE_WHEN,
    KEY,
    REGISTERED_WHEN,
    cohort_select,
    columns,
    day_of,
    month_of,
    sums,
)
from plugins.tickets.periods import Period
from plugins.tickets.tables import NAME

MIGRATIONS = [
    Migration(
        NAME,
        10,
        """
        CREATE TABLE ticket_measure_days (
            day INTEGER NOT NULL,            -- local day: whole days since 1970-01-01 in the zone
            dim TEXT NOT NULL,               -- district, department, street, member
            key TEXT NOT NULL,               -- the unit's id; '' for the district or no unit
            registered INTEGER NOT NULL DEFAULT 0,  -- by registered_at's day
            due INTEGER NOT NULL DEFAULT 0,         -- the rest by due_at's day
            responded INTEGER NOT NULL DEFAULT 0,
            disposed INTEGER NOT NULL DEFAULT 0,
            closed INTEGER NOT NULL DEFAULT 0,
            on_time INTEGER NOT NULL DEFAULT 0,
            reworks INTEGER NOT NULL DEFAULT 0,
            reopens INTEGER NOT NULL DEFAULT 0,
            evaluated INTEGER NOT NULL DEFAULT 0,
            satisfied INTEGER NOT NULL DEFAULT 0,
            basic INTEGER NOT NULL DEFAULT 0,
            unsatisfied INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, dim, key)
        ) WITHOUT ROWID;
        CREATE TABLE ticket_measure_months (
            month INTEGER NOT NULL,          -- local month: year * 12 + month - 1
            dim TEXT NOT NULL,
            key TEXT NOT NULL,
            registered INTEGER NOT NULL DEFAULT 0,
            due INTEGER NOT NULL DEFAULT 0,
            responded INTEGER NOT NULL DEFAULT 0,
            disposed INTEGER NOT NULL DEFAULT 0,
            closed INTEGER NOT NULL DEFAULT 0,
            on_time INTEGER NOT NULL DEFAULT 0,
            reworks INTEGER NOT NULL DEFAULT 0,
            reopens INTEGER NOT NULL DEFAULT 0,
            evaluated INTEGER NOT NULL DEFAULT 0,
            satisfied INTEGER NOT NULL DEFAULT 0,
            basic INTEGER NOT NULL DEFAULT 0,
            unsatisfied INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (month, dim, key)
        ) WITHOUT ROWID;
        CREATE TABLE ticket_measure_settings (  -- what the rollup was built with
            id INTEGER PRIMARY KEY CHECK (id = 1),
            offset_s INTEGER NOT NULL,       -- the zone's UTC offset days are cut with
            response_s REAL NOT NULL,        -- the response limit
            signature TEXT,                  -- of the triggers' SQL; NULL: never built
            built_at REAL
        );
        INSERT INTO ticket_measure_settings (id, offset_s, response_s) VALUES (1, 28800, 86400);
        CREATE INDEX tickets_due ON tickets(due_at);
        CREATE INDEX tickets_registered ON tickets(registered_at);
        """,
        "measures: the daily and monthly rollups and their settings; due and registered indexes",
    ),
]

SETTINGS = "ticket_measure_settings s"
# table -> (its bucket column, how a time becomes a bucket)
ROLLUPS = {
    "ticket_measure_days": ("day", day_of),
    "ticket_measure_months": ("month", month_of),
}


def _upsert(part: str, t: str, sign: str) -> str:
    statements = []
    for table, (column, bucket) in ROLLUPS.items():
        select, names = cohort_select(
            part,
            t=t,
            source=SETTINGS,
            offset="s.offset_s",
            response_s="s.response_s",
            sign=sign,
            bucket=bucket,
        )
        picks = ", ".join(f"c{i}" for i in range(len(names)))
        adds = ", ".join(f"{n} = {n} + excluded.{n}" for n in names)
        statements.append(
            f"INSERT INTO {table} ({column}, dim, key, {', '.join(names)}) "
            f"SELECT bucket, dim, key, {picks} FROM ({select}) WHERE true "
            f"ON CONFLICT ({column}, dim, key) DO UPDATE SET {adds};"
        )
    return "\n".join(statements)


def _update_trigger(part: str, watched: list[str]) -> str:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    return (
        f"CREATE TRIGGER ticket_measures_{part} AFTER UPDATE OF {', '.join(watched)} "
        f"ON tickets WHEN {changed} BEGIN\n"
        f"{_upsert(part, 'OLD', '-')}\n{_upsert(part, 'NEW', '')}\nEND"
    )


def trigger_sql() -> list[str]:
    both = ("registered", "due")
    return [
        "CREATE TRIGGER ticket_measures_insert AFTER INSERT ON tickets BEGIN\n"
        + "\n".join(_upsert(p, "NEW", "") for p in both)
        + "\nEND",
        "CREATE TRIGGER ticket_measures_delete AFTER DELETE ON tickets BEGIN\n"
        + "\n".join(_upsert(p, "OLD", "-") for p in both)
        + "\nEND",
        # Watched: what decides the cohort, the day (its time), the unit and the counts.
        _update_trigger("registered", columns(REGISTERED_WHEN, "{t}.registered_at", KEY)),
        _update_trigger("due", columns(DUE_WHEN, "{t}.due_at", KEY, *DUE_COUNTERS.values())),
    ]


TRIGGERS = ("insert", "delete", "registered", "due")


def rebuild_sql() -> list[str]:
    """The days from the tickets, then the months from the days (a local day number
    read as a UTC date is that local date)."""
    statements = ["DELETE FROM ticket_measure_days", "DELETE FROM ticket_measure_months"]
    for part in ("registered", "due"):
        select, names = cohort_select(
            part,
            t="t",
            source=f"tickets t, {SETTINGS}",
            offset="s.offset_s",
            response_s="s.response_s",
        )
        sets = ", ".join(f"{n} = excluded.{n}" for n in names)
        statements.append(
            f"INSERT INTO ticket_measure_days (day, dim, key, {', '.join(names)}) "
            f"SELECT bucket, dim, key, {sums(names)} FROM ({select}) "
            "GROUP BY bucket, dim, key "
            f"ON CONFLICT (day, dim, key) DO UPDATE SET {sets}"
        )
    statements.append(
        f"INSERT INTO ticket_measure_months (month, dim, key, {', '.join(COUNTERS)}) "
        f"SELECT {month_of('day * 86400', '0')} AS m, dim, key, "
        f"{', '.join(f'sum({c})' for c in COUNTERS)} FROM ticket_measure_days "
        "GROUP BY m, dim, key"
    )
    return statements


SIGNATURE = hashlib.sha256("\n".join(trigger_sql() + rebuild_sql()).encode()).hexdigest()[:16]


def offset_of(tz: ZoneInfo) -> int:
    """The zone's UTC offset on the first of January, in seconds (Shanghai: 28800):
    one fixed choice, so a zone with daylight saving cuts the same months from the
    rollup whatever the season the daemon started in."""
    offset = dt.datetime(dt.date.today().year, 1, 1, tzinfo=tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def fits(period: Period, tz: ZoneInfo, offset_s: int) -> bool:
    """Whether every midnight of the period (and the one after it) is `offset_s` from
    UTC: then the rollup's days are the period's days."""
    days = [*period.dates(), period.last + dt.timedelta(days=1)]
    for day in days:
        offset = dt.datetime.combine(day, dt.time(0), tz).utcoffset()
        if offset is None or int(offset.total_seconds()) != offset_s:
            return False
    return True


EPOCH = dt.date(1970, 1, 1)


def _first_of(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def buckets(period: Period) -> dict[str, int]:
    """The rollup rows a period is read from: its whole months, and the days before
    and after them (all its days when it holds no whole month); an empty range is
    (1, 0)."""
    first, last = period.first, period.last
    month_first = first.year * 12 + first.month - 1 + (first.day != 1)
    month_last = last.year * 12 + last.month - 1 - ((last + dt.timedelta(days=1)).day != 1)
    day = (first - EPOCH).days, (last - EPOCH).days
    if month_first > month_last:
        return dict(zip(_BUCKETS, (1, 0, *day, 1, 0), strict=True))
    head_end = (_first_of(month_first) - EPOCH).days - 1
    tail_start = (_first_of(month_last + 1) - EPOCH).days
    return dict(
        zip(_BUCKETS, (month_first, month_last, day[0], head_end, tail_start, day[1]), strict=True)
    )


_BUCKETS = ("month_first", "month_last", "head_first", "head_last", "tail_first", "tail_last")


def ensure(conn: sqlite3.Connection, offset_s: int, response_s: float) -> bool:
    """Install the triggers and rebuild the rollups unless they were built with these
    settings and these definitions. Run inside one write transaction (Store.write):
    a ticket written meanwhile waits, and is then counted by the triggers."""
    row = conn.execute(
        "SELECT offset_s, response_s, signature FROM ticket_measure_settings WHERE id = 1"
    ).fetchone()
    if tuple(row) == (offset_s, response_s, SIGNATURE):
        return False
    for name in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS ticket_measures_{name}")
    for statement in trigger_sql():
        conn.execute(statement)
    conn.execute(
        "UPDATE ticket_measure_settings SET offset_s = ?, response_s = ?, signature = ?, "
        "built_at = ? WHERE id = 1",
        (offset_s, response_s, SIGNATURE, time.time()),
    )
    for statement in rebuild_sql():
        conn.execute(statement)
    return True
