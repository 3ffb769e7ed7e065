"""The audit trail: every action with who, when, what, cause and result.

A row is committed before the action's answer goes out, so an answered action is
always in the trail, even after a kill -9. Rows go through the store's group commit:
actions answered at the same moment share one fsync.
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

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO audit (at, who, what, target, args, cause, result, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    await store.write_grouped(insert)


async def recent(store: Store, limit: int = 100, target: str | None = None) -> list[dict[str, Any]]:
    if target:
        rows = await store.fetchall(
            "SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?", (target, limit)
        )
    else:
        rows = await store.fetchall("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]
