"""The measures, defined once: what is counted, over which tickets, and the SQL.

Two cohorts of tickets per period (docs/tickets-measures.md says why):

- **registered**: `registered_at` in the period, whatever became of the ticket;
- **due to close**: `due_at` in the period, duplicates, not-ours and invalid reports
  left out (nothing is owed on them). Every rate is over this cohort, so the rates of
  a unit share one denominator and a ticket is judged once, in the period its
  deadline falls in.

Each counter below is a SQL expression over one ticket row `{t}`. The same text makes
the direct query (`direct_sql`) and the triggers that keep the daily rollup
`ticket_measure_days` (plugins/tickets/rollup.py) in the ticket's own transaction, so
the two cannot disagree; a test checks they answer the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from plugins.tickets.workflow import CLOSED, DUPLICATE, EVALUATED, INVALID, NOT_OURS, REPORTED

DIMS = ("district", "department", "street", "member")
VOID = (DUPLICATE, NOT_OURS, INVALID)


def _state_in(*states: str) -> str:
    """`{t}.state` is one of `states`, as comparisons, never `IN (...)`: SQLite makes
    an ephemeral table for an IN list of three or more constants each time the
    statement runs, and in the rollup's triggers that is once per ticket written (a
    page cache allocated and freed each time, which made the store's work per report
    four times what it is without)."""
    return "(" + " OR ".join(f"{{t}}.state = '{s}'" for s in states) + ")"


# Membership of each cohort, and the day a row counts on (its local day number).
REGISTERED_WHEN = "{t}.registered_at IS NOT NULL"
DUE_WHEN = "NOT " + _state_in(*VOID)

# The due cohort's counters. `{response_s}` is the response limit in seconds.
DUE_COUNTERS: dict[str, str] = {
    "due": "1",
    # The handler accepted (responded) within the limit of the first dispatch.
    "responded": "{t}.accepted_at IS NOT NULL AND {t}.accepted_at - {t}.dispatched_at "
    "<= {response_s}",
    # The handler reported it handled (a rework sends it back: no longer disposed).
    "disposed": _state_in(REPORTED, CLOSED, EVALUATED),
    # Verified and closed now (a reopened ticket is open again).
    "closed": _state_in(CLOSED, EVALUATED),
    "on_time": _state_in(CLOSED, EVALUATED) + " AND {t}.on_time = 1",
    "reworks": "{t}.reworks",  # verification failed: counted against the handler
    "reopens": "{t}.reopens",
    "evaluated": "{t}.satisfaction IS NOT NULL",
    "satisfied": "{t}.satisfaction = 'satisfied'",
    "basic": "{t}.satisfaction = 'basic'",
    "unsatisfied": "{t}.satisfaction = 'unsatisfied'",
}
COUNTERS = ("registered", *DUE_COUNTERS)

# Each dimension's key for a row: '' is the district, or a ticket with no such unit.
KEY = (
    "CASE u.dim WHEN 'department' THEN coalesce({t}.department, '') "
    "WHEN 'street' THEN coalesce({t}.street, '') "
    "WHEN 'member' THEN coalesce({t}.member, '') ELSE '' END"
)
UNITS = " UNION ALL ".join(
    f"SELECT '{d}' AS dim" if i == 0 else f"SELECT '{d}'" for i, d in enumerate(DIMS)
)


def columns(*exprs: str) -> list[str]:
    """The ticket columns the expressions read (what an update trigger watches)."""
    found = {c for e in exprs for c in re.findall(r"\{t\}\.(\w+)", e)}
    return sorted(found)


def day_of(time: str, offset: str) -> str:
    """The local day number of a time: whole days since 1970-01-01 in the zone."""
    return f"CAST(({time} + {offset}) / 86400 AS INTEGER)"


def month_of(time: str, offset: str) -> str:
    """The local month number of a time: year * 12 + month - 1."""
    local = f"{time} + {offset}"
    return (
        f"(CAST(strftime('%Y', {local}, 'unixepoch') AS INTEGER) * 12 "
        f"+ CAST(strftime('%m', {local}, 'unixepoch') AS INTEGER) - 1)"
    )


def cohort_select(
    part: str,
    *,
    t: str,
    source: str,
    offset: str,
    response_s: str,
    where: str = "",
    sign: str = "",
    bucket: Callable[[str, str], str] = day_of,
) -> tuple[str, list[str]]:
    """`SELECT bucket, dim, key, c0, c1...`: what the ticket row(s) `t` count in one
    cohort (`registered` or `due`), one row per dimension, and the counters' names.
    `source` is what the FROM adds to the dimensions (the tickets, the settings)."""
    if part == "registered":
        when, column, exprs = REGISTERED_WHEN, "registered_at", {"registered": "1"}
    else:
        when, column, exprs = DUE_WHEN, "due_at", DUE_COUNTERS
    # coalesce: a NULL (no dispatch, no evaluation) counts 0, and never turns a
    # rollup counter NULL.
    values = ", ".join(f"coalesce({sign}({e}), 0) AS c{i}" for i, e in enumerate(exprs.values()))
    sql = (
        f"SELECT {bucket(f'{t}.{column}', offset)} AS bucket, u.dim AS dim, {KEY} AS key, "
        f"{values} "
        f"FROM {source + ', ' if source else ''}({UNITS}) u WHERE {when}"
        + (f" AND {where}" if where else "")
    )
    return sql.format(t=t, response_s=response_s), list(exprs)


def sums(names: list[str]) -> str:
    return ", ".join(f"sum(c{i})" for i in range(len(names)))


def direct_sql(part: str) -> tuple[str, list[str]]:
    """Counts per (dim, key) straight from `tickets` over [:start, :end): the
    baseline the rollup is checked and benched against, and the path for periods the
    rollup cannot cut (a zone whose offset moves)."""
    column = "registered_at" if part == "registered" else "due_at"
    select, names = cohort_select(
        part,
        t="t",
        source="tickets t",
        offset="0",
        response_s=":response_s",
        where=f"t.{column} >= :start AND t.{column} < :end",
    )
    return f"SELECT dim, key, {sums(names)} FROM ({select}) GROUP BY dim, key", names


def rollup_sql() -> str:
    """Counts per (dim, key) from the rollups: whole months from the monthly one, the
    days before and after them (or all of a shorter period) from the daily one."""
    cols = ", ".join(COUNTERS)
    return (
        f"SELECT dim, key, {', '.join(f'sum({c})' for c in COUNTERS)} FROM ("
        f"SELECT dim, key, {cols} FROM ticket_measure_months "
        "WHERE month BETWEEN :month_first AND :month_last UNION ALL "
        f"SELECT dim, key, {cols} FROM ticket_measure_days "
        "WHERE day BETWEEN :head_first AND :head_last OR day BETWEEN :tail_first AND :tail_last"
        ") GROUP BY dim, key "
        # A unit whose tickets all moved elsewhere leaves rows of zeros behind.
        "HAVING sum(registered) != 0 OR sum(due) != 0"
    )


def percent(numerator: int, denominator: int) -> float | None:
    """A rate in percent, two places, half up (911 / 972 -> 93.72); None over nothing."""
    if denominator == 0:
        return None
    # Hundredths of a percent, rounded half up in integers: exact, and cheap enough
    # for a thousand units.
    hundredths = (20_000 * numerator + denominator) // (2 * denominator)
    return hundredths / 100


def rate(numerator: int, denominator: int, of: str) -> dict[str, Any]:
    return {
        "percent": percent(numerator, denominator),
        "numerator": numerator,
        "denominator": denominator,
        "of": of,
    }


def rates(counts: dict[str, int], satisfied: list[str]) -> dict[str, dict[str, Any]]:
    """The five rates of one unit, each with the counts it is made of."""
    due = counts["due"]
    return {
        "response": rate(counts["responded"], due, "due"),
        "disposal": rate(counts["disposed"], due, "due"),
        "closure": rate(counts["closed"], due, "due"),
        "on_time": rate(counts["on_time"], due, "due"),
        "satisfaction": rate(sum(counts[s] for s in satisfied), counts["evaluated"], "evaluated"),
    }
