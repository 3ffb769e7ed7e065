"""Accounts: who holds credits, and within which limits.

An account is named `<kind>:<holder>`: the kind (member, resident, organisation, or
the pool) and the grid registry's id of the person or body, so a member and a
resident who happen to share an id in the registry's two tables stay apart. The
functions here run inside a store transaction (`Store.write`), on its sqlite3
connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from daemon.errors import BadArguments, NotFound
from plugins.timebank.config import KINDS, PERSON_KINDS, TimebankConfig

COLUMNS = "id, kind, holder, name, family, min_balance, max_balance, balance, opened_at, opened_by"


def parse_ref(ref: str) -> tuple[str, str]:
    """(kind, holder) of an account name; BadArguments naming what is wrong."""
    kind, sep, holder = ref.partition(":")
    if not sep or kind not in KINDS or not holder or len(holder) > 128 or holder.strip() != holder:
        raise BadArguments(
            f"account {ref!r}: write it as <kind>:<holder id>, kind one of {', '.join(KINDS)}"
        )
    return kind, holder


def _row(cur: sqlite3.Cursor) -> dict[str, Any] | None:
    row = cur.fetchone()
    return None if row is None else dict(zip(COLUMNS.split(", "), row, strict=True))


def find(conn: sqlite3.Connection, ref: str) -> dict[str, Any] | None:
    return _row(conn.execute(f"SELECT {COLUMNS} FROM timebank_accounts WHERE id = ?", (ref,)))


def get(conn: sqlite3.Connection, ref: str) -> dict[str, Any]:
    found = find(conn, ref)
    if found is None:
        raise NotFound(f"no account {ref}")
    return found


def open_account(
    conn: sqlite3.Connection,
    ref: str,
    *,
    by: str,
    at: float,
    name: str | None = None,
    family: str | None = None,
) -> bool:
    """Open `ref` unless it is open already; True when it was opened now."""
    kind, holder = parse_ref(ref)
    if family is not None and kind not in PERSON_KINDS:
        raise BadArguments(f"{ref}: only people ({', '.join(PERSON_KINDS)}) belong to a family")
    cur = conn.execute(
        "INSERT OR IGNORE INTO timebank_accounts (id, kind, holder, name, family, opened_at, "
        "opened_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ref, kind, holder, name, family, at, by),
    )
    return cur.rowcount == 1


def bounds(account: dict[str, Any], config: TimebankConfig) -> tuple[int | None, int | None, str]:
    """(min, max, policy) in force for an account: its own limits, else its kind's."""
    kind = config.limits_of(account["kind"])
    low = account["min_balance"] if account["min_balance"] is not None else kind.min
    high = account["max_balance"] if account["max_balance"] is not None else kind.max
    return low, high, kind.policy


def public(account: dict[str, Any], config: TimebankConfig) -> dict[str, Any]:
    """An account as the API shows it, with the limits in force."""
    low, high, policy = bounds(account, config)
    return {**account, "limits": {"min": low, "max": high, "policy": policy}}
