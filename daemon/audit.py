"""The audit trail: every action with who, when, what, cause and result.

A row is committed before the action's answer goes out, so an answered action is
always in the trail, even after a kill -9. Rows go through the store's group commit:
actions answered at the same moment share one fsync. An edit of the store (a scene, a
schedule) writes its row with `insert`, inside the edit's own transaction: an edit is
never in force without its row, whatever moment a kill comes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from daemon.store import Store


async def record(
    store: Store,
    *,
    who: str,
    what: str,
    target: str | None,
    args: dict[str, Any] | None,
    cause: str,
    result: str,
    detail: str | None = None,
) -> None:
    row = (
        time.time(),
        who,
        what,
        target,
        json.dumps(args) if args else None,
        cause,
        result,
        detail,
    )
    await store.write_grouped(lambda conn: _insert(conn, row))


def insert(
    conn: sqlite3.Connection,
    *,
    who: str,
    what: str,
    target: str | None,
    cause: str = "api",
    args: dict[str, Any] | None = None,
) -> None:
    """An edit's row (result ok), in the transaction of the edit it records."""
    _insert(
        conn,
        (time.time(), who, what, target, json.dumps(args) if args else None, cause, "ok", None),
    )


def _insert(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    conn.execute(
        "INSERT INTO audit (at, who, what, target, args, cause, result, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )


async def recent(store: Store, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    if target:
        rows = await store.fetchall(
            "SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?", (target, limit)
        )
    else:
        rows = await store.fetchall("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]
