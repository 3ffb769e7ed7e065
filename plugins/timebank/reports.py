"""What is read out of the ledger: statements (JSON and CSV), leaderboards by period and
role, and the audit listing. Periods are cut in the calendar's time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from daemon.errors import BadArguments
from plugins.timebank import ledger

_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>\d{2})|Q(?P<quarter>[1-4])))?$")


@dataclass(frozen=True)
class Period:
    label: str
    start: float | None  # epoch seconds, inclusive; None: from the beginning
    end: float | None  # exclusive; None: up to now

    def to_dict(self, tz: ZoneInfo) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return None if t is None else dt.datetime.fromtimestamp(t, tz).isoformat()

        return {"period": self.label, "from": iso(self.start), "until": iso(self.end)}


def period(label: str, tz: ZoneInfo) -> Period:
    """ "2026", "2026-03", "2026-Q2" or "all"."""
    if label == "all":
        return Period(label, None, None)
    m = _PERIOD.match(label)
    if m is None or (m["month"] and not 1 <= int(m["month"]) <= 12):
        raise BadArguments(f"period {label!r}: give YYYY, YYYY-MM, YYYY-Qn or all")
    year = int(m["year"])
    if m["month"]:
        first, months = int(m["month"]), 1
    elif m["quarter"]:
        first, months = 3 * int(m["quarter"]) - 2, 3
    else:
        first, months = 1, 12
    start = dt.datetime(year, first, 1, tzinfo=tz)
    nxt = first - 1 + months
    end = dt.datetime(year + nxt // 12, nxt % 12 + 1, 1, tzinfo=tz)
    return Period(label, start.timestamp(), end.timestamp())


def day_range(start: dt.date | None, end: dt.date | None, tz: ZoneInfo) -> Period:
    """Whole days, `end` included."""

    def at(day: dt.date) -> float:
        return dt.datetime.combine(day, dt.time(), tz).timestamp()

    label = f"{start or ''}..{end or ''}"
    return Period(label, at(start) if start else None, at(end) + 86400 if end else None)


def _bounds(p: Period) -> tuple[float, float]:
    return (p.start if p.start is not None else float("-inf"), p.end or float("inf"))


def leaderboards(
    conn: sqlite3.Connection, p: Period, role: str | None, limit: int
) -> dict[str, list[dict[str, Any]]]:
    """The top `limit` earners of each role (ties share a rank, so a board may be
    longer): awards in the period that no reversal has taken back."""
    start, end = _bounds(p)
    cur = conn.execute(
        """
        SELECT role, rank, account, name, kind, earned, awards FROM (
            SELECT e.role, m.account, a.name, a.kind, SUM(e.amount) AS earned,
                   count(*) AS awards,
                   RANK() OVER (PARTITION BY e.role ORDER BY SUM(e.amount) DESC) AS rank
            FROM timebank_entries e
            JOIN timebank_movements m ON m.entry = e.id AND m.amount > 0
            JOIN timebank_accounts a ON a.id = m.account
            WHERE e.kind = 'award' AND e.at >= ?1 AND e.at < ?2
              AND (?3 IS NULL OR e.role = ?3)
              AND NOT EXISTS (SELECT 1 FROM timebank_entries r WHERE r.reversal_of = e.id)
            GROUP BY e.role, m.account
        ) WHERE rank <= ?4 ORDER BY role, rank, account
        """,
        (start, end, role, limit),
    )
    boards: dict[str, list[dict[str, Any]]] = {}
    names = [d[0] for d in cur.description]
    for row in cur.fetchall():
        item = dict(zip(names, row, strict=True))
        boards.setdefault(item.pop("role"), []).append(item)
    return boards


STATEMENT_COLUMNS = (
    "entry",
    "at",
    "kind",
    "memo",
    "rule",
    "role",
    "counterparty",
    "amount",
    "balance",
    "flagged",
    "reversal_of",
    "source",
)


def statement(conn: sqlite3.Connection, account: str, p: Period, tz: ZoneInfo) -> dict[str, Any]:
    """An account's movements in a period, each with the balance it left."""
    start, end = _bounds(p)
    cur = conn.execute(
        """
        SELECT e.id AS entry, e.at, e.kind, e.memo, e.rule, e.role, o.account AS counterparty,
               m.amount, m.balance, e.flagged, e.reversal_of, e.source
        FROM timebank_movements m
        JOIN timebank_entries e ON e.id = m.entry
        JOIN timebank_movements o ON o.entry = m.entry AND o.id != m.id
        WHERE m.account = ? AND e.at >= ? AND e.at < ? ORDER BY m.id
        """,
        (account, start, end),
    )
    rows = [dict(zip(STATEMENT_COLUMNS, r, strict=True)) for r in cur.fetchall()]
    if rows:
        opening = rows[0]["balance"] - rows[0]["amount"]
    else:
        before = conn.execute(
            "SELECT m.balance FROM timebank_movements m JOIN timebank_entries e "
            "ON e.id = m.entry WHERE m.account = ? AND e.at < ? ORDER BY m.id DESC LIMIT 1",
            (account, start),
        ).fetchone()
        opening = before[0] if before else 0
    for row in rows:
        row["at"] = dt.datetime.fromtimestamp(row["at"], tz).isoformat(timespec="seconds")
    return {
        "account": account,
        **p.to_dict(tz),
        "opening": opening,
        "closing": rows[-1]["balance"] if rows else opening,
        "credits": sum(r["amount"] for r in rows if r["amount"] > 0),
        "debits": -sum(r["amount"] for r in rows if r["amount"] < 0),
        "movements": rows,
    }


def statement_csv(found: dict[str, Any], unit: str) -> str:
    """The statement as CSV: a header row, the movements, and no totals row, so a
    spreadsheet sums the amount column itself."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(
        [*STATEMENT_COLUMNS[:7], f"amount ({unit})", f"balance ({unit})", *STATEMENT_COLUMNS[9:]]
    )
    for row in found["movements"]:
        writer.writerow(["" if row[c] is None else row[c] for c in STATEMENT_COLUMNS])
    return out.getvalue()


def audit(
    conn: sqlite3.Connection,
    *,
    after: int,
    limit: int,
    account: str | None,
    flagged: bool,
) -> dict[str, Any]:
    """Every entry, oldest first, with its movements, who wrote it and why; paged by id.
    Also the automatic awards a `block` limit kept out of the ledger."""
    where: list[str] = ["e.id > ?"]
    params: list[Any] = [after]
    if account is not None:
        where.append("(d.account = ? OR c.account = ?)")
        params += [account, account]
    if flagged:
        where.append("e.flagged IS NOT NULL")
    rows = ledger.entries(conn, " AND ".join(where), tuple(params), limit)
    for row in rows:
        row.pop("fingerprint")
    refused = conn.execute(
        "SELECT source, at, account, amount, rule, reason FROM timebank_refused ORDER BY at"
    )
    names = [d[0] for d in refused.description]
    return {
        "entries": rows,
        "next": rows[-1]["id"] if len(rows) == limit else None,
        "refused": [dict(zip(names, r, strict=True)) for r in refused.fetchall()],
    }
